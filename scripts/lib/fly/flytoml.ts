import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parse } from 'smol-toml'
import { UserError } from '../core/errors.js'
import { isObject } from '../core/shape.js'
import { goDurationS } from './deploy-time.js'

// The fly.toml facts the toolkit needs: the app name, the health path, what auto-stop allows,
// whether the service is public, and the release command.

interface Service {
  internal_port?: number
  force_https?: boolean
  auto_stop_machines?: boolean | string
  min_machines_running?: number
  checks?: Array<{ path?: string }>
  ports?: Array<{ port?: number; handlers?: string[]; force_https?: boolean }>
}

export interface FlyToml {
  app?: string
  primary_region?: string
  http_service?: Service
  services?: Service[]
  checks?: Record<string, { path?: string; type?: string }>
  /** Durations: a Go duration string ("10m"), or a number of nanoseconds (fly-go Duration). */
  deploy?: { release_command?: string; wait_timeout?: string | number; release_command_timeout?: string | number }
  env?: Record<string, string>
  build?: { dockerfile?: string }
}

/** Each fly.toml is parsed once per run (it does not change during one): health, rollback and the
 * deploy share one model of it. */
const parsed = new Map<string, FlyToml>()

export function readFlyToml(path: string): FlyToml {
  const key = resolve(path)
  const known = parsed.get(key)
  if (known) return known
  const config = parseFlyToml(path)
  parsed.set(key, config)
  return config
}

function parseFlyToml(path: string): FlyToml {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new UserError(`${path} not found: the infra/fly folders hold one fly.toml per app and environment`)
  }
  let config: unknown
  try {
    config = parse(text)
  } catch (error) {
    throw new UserError(`${path} is not valid TOML: ${(error as Error).message.split('\n')[0]}`)
  }
  const problems = shapeProblems(config as Record<string, unknown>)
  if (problems.length) throw new UserError(problems.map((p) => `${path}: ${p}`))
  return config as FlyToml
}

// The types of the fields the toolkit reads (other keys are Fly's, and left to flyctl): a wrong
// one would crash a health check or be read as something else (`[services]` for `[[services]]`).
type Check = (value: unknown) => boolean
const isTable = (v: unknown): v is Record<string, unknown> => isObject(v) && !(v instanceof Date)
const string: Check = (v) => typeof v === 'string'
const bool: Check = (v) => typeof v === 'boolean'
const whole: Check = (v) => (typeof v === 'number' || typeof v === 'bigint') && Number.isInteger(Number(v)) && Number(v) >= 0
const strings: Check = (v) => Array.isArray(v) && v.every(string)
const described = (v: unknown) => (Array.isArray(v) ? 'a list' : isTable(v) ? 'a table' : typeof v === 'string' ? `the string ${JSON.stringify(v)}` : String(v))

