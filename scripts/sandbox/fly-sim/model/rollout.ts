// How flyctl changes a fleet (fly-platform.md §1–§3; flyctl internal/command/deploy/
// machines_deploymachinesapp.go deployCreateMachinesForGroups, updateUsingRollingStrategy,
// updateEntriesGroup; machines_launchinput.go shouldSkipLaunch):
// - a group with no machines gets new ones: 1 with [mounts], 2 started with services (HA),
//   1 plus a stopped standby without services; created one after another, each waited for;
// - otherwise every machine is updated in place: stopped ("cold") ones with skip_launch (they
//   stay stopped, nobody waits for them), started ("warm") ones restarted, sorted by ID ascending,
//   the first alone as a spearhead, the rest max_unavailable at a time, each waited for until its
//   checks pass; the first failure cancels the rest and nothing is rolled back: a mixed fleet;
// - `immediate` (updateUsingImmediateStrategy) updates every machine and waits for nothing.
// Progress lines follow statuslogger's non-interactive format (internal/statuslogger/
// noninteractive.go): `<glyph> [i/N] <text>` on stdout, where Logf reuses the line's last glyph.
import { FlyError, err, out, sleep } from '../cli.ts'
import { dir, timeScale } from '../runtime.ts'
import { type SimMachine, type SimMachineConfig, type SimMachineEvent, type SimState, readState, takeFault, updateState } from '../state.ts'
import { advanceAll, advanceMachine, checkResults, crashDue, launchSecretsVersion, newMachine, nowIso, recordEvent, startMachine } from './fleet.ts'

export interface Rollout {
  app: string
  /** The machine config this deployment gives every machine (image, env, services, metadata). */
  config: SimMachineConfig
  region: string
  releaseVersion: number
  /** flyctl's local minimum secrets version for the app, if it has one. */
  minSecretsVersion?: number
  waitMs: number
  /** `rolling` (and anything flyctl does not know, its default branch) or `immediate`. */
  strategy: string
  /** --detach: no state or health waits (SkipHealthChecks). */
  skipHealthChecks: boolean
  /** --detach or --smoke-checks=false (deploy.go SkipSmokeChecks); secrets deploy never skips them. */
  skipSmokeChecks: boolean
  maxUnavailable: number
  /** Delay before a freshly started machine passes its checks. */
  healthyAfterMs: number
  /** Fault: machines after the first N that get the new config crash (checks never pass). */
  crashAfter?: number
  ha: boolean
}

const formatIndex = (i: number, total: number) => `[${String(i + 1).padStart(String(total).length, '0')}/${total}]`
const fmtId = (id: string) => `${id} [app]`

/** leasable_machine.go WaitForHealthchecksToPass, flattened by suggestChangeWaitTimeout: exit 1. */
function healthTimeout(app: string, id: string): FlyError {
  return new FlyError(`timeout reached waiting for health checks to pass for machine ${id}: failed to get VM ${id}: Get "https://api.machines.dev/v1/apps/${app}/machines/${id}": context deadline exceeded`)
}

/** The state now, with every crash due by now recorded (flyd works while flyctl waits). */
function currentState(): SimState {
  const state = readState(dir())
  return crashDue(state) ? updateState(dir(), (s) => (advanceAll(s), s)) : state
}

/** leasable_machine.go isConstantlyRestarting: the newest exit event (events are newest first). */
export function constantlyRestarting(events: SimMachineEvent[]): boolean {
  const exit = events.find((e) => e.type === 'exit')?.exit
  return Boolean(exit && !exit.requested_stop && exit.restarting && exit.restart_count > 1 && exit.exit_code !== 0)
}

/** WaitForSmokeChecksToPass's polls: jpillora backoff from 0.5 s doubling to 2 s (jitter left out), within one 10 s context. */
const SMOKE_POLLS_MS = [0, 500, 1500, 3500, 5500, 7500, 9500]
const SMOKE_WINDOW_MS = 10_000

/**
 * doSmokeChecks (machines_deploymachinesapp.go) around WaitForSmokeChecksToPass: for 10 s (scaled)
 * the machine is polled; it fails at once when it is constantly restarting, and the deadline is a
 * pass (C3). Polls are evaluated at their instants after the machine's start, so the outcome does
 * not depend on how busy this computer is. On a failure, with `showLogs` (the rolling and
 * first-deploy paths), one page of the machine's logs since its update goes into the suggestion
 * (GetAppLogs; a `logs` fault plays the API refusing: `unauthorized` is a deploy token's 401).
 */
