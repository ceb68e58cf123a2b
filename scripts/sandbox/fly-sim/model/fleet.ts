// Machines and what Fly does to them between commands (fly-platform.md §1–§3): machine config
// from fly.toml, check results, how status --json shows a machine, Fly Proxy's auto-stop and
// auto-start, and the secrets version a launch sees.
import { createHash, randomBytes } from 'node:crypto'
import type { AppConfig } from './flytoml.ts'
import { bootFailure } from './boot.ts'
import { logLine } from './logs.ts'
import type { Sandbox, SimApp, SimCheckResult, SimMachine, SimMachineConfig, SimMachineEvent, SimRestartPolicy, SimState } from '../state.ts'

export const nowIso = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')
export const hex = (bytes: number) => randomBytes(bytes).toString('hex')
/** Machine IDs are 14 lowercase hex characters. */
export const newMachineId = () => hex(7)
const ADJECTIVES = ['small', 'quiet', 'broken', 'late', 'proud', 'dry', 'ancient', 'morning']
const NOUNS = ['night', 'field', 'river', 'snow', 'leaf', 'sun', 'forest', 'wave']
const machineName = () => `${ADJECTIVES[randomBytes(1)[0] % 8]}-${NOUNS[randomBytes(1)[0] % 8]}-${randomBytes(2).readUInt16BE() % 9000 + 1000}`

/** The config a deploy gives a machine of group `app` (internal/appconfig/machines.go ToMachineConfig). */
export function machineConfig(config: AppConfig, image: string, releaseVersion: number, releaseId: string): SimMachineConfig {
  return {
    image,
    env: { ...config.env, FLY_PROCESS_GROUP: 'app', PRIMARY_REGION: config.primaryRegion },
    services: config.services,
    checks: config.checks,
    metadata: { fly_platform_version: 'v2', fly_process_group: 'app', fly_release_id: releaseId, fly_release_version: String(releaseVersion) },
    mounts: config.mounts.map((m) => ({ volume: m.source, path: m.destination })),
    guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 512 },
    // updateMachineConfig sets Restart from [[restart]], and nil without one: a deploy wipes a
    // policy set earlier with `fly machine update --restart`.
    ...(config.restart ? { restart: { ...config.restart } } : {}),
  }
}

export function newMachine(app: SimApp, config: SimMachineConfig, region: string, secretsVersion: number): SimMachine {
  const t = nowIso()
  return {
    id: newMachineId(),
    name: machineName(),
    state: 'created',
    region,
    image: config.image,
    releaseVersion: Number(config.metadata.fly_release_version),
    config,
    healthyAt: 0,
    secretsVersion,
    privateIp: `fdaa:0:${(app.id.charCodeAt(0) % 9) + 1}:a7b:${hex(2)}:${hex(2)}:${hex(2)}:2`,
    createdAt: t,
    updatedAt: t,
    lastRequestAt: Date.now(),
    events: [{ type: 'launch', status: 'created', source: 'user', timestamp: Date.now() }],
  }
}

const allChecks = (m: SimMachine) => [...m.config.services.flatMap((s) => s.checks), ...m.config.checks]

/** Whether the machine's checks pass now: started, its image not broken, past its start-up delay. */
export function isPassing(state: SimState, machine: SimMachine, now = Date.now()): boolean {
  if (machine.state !== 'started' || machine.healthyAt < 0 || now < machine.healthyAt) return false
  return !state.images[machine.image]?.broken && !machine.crash
}

/** The machine's check results; a stopped machine shows what it last had (or nothing). */
export function checkResults(state: SimState, machine: SimMachine, now = Date.now()): SimCheckResult[] {
  if (machine.state !== 'started') return machine.staleChecks ?? []
  const passing = isPassing(state, machine, now)
  return allChecks(machine).map((c) => ({
    name: c.name,
    status: passing ? 'passing' : 'critical',
    output: passing ? (c.type === 'http' ? '[✓] 200 OK' : 'Success') : c.type === 'http' ? `[✗] dial tcp [${machine.privateIp}]:${c.port}: connect: connection refused` : 'connect: connection refused',
    updated_at: nowIso(),
  }))
}

