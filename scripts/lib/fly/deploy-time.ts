import type { FlyToml } from './flytoml.js'

// How long one `flyctl deploy` may itself wait, at worst (flyctl.md §3.1, §4.1, §4.3; flyctl
// internal/command/deploy machines_releasecommand.go, machines_deploymachinesapp.go). The toolkit's
// limit for the call must be longer: stopping flyctl while it waits for the release command leaves
// the migration running with nobody watching it, and the next deploy kills it.

/** flyctl's defaults for [deploy] wait_timeout and release_command_timeout (machines.go). */
export const DEFAULT_WAIT_S = 300
export const DEFAULT_RELEASE_COMMAND_S = 300
/** Smoke checks: one 10 s context per machine (leasable_machine.go WaitForSmokeChecksToPass). */
export const SMOKE_CHECKS_S = 10
/** The rest: the build and push (or the image lookup), leases, API calls, log fetching, DNS checks. */
export const MARGIN_S = 600

export interface DeployWaits {
  /** [deploy] wait_timeout, in seconds. */
  waitS: number
  /** [deploy] release_command_timeout in seconds (Infinity: 0, no limit); undefined when
   * no release command runs (none in fly.toml, or --skip-release-command). */
  releaseCommandS?: number
  /** The app's machines (flyctl status); 0 for a first deploy, which creates up to two. */
  machines: number
}

/**
 * The longest flyctl may take, in seconds:
 * - the release command: its machine created and waited for until stopped, then started (each up
 *   to wait_timeout), then until destroyed (release_command_timeout). Its exit event is read after
 *   that; by then the command has ended, so stopping flyctl there kills nothing;
 * - each machine, one at a time (rolling, max_unavailable 1 at worst): started (wait_timeout),
 *   smoke checks (10 s), health checks (wait_timeout);
 * - a margin for everything else.
 */
export function flyctlDeployWorstCase(w: DeployWaits): number {
  const release = w.releaseCommandS === undefined ? 0 : 2 * w.waitS + w.releaseCommandS
  const machines = w.machines > 0 ? w.machines : 2
  return release + machines * (w.waitS + SMOKE_CHECKS_S + w.waitS) + MARGIN_S
}

/** A Go duration (time.ParseDuration: "1h30m", "90s", "500ms") in seconds; undefined if it is not one. */
export function goDurationS(text: string): number | undefined {
  const trimmed = text.replace(/^[+-]/, '')
  if (trimmed === '0') return 0
  if (!/^(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$/.test(trimmed)) return undefined
  const unit: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }
  let seconds = 0
  for (const [, n, , u] of trimmed.matchAll(/(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) seconds += Number(n) * unit[u]
  return text.startsWith('-') ? -seconds : seconds
}

/**
 * A [deploy] duration as flyctl reads it (fly-go duration.go ParseDuration): a string is a Go
 * duration, a bare number is nanoseconds (not seconds: `wait_timeout = 300` is 300 ns).
 * undefined: not set, or not a duration (readFlyToml refuses that).
 */
export function tomlDurationS(value: unknown): number | undefined {
  if (typeof value === 'number' || typeof value === 'bigint') return Number(value) / 1e9
  return typeof value === 'string' ? goDurationS(value) : undefined
}

/** The waits one deploy of this app may add up to: its fly.toml's, or flyctl's defaults. */
export function deployWaits(config: FlyToml, machines: number, runsReleaseCommand: boolean): DeployWaits {
  const waitS = tomlDurationS(config.deploy?.wait_timeout) ?? DEFAULT_WAIT_S
  const release = tomlDurationS(config.deploy?.release_command_timeout) ?? DEFAULT_RELEASE_COMMAND_S
  const runs = runsReleaseCommand && Boolean(config.deploy?.release_command)
  // WithAllowInfinite: a release_command_timeout of 0 waits for ever.
  return { waitS, releaseCommandS: runs ? (release <= 0 ? Infinity : release) : undefined, machines }
}
