import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Fault } from '../fly-sim/state.ts'
import { startHealthServer, type HealthServer } from './health-server.ts'
import { REPO, run, tempDir } from './toolkit.ts'

// A Fly sandbox: the simulator's state directory, its configuration, its call log and faults,
// and the apps' health endpoints. `env` is what a toolkit process needs to use it.

export interface Call {
  argv: string[]
  stdin: string | null
  t: number
}

export type { Fault } from '../fly-sim/state.ts'

export interface SandboxOptions {
  orgs?: string[]
  postgres?: Record<string, { host: string; port: number }>
  latencyMs?: Record<string, number>
  timeScale?: number
}

export const FLY_BIN = join(REPO, 'test', 'fly-sim', 'flyctl')

// Commands that change something on Fly (the rest only read).
const WRITES = [/^apps create/, /^secrets (import|set|unset|deploy)/, /^deploy/, /^ssh console/, /^postgres (create|attach)/, /^volumes snapshots create/]

export interface Sandbox {
  stateDir: string
  env: Record<string, string>
  health: HealthServer
  calls(): Call[]
  writes(): Call[]
  clearCalls(): void
  fault(fault: Fault): void
  state(): any
  /** Creates the six MicroBima apps directly in the simulator state (no call logged). */
  seedApps(): void
  fly(args: string[], input?: string): ReturnType<typeof run>
  close(): Promise<void>
}

export async function createSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const stateDir = tempDir('mb-sim-')
  writeFileSync(join(stateDir, 'sandbox.json'), JSON.stringify({ orgs: ['microbima'], ...options }, null, 1))
  const health = await startHealthServer(stateDir)
  const env = {
    FLY_BIN,
    FLY_SIM_STATE: stateDir,
    FLY_API_TOKEN: 'sim-token',
    FLY_NO_UPDATE_CHECK: '1',
    HEALTH_URL_TEMPLATE: health.template,
    HEALTH_TIMEOUT: '5',
    HEALTH_INTERVAL: '0.2',
    FLY_RETRY_BASE_MS: '50',
  }
  const calls = (): Call[] => {
    const path = join(stateDir, 'calls.jsonl')
    return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []
  }
  return {
    stateDir,
    env,
    health,
    calls,
    writes: () => calls().filter((c) => WRITES.some((w) => w.test(c.argv.join(' ')))),
    clearCalls: () => writeFileSync(join(stateDir, 'calls.jsonl'), ''),
    fault(fault) {
      const path = join(stateDir, 'faults.json')
      const faults = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : []
      writeFileSync(path, JSON.stringify([...faults, fault]))
    },
    state: () => JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')),
    seedApps() {
      const path = join(stateDir, 'state.json')
      const state = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : { apps: {}, images: {}, volumes: {}, seq: 0 }
      for (const env of ['staging', 'production']) {
        for (const app of ['internal-api', 'public-api', 'web-admin']) {
          const name = `microbima-${env}-${app}`
          state.apps[name] ??= { id: name, name, org: 'microbima', secrets: {}, releases: [], machines: [], logs: [], brokenImages: [] }
        }
      }
      mkdirSync(stateDir, { recursive: true })
      writeFileSync(path, JSON.stringify(state))
    },
    fly: (args, input) => run(FLY_BIN, args, { env, input }),
    close: () => health.close(),
  }
}

/** The argv lists of calls, without the binary, for exact sequence assertions. */
export function argvs(calls: Call[]): string[][] {
  return calls.map((c) => c.argv)
}