export async function smokeCheck(app: string, id: string, showLogs: boolean): Promise<FlyError | undefined> {
  const scale = timeScale()
  const machine = readState(dir()).apps[app]?.machines.find((m) => m.id === id)
  const startedAt = machine?.startedAt ?? Date.now()
  let failed = false
  // A process that does not crash passes at the deadline: no need to poll it.
  for (const offset of machine?.crash ? SMOKE_POLLS_MS : []) {
    const at = startedAt + offset * scale
    if (at > Date.now()) await sleep(at - Date.now())
    const events = updateState(dir(), (state) => {
      const machine = state.apps[app]?.machines.find((m) => m.id === id)
      if (!machine) return []
      advanceMachine(state, state.apps[app], machine, at)
      return (machine.events ?? []).filter((e) => e.timestamp <= at)
    })
    if (constantlyRestarting(events)) {
      failed = true
      break
    }
  }
  if (!failed) {
    const end = startedAt + SMOKE_WINDOW_MS * scale
    if (end > Date.now()) await sleep(end - Date.now())
    return undefined
  }
  const message = `smoke checks for ${id} failed: the app appears to be crashing`
  let logs = ''
  if (showLogs) {
    const refused = takeFault(dir(), 'logs', app)
    const dashboard = `Use \`fly logs -i ${id}\` or open the monitoring dashboard to see them: https://fly.io/apps/${app}/monitoring?region=&instance=${id}`
    if (refused?.kind === 'unauthorized') {
      err(`Warn: not authorized to retrieve app logs (this can happen when using deploy tokens), so we can't show you what failed. ${dashboard}\n`)
      logs = '<not authorized to retrieve logs>'
    } else if (refused) {
      err(`Warn: got an error retrieving the logs so we can't show you what failed. ${dashboard}\n`)
      logs = `<error fetching logs, try \`fly logs -i ${id}>`
    } else {
      // The entries since the machine's update (flyctl keeps those with Timestamp >= UpdatedAt).
      const state = readState(dir())
      const from = state.apps[app].machines.find((m) => m.id === id)?.logsFrom ?? 0
      for (const line of state.apps[app].logs.slice(from)) {
        const [, instance, , , ...rest] = line.split('\t')
        if (instance === id) logs += `${rest.join('\t')}\n`
      }
    }
  }
  // cli.go printError: the error, then the suggestion and a blank line (Fprintln twice).
  return new FlyError(message, 1, '', `Smoke checks for ${id} failed: the app appears to be crashing\nCheck its logs: here's the last lines below, or run 'fly logs -i ${id}':\n${logs}\n\n`)
}

/**
 * WaitForHealthchecksToPass: polls until every check result passes (at least one result), or the
 * wait timeout. `report` gets the passing/total counts flyctl logs (logHealthCheckStatus): the first
 * not-yet-passing status once (non-interactive), then the final passing one. No configured checks:
 * passes at once, silently.
 */
async function waitHealthy(app: string, id: string, waitMs: number, report?: (passing: number, total: number) => void): Promise<boolean> {
  const deadline = Date.now() + waitMs
  let printedFirst = false
  for (;;) {
    const state = currentState()
    const machine = state.apps[app]?.machines.find((m) => m.id === id)
    if (!machine) return false
    const configured = machine.config.services.some((s) => s.checks.length) || machine.config.checks.length > 0
    if (!configured) return true
    const results = machine.state === 'started' ? checkResults(state, machine) : []
    const passing = results.filter((c) => c.status === 'passing').length
    if (results.length > 0 && passing === results.length) {
      report?.(passing, results.length)
      return true
    }
    if (!printedFirst) {
      report?.(passing, results.length)
      printedFirst = true
    }
    const wait = machine.healthyAt < 0 || state.images[machine.image]?.broken || machine.crash ? deadline - Date.now() : Math.min(deadline - Date.now(), Math.max(10, machine.healthyAt - Date.now()))
    if (wait <= 0) return false
    await sleep(wait)
    if (Date.now() >= deadline) return false
  }
}

