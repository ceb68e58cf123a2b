// Section 7.2: recent logs of each app. `flyctl logs --no-tail` returns after the first batch,
// but waits forever on an empty buffer, so every call is bounded by LOGS_TIMEOUT seconds.
import chalk from 'chalk'
import { main } from './lib/cli.js'
import { CommandError } from './lib/errors.js'
import { flyAppName } from './lib/names.js'

await main({ name: 'logs', usage: 'logs <staging|production> [--app KEY] [--verbose]', environment: true }, async (ctx) => {
  const timeoutMs = Number(process.env.LOGS_TIMEOUT ?? 20) * 1000
  let failed = 0
  for (const key of ctx.apps) {
    const app = flyAppName(ctx.env, key)
    ctx.log.result(chalk.bold(`== ${app}`))
    try {
      const out = await ctx.fly().logs(app, timeoutMs)
      ctx.log.result(out.stdout.trimEnd() || '(no log lines)')
    } catch (error) {
      if (error instanceof CommandError && error.status === null) {
        ctx.log.result(`(no logs within ${timeoutMs / 1000}s: the log buffer is probably empty)`)
        continue
      }
      if (!(error instanceof CommandError)) throw error
      failed++
      ctx.log.error(`flyctl logs failed for ${app}: ${error.stderr.trim().split('\n').pop()}`)
    }
  }
  return failed ? 1 : 0
})
