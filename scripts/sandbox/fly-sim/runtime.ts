// What every simulated command shares at run time: the state directory, the sandbox settings,
// latencies and injected faults, and Fly Proxy's auto-stop pass between commands. Settings are
// read at each call, as a new flyctl process would see them.
import { randomBytes } from 'node:crypto'
import { call, Exit } from './call.ts'
import { FlyError, hang, out, sleep } from './cli.ts'
import { advanceAll, autostopPass, crashDue } from './model/fleet.ts'
import { type Fault, type Sandbox, type SimApp, type SimState, readSandbox, readState, takeFault, updateState } from './state.ts'

/** The state directory of the sandbox this call belongs to. */
export const dir = (): string => call().dir

/** The sandbox's settings (sandbox.json), read once per call. */
export function sandbox(): Sandbox {
  const memo = call().memo
  if (!memo.has('sandbox')) memo.set('sandbox', readSandbox(dir()))
  return memo.get('sandbox') as Sandbox
}

/** Multiplies flyctl's waits (wait_timeout, …) so a 5-minute health wait passes in a second. */
export const timeScale = (): number => sandbox().timeScale ?? 1

export const requestId = () => `01${randomBytes(12).toString('hex').toUpperCase()}-jnb`

/**
 * How long Fly takes to answer `command` (its group: `status`, `secrets`, `deploy` for a rollout,
 * `build` for a remote build): the caller's FLY_SIM_LATENCY (`deploy=2000,*=200`), then the
 * sandbox's latencyMs, each by name first, then by `*`, the latency of every command not named.
 * `build` takes no `*`: it is a phase of a deploy, which is charged as a call already (a rollout
 * `deploy`); without a `build` value a build is instantaneous.
 */
export function latencyMs(command: string): number {
  const fromEnv: Record<string, number> = Object.fromEntries((call().env.FLY_SIM_LATENCY ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')).map(([k, v]) => [k.trim(), Number(v)]))
  const fromSandbox = sandbox().latencyMs ?? {}
  const named = fromEnv[command] ?? fromSandbox[command]
  if (named !== undefined || command === 'build') return named ?? 0
  return fromEnv['*'] ?? fromSandbox['*'] ?? 0
}

/** Waits the command's latency (latencyMs): once per call, where Fly's answer would come. */
export async function latency(command: string): Promise<void> {
  const ms = latencyMs(command)
  if (ms > 0) await sleep(ms)
}

/** The faults FLY_SIM_FAULT may name, and the command each acts on: a sandbox user practises a
 * failure with `make deploy-staging APP=web-admin FLY_SIM_FAULT=unhealthy:web-admin`. */
export const ENV_FAULTS: Record<string, string> = {
  unhealthy: 'deploy',
  'build-fail': 'build',
  'http-5xx': 'deploy',
  'release-command-fail': 'deploy',
  fail: 'deploy',
  'remote-fail': 'ssh',
  'ssh-dropped': 'ssh',
  'proxy-never-ready': 'proxy',
  'backup-fail': 'mpg backup create',
}

/** A fault named in the caller's FLY_SIM_FAULT (`kind` or `kind:app`, comma-separated), for this
 * command and app. A deploy that rolls back (--skip-release-command) is never the one it breaks. */
function envFault(command: string, app: string | undefined): Fault | undefined {
  const { argv, env } = call()
  if (command === 'deploy' && argv.includes('--skip-release-command')) return undefined
  for (const entry of (env.FLY_SIM_FAULT ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const [kind, target] = entry.split(':')
    if (ENV_FAULTS[kind] !== command) continue
    if (target && app !== target && !app?.endsWith(`-${target}`)) continue
    return { command, kind, app }
  }
  return undefined
}

/** Faults every command honours; returns the fault for the command-specific kinds. */
export async function fault(command: string, app?: string): Promise<Fault | undefined> {
  const f = takeFault(dir(), command, app) ?? envFault(command, app)
  if (!f) return undefined
  if (f.kind === 'hang') await hang()
  if (f.kind === 'unauthenticated') throw new FlyError("no access token available. Please login with 'flyctl auth login'")
  if (f.kind === 'unauthorized') throw new FlyError(`unauthorized (Request ID: ${requestId()})`)
  if (f.kind === 'transient') throw new FlyError('failed to get app: Get "https://api.fly.io/graphql": read tcp 10.0.0.2:51234->77.83.140.164:443: read: connection reset by peer')
  // Fault `stdout`: the command prints `detail` instead of its answer and exits 0 (a malformed
  // answer, e.g. JSON list items without their fields).
  if (f.kind === 'stdout') {
    out(f.detail ?? '')
    throw new Exit(0)
  }
  return f
}

/** GraphQL GetApp's error for a missing app (status.go: "failed to get app: …"). */
export function findApp(state: SimState, name: string): SimApp {
  const app = state.apps[name]
  if (!app) throw new FlyError(`failed to get app: Could not find App "${name}"`)
  return app
}

/** The platform keeps working between commands: flyd restarts crashing processes (or gives up on
 * them), and Fly Proxy stops the idle machines of auto-stop apps. */
export function platformPass(): void {
  const settings = sandbox()
  if (settings.autostopIdleMs === undefined && !crashDue(readState(dir()))) return
  updateState(dir(), (state) => {
    advanceAll(state)
    if (settings.autostopIdleMs !== undefined) autostopPass(state, settings)
  })
}