/**
 * New machines for an empty group (deployCreateMachinesForGroups, spawnMachineInGroup). One
 * status line without an index: `> Launching new machine`, then each `Machine <id> [app] was
 * created` with the line's current glyph (✔ once a machine finished), `✔ Machine … update
 * finished: success` only when flyctl waited (not with --detach or immediate), and on a failure
 * `✖ Failed: <first line of the error>` (statuslogger.Failed).
 */
export async function createMachines(r: Rollout): Promise<void> {
  const hasServices = r.config.services.length > 0
  const mounts = r.config.mounts.length > 0
  let glyph = '>'
  const status = (text: string, next?: string) => {
    if (next) glyph = next
    out(`${glyph} ${text}\n`)
  }
  status('Launching new machine', '>')
  out('No machines in group app, launching a new machine\n')
  let created = 0
  const spawn = (standbyFor?: string): string => {
    const id = updateState(dir(), (state) => {
      const app = state.apps[r.app]
      const machine = newMachine(app, { ...r.config, ...(standbyFor ? { standbys: [standbyFor], env: { ...r.config.env, FLY_STANDBY_FOR: standbyFor } } : {}) }, r.region, launchSecretsVersion(app, r.minSecretsVersion))
      machine.logsFrom = app.logs.length
      app.machines.push(machine)
      if (standbyFor) machine.state = 'stopped' // shouldSkipLaunch: a new standby is created, not started
      else startMachine(state, machine, r.crashAfter !== undefined && created >= r.crashAfter ? -1 : r.healthyAfterMs, { app, scale: timeScale() })
      return machine.id
    })
    if (!standbyFor) created++
    status(`Machine ${fmtId(id)} was created`)
    return id
  }
  const settle = async (id: string) => {
    // `immediate` returns right after the launch; then smoke checks come first (C3), before the
    // started wait; --detach skips them and the state and health waits.
    if (r.strategy === 'immediate') return
    if (!r.skipSmokeChecks) {
      const smoke = await smokeCheck(r.app, id, true)
      if (smoke) {
        status(`Failed: ${smoke.message}`, '✖')
        throw smoke
      }
    }
    if (r.skipHealthChecks) return
    if (!(await waitHealthy(r.app, id, r.waitMs))) {
      const error = healthTimeout(r.app, id)
      status(`Failed: ${error.message.split('\n')[0]}`, '✖')
      throw error
    }
    status(`Machine ${fmtId(id)} update finished: success`, '✔')
  }
  const first = spawn()
  await settle(first)
  if (r.ha && !mounts) {
    if (hasServices) {
      out(`Creating a second machine for high availability and zero downtime deployments.\nTo disable this, set "min_machines_running = 0" in your fly.toml.\n`)
      await settle(spawn())
    } else {
      out(`Creating a standby machine for ${first}\n`)
      spawn(first)
    }
  }
  err('Finished launching new machines\n')
}

