import { UserError } from './errors.js'
import { receiverProblem } from '../events/url.js'
import { unmaskable } from '../secrets/mask.js'

// Every setting the toolkit reads from the environment, validated in one place before any change:
// a timeout that is not a number would silently disable itself (Number('abc') is NaN, and a
// setTimeout of NaN fires at once or never), a negative one is nonsense, a yes/no that is neither
// is a typo. `make … HEALTH_TIMEOUT=20` reaches the scripts through the environment.

interface Numeric {
  name: string
  fallback: number
  unit: 'seconds' | 'ms' | 'count' | 'port'
  /** Whether 0 is allowed (LOCK_WAIT=0: do not wait). */
  zero?: boolean
  /** The largest sensible count (counts only; times and ports have their own bounds). */
  max?: number
  /** The smallest sensible count (counts only). */
  min?: number
}

const NUMERIC: Numeric[] = [
  { name: 'HEALTH_TIMEOUT', fallback: 60, unit: 'seconds', zero: true },
  { name: 'HEALTH_INTERVAL', fallback: 0.5, unit: 'seconds' },
  { name: 'HEALTH_PROBE_TIMEOUT', fallback: 5, unit: 'seconds' },
  { name: 'LOCK_WAIT', fallback: 60, unit: 'seconds', zero: true },
  { name: 'LOCK_TTL', fallback: 120, unit: 'seconds' },
  { name: 'LOGS_TIMEOUT', fallback: 20, unit: 'seconds' },
  { name: 'LOGS_LINES', fallback: 30, unit: 'count', max: 10_000 },
  // make releases-<env>: releases shown per app (flyctl returns the last 25 at most).
  { name: 'LIMIT', fallback: 10, unit: 'count', max: 10_000 },
  { name: 'FLY_READ_TIMEOUT', fallback: 60, unit: 'seconds' },
  { name: 'FLY_DEPLOY_TIMEOUT', fallback: 1800, unit: 'seconds' },
  { name: 'FLY_SSH_TIMEOUT', fallback: 900, unit: 'seconds' },
  { name: 'FLY_RETRY_BASE_MS', fallback: 500, unit: 'ms', zero: true },
  { name: 'PROXY_READY_TIMEOUT', fallback: 60, unit: 'seconds' },
  { name: 'DB_CONNECT_TIMEOUT', fallback: 15, unit: 'seconds' },
  { name: 'DB_STATEMENT_TIMEOUT', fallback: 120, unit: 'seconds' },
  { name: 'DB_LOCK_TIMEOUT', fallback: 10, unit: 'seconds' },
  { name: 'BACKUP_TIMEOUT', fallback: 900, unit: 'seconds' },
  { name: 'LARGE_TABLE_ROWS', fallback: 10_000, unit: 'count', zero: true, max: 1_000_000_000 },
  { name: 'STUDIO_PORT', fallback: 5555, unit: 'port' },
  { name: 'HOOK_TIMEOUT', fallback: 300, unit: 'seconds' },
  { name: 'DRILL_TIMEOUT', fallback: 1800, unit: 'seconds' },
  // set-secrets' fingerprints: scrypt's cost as log2 N (14: 16 MB and 75 ms per value here). Kept
  // with each fingerprint, so a change applies to new ones only. Below 14 only for throwaway
  // sandboxes (the sandbox's environment sets 10, as test suites lower bcrypt's cost).
  { name: 'SECRETS_FINGERPRINT_COST', fallback: 14, unit: 'count', min: 10, max: 20 },
]

const FLAGS = ['BUILD', 'REBUILD', 'ROLLBACK_ALL', 'PRUNE', 'APPLY', 'SKIP_BACKUP', 'JSON', 'FOLLOW', 'WATCH', 'ALLOW_DIRTY', 'DB', 'KEEP', 'MB_DRY_RUN', 'MB_YES', 'MB_VERBOSE'] as const
const TRUE = ['1', 'true', 'yes', 'on']
const FALSE = ['', '0', 'false', 'no', 'off']

function problemOf(spec: Numeric, raw: string): string | undefined {
  const what = spec.unit === 'seconds' ? 'a number of seconds' : spec.unit === 'ms' ? 'a number of milliseconds' : spec.unit === 'port' ? 'a TCP port' : 'a whole number'
  // Set but empty (`make … FLY_READ_TIMEOUT=`, a CI variable that was never filled): a mistake,
  // not a request for the default.
  if (raw.trim() === '') return `${spec.name}= is empty: give it ${what}, or leave it unset for the default (${spec.fallback})`
  if (!/^\s*\d+(\.\d+)?\s*$/.test(raw)) return `${spec.name}=${raw} is not ${what}`
  const value = Number(raw)
  if ((spec.unit === 'count' || spec.unit === 'port') && !Number.isInteger(value)) return `${spec.name}=${raw} is not ${what}`
  if (spec.unit === 'port' && (value < 1 || value > 65535)) return `${spec.name}=${raw} is not a TCP port (1-65535)`
  if (value === 0 && !spec.zero) return spec.unit === 'count' ? `${spec.name}=0 is not a count: give it ${what} above 0` : `${spec.name}=0 would never wait: give it ${what} above 0`
  if (spec.unit === 'count' && spec.max !== undefined && value > spec.max) return `${spec.name}=${raw} is more than ${spec.max}: give it a whole number up to ${spec.max}`
  if (spec.unit === 'count' && spec.min !== undefined && value < spec.min) return `${spec.name}=${raw} is less than ${spec.min}: give it a whole number from ${spec.min} to ${spec.max ?? 'up'}`
  if (spec.unit === 'seconds' && value > 7 * 24 * 3600) return `${spec.name}=${raw} is more than a week: give it ${what}`
  // Timers take at most 2^31-1 ms; a longer wait would fire at once.
  if (spec.unit === 'ms' && value > 3_600_000) return `${spec.name}=${raw} is more than an hour: give it ${what}`
  return undefined
}

