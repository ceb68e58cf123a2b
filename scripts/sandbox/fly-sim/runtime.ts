// What every simulated command shares at run time: the state directory, the sandbox settings,
// latencies and injected faults, and Fly Proxy's auto-stop pass between commands.
import { randomBytes } from 'node:crypto'
import { FlyError, hang, sleep } from './cli.ts'
import { autostopPass } from './model/fleet.ts'
import { type Fault, type SimApp, type SimState, readSandbox, stateDir, takeFault, updateState } from './state.ts'

export const dir = stateDir()
export const sandbox = readSandbox(dir)
export const timeScale = sandbox.timeScale ?? 1

export const requestId = () => `01${randomBytes(12).toString('hex').toUpperCase()}-jnb`

export async function latency(command: string): Promise<void> {
  const fromEnv = Object.fromEntries((process.env.FLY_SIM_LATENCY ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
  const ms = fromEnv[command] ?? sandbox.latencyMs?.[command] ?? 0
  if (ms > 0) await sleep(ms)
}

/** Faults every command honours; returns the fault for the command-specific kinds. */
export async function fault(command: string, app?: string): Promise<Fault | undefined> {
  const f = takeFault(dir, command, app)
  if (!f) return undefined
  if (f.kind === 'hang') await hang()
  if (f.kind === 'unauthenticated') throw new FlyError("no access token available. Please login with 'flyctl auth login'")
  if (f.kind === 'unauthorized') throw new FlyError(`unauthorized (Request ID: ${requestId()})`)
  if (f.kind === 'transient') throw new FlyError('failed to get app: Get "https://api.fly.io/graphql": read tcp 10.0.0.2:51234->77.83.140.164:443: read: connection reset by peer')
  // Fault `stdout`: the command prints `detail` instead of its answer and exits 0 (a malformed
  // answer, e.g. JSON list items without their fields). Pipes are written synchronously.
  if (f.kind === 'stdout') {
    process.stdout.write(f.detail ?? '')
    process.exit(0)
  }
  return f
}

/** GraphQL GetApp's error for a missing app (status.go: "failed to get app: …"). */
export function findApp(state: SimState, name: string): SimApp {
  const app = state.apps[name]
  if (!app) throw new FlyError(`failed to get app: Could not find App "${name}"`)
  return app
}

/** Fly Proxy keeps working between commands: idle machines of auto-stop apps are stopped. */
export function proxyPass(): void {
  if (sandbox.autostopIdleMs === undefined) return
  updateState(dir, (state) => autostopPass(state, sandbox))
}
