// Machines and what Fly does to them between commands (fly-platform.md §1–§3): machine config
// from fly.toml, check results, how status --json shows a machine, Fly Proxy's auto-stop and
// auto-start, and the secrets version a launch sees.
import { createHash, randomBytes } from 'node:crypto'
import type { AppConfig } from './flytoml.ts'
import { boots } from './boot.ts'
import type { Sandbox, SimApp, SimCheckResult, SimMachine, SimMachineConfig, SimState } from '../state.ts'

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
  }
}

const allChecks = (m: SimMachine) => [...m.config.services.flatMap((s) => s.checks), ...m.config.checks]

/** Whether the machine's checks pass now: started, its image not broken, past its start-up delay. */
export function isPassing(state: SimState, machine: SimMachine, now = Date.now()): boolean {
  if (machine.state !== 'started' || machine.healthyAt < 0 || now < machine.healthyAt) return false
  return !state.images[machine.image]?.broken
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

export function startMachine(state: SimState, machine: SimMachine, healthyAfterMs = 0): void {
  machine.state = 'started'
  machine.healthyAt = healthyAfterMs < 0 ? -1 : Date.now() + healthyAfterMs
  machine.staleChecks = undefined
  machine.lastRequestAt = Date.now()
  machine.updatedAt = nowIso()
  void state
}

export function stopMachine(state: SimState, machine: SimMachine): void {
  const results = checkResults(state, machine)
  machine.state = 'stopped'
  machine.staleChecks = results.length ? results : undefined
  machine.updatedAt = nowIso()
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
      guest: machine.config.guest,
    },
    ...(checks.length ? { checks } : {}),
    events: [],
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
export function routeRequest(state: SimState, app: SimApp): SimMachine | undefined {
  const live = app.machines.filter((m) => m.state === 'started')
  if (!live.length) {
    const sleeper = app.machines.filter((m) => (m.state === 'stopped' || m.state === 'suspended') && m.config.services.some((s) => s.autostart) && !m.config.standbys).sort((a, b) => (a.id < b.id ? -1 : 1))[0]
    if (!sleeper) return undefined
    startMachine(state, sleeper, boots(app, sleeper, state.images[sleeper.image]) ? 0 : -1)
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
