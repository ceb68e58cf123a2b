import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { newApp } from './fly-sim/model/apps.ts'
import { logLine } from './fly-sim/model/logs.ts'
import { autostopPass } from './fly-sim/model/fleet.ts'
import { allocate } from './fly-sim/model/ips.ts'
import { readSandbox, readState, updateState, type Sandbox as SandboxSettings, type SimState } from './fly-sim/state.ts'
import { startFlyProxy, type FlyProxy } from './fly-proxy.ts'
import { runDirect, startSimulator, type DirectResult } from './fly-sim/server.ts'
import { DirectFlyctl } from './direct-flyctl.ts'
import { REPO, tempDir } from './files.ts'

// A Fly sandbox: the simulator's state directory, its configuration, its call log and faults,
// and Fly Proxy in front of the apps. `env` is what a toolkit process needs to use it.

export interface Call {
  argv: string[]
  stdin: string | null
  t: number
  pid: number
  cwd: string
}

export type { Fault } from './fly-sim/state.ts'
import type { Fault } from './fly-sim/state.ts'

export type SandboxOptions = SandboxSettings

/** The sandbox's flyctl: a bash client of the simulator's server. */
export const FLY_BIN = join(REPO, 'scripts', 'sandbox', 'flyctl')

// Commands that change something on Fly (the rest only read).
const WRITES = [/^apps (create|destroy)/, /^secrets (import|set|unset|deploy)/, /^deploy/, /^ssh console/, /^postgres (create|attach)/, /^volumes snapshots create/, /^ips (allocate|release)/, /^mpg (create|attach|backup create|restore|destroy)/, /^machine start/]

export interface Sandbox {
  stateDir: string
  /** What points flyctl and the toolkit at this sandbox (the exports `make sandbox` prints). */
  connection: Record<string, string>
  /** The connection plus short waits, for rehearsals and tests (the sandbox answers at once). */
  env: Record<string, string>
  proxy: FlyProxy
  calls(): Call[]
  writes(): Call[]
  clearCalls(): void
  fault(fault: Fault): void
  state(): SimState
  /** Changes the model directly (no call logged): for setting up a scenario. */
  update<T>(fn: (state: SimState) => T): T
  settings(patch: Partial<SandboxSettings>): void
  /** Creates the six MicroBima apps directly in the simulator state (no call logged). */
  seedApps(): void
  /** Fly Proxy stops every idle machine it may, now (apps with auto_stop_machines). */
  idle(): void
  /** Appends a line to an app's log buffer, as if the app had printed it. */
  appLog(app: string, message: string): void
  /** A flyctl call as the toolkit makes it in a rehearsal (served from this process, logged with
   * its process id); `env` adds to the sandbox's. */
  fly(args: string[], input?: string, env?: Record<string, string>): Promise<FlyResult>
  /** The same command handed to the simulator itself, without the client's connection or `fly`'s
   * colour settings: for setting the sandbox up quickly. */
  direct(args: string[], input?: string): Promise<DirectResult>
  close(): Promise<void>
}

export interface Where {
  /** The state directory to use (kept on close); default: a new temporary one, removed on close. */
  stateDir?: string
}

