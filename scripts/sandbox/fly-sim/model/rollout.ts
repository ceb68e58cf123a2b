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
import { dir } from '../runtime.ts'
import { type SimMachine, type SimMachineConfig, readState, updateState } from '../state.ts'
import { boots } from './boot.ts'
import { checkResults, launchSecretsVersion, newMachine, nowIso, startMachine } from './fleet.ts'

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
    const state = readState(dir())
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
    const wait = machine.healthyAt < 0 || state.images[machine.image]?.broken ? deadline - Date.now() : Math.min(deadline - Date.now(), Math.max(10, machine.healthyAt - Date.now()))
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
      app.machines.push(machine)
      if (standbyFor) machine.state = 'stopped' // shouldSkipLaunch: a new standby is created, not started
      else startMachine(state, machine, (r.crashAfter !== undefined && created >= r.crashAfter) || !boots(app, machine, state.images[machine.image]) ? -1 : r.healthyAfterMs)
      return machine.id
    })
    if (!standbyFor) created++
    status(`Machine ${fmtId(id)} was created`)
    return id
  }
  const settle = async (id: string) => {
    // `immediate` returns right after the launch; --detach skips the state and health waits.
    if (r.strategy === 'immediate' || r.skipHealthChecks) return
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
  const cold = machines.filter((m) => m.state !== 'started')
  const warm = machines.filter((m) => m.state === 'started')
  // Status lines are numbered in this order: the stopped ones first, then the started ones.
  const order = r.strategy === 'immediate' ? machines : [...cold, ...warm]
  const line = (m: SimMachine, glyph: string, text: string) => out(`${glyph} ${formatIndex(order.indexOf(m), total)} ${text}\n`)
  let landed = 0

  /** updateMachine: the new config in place; a started machine restarts with it, a stopped one keeps its state (skip_launch). */
  const apply = (m: SimMachine) => {
    const crash = m.state === 'started' && r.crashAfter !== undefined && landed++ >= r.crashAfter
    updateState(dir(), (state) => {
      const app = state.apps[r.app]
      const machine = app.machines.find((x) => x.id === m.id)!
      const config = describe(machine)
      Object.assign(machine, { config, image: config.image, releaseVersion: r.releaseVersion, updatedAt: nowIso(), secretsVersion: launchSecretsVersion(app, r.minSecretsVersion) })
      if (m.state === 'started') startMachine(state, machine, crash || !boots(app, machine, state.images[machine.image]) ? -1 : r.healthyAfterMs)
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
        if (!r.skipSmokeChecks) line(m, '>', `Checking that ${fmtId(m.id)} is up and running`)
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