/** Every problem with the environment's settings (exit 2 before anything runs). */
export function knobProblems(env = process.env): string[] {
  const problems: string[] = []
  for (const spec of NUMERIC) {
    const raw = env[spec.name]
    if (raw === undefined) continue
    const problem = problemOf(spec, raw)
    if (problem) problems.push(problem)
  }
  for (const name of FLAGS) {
    const raw = env[name]
    if (raw !== undefined && ![...TRUE, ...FALSE].includes(raw.toLowerCase())) problems.push(`${name.replace(/^MB_/, '')}=${raw} is not a yes/no value: use 1 or 0`)
  }
  // BACKUP names a kind of backup besides the snapshot: dump is the only one (README).
  if (env.BACKUP !== undefined && env.BACKUP !== '' && env.BACKUP !== 'dump') problems.push(`BACKUP=${env.BACKUP} is not a kind of backup: use BACKUP=dump (a pg_dump besides the snapshot), or leave it unset`)
  // BACKUP_ID names one backup (restore-*, restore-drill-*): an MPG backup id or a snapshot id (vs_…).
  if (env.BACKUP_ID !== undefined) {
    if (env.BACKUP_ID.trim() === '') problems.push('BACKUP_ID= is empty: give it a backup id (an MPG backup, or a volume snapshot vs_…), or leave it out')
    else if (!/^[A-Za-z0-9][\w-]{0,127}$/.test(env.BACKUP_ID)) problems.push(`BACKUP_ID=${env.BACKUP_ID} is not a backup id (one word of letters, digits, _ and -)`)
  }
  // Hooks and notifications (README, "Hooks and notifications"). A URL problem never shows the
  // URL's path or query, and nothing shows the signing secret.
  if (env.HOOKS_DIR !== undefined && env.HOOKS_DIR.trim() === '') problems.push('HOOKS_DIR= is empty: give it the folder of the hooks, or leave it unset for infra/hooks')
  if (env.NOTIFY_URL !== undefined) {
    const problem = receiverProblem(env.NOTIFY_URL, 'NOTIFY_URL')
    if (problem) problems.push(problem)
  }
  if (env.NOTIFY_FORMAT !== undefined && !['json', 'slack'].includes(env.NOTIFY_FORMAT)) problems.push(`NOTIFY_FORMAT=${env.NOTIFY_FORMAT} is not a format: use json (the default) or slack (a Slack incoming webhook)`)
  if (env.NOTIFY_SECRET !== undefined) {
    // A secret the masker cannot hide (short, a plain word) could show up in any line printed.
    const weak = env.NOTIFY_SECRET === '' ? 'is empty' : env.NOTIFY_SECRET.length < 16 ? 'is shorter than 16 characters' : unmaskable(env.NOTIFY_SECRET)
    if (weak) problems.push(`NOTIFY_SECRET ${weak}: use a random value of 16 characters or more (openssl rand -hex 32), or leave it unset for unsigned notifications`)
  }
  const template = env.HEALTH_URL_TEMPLATE
  if (template) {
    // Filled in as the health check would, it must be an http(s) URL.
    const sample = template.replaceAll('{hostname}', 'app.fly.dev').replaceAll('{app}', 'app').replaceAll('{path}', '/health')
    let url: URL | undefined
    try {
      url = new URL(sample)
    } catch {
      // reported below
    }
    if (!url || !/^https?:$/.test(url.protocol)) problems.push(`HEALTH_URL_TEMPLATE=${template} does not give an http(s) URL: use e.g. https://{hostname}{path} ({hostname}, {app} and {path} are filled in)`)
  }
  return problems
}

/** A numeric setting; validated up front, so here it is a number. */
export function knob(name: string): number {
  const spec = NUMERIC.find((s) => s.name === name)
  if (!spec) throw new Error(`unknown setting ${name}`)
  const raw = process.env[name]
  if (raw === undefined || raw === '') return spec.fallback
  const problem = problemOf(spec, raw)
  if (problem) throw new UserError(problem)
  return Number(raw)
}

export const seconds = (name: string) => knob(name) * 1000

/** The longest wait a timer allows: a deploy flyctl may wait on for ever still gets one. */
const FOREVER_S = 7 * 24 * 3600

/**
 * How long the toolkit lets one `flyctl deploy` run. Unset, FLY_DEPLOY_TIMEOUT is the longest
 * flyctl may itself wait for that app (`minimumS`, from its fly.toml's waits and machine count):
 * stopping flyctl earlier could leave a migration running unwatched. Set, it is an explicit cap,
 * with a warning when it is below that.
 */
export function deployTimeout(minimumS: number, app: string): { ms: number; warning?: string } {
  const minimum = Math.min(Math.ceil(minimumS), FOREVER_S)
  const raw = process.env.FLY_DEPLOY_TIMEOUT
  if (raw === undefined || raw === '') return { ms: minimum * 1000 }
  const cap = knob('FLY_DEPLOY_TIMEOUT')
  if (cap >= minimum) return { ms: cap * 1000 }
  const how = Number.isFinite(minimumS) ? `up to ${minimum} s` : 'without limit (release_command_timeout = 0)'
  return { ms: cap * 1000, warning: `FLY_DEPLOY_TIMEOUT=${raw} is shorter than flyctl may itself wait for ${app} (${how}, from its fly.toml's waits and machines): if the toolkit stops flyctl during the release command, the migration goes on unwatched` }
}

/** A yes/no setting from the environment. */
export function flag(name: string): boolean {
  return TRUE.includes((process.env[name] ?? '').toLowerCase())
}