export async function createSandbox(options: SandboxOptions = {}, where: Where = {}): Promise<Sandbox> {
  // A temporary one is removed on close, or when the process ends (tempDir).
  const stateDir = where.stateDir ?? tempDir('mb-sim-')
  mkdirSync(stateDir, { recursive: true })
  const settingsPath = join(stateDir, 'sandbox.json')
  writeFileSync(settingsPath, JSON.stringify({ orgs: ['microbima'], ...options }, null, 1))
  const [proxy, simulator] = await Promise.all([startFlyProxy(stateDir), startSimulator(stateDir)])
  const connection = {
    FLY_BIN,
    FLY_SIM_STATE: stateDir,
    FLY_API_TOKEN: 'FlyV1 fm2_sim-token',
    FLY_CONFIG_DIR: join(stateDir, 'flyctl-config'),
    FLY_NO_UPDATE_CHECK: '1',
    HEALTH_URL_TEMPLATE: proxy.template,
  }
  const env = {
    ...connection,
    // The toolkit serves its flyctl calls in its own process (direct-flyctl.ts): a rehearsal's
    // calls cost no process each. make sandbox's exports leave it out.
    FLY_SIM_DIRECT: FLY_BIN,
    HEALTH_TIMEOUT: '3',
    HEALTH_INTERVAL: '0.2',
    FLY_RETRY_BASE_MS: '50',
    // The sandbox's secrets are throwaway: set-secrets fingerprints them with scrypt at 2^10, not
    // 2^14 (75 ms of CPU per value; test/unit/fingerprints.test.ts covers the default).
    SECRETS_FINGERPRINT_COST: '10',
  }
  const calls = (): Call[] => {
    const path = join(stateDir, 'calls.jsonl')
    return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []
  }
  const update = <T>(fn: (state: SimState) => T) => updateState(stateDir, fn)
  return {
    stateDir,
    connection,
    env,
    proxy,
    calls,
    writes: () => calls().filter((c) => WRITES.some((w) => w.test(c.argv.join(' ')))),
    clearCalls: () => writeFileSync(join(stateDir, 'calls.jsonl'), ''),
    fault(fault) {
      const path = join(stateDir, 'faults.json')
      const faults = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : []
      writeFileSync(path, JSON.stringify([...faults, fault]))
    },
    state: () => readState(stateDir),
    update,
    settings: (patch) => writeFileSync(settingsPath, JSON.stringify({ ...readSandbox(stateDir), ...patch }, null, 1)),
    seedApps() {
      update((state) => {
        for (const env of ['staging', 'production']) {
          for (const app of ['internal-api', 'public-api', 'web-admin']) {
            const name = `microbima-${env}-${app}`
            state.apps[name] ??= newApp(name, 'microbima')
            // As make create-apps leaves it: the internal API reachable over Flycast only.
            if (app === 'internal-api' && !state.apps[name].ips.length) allocate(state.apps[name], 'private_v6')
          }
        }
      })
    },
    idle: () => update((state) => autostopPass(state, readSandbox(stateDir), true)),
    appLog: (app, message) => update((state) => void state.apps[app].logs.push(logLine(state.apps[app].machines[0]?.id ?? 'none', 'jnb', 'info', message))),
    direct: (args, input) => runDirect(stateDir, args, { env: { ...process.env, ...env } as Record<string, string>, cwd: REPO, input }),
    fly: (args, input, extra) => runFly(stateDir, args, { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...env, ...extra }, input),
    close: async () => {
      await Promise.all([proxy.close(), simulator.close()])
      if (!where.stateDir) rmSync(stateDir, { recursive: true, force: true })
    },
  }
}

export interface FlyResult {
  code: number | null
  stdout: string
  stderr: string
  /** stdout and stderr together, in arrival order. */
  output: string
}

/** Runs the simulated flyctl as the toolkit does in a rehearsal: the client's wire calls spoken
 * from this process (direct-flyctl.ts, which test/direct-flyctl.test.ts holds to the bash client's
 * answers), so a test's hundreds of calls fork nothing. It never blocks this process, which may
 * serve the databases or the proxy the call talks to. */
function runFly(stateDir: string, args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<FlyResult> {
  return new Promise((resolve) => {
    const child = new DirectFlyctl(stateDir, args, { env, cwd: REPO, stdin: 'pipe' })
    const result: FlyResult = { code: null, stdout: '', stderr: '', output: '' }
    child.stdout.on('data', (chunk) => ((result.stdout += chunk), (result.output += chunk)))
    child.stderr.on('data', (chunk) => ((result.stderr += chunk), (result.output += chunk)))
    child.stdin!.end(input)
    child.on('close', (code: number | null) => resolve({ ...result, code }))
  })
}

/** The argv lists of calls, without the binary, for exact sequence assertions. */
export function argvs(calls: Call[]): string[][] {
  return calls.map((c) => c.argv)
}
