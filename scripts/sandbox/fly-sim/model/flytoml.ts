// fly.toml as flyctl turns it into machine config (internal/appconfig/config.go, service.go,
// machines.go): services with their auto-stop settings and checks, [env], [deploy], [build],
// [mounts]. Only what the simulator's platform rules read.
import { readFileSync } from 'node:fs'
import { parse as parseToml } from 'smol-toml'
import { FlyError } from '../cli.ts'
import type { SimCheckDef, SimRestartPolicy, SimService } from '../state.ts'

export interface AppConfig {
  app?: string
  primaryRegion: string
  build: { dockerfile?: string; ignorefile?: string; image?: string; args: Record<string, string> }
  env: Record<string, string>
  deploy: { releaseCommand?: string; releaseCommandTimeout?: string; strategy?: string; waitTimeout?: string; maxUnavailable?: number }
  services: SimService[]
  checks: SimCheckDef[]
  mounts: { source: string; destination: string }[]
  /** appconfig Config.URL() with `{app}` for the app name: https://{app}.fly.dev/ for an [http_service], else from the services' http ports; null without any. */
  url: string | null
  /** The group's [[restart]] (the last entry naming it, or naming no process), as machine config: absent without one. */
  restart?: SimRestartPolicy
  /** What `fly deploy`'s validation rejects (validation.go validateRestartPolicy). */
  invalid: string[]
  /** The file as parsed, for the release's definition (`fly config show`). */
  raw: Record<string, unknown>
}

/** fly.toml's policy names → fly-go MachineRestart's (appconfig machines.go parseRestartPolicy). */
const RESTART_POLICIES: Record<string, SimRestartPolicy['policy']> = { never: 'no', always: 'always', 'on-failure': 'on-failure' }

/** [[restart]] for the `app` group (appconfig machines.go updateMachineConfig: the last match wins). */
function restartFor(raw: Raw, invalid: string[]): SimRestartPolicy | undefined {
  let chosen: SimRestartPolicy | undefined
  for (const entry of (raw.restart as Raw[] | undefined) ?? []) {
    const policy = RESTART_POLICIES[String(entry.policy)]
    if (!policy) {
      invalid.push(`invalid restart policy: ${entry.policy}`)
      continue
    }
    const processes = (entry.processes as string[] | undefined) ?? []
    if (processes.length && !processes.includes('app')) continue
    // `retries` is the key (C5); max_retries is omitempty, so 0 is not sent.
    chosen = { policy, ...(Number(entry.retries ?? 0) > 0 ? { max_retries: Number(entry.retries) } : {}) }
  }
  return chosen
}

type Raw = Record<string, any>

/** auto_stop_machines: "off"/false, "stop"/true, "suspend" (fly-go MachineAutostop). */
function autostop(value: unknown): boolean | 'suspend' {
  if (value === undefined || value === false || value === 'off') return false
  if (value === true || value === 'stop') return true
  if (value === 'suspend') return 'suspend'
  throw new FlyError(`invalid app configuration: auto_stop_machines must be "off", "stop" or "suspend", not ${JSON.stringify(value)}`)
}

/** What an [http_service] and a [[services]] section have alike. */
function serviceBase(raw: Raw, port: number) {
  return {
    protocol: 'tcp' as const,
    internal_port: port,
    autostop: autostop(raw.auto_stop_machines),
    autostart: raw.auto_start_machines ?? true,
    min_machines_running: Number(raw.min_machines_running ?? 0),
  }
}

const pad = (n: number) => String(n).padStart(2, '0')

function httpChecks(list: Raw[] | undefined, port: number, offset: number): SimCheckDef[] {
  return (list ?? []).map((c, i) => ({ name: `servicecheck-${pad(offset + i)}-http-${port}`, type: 'http' as const, port, path: c.path ?? '/' }))
}

function tcpChecks(list: Raw[] | undefined, port: number, offset: number): SimCheckDef[] {
  return (list ?? []).map((_, i) => ({ name: `servicecheck-${pad(offset + i)}-tcp-${port}`, type: 'tcp' as const, port }))
}

