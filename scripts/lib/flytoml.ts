import { readFileSync } from 'node:fs'
import { parse } from 'smol-toml'
import { UserError } from './errors.js'

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
  deploy?: { release_command?: string }
  env?: Record<string, string>
  build?: { dockerfile?: string }
}

export function readFlyToml(path: string): FlyToml {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new UserError(`${path} not found: the infra/fly folders hold one fly.toml per app and environment`)
  }
  try {
    return parse(text) as FlyToml
  } catch (error) {
    throw new UserError(`${path} is not valid TOML: ${(error as Error).message.split('\n')[0]}`)
  }
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
