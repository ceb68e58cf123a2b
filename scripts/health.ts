// Section 7.1: health of the environment's apps, as a table; exit 1 when any app is unhealthy.
import chalk from 'chalk'
import { main } from './lib/cli.js'
import { waitHealthy } from './lib/health.js'
import { publishTable } from './lib/log.js'

await main(
  { name: 'health', usage: 'health <staging|production> [--app KEY] [--verbose]', environment: true },
  async (ctx) => {
    const results = await Promise.all(ctx.apps.map((key) => waitHealthy(ctx, key)))
    const rows = results.map((r) => [
      r.app,
      r.healthy ? chalk.green('healthy') : chalk.red('UNHEALTHY'),
      r.machines,
      r.checks,
      r.http,
      `${r.seconds.toFixed(1)}s`,
    ])
    publishTable(ctx.log, `health of ${ctx.env}`, ['app', 'health', 'machines', 'checks', 'http', 'waited'], rows)
    const sick = results.filter((r) => !r.healthy)
    if (sick.length) {
      ctx.log.error(`unhealthy: ${sick.map((r) => r.app).join(', ')}`)
      return 1
    }
  },
)
