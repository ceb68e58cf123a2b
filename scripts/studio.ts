// Section 7.3 done so someone can use it: the document runs Prisma Studio inside `ssh console`,
// where no browser can reach it. Here Studio runs on the operator's machine against the
// environment's database (through flyctl proxy for .flycast/.internal hosts), and the tunnel
// closes when Studio stops. Production asks for confirmation: edits there are live.
import chalk from 'chalk'
import { main } from './lib/cli.js'
import { loadDatabaseTarget } from './lib/config.js'
import { confirmProduction } from './lib/confirm.js'
import { reach } from './lib/db.js'
import { registerSecret } from './lib/secrets-mask.js'

await main(
  { name: 'studio', usage: 'studio <staging|production> [--port N] [--dry-run] [--yes] [--env-dir DIR]', environment: true, options: { port: { type: 'string' } } },
  async (ctx) => {
    const target = loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
    const port = String(ctx.flags.port ?? process.env.STUDIO_PORT ?? 5555)
    if (ctx.env === 'production') ctx.log.error(chalk.bold('PRODUCTION: every edit made in Studio is live, at once, with no undo.'))
    await confirmProduction(ctx, 'studio')
    const { host, port: dbPort } = await reach(ctx, target)
    const url = new URL(target.url)
    url.hostname = host
    url.port = String(dbPort)
    registerSecret(url.toString())
    // The URL reaches Prisma through the environment, never argv (prisma.config.ts reads DATABASE_URL).
    const command = (process.env.PRISMA_STUDIO_CMD ?? 'npx prisma studio').split(' ')
    ctx.log.info(`Prisma Studio on http://localhost:${port} against the ${ctx.env} database; Ctrl-C stops it and closes the tunnel`)
    await ctx.exec.run({ argv: [...command, '--port', port, '--browser', 'none'], write: true, env: { DATABASE_URL: url.toString() }, timeoutMs: undefined, passthrough: true })
  },
)