/** Events a machine keeps (flaps returns the recent ones only). */
export const MAX_EVENTS = 20

/** Adds an event at the head of the machine's list (newest first). */
export function recordEvent(machine: SimMachine, event: SimMachineEvent): void {
  machine.events = [event, ...(machine.events ?? [])].slice(0, MAX_EVENTS)
}

/** A crashing process lives this long (Fly time), restart included. */
export const CRASH_RUN_MS = 1000

/**
 * Starts the machine's process (a deploy, an operator, Fly Proxy's autostart: a `user` start).
 * With `boot`, the image's start step runs first (model/boot.ts): when it fails, the process
 * crashes, each run lasting CRASH_RUN_MS × scale.
 */
export function startMachine(state: SimState, machine: SimMachine, healthyAfterMs = 0, boot?: { app: SimApp; scale: number }): void {
  const now = Date.now()
  const image = state.images[machine.image]
  const failure = boot ? bootFailure(boot.app, machine, image) : undefined
  machine.crash = image?.crash ?? (failure && boot ? { exitCode: 1, runMs: CRASH_RUN_MS * boot.scale, lines: failure } : undefined)
  machine.state = 'started'
  machine.healthyAt = healthyAfterMs < 0 ? -1 : now + healthyAfterMs
  machine.staleChecks = undefined
  machine.lastRequestAt = now
  machine.updatedAt = nowIso()
  machine.startedAt = now
  machine.restarts = 0
  machine.nextExitAt = machine.crash ? now + machine.crash.runMs : undefined
  recordEvent(machine, { type: 'start', status: 'started', source: 'user', timestamp: now })
}

/** A stop someone asked for (Fly Proxy's auto-stop, `fly machine stop`): the process exits as requested. */
export function stopMachine(state: SimState, machine: SimMachine): void {
  const results = checkResults(state, machine)
  const now = Date.now()
  machine.state = 'stopped'
  machine.staleChecks = results.length ? results : undefined
  machine.updatedAt = nowIso()
  machine.nextExitAt = undefined
  recordEvent(machine, { type: 'exit', status: 'stopped', source: 'flyd', timestamp: now, exit: { exit_code: 0, requested_stop: true, restarting: false, restart_count: machine.restarts ?? 0 } })
}

/** The machine's restart policy as flyd applies it: without one, on-failure with 10 retries (fly-go MachineRestart docs). */
export function restartPolicy(machine: SimMachine): Required<SimRestartPolicy> {
  const set = machine.config.restart
  return { policy: set?.policy ?? 'on-failure', max_retries: set?.max_retries ?? 10 }
}

/**
 * A crashing image's process lives `runMs`, exits with its code and logs its lines; flyd restarts
 * it while the restart policy allows (`always`; `on-failure` up to max_retries restarts; `no`
 * never), then leaves the machine stopped (flyctl-facts item 5: "before letting it stop"; the
 * harsher reading of give-up, `failed` being the other). Materialised lazily: every exit due by
 * `until` is recorded, at the time it happened. Returns whether anything changed.
 */