function shapeProblems(config: Record<string, unknown>): string[] {
  const problems: string[] = []
  const field = (table: Record<string, unknown>, key: string, where: string, ok: Check, what: string) => {
    if (table[key] !== undefined && !ok(table[key])) problems.push(`${where}${key} must be ${what}, not ${described(table[key])}`)
  }
  /** A table (`[name]`) whose fields are then checked; a missing one is fine. */
  const table = (parent: Record<string, unknown>, key: string, where: string): Record<string, unknown> | undefined => {
    const value = parent[key]
    if (value === undefined) return undefined
    if (!isTable(value)) {
      problems.push(`${where}${key} must be a table ([${where}${key}]), not ${described(value)}`)
      return undefined
    }
    return value
  }
  /** A list of tables (`[[name]]`). */
  const tables = (parent: Record<string, unknown>, key: string, where: string): Record<string, unknown>[] => {
    const value = parent[key]
    if (value === undefined) return []
    if (!Array.isArray(value) || !value.every(isTable)) {
      problems.push(`${where}${key} must be a list of tables ([[${where}${key}]]), not ${described(value)}`)
      return []
    }
    return value
  }
  const service = (s: Record<string, unknown>, where: string) => {
    field(s, 'internal_port', where, whole, 'a port number')
    field(s, 'force_https', where, bool, 'true or false')
    field(s, 'auto_stop_machines', where, (v) => bool(v) || v === 'off' || v === 'stop' || v === 'suspend', 'true, false, "off", "stop" or "suspend"')
    field(s, 'min_machines_running', where, whole, 'a whole number')
    tables(s, 'checks', where).forEach((c, i) => field(c, 'path', `${where}checks[${i}].`, string, 'a string'))
    tables(s, 'ports', where).forEach((p, i) => {
      field(p, 'port', `${where}ports[${i}].`, whole, 'a port number')
      field(p, 'handlers', `${where}ports[${i}].`, strings, 'a list of strings')
      field(p, 'force_https', `${where}ports[${i}].`, bool, 'true or false')
    })
  }
  for (const key of ['app', 'primary_region']) field(config, key, '', string, 'a string')
  const http = table(config, 'http_service', '')
  if (http) service(http, 'http_service.')
  tables(config, 'services', '').forEach((s, i) => service(s, `services[${i}].`))
  const checks = table(config, 'checks', '')
  for (const [name, check] of Object.entries(checks ?? {})) {
    if (!isTable(check)) problems.push(`checks.${name} must be a table ([checks.${name}]), not ${described(check)}`)
    else for (const key of ['path', 'type']) field(check, key, `checks.${name}.`, string, 'a string')
  }
  const deploy = table(config, 'deploy', '')
  if (deploy) field(deploy, 'release_command', 'deploy.', string, 'a string')
  // flyctl reads a bare number as nanoseconds: `wait_timeout = 300` would give up at once.
  for (const key of ['wait_timeout', 'release_command_timeout']) {
    const value = deploy?.[key]
    if (typeof value === 'number' || typeof value === 'bigint') problems.push(`deploy.${key} = ${value} is ${value} nanoseconds to flyctl: write a duration such as "${value}s" or "10m"`)
    else field(deploy ?? {}, key, 'deploy.', (v) => typeof v === 'string' && goDurationS(v) !== undefined, 'a duration such as "5m" or "90s"')
  }
  const build = table(config, 'build', '')
  if (build) field(build, 'dockerfile', 'build.', string, 'a string')
  return problems
}

/** The app's health path: its first HTTP check's path, `/health` when fly.toml names none. */
export function healthPath(config: FlyToml): string {
  const fromService = config.http_service?.checks?.find((check) => check.path)?.path
  const fromTopLevel = Object.values(config.checks ?? {}).find((check) => check.path)?.path
  return fromService ?? fromTopLevel ?? '/health'
}

const services = (config: FlyToml): Service[] => [...(config.http_service ? [config.http_service] : []), ...(config.services ?? [])]

/** What Fly Proxy may do to idle machines: stop them (auto_stop_machines), down to min_machines_running. */
export function autostop(config: FlyToml): { allowed: boolean; minRunning: number } {
  const list = services(config)
  const allowed = list.some((s) => s.auto_stop_machines === true || s.auto_stop_machines === 'stop' || s.auto_stop_machines === 'suspend')
  const minRunning = Math.max(0, ...list.map((s) => Number(s.min_machines_running ?? 0)))
  return { allowed, minRunning }
}

/** Whether a service redirects plain HTTP to HTTPS: that breaks Flycast (fly-platform.md §4.5). */
export function forcesHttps(config: FlyToml): boolean {
  return services(config).some((s) => s.force_https || (s.ports ?? []).some((p) => p.force_https))
}

/** A fly.toml must name the app the toolkit deploys with it: flyctl's --app would silently win over
 * a different `app =`, and a copied fly.toml would go to the wrong app's settings unnoticed. */
export function checkAppName(path: string, app: string): void {
  const named = readFlyToml(path).app
  if (named !== undefined && named !== app) throw new UserError(`${path} says app = "${named}", but the toolkit deploys it to ${app}: make them agree (the names come from "names" in infra/fly/settings.json)`)
}
