import { closeSync, existsSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs'
import { join } from 'node:path'

// The simulator's model of Fly, kept between calls in $FLY_SIM_STATE: state.json (apps, machines,
// releases, IPs, secrets with their versions, the image registry, volumes, Managed Postgres
// clusters), sandbox.json (what a test configures), faults.json (injected faults) and calls.jsonl
// (every argv and stdin). The rules that act on it live in model/, the command surface in commands/.

export type CheckStatus = 'passing' | 'warning' | 'critical'

/** A health check as a machine's config carries it (fly-go machine_types.go MachineCheck). */
export interface SimCheckDef {
  name: string
  type: 'http' | 'tcp'
  port: number
  path?: string
}

/** fly-go MachineService, as flyctl builds it from [http_service] / [[services]]. */
export interface SimService {
  protocol: 'tcp'
  internal_port: number
  /** fly-go MachineAutostop.MarshalJSON: false, true or "suspend". */
  autostop: boolean | 'suspend'
  autostart: boolean
  min_machines_running: number
  ports: { port: number; handlers: string[]; force_https?: boolean }[]
  checks: SimCheckDef[]
}

export interface SimMachineConfig {
  image: string
  env: Record<string, string>
  services: SimService[]
  /** Top-level [checks.NAME]. */
  checks: SimCheckDef[]
  metadata: Record<string, string>
  mounts: { volume: string; path: string }[]
  standbys?: string[]
  guest: { cpu_kind: string; cpus: number; memory_mb: number }
  /** init.cmd: a release_command machine's command, split shell-style. */
  init?: { cmd: string[] }
  /** fly-go MachineRestart from fly.toml [[restart]]; absent: the platform default (on-failure, 10 retries). */
  restart?: SimRestartPolicy
}

/** fly-go MachineRestart: `max_retries` omitempty. */
export interface SimRestartPolicy {
  policy: 'no' | 'on-failure' | 'always'
  max_retries?: number
}

/** fly-go MachineEvent (newest first in a machine's `events`); timestamps in Unix milliseconds. */
export interface SimMachineEvent {
  type: 'launch' | 'start' | 'exit' | 'update' | 'stop'
  status: string
  source: 'user' | 'flyd'
  timestamp: number
  /** For `exit`: what flyd saw (fly-go MachineExitEvent, MachineRequest.restart_count). */
  exit?: { exit_code: number; requested_stop: boolean; restarting: boolean; oom_killed?: boolean; restart_count: number }
}

export interface SimCheckResult {
  name: string
  status: CheckStatus
  output: string
  updated_at: string
}

export interface SimMachine {
  id: string
  name: string
  /** `failed`: flyctl relaunches it like a started one (machines_launchinput.go shouldSkipLaunch). */
  state: 'created' | 'started' | 'stopped' | 'suspended' | 'failed' | 'destroyed'
  region: string
  image: string
  releaseVersion: number
  config: SimMachineConfig
  /** Epoch ms from which the machine's checks pass; -1: never (it crashes). */
  healthyAt: number
  /** Results frozen when the machine stopped: Fly may keep showing them (fly-platform.md §2.2). */
  staleChecks?: SimCheckResult[]
  /** The app secrets version this machine was launched with (fly-platform.md §6). */
  secretsVersion: number
  privateIp: string
  createdAt: string
  updatedAt: string
  /** Last request Fly Proxy routed to it (auto-stop idles machines that get none). */
  lastRequestAt: number
  /** Newest first, at most MAX_EVENTS (absent in states written before events were modelled). */
  events?: SimMachineEvent[]
  /** Epoch ms of the last start (by a deploy, an operator, Fly Proxy or the restart policy's first try). */
  startedAt?: number
  /** Restarts the restart policy made since that start. */
  restarts?: number
  /** Why its current process crashes (the image's `crash` fault, or a failed start step), if it does. */
  crash?: { exitCode: number; runMs: number; lines: string[] }
  /** When that process exits next (epoch ms). */
  nextExitAt?: number
  /** The app's log length at the machine's last update: its lines since then start there. */
  logsFrom?: number
}

export interface SimRelease {
  ID: string
  Version: number
  Status: 'running' | 'complete' | 'failed' | 'interrupted'
  Description: string
  ImageRef: string
  CreatedAt: string
  /** CreatedAt with milliseconds (secrets list compares it with a secret's updated_at). */
  createdMs?: number
  UserName: string
}

/** fly-go types.go IPAddress: Type v4 | v6 | private_v6 | shared_v4. */
export interface SimIp {
  ID: string
  Address: string
  Type: 'v4' | 'v6' | 'private_v6' | 'shared_v4'
  Region: string
  CreatedAt: string
}

/** One write to an app's secrets: Fly keeps a version per app and bumps it on every update. */
export interface SimSecretEvent {
  version: number
  name: string
  /** null: unset. */
  value: string | null
  at: number
}

export interface SimApp {
  id: string
  name: string
  org: string
  createdAt: string
  deployed: boolean
  /** The config of the last deploy (restart-only deployments use it, not the local fly.toml). */
  deployedConfig?: import('./model/flytoml.ts').AppConfig
  /** The current release's definition (appconfig.Config JSON): what `fly config show` prints. */
  definition?: Record<string, unknown>
  ips: SimIp[]
  secretsLog: SimSecretEvent[]
  secretsVersion: number
  /** The secrets version the platform hands to a launch that names no minimum version. */
  secretsCacheVersion: number
  releases: SimRelease[]
  machines: SimMachine[]
  /** release_command machines flaps still lists (`machine list`, never `status`): one outlives the
   * deploy that timed out waiting for it, until its command ends or the next deploy destroys it. */
  releaseCommandMachines?: SimMachine[]
  logs: string[]
  /** Unmanaged Postgres (fly postgres): the cluster's users and databases, for attach. */
  postgres?: { operatorPassword: string; users: string[]; databases: string[]; attachments: string[] }
}

export interface SimImage {
  ref: string
  app: string
  org: string
  digest: string
  createdAt: string
  /** The image's files the simulator could trace (COPY from the build context), materialised here;
   * next to it, the list of every path of the build context uploaded to the builder (model/build.ts
   * uploadedPaths; kept out of state.json, which every flyctl call reads and writes: a deploy's
   * lists made it 700 KB). */
  fsDir: string
  entrypoint?: string[]
  cmd?: string[]
  /** Fault `unhealthy`: every machine running it fails its checks. */
  broken?: boolean
  /** Fault `http-5xx`: its /health answers 503 (until this epoch ms; 0: for good). */
  http5xxUntil?: number
  /** Fault `crash`: every process started from it exits after runMs with exitCode, logging lines. */
  crash?: { exitCode: number; runMs: number; lines: string[] }
}

export interface SimVolume {
  id: string
  name: string
  app: string
  size_gb: number
  region: string
  created_at: string
  attached_machine_id: string | null
  snapshots: SimSnapshot[]
}

/** A volume snapshot (fly-go VolumeSnapshot), with what the simulator needs to move it on. */
export interface SimSnapshot {
  /** Given when it is requested; `snapshots list` shows "" until its status is `created`. */
  id: string
  /** The volume it belongs to. */
  volume: string
  status: 'waiting' | 'running' | 'created' | 'failed'
  /** When it was requested (RFC 3339, seconds). */
  created_at: string
  /** Stored bytes (0 until created). */
  size: number
  digest: string
  /** Epoch ms from which it is `running`. */
  runningAt: number
  /** Epoch ms at which it ends `created` (or `failed`); -1: never. */
  readyAt: number
  fails?: boolean
  /** The simulator copied the database when it was requested (model/restores.ts): a restore brings that back. */
  copied?: boolean
}

/** A Managed Postgres backup (uiex/mpg/v2 ClusterBackup), with what the simulator needs to move it on. */
export interface SimMpgBackup {
  id: string
  /** The cluster it belongs to. */
  cluster: string
  /** pending → completed | failed, or a word a fault chose. */
  status: string
  type: string
  /** RFC 3339, seconds. */
  start: string
  stop: string
  /** Epoch ms at which it ends; -1: never. */
  readyAt: number
  fails?: boolean
  /** Taken by the platform's schedule, not by `backup create`. */
  scheduled?: boolean
  /** The simulator copied the database when it was taken (model/restores.ts): a restore brings that back. */
  copied?: boolean
}

export interface SimMpgCluster {
  id: string
  name: string
  org: string
  region: string
  plan: string
  disk: number
  status: 'initializing' | 'ready' | 'error'
  readyAt: number
  user: string
  password: string
  dbname: string
  directIp: string
  attachedApps: { name: string; id: string }[]
  backups: SimMpgBackup[]
  createdAt: string
  /** The cluster this one was restored from. */
  restoredFrom?: string
  /** A restore still loading the backup's data: the cluster stays initializing until it is done. */
  restoring?: boolean
}

export interface SimState {
  apps: Record<string, SimApp>
  images: Record<string, SimImage>
  volumes: Record<string, SimVolume>
  mpg: Record<string, SimMpgCluster>
  seq: number
}

export interface Sandbox {
  orgs?: string[]
  takenNames?: string[]
  /** Database backends: a Postgres app's (or MPG cluster's) name → where it really listens (and,
   * for a real server, the URL the simulator reads it with to copy it into a backup). Restores add
   * their own (model/restores.ts). */
  postgres?: Record<string, { host: string; port: number; url?: string }>
  latencyMs?: Record<string, number>
  /** Multiplies flyctl's waits (wait_timeout, …) so a 5-minute health wait passes in a second. */
  timeScale?: number
  /** Fly Proxy stops a machine idle this long (apps with auto_stop_machines); unset: never on its own. */
  autostopIdleMs?: number
  /** Regions where Managed Postgres is available (the API's /postgresv2/regions). */
  mpgRegions?: string[]
  /** How long a new MPG cluster or backup stays pending. */
  mpgProvisionMs?: number
  /** How long a new volume snapshot stays pending, before timeScale (default 30 000). */
  snapshotMs?: number
  /** How long a restore (an MPG cluster from a backup, a Fly Postgres app from a snapshot) provisions
   * before it accepts connections, besides loading the data (default: mpgProvisionMs, else 0). */
  restoreMs?: number
  /** What LaunchDarkly's `deploy-retries` flag gives `fly deploy --deploy-retries auto` (default 0). */
  deployRetriesAuto?: number
}

export interface Fault {
  command: string
  app?: string
  kind: string
  times?: number
  ms?: number
  /** For `unhealthy`: the first N machines the new image lands on stay healthy. */
  afterMachines?: number
  /** Free-form detail for the fault kinds that need one (`stdout`: the text printed instead of the answer; `crash`: the log lines of each crash). */
  detail?: string
  /** For `crash`: the exit code of each crash (default 1). */
  exitCode?: number
}

function readJson<T>(path: string, fallback: T): T {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : fallback
}

export function readSandbox(dir: string): Sandbox {
  return readJson<Sandbox>(join(dir, 'sandbox.json'), {})
}

export function emptyState(): SimState {
  return { apps: {}, images: {}, volumes: {}, mpg: {}, seq: 0 }
}

export function readState(dir: string): SimState {
  return { ...emptyState(), ...readJson<Partial<SimState>>(join(dir, 'state.json'), {}) }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Read-modify-write of sandbox.json, under the state's lock (a restore registers its backend). */
export function updateSandbox<T>(dir: string, fn: (sandbox: Sandbox) => T): T {
  return withLock(dir, () => {
    const sandbox = readSandbox(dir)
    const result = fn(sandbox)
    const tmp = join(dir, `sandbox.json.${process.pid}`)
    writeFileSync(tmp, JSON.stringify(sandbox, null, 1))
    renameSync(tmp, join(dir, 'sandbox.json'))
    return result
  })
}

/** Read-modify-write of state.json under an exclusive lock file (concurrent flyctl calls happen). */
export function updateState<T>(dir: string, fn: (state: SimState) => T): T {
  return withLock(dir, () => {
    const state = readState(dir)
    const result = fn(state)
    const tmp = join(dir, `state.json.${process.pid}`)
    writeFileSync(tmp, JSON.stringify(state))
    renameSync(tmp, join(dir, 'state.json'))
    return result
  })
}

function withLock<T>(dir: string, fn: () => T): T {
  const lock = join(dir, 'state.lock')
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'))
      break
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) unlinkSync(lock)
      } catch {
        // another process removed it
      }
      sleepSync(5)
    }
  }
  try {
    return fn()
  } finally {
    unlinkSync(lock)
  }
}

/** Takes the first fault matching this invocation, consuming one of its `times`. */
export function takeFault(dir: string, command: string, app: string | undefined): Fault | undefined {
  const path = join(dir, 'faults.json')
  if (!existsSync(path)) return undefined
  // Under the state's lock (calls run side by side), though only faults.json changes.
  return withLock(dir, () => {
    const faults = readJson<Fault[]>(path, [])
    // `secrets` matches every secrets subcommand, `secrets deploy` only that one.
    const index = faults.findIndex((f) => (f.command === command || command.startsWith(`${f.command} `)) && (!f.app || f.app === app))
    if (index < 0) return undefined
    const fault = faults[index]
    if (fault.times !== undefined) {
      fault.times -= 1
      if (fault.times <= 0) faults.splice(index, 1)
    }
    writeFileSync(path, JSON.stringify(faults, null, 1))
    return fault
  })
}

export function logCall(dir: string, argv: string[], stdin: string | null, who: { pid: number; cwd: string }): void {
  appendFileSync(join(dir, 'calls.jsonl'), JSON.stringify({ argv, stdin, t: Date.now(), pid: who.pid, cwd: who.cwd }) + '\n')
}
