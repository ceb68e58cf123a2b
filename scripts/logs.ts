// Section 7.2: recent logs of each app. `flyctl logs --no-tail` returns after the first batch,
// but waits forever on an empty buffer, so every call is bounded by LOGS_TIMEOUT seconds.
// FOLLOW=1 streams instead (`flyctl logs` without --no-tail) until Ctrl-C. Apps log what they
// like, secrets included: every line goes through the masker, which knows every value of the
// env files on this machine.
import chalk from 'chalk'
import { envFlag, main } from './lib/core/cli.js'
import { CommandError } from './lib/core/errors.js'
import { seconds } from './lib/core/knobs.js'
import { plain } from './lib/core/log.js'
import { flyAppName } from './lib/core/names.js'

void main({ name: 'logs', usage: 'logs <staging|production> [--app KEY] [--follow] [--verbose]', environment: true, options: { follow: { type: 'boolean' } } }, async (ctx) => {
  if (ctx.flags.follow || envFlag('FOLLOW')) {
    const children = ctx.apps.map((key) => {
      const app = flyAppName(ctx.env, key)
      return ctx.fly().machines.logsFollow(app, (line) => ctx.log.result(`${chalk.dim(key.padEnd(12))} ${plain(line)}`))
    })
    ctx.log.info(`following the logs of ${ctx.apps.map((k) => flyAppName(ctx.env, k)).join(', ')}; Ctrl-C stops`)
    const ends = await Promise.all(children)
    const failed = ends.filter((out) => out.exitCode !== 0 && out.exitCode !== null)
    for (const out of failed) ctx.log.error(`flyctl logs ended: ${out.stderr.trim().split('\n').pop()}`)
    return failed.length ? 1 : 0
  }
  const timeoutMs = seconds('LOGS_TIMEOUT')
  let failed = 0
  for (const key of ctx.apps) {
    const app = flyAppName(ctx.env, key)
    ctx.log.result(chalk.bold(`== ${app}`))
    try {
      const out = await ctx.fly().machines.logs(app, timeoutMs)
      ctx.log.result(plain(out.stdout).trimEnd() || '(no log lines)')
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
