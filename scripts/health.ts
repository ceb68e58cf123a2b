// Section 7.1: health of the environment's apps, as a table; exit 1 when any app is unhealthy.
// The fleet rule (lib/fleet/health.ts): started machines pass their checks, no machine's image
// crashed, one image; then the HTTP probe. Stopped machines and fewer started machines than
// min_machines_running are warnings, each with the command that fixes it.
import chalk from 'chalk'
import { main } from './lib/core/cli.js'
import { evidence, waitHealthy, warningLines } from './lib/fleet/health.js'
import { publishTable } from './lib/core/log.js'

void main(
  { name: 'health', usage: 'health <staging|production> [--app KEY] [--verbose]', environment: true },
  async (ctx) => {
    const results = await Promise.all(ctx.apps.map((key) => waitHealthy(ctx, key)))
    // The image is named where it matters: a fleet on several images is a problem of its own.
    const rows = results.map((r) => [r.app, r.healthy ? chalk.green('healthy') : chalk.red('UNHEALTHY'), r.fleet.summary, [...r.fleet.problems, r.http, ...r.fleet.warnings.map((w) => `warning: ${w.text}`)].join('; ')])
    publishTable(ctx.log, `health of ${ctx.env}`, ['app', 'health', 'machines', 'checks and probe'], rows, [0, 1, 2])
    for (const line of results.flatMap(warningLines)) ctx.log.warn(line)
    const sick = results.filter((r) => !r.healthy)
    for (const r of sick) {
      ctx.log.error(`${r.app} is unhealthy:`)
      for (const line of await evidence(ctx, r)) ctx.log.detail(line)
    }
    return sick.length ? 1 : 0
  },
)
