// make status-<env> [WATCH=1]: the fleet now. For each app, `flyctl status --app <app> --json` (the
// apps read at the same time): one line with the verdict of the fleet rule (lib/fleet/health.ts
// judgeFleet, the rule deploys and health-<env> use) and one row per machine: region, state,
// checks passing, the release and image it runs. Read-only; exit 0 whenever every app could be
// read, whatever the verdict (health-<env> is the check that fails). WATCH=1 looks again every
// 2 s until Ctrl-C (exit 0): on a terminal it redraws in place; piped, it prints a block only when
// something changed, at most every 10 s, so a log stays readable.
import chalk from 'chalk'
import { envFlag, main, report, type Context } from './lib/core/cli.js'
import { UserError } from './lib/core/errors.js'
import { formatWhen, publishTable, table } from './lib/core/log.js'
import { type AppKey, flyAppName, flyConfigPath } from './lib/core/names.js'
import { judgeFleet, type Fleet } from './lib/fleet/health.js'
import { checksShown, commitShown, labelShown, releaseOf } from './lib/fleet/machines.js'
import { readFlyToml, type FlyToml } from './lib/fly/flytoml.js'
import type { FlyStatus } from './lib/fly/types.js'

const INTERVAL_MS = 2000
/** Piped, a changed fleet is printed at most this often. */
const PIPED_GAP_MS = 10_000

interface Look {
  key: AppKey
  app: string
  status?: FlyStatus
  fleet?: Fleet
  error?: unknown
}

async function look(ctx: Context, configs: Map<AppKey, FlyToml>): Promise<Look[]> {
  const reads = await Promise.allSettled(ctx.apps.map((key) => ctx.fly().apps.status(flyAppName(ctx.env, key))))
  return reads.map((read, i) => {
    const key = ctx.apps[i]
    const app = flyAppName(ctx.env, key)
    if (read.status === 'rejected') return { key, app, error: read.reason }
    return { key, app, status: read.value, fleet: judgeFleet(read.value, configs.get(key)!) }
  })
}

const verdict = (l: Look) => (l.error ? chalk.red('not read') : l.fleet!.problems.length ? chalk.red('unhealthy') : chalk.green('healthy'))
const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]

function fleetRows(looks: Look[]): string[][] {
  return looks.map((l) => [l.key, verdict(l), l.fleet?.summary ?? '', l.error ? firstLine(l.error) : l.fleet!.problems.join('; ')])
}

function machineRows(looks: Look[]): string[][] {
  return looks.flatMap((l) =>
    (l.status?.Machines ?? []).map((m) => {
      const release = releaseOf(m)
      const state = m.state === 'started' ? m.state : chalk.yellow(m.state)
      return [l.key, m.id, m.region, state, checksShown(m), release === undefined ? '-' : `v${release}`, labelShown(m.config?.image, l.app), m.updated_at ? formatWhen(m.updated_at) : '-']
    }),
  )
}

const FLEET = ['app', 'verdict', 'machines', 'problems']
const MACHINES = ['app', 'machine', 'region', 'state', 'checks', 'release', 'image label', 'updated']

/** What a watch compares: everything shown but the relative times, which change by themselves. */
function signature(looks: Look[]): string {
  return JSON.stringify([fleetRows(looks), machineRows(looks).map((row) => row.slice(0, -1))])
}

function render(looks: Look[]): string {
  const machines = machineRows(looks)
  return [table(FLEET, fleetRows(looks), [0, 1, 2]), '', machines.length ? table(MACHINES, machines, [0, 1, 2, 3, 4, 5]) : '(no machines)'].join('\n')
}

function asJson(l: Look) {
  if (l.error) return { app: l.app, key: l.key, error: firstLine(l.error) }
  return {
    app: l.app,
    key: l.key,
    healthy: l.fleet!.problems.length === 0,
    summary: l.fleet!.summary,
    problems: l.fleet!.problems,
    machines: (l.status!.Machines ?? []).map((m) => ({
      id: m.id,
      region: m.region,
      state: m.state,
      checks: { passing: (m.checks ?? []).filter((c) => c.status === 'passing').length, total: (m.checks ?? []).length },
      release: releaseOf(m) ?? null,
      image: m.config?.image ?? null,
      commit: commitShown(m.config?.image) === '-' ? null : commitShown(m.config?.image),
      updated_at: m.updated_at ?? null,
    })),
  }
}

void main(
  { name: 'status', usage: 'status <staging|production> [--app KEY] [--watch] [--json] [--verbose]', environment: true, options: { watch: { type: 'boolean' }, json: { type: 'boolean' } } },
  async (ctx) => {
    const watch = Boolean(ctx.flags.watch) || envFlag('WATCH')
    const json = Boolean(ctx.flags.json) || envFlag('JSON')
    if (watch && json) throw new UserError('WATCH=1 and JSON=1 do not go together: a watch redraws a table; leave one out')
    // Each app's fly.toml says whether Fly Proxy may stop its machines: read first, so a broken
    // one is a usage error before anything is asked of Fly.
    const configs = new Map(ctx.apps.map((key) => [key, readFlyToml(flyConfigPath(ctx.env, key))]))

    if (!watch) {
      const looks = await look(ctx, configs)
      if (json) for (const l of looks) ctx.log.result(JSON.stringify(asJson(l)))
      else {
        publishTable(ctx.log, `fleet of ${ctx.env} (Fly's view; make health-${ctx.env === 'production' ? 'prod' : 'staging'} also probes the health URLs)`, FLEET, fleetRows(looks), [0, 1, 2])
        const machines = machineRows(looks)
        if (machines.length) ctx.log.result('')
        if (machines.length) publishTable(ctx.log, `machines of ${ctx.env}`, MACHINES, machines, [0, 1, 2, 3, 4, 5])
      }
      const failures = looks.filter((l) => l.error).map((l) => l.error)
      for (const failure of failures.slice(1)) report(failure, ctx.log)
      if (failures.length) throw failures[0]
      return
    }

    const tty = Boolean(process.stdout.isTTY)
    let stop!: () => void
    const stopped = new Promise<undefined>((resolve) => (stop = () => resolve(undefined)))
    let ended = false
    ctx.endOnInterrupt(() => {
      ended = true
      stop()
    })
    if (!tty) ctx.log.info(`watching ${ctx.env}: a block each time something changes (at most every ${PIPED_GAP_MS / 1000} s); Ctrl-C stops`)
    let printed: string | undefined
    let printedAt = -Infinity
    while (!ended) {
      const pending = look(ctx, configs)
      pending.catch(() => undefined) // a read cut short by Ctrl-C
      const looks = await Promise.race([pending, stopped])
      if (!looks) break
      const at = new Date().toISOString().slice(11, 19)
      if (tty) {
        // Home, clear to the end: the block redraws in place.
        ctx.log.result(`\x1b[H\x1b[J${chalk.bold(`status of ${ctx.env} at ${at} UTC`)} ${chalk.dim(`(every ${INTERVAL_MS / 1000} s; Ctrl-C stops)`)}\n${render(looks)}`)
      } else {
        const now = performance.now()
        const current = signature(looks)
        if (current !== printed && now - printedAt >= PIPED_GAP_MS) {
          ctx.log.result(`${chalk.bold(`== status of ${ctx.env} at ${at} UTC`)}\n${render(looks)}\n`)
          printed = current
          printedAt = now
        }
      }
      let timer: NodeJS.Timeout | undefined
      await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, INTERVAL_MS))), stopped])
      clearTimeout(timer)
    }
    ctx.log.info('stopped watching')
  },
)