export function advanceMachine(state: SimState, app: SimApp, machine: SimMachine, until = Date.now()): boolean {
  void state
  const crash = machine.crash
  let changed = false
  while (machine.state === 'started' && crash && machine.nextExitAt !== undefined && machine.nextExitAt <= until) {
    const at = machine.nextExitAt
    const count = machine.restarts ?? 0
    const { policy, max_retries } = restartPolicy(machine)
    const restarting = policy === 'always' || (policy === 'on-failure' && count < max_retries)
    recordEvent(machine, { type: 'exit', status: 'stopped', source: 'flyd', timestamp: at, exit: { exit_code: crash.exitCode, requested_stop: false, restarting, restart_count: count } })
    for (const line of crash.lines) app.logs.push(logLine(machine.id, machine.region, 'error', line, at))
    if (restarting) {
      machine.restarts = count + 1
      machine.nextExitAt = at + crash.runMs
      recordEvent(machine, { type: 'start', status: 'started', source: 'flyd', timestamp: at })
    } else {
      machine.staleChecks = allChecks(machine).map((c) => ({ name: c.name, status: 'critical', output: 'connect: connection refused', updated_at: new Date(at).toISOString().replace(/\.\d+Z$/, 'Z') }))
      machine.state = 'stopped'
      machine.nextExitAt = undefined
      machine.updatedAt = new Date(at).toISOString().replace(/\.\d+Z$/, 'Z')
    }
    changed = true
  }
  return changed
}

/** Every crash due by now, in every app (between commands, as flyd works on its own). */
export function advanceAll(state: SimState, now = Date.now()): boolean {
  let changed = false
  for (const app of Object.values(state.apps)) for (const m of app.machines) changed = advanceMachine(state, app, m, now) || changed
  return changed
}

/** Whether any machine has a crash due by now (to skip writing the state when nothing moves). */
export const crashDue = (state: SimState, now = Date.now()) => Object.values(state.apps).some((a) => a.machines.some((m) => m.state === 'started' && m.nextExitAt !== undefined && m.nextExitAt <= now))

/** fly-go MachineEvent as JSON: omitempty everywhere but exit_event.exited_at (an RFC 3339 string). */
export function eventJson(event: SimMachineEvent) {
  const exit = event.exit
  const request = exit
    ? {
        exit_event: {
          ...(exit.exit_code ? { exit_code: exit.exit_code, guest_exit_code: exit.exit_code } : {}),
          guest_signal: -1,
          signal: -1,
          ...(exit.oom_killed ? { oom_killed: true } : {}),
          ...(exit.requested_stop ? { requested_stop: true } : {}),
          ...(exit.restarting ? { restarting: true } : {}),
          exited_at: new Date(event.timestamp).toISOString(),
        },
        ...(exit.restart_count ? { restart_count: exit.restart_count } : {}),
      }
    : undefined
  return { type: event.type, status: event.status, ...(request ? { request } : {}), source: event.source, timestamp: event.timestamp }
}

