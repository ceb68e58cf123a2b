import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs'
import { join } from 'node:path'

// The simulator's state directory: state.json (apps, secrets, releases, machines, volumes,
// images), sandbox.json (what a test configures), faults.json (injected faults), calls.jsonl.

export interface SimMachine {
  id: string
  state: string
  region: string
  image: string
  releaseVersion: number
  healthyAt: number
  privateIp: string
  createdAt: string
  updatedAt: string
}

export interface SimRelease {
  ID: string
  Version: number
  Status: string
  Description: string
  ImageRef: string
  CreatedAt: string
  UserName: string
}

export interface SimApp {
  id: string
  name: string
  org: string
  postgres?: { password: string; volumeId: string }
  secrets: Record<string, { digest: string; value: string; updatedAt: number; staged: boolean }>
  releases: SimRelease[]
  machines: SimMachine[]
  logs: string[]
  /** Image ref → `http-5xx` marks for the health server. */
  brokenImages: string[]
  /** Image ref → epoch ms until which its /health answers 503. */
  brokenUntil?: Record<string, number>
}

export interface SimImage {
  ref: string
  app: string
  dir: string
  releaseCommand?: string
}

export interface SimState {
  apps: Record<string, SimApp>
  images: Record<string, SimImage>
  volumes: Record<string, { id: string; name: string; app: string; size_gb: number; region: string; created_at: string; attached_machine_id: string | null; snapshots: { id: string; created_at: string }[] }>
  seq: number
}

export interface Sandbox {
  orgs?: string[]
  takenNames?: string[]
  postgres?: Record<string, { host: string; port: number }>
  latencyMs?: Record<string, number>
  timeScale?: number
}

export interface Fault {
  command: string
  app?: string
  kind: string
  times?: number
  ms?: number
}

export function stateDir(): string {
  const dir = process.env.FLY_SIM_STATE
  if (!dir) {
    process.stderr.write('Error: FLY_SIM_STATE is not set (fly simulator)\n')
    process.exit(1)
  }
  mkdirSync(dir, { recursive: true })
  return dir
}

function readJson<T>(path: string, fallback: T): T {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : fallback
}

export function readSandbox(dir: string): Sandbox {
  return readJson<Sandbox>(join(dir, 'sandbox.json'), {})
}

export function readState(dir: string): SimState {
  return readJson<SimState>(join(dir, 'state.json'), { apps: {}, images: {}, volumes: {}, seq: 0 })
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Read-modify-write of state.json under an exclusive lock file (concurrent flyctl calls happen). */
export function updateState<T>(dir: string, fn: (state: SimState) => T): T {
  const lock = join(dir, 'state.lock')
  for (let attempt = 0; ; attempt++) {
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
    const state = readState(dir)
    const result = fn(state)
    const tmp = join(dir, `state.json.${process.pid}`)
    writeFileSync(tmp, JSON.stringify(state, null, 1))
    renameSync(tmp, join(dir, 'state.json'))
    return result
  } finally {
    unlinkSync(lock)
  }
}

/** Takes the first fault matching this invocation, consuming one of its `times`. */
export function takeFault(dir: string, command: string, app: string | undefined): Fault | undefined {
  const path = join(dir, 'faults.json')
  if (!existsSync(path)) return undefined
  return updateState(dir, () => {
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

export function logCall(dir: string, argv: string[], stdin: string | null): void {
  appendFileSync(join(dir, 'calls.jsonl'), JSON.stringify({ argv, stdin, t: Date.now(), pid: process.pid }) + '\n')
}