export function parseAppConfig(text: string, path: string): AppConfig {
  let raw: Raw
  try {
    raw = parseToml(text) as Raw
  } catch (error) {
    throw new FlyError(`failed loading app config from ${path}: ${(error as Error).message.split('\n')[0]}`)
  }
  const services: SimService[] = []
  const http = raw.http_service as Raw | undefined
  if (http) {
    const port = Number(http.internal_port ?? 8080)
    services.push({
      ...serviceBase(http, port),
      ports: [
        { port: 80, handlers: ['http'], force_https: Boolean(http.force_https) },
        { port: 443, handlers: ['http', 'tls'] },
      ],
      checks: httpChecks(http.checks, port, 0),
    })
  }
  for (const s of (raw.services as Raw[] | undefined) ?? []) {
    const port = Number(s.internal_port)
    services.push({
      ...serviceBase(s, port),
      ports: ((s.ports as Raw[] | undefined) ?? []).map((p) => ({ port: Number(p.port), handlers: p.handlers ?? [], ...(p.force_https ? { force_https: true } : {}) })),
      checks: [...httpChecks(s.http_checks, port, 0), ...tcpChecks(s.tcp_checks, port, (s.http_checks ?? []).length)],
    })
  }
  const checks: SimCheckDef[] = Object.entries((raw.checks as Record<string, Raw> | undefined) ?? {}).map(([name, c]) => {
    if (c.type !== 'http' && c.type !== 'tcp') throw new FlyError('invalid app configuration')
    return { name, type: c.type, port: Number(c.port), ...(c.path ? { path: c.path } : {}) }
  })
  const mounts = [raw.mounts].flat().filter(Boolean).map((m: Raw) => ({ source: m.source, destination: m.destination }))
  const deploy = (raw.deploy as Raw | undefined) ?? {}
  const build = (raw.build as Raw | undefined) ?? {}
  const host = '{app}.fly.dev'
  const httpPorts = ((raw.services as Raw[] | undefined) ?? []).flatMap((s) => ((s.ports as Raw[] | undefined) ?? []).filter((p) => (p.handlers ?? []).includes('http')))
  const tlsPorts = httpPorts.filter((p) => p.handlers.includes('tls')).map((p) => Number(p.port)).sort((a, b) => a - b)
  const plainPorts = httpPorts.filter((p) => !p.handlers.includes('tls')).map((p) => Number(p.port)).sort((a, b) => a - b)
  const url =
    http && Number(http.internal_port ?? 8080) > 0 ? `https://${host}/`
    : tlsPorts.includes(443) ? `https://${host}/`
    : plainPorts.includes(80) ? `http://${host}/`
    : tlsPorts.length ? `https://${host}:${tlsPorts[0]}/`
    : plainPorts.length ? `http://${host}:${plainPorts[0]}/`
    : null
  const invalid: string[] = []
  const restart = restartFor(raw, invalid)
  return {
    app: raw.app,
    primaryRegion: raw.primary_region ?? 'iad',
    build: { dockerfile: build.dockerfile, ignorefile: build.ignorefile, image: build.image, args: build.args ?? {} },
    env: Object.fromEntries(Object.entries((raw.env as Raw | undefined) ?? {}).map(([k, v]) => [k, String(v)])),
    deploy: {
      releaseCommand: deploy.release_command,
      releaseCommandTimeout: deploy.release_command_timeout,
      strategy: deploy.strategy,
      waitTimeout: deploy.wait_timeout,
      maxUnavailable: deploy.max_unavailable === undefined ? undefined : Number(deploy.max_unavailable),
    },
    services,
    checks,
    mounts,
    url,
    ...(restart ? { restart } : {}),
    invalid,
    raw,
  }
}

/** `-c PATH` as flyctl reads it: PATH, then PATH/fly.toml (internal/command/command.go appConfigFilePaths). */
export function loadAppConfig(path: string): { config: AppConfig; path: string } {
  for (const candidate of [path, `${path.replace(/\/$/, '')}/fly.toml`]) {
    let text: string
    try {
      text = readFileSync(candidate, 'utf8')
    } catch {
      continue
    }
    return { config: parseAppConfig(text, candidate), path: candidate }
  }
  throw new FlyError(`config file not found at specified path: ${path} (also tried: ${path.replace(/\/$/, '')}/fly.toml)`)
}

/** Durations as flyctl takes them: Go durations (5m, 90s) or a bare number of seconds. */
export function parseDuration(value: string | undefined, fallbackMs: number): number {
  if (!value) return fallbackMs
  if (/^\d+$/.test(value)) return Number(value) * 1000
  let ms = 0
  for (const [, n, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms']!
  return ms || fallbackMs
}