/** The warm and cold machines of one update (updateUsingRollingStrategy / updateUsingImmediateStrategy). */
export async function updateMachines(r: Rollout, describe: (m: SimMachine) => SimMachineConfig = () => r.config): Promise<void> {
  const machines = readState(dir()).apps[r.app].machines.filter((m) => m.state !== 'destroyed').sort((a, b) => (a.id < b.id ? -1 : 1))
  if (!machines.length) return
  const total = machines.length
  // shouldSkipLaunch: started (and failed) machines are relaunched; every other state keeps its state.
  const isWarm = (m: SimMachine) => m.state === 'started' || m.state === 'failed'
  const cold = machines.filter((m) => !isWarm(m))
  const warm = machines.filter(isWarm)
  // Status lines are numbered in this order: the stopped ones first, then the started ones.
  const order = r.strategy === 'immediate' ? machines : [...cold, ...warm]
  const line = (m: SimMachine, glyph: string, text: string) => out(`${glyph} ${formatIndex(order.indexOf(m), total)} ${text}\n`)
  let landed = 0

  /** updateMachine: the new config in place; a started machine restarts with it, a stopped one keeps its state (skip_launch). */
  const apply = (m: SimMachine) => {
    const crash = isWarm(m) && r.crashAfter !== undefined && landed++ >= r.crashAfter
    updateState(dir(), (state) => {
      const app = state.apps[r.app]
      const machine = app.machines.find((x) => x.id === m.id)!
      advanceMachine(state, app, machine)
      const config = describe(machine)
      const now = Date.now()
      // A running process is stopped for the update (an exit it asked for), then relaunched.
      if (machine.state === 'started') recordEvent(machine, { type: 'exit', status: 'stopped', source: 'flyd', timestamp: now, exit: { exit_code: 0, requested_stop: true, restarting: false, restart_count: machine.restarts ?? 0 } })
      recordEvent(machine, { type: 'update', status: isWarm(m) ? 'replacing' : machine.state, source: 'user', timestamp: now })
      Object.assign(machine, { config, image: config.image, releaseVersion: r.releaseVersion, updatedAt: nowIso(), secretsVersion: launchSecretsVersion(app, r.minSecretsVersion), crash: undefined, nextExitAt: undefined, logsFrom: app.logs.length })
      if (isWarm(m)) startMachine(state, machine, crash ? -1 : r.healthyAfterMs, { app, scale: timeScale() })
    })
  }

  if (r.strategy === 'immediate') {
    // Every machine at once, no waits at all.
    for (const m of order) {
      line(m, '>', `Updating ${fmtId(m.id)}`)
      line(m, '>', `Updating ${fmtId(m.id)}`)
      apply(m)
      line(m, '✔', `Machine ${fmtId(m.id)} update succeeded`)
    }
    return
  }

  // Cold machines: updated in place with skip_launch; waitForMachine returns at once for them.
  for (const m of cold) {
    line(m, '>', `Updating ${fmtId(m.id)}`)
    line(m, '>', `Updating ${fmtId(m.id)}`)
    apply(m)
    line(m, '✔', `Machine ${fmtId(m.id)} update succeeded`)
  }

  // Warm machines: the spearhead alone, then max_unavailable at a time; the first failure cancels the rest.
  const pool = r.maxUnavailable >= 1 ? Math.floor(r.maxUnavailable) : Math.max(1, Math.ceil(warm.length * r.maxUnavailable))
  const chunks = warm.length ? [[warm[0]], ...Array.from({ length: Math.ceil((warm.length - 1) / pool) }, (_, i) => warm.slice(1 + i * pool, 1 + (i + 1) * pool))] : []
  for (const [c, chunk] of chunks.entries()) {
    const results = await Promise.all(
      chunk.map(async (m) => {
        line(m, '>', `Updating ${fmtId(m.id)}`)
        line(m, '>', `Updating ${fmtId(m.id)}`)
        apply(m)
        if (!r.skipHealthChecks) {
          line(m, '>', `Waiting for ${fmtId(m.id)} to have state: started`)
          line(m, '>', `Machine ${fmtId(m.id)} has state: started`)
        }
        if (!r.skipSmokeChecks) {
          line(m, '>', `Checking that ${fmtId(m.id)} is up and running`)
          const smoke = await smokeCheck(r.app, m.id, true)
          if (smoke) {
            line(m, '✖', `Machine ${fmtId(m.id)} update failed: ${smoke.message}`)
            return smoke
          }
        }
        // logHealthCheckStatus's format ends in \n and Fprintln adds one: a blank line follows.
        const report = (passing: number, all: number) => line(m, '>', `Waiting for ${fmtId(m.id)} to become healthy: ${passing}/${all}\n`)
        if (r.skipHealthChecks || (await waitHealthy(r.app, m.id, r.waitMs, report))) {
          line(m, '✔', `Machine ${fmtId(m.id)} update succeeded`)
          return undefined
        }
        const error = healthTimeout(r.app, m.id)
        line(m, '✖', `Machine ${fmtId(m.id)} update failed: ${error.message}`)
        return error
      }),
    )
    const failure = results.find(Boolean)
    if (failure) {
      // A failed spearhead returns before the others are queued: they get no line at all. After
      // it, the pool's context is cancelled and every machine not yet started is skipped.
      if (c > 0) for (const m of chunks.slice(c + 1).flat()) line(m, '✖', `Machine ${fmtId(m.id)} update canceled`)
      throw failure
    }
  }
}