/** fly.Machine as `status --json` and `machine list --json` render it (snake_case; checks omitempty). */
export function machineJson(state: SimState, machine: SimMachine) {
  const [repository, tag] = machine.image.replace(/^registry\.fly\.io\//, '').split(':')
  const checks = checkResults(state, machine)
  const services = machine.config.services.map(({ checks: serviceChecks, ...s }) => ({
    ...s,
    ...(serviceChecks.length ? { checks: serviceChecks.map((c) => ({ type: c.type, port: c.port, ...(c.path ? { path: c.path, method: 'GET' } : {}), interval: '15s', timeout: '5s' })) } : {}),
  }))
  return {
    id: machine.id,
    name: machine.name,
    state: machine.state,
    region: machine.region,
    image_ref: { registry: 'registry.fly.io', repository, tag, digest: state.images[machine.image]?.digest ?? `sha256:${createHash('sha256').update(machine.image).digest('hex')}`, labels: {} },
    instance_id: `01${machine.id.toUpperCase()}${machine.releaseVersion}`,
    private_ip: machine.privateIp,
    created_at: machine.createdAt,
    updated_at: machine.updatedAt,
    config: {
      image: machine.image,
      env: machine.config.env,
      services,
      ...(machine.config.checks.length ? { checks: Object.fromEntries(machine.config.checks.map((c) => [c.name, { type: c.type, port: c.port, ...(c.path ? { path: c.path } : {}) }])) } : {}),
      ...(machine.config.mounts.length ? { mounts: machine.config.mounts } : {}),
      ...(machine.config.standbys ? { standbys: machine.config.standbys } : {}),
      metadata: machine.config.metadata,
      ...(machine.config.restart ? { restart: machine.config.restart } : {}),
      guest: machine.config.guest,
    },
    ...(checks.length ? { checks } : {}),
    events: (machine.events ?? []).map(eventJson),
    host_status: 'ok',
    cordoned: false,
  }
}

/** `ListActive`: every machine but destroyed ones, IDs descending (status/machines.go). */
export function activeMachines(app: SimApp): SimMachine[] {
  return app.machines.filter((m) => m.state !== 'destroyed').sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
}

const autostopOf = (m: SimMachine) => m.config.services.find((s) => s.autostop !== false)

/**
 * Fly Proxy's auto-stop (fly-proxy-autostop-autostart docs): per app and region, at most one idle
 * machine per pass is stopped (or suspended), never going below min_machines_running started
 * machines in the primary region. `force` stops every idle machine it may, at once (tests).
 */
export function autostopPass(state: SimState, sandbox: Sandbox, force = false, now = Date.now()): void {
  const idleMs = force ? 0 : sandbox.autostopIdleMs
  if (idleMs === undefined) return
  for (const app of Object.values(state.apps)) {
    const started = app.machines.filter((m) => m.state === 'started')
    const byRegion = new Map<string, SimMachine[]>()
    for (const m of started) byRegion.set(m.region, [...(byRegion.get(m.region) ?? []), m])
    for (const [region, machines] of byRegion) {
      for (;;) {
        const running = machines.filter((m) => m.state === 'started')
        const candidate = running.filter((m) => autostopOf(m) && now - m.lastRequestAt >= idleMs).sort((a, b) => (a.id < b.id ? 1 : -1))[0]
        if (!candidate) break
        const service = autostopOf(candidate)!
        const primary = candidate.config.env.PRIMARY_REGION ?? region
        const minimum = region === primary ? service.min_machines_running : 0
        if (running.length - 1 < minimum) break
        stopMachine(state, candidate)
        if (service.autostop === 'suspend') candidate.state = 'suspended'
        if (!force) break
      }
    }
  }
}

/** Fly Proxy routing a request (public IP or Flycast): it starts a stopped machine when none runs. */
export function routeRequest(state: SimState, app: SimApp, scale = 1): SimMachine | undefined {
  for (const m of app.machines) advanceMachine(state, app, m)
  const live = app.machines.filter((m) => m.state === 'started')
  if (!live.length) {
    const sleeper = app.machines.filter((m) => (m.state === 'stopped' || m.state === 'suspended') && m.config.services.some((s) => s.autostart) && !m.config.standbys).sort((a, b) => (a.id < b.id ? -1 : 1))[0]
    if (!sleeper) return undefined
    startMachine(state, sleeper, 0, { app, scale })
    live.push(sleeper)
  }
  const target = live.find((m) => isPassing(state, m)) ?? live[0]
  target.lastRequestAt = Date.now()
  return target
}

// ---- secrets versions (fly-platform.md §6) -----------------------------------------------------

/** The values a machine launched at `version` sees. */
export function secretsAt(app: SimApp, version = app.secretsVersion): Record<string, string> {
  const values: Record<string, string> = {}
  for (const event of [...app.secretsLog].sort((a, b) => a.version - b.version)) {
    if (event.version > version) break
    if (event.value === null) delete values[event.name]
    else values[event.name] = event.value
  }
  return values
}

/**
 * The secrets version a launch or update gets: the minimum flyctl sends (its local minvers), or,
 * without one, whatever version the platform has cached, which lags behind secrets set elsewhere.
 */
export function launchSecretsVersion(app: SimApp, minVersion: number | undefined): number {
  if (minVersion !== undefined && minVersion > app.secretsCacheVersion) app.secretsCacheVersion = Math.min(minVersion, app.secretsVersion)
  return app.secretsCacheVersion
}

export const digestOf = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16)
