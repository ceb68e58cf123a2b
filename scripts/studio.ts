// Section 7.3 done so someone can use it: the document runs Prisma Studio inside `ssh console`,
// where no browser can reach it. Here Studio runs on the operator's machine against the
// environment's database (through flyctl proxy or flyctl mpg proxy for Fly's private hosts), and
// the tunnel closes when Studio stops. Production asks for confirmation: edits there are live.
import chalk from 'chalk'
import { main } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { confirmProduction } from './lib/safety/confirm.js'
import { reach } from './lib/database/db.js'
import { UserError } from './lib/core/errors.js'
import { knob } from './lib/core/knobs.js'
import { registerSecret } from './lib/secrets/mask.js'

void main(
  { name: 'studio', usage: 'studio <staging|production> [--port N] [--dry-run] [--yes] [--env-dir DIR]', environment: true, options: { port: { type: 'string' } } },
  async (ctx) => {
    const target = await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
    const given = ctx.flags.port as string | undefined
    if (given !== undefined && !/^\d+$/.test(given)) throw new UserError(`--port ${given} is not a TCP port`)
    const port = given ?? String(knob('STUDIO_PORT'))
    if (ctx.env === 'production') ctx.log.error(chalk.bold('PRODUCTION: every edit made in Studio is live, at once, with no undo.'))
    await confirmProduction(ctx, 'studio-prod')
    const { host, port: dbPort, viaProxy } = await reach(ctx, target)
    // Through a proxy: the same URL on its local end. Otherwise the URL as written (a unix-socket
    // or IPv6 host stays as libpq reads it).
    let databaseUrl = target.url
    if (viaProxy) {
      const url = new URL(target.url)
      url.hostname = host
      url.port = String(dbPort)
      databaseUrl = url.toString()
    }
    registerSecret(databaseUrl)
    // The URL reaches Prisma through the environment, never argv (prisma/prisma.config.ts reads it).
    const command = (process.env.PRISMA_STUDIO_CMD ?? 'npx prisma studio').split(' ')
    ctx.log.info(`Prisma Studio on http://localhost:${port} against the ${ctx.env} database; Ctrl-C stops it and closes the tunnel`)
    await ctx.exec.run({ argv: [...command, '--config', 'prisma/prisma.config.ts', '--port', port, '--browser', 'none'], write: true, env: { DATABASE_URL: databaseUrl, DIRECT_DATABASE_URL: databaseUrl }, timeoutMs: undefined, passthrough: true })
  },
)
