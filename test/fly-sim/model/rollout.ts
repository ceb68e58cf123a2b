// How flyctl changes a fleet (fly-platform.md §1–§3; flyctl internal/command/deploy/
// machines_deploymachinesapp.go deployCreateMachinesForGroups, updateUsingRollingStrategy,
// updateEntriesGroup; machines_launchinput.go shouldSkipLaunch):
// - a group with no machines gets new ones: 1 with [mounts], 2 started with services (HA),
//   1 plus a stopped standby without services; created one after another, each waited for;
// - otherwise every machine is updated in place: stopped ("cold") ones with skip_launch (they
//   stay stopped, nobody waits for them), started ("warm") ones restarted, sorted by ID ascending,
//   the first alone as a spearhead, the rest max_unavailable at a time, each waited for until its
//   checks pass; the first failure cancels the rest and nothing is rolled back: a mixed fleet.
// Progress lines follow statuslogger's non-interactive format.
import { FlyError, out, sleep } from '../cli.ts'
import { dir } from '../runtime.ts'
import { type SimMachine, type SimMachineConfig, readState, updateState } from '../state.ts'
import { boots } from './boot.ts'
import { isPassing, launchSecretsVersion, newMachine, nowIso, startMachine } from './fleet.ts'

export interface Rollout {
  app: string
  /** The machine config this deployment gives every machine (image, env, services, metadata). */
  config: SimMachineConfig
  region: string
  releaseVersion: number
  /** flyctl's local minimum secrets version for the app, if it has one. */
  minSecretsVersion?: number
  waitMs: number
  /** immediate strategy or --detach: nobody waits for checks. */
  noWait: boolean
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

/** Waits until the machine's checks pass or the wait timeout passes (WaitForHealthchecksToPass). */
async function waitHealthy(app: string, id: string, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs
  for (;;) {
    const state = readState(dir)
    const machine = state.apps[app]?.machines.find((m) => m.id === id)
    if (!machine) return false
    const hasChecks = machine.config.services.some((s) => s.checks.length) || machine.config.checks.length > 0
    if (machine.state === 'started' && (!hasChecks || isPassing(state, machine))) return true
    const wait = machine.healthyAt < 0 || state.images[machine.image]?.broken ? deadline - Date.now() : Math.min(deadline - Date.now(), Math.max(10, machine.healthyAt - Date.now()))
    if (wait <= 0) return false
    await sleep(wait)
    if (Date.now() >= deadline) return false
  }
}

/** New machines for an empty group (deployCreateMachinesForGroups); returns their IDs. */
export async function createMachines(r: Rollout): Promise<void> {
  const hasServices = r.config.services.length > 0
  const mounts = r.config.mounts.length > 0
  out('> Launching new machine\nNo machines in group app, launching a new machine\n')
  let created = 0
  const spawn = async (standbyFor?: string): Promise<string> => {
    const id = updateState(dir, (state) => {
      const app = state.apps[r.app]
      const machine = newMachine(app, { ...r.config, ...(standbyFor ? { standbys: [standbyFor], env: { ...r.config.env, FLY_STANDBY_FOR: standbyFor } } : {}) }, r.region, launchSecretsVersion(app, r.minSecretsVersion))
      app.machines.push(machine)
      if (standbyFor) machine.state = 'stopped' // skip_launch: a standby is created stopped
      else startMachine(state, machine, (r.crashAfter !== undefined && created >= r.crashAfter) || !boots(app, machine, state.images[machine.image]) ? -1 : r.healthyAfterMs)
      return machine.id
    })
    created++
    return id
  }
  const settle = async (id: string) => {
    out(`> Machine ${fmtId(id)} was created\n`)
    if (!r.noWait && !(await waitHealthy(r.app, id, r.waitMs))) {
      const error = healthTimeout(r.app, id)
      out(`✖ Machine ${fmtId(id)} update finished: ${error.message}\n`)
      throw error
    }
    out(`✔ Machine ${fmtId(id)} update finished: success\n`)
  }
  await settle(await spawn())
  if (!r.ha || mounts) return
  if (hasServices) {
    out(`Creating a second machine for high availability and zero downtime deployments.\nTo disable this, set "min_machines_running = 0" in your fly.toml.\n`)
    await settle(await spawn())
  } else {
    const first = readState(dir).apps[r.app].machines.find((m) => !m.config.standbys)!.id
    out(`Creating a standby machine for ${first}\n`)
    await spawn(first)
  }
  process.stderr.write('Finished launching new machines\n')
}

/** Updates every existing machine of the app (the rolling strategy; `immediate` without waits). */
export async function updateMachines(r: Rollout, describe: (m: SimMachine) => SimMachineConfig = () => r.config): Promise<void> {
  const machines = readState(dir).apps[r.app].machines.filter((m) => m.state !== 'destroyed').sort((a, b) => (a.id < b.id ? -1 : 1))
  if (!machines.length) return
  const total = machines.length
  const cold = machines.filter((m) => m.state !== 'started')
  const warm = machines.filter((m) => m.state === 'started')
  const order = [...cold, ...warm]
  const line = (m: SimMachine, text: string) => out(`${text.replace('%i', formatIndex(order.indexOf(m), total))}\n`)
  let landed = 0

  // Cold machines: updated in place with skip_launch; they keep their state and are not waited for.
  for (const m of cold) {
    line(m, `> %i Updating ${fmtId(m.id)}`)
    updateState(dir, (state) => {
      const app = state.apps[r.app]
      const machine = app.machines.find((x) => x.id === m.id)!
      const config = describe(machine)
      Object.assign(machine, { config, image: config.image, releaseVersion: r.releaseVersion, updatedAt: nowIso(), secretsVersion: launchSecretsVersion(app, r.minSecretsVersion) })
    })
    line(m, `✔ %i Machine ${fmtId(m.id)} update succeeded`)
  }

  // Warm machines: the spearhead alone, then chunks of max_unavailable; the first failure cancels the rest.
  const pool = r.maxUnavailable >= 1 ? Math.floor(r.maxUnavailable) : Math.max(1, Math.ceil(warm.length * r.maxUnavailable))
  const chunks = warm.length ? [[warm[0]], ...Array.from({ length: Math.ceil((warm.length - 1) / pool) }, (_, i) => warm.slice(1 + i * pool, 1 + (i + 1) * pool))] : []
  for (const [c, chunk] of chunks.entries()) {
    const results = await Promise.all(
      chunk.map(async (m) => {
        line(m, `> %i Updating ${fmtId(m.id)}`)
        line(m, `> %i Updating ${fmtId(m.id)}`)
        const crash = r.crashAfter !== undefined && landed++ >= r.crashAfter
        updateState(dir, (state) => {
          const app = state.apps[r.app]
          const machine = app.machines.find((x) => x.id === m.id)!
          const config = describe(machine)
          Object.assign(machine, { config, image: config.image, releaseVersion: r.releaseVersion, secretsVersion: launchSecretsVersion(app, r.minSecretsVersion) })
          startMachine(state, machine, crash || !boots(app, machine, state.images[machine.image]) ? -1 : r.healthyAfterMs)
        })
        if (!r.noWait) {
          line(m, `> %i Waiting for ${fmtId(m.id)} to have state: started`)
          line(m, `> %i Machine ${fmtId(m.id)} has state: started`)
          line(m, `> %i Checking that ${fmtId(m.id)} is up and running`)
        }
        if (r.noWait || (await waitHealthy(r.app, m.id, r.waitMs))) {
          line(m, `✔ %i Machine ${fmtId(m.id)} update succeeded`)
          return undefined
        }
        const error = healthTimeout(r.app, m.id)
        line(m, `✖ %i Machine ${fmtId(m.id)} update failed: ${error.message}`)
        return error
      }),
    )
    const failure = results.find(Boolean)
    if (failure) {
      // A failed spearhead returns before the others are queued: they get no line at all.
      if (c > 0) for (const m of chunks.slice(c + 1).flat()) line(m, `✖ %i Machine ${fmtId(m.id)} update canceled`)
      throw failure
    }
  }
}
