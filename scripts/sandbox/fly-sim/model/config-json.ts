// fly.toml as flyctl serialises it into a release's definition and back out of `fly config show`
// (internal/appconfig/config.go Config, service.go, toplevelcheck.go, patches.go, serde.go
// WriteTo and prettyPrintJSONandYAML; flyctl-facts item 1): the Config struct's key order, empty
// values omitted, durations as Go's Duration.String, env values as strings, auto_stop_machines as
// false/true/"suspend", [mounts] and [[vm]] as arrays. Sections the simulator does not model are
// carried as written.

type Raw = Record<string, any>

/** Go time.Duration.String for whole milliseconds: 500ms, 15s, 1m0s, 1h30m0s, 0s. */
export function goDuration(ms: number): string {
  if (ms === 0) return '0s'
  if (Math.abs(ms) < 1000) return `${ms}ms`
  const sign = ms < 0 ? '-' : ''
  let rest = Math.abs(ms)
  const h = Math.floor(rest / 3_600_000)
  rest -= h * 3_600_000
  const m = Math.floor(rest / 60_000)
  rest -= m * 60_000
  const s = `${Math.floor(rest / 1000)}${rest % 1000 ? `.${String(rest % 1000).padStart(3, '0').replace(/0+$/, '')}` : ''}s`
  return sign + (h ? `${h}h${m}m${s}` : m ? `${m}m${s}` : s)
}

/** Go time.ParseDuration (the units fly.toml uses), in milliseconds. */
function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)]
  if (!parts.length || parts.map((p) => p[0]).join('') !== text) return undefined
  const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>
  return Math.round(parts.reduce((ms, [, n, u]) => ms + Number(n) * unit[u], 0))
}

/** A duration field: strings parsed as Go durations; bare numbers in `numberUnitMs` (patches.go). */
function duration(value: unknown, numberUnitMs: number): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' || typeof value === 'bigint') return goDuration(Math.round(Number(value) * numberUnitMs))
  const ms = parseGoDuration(String(value))
  return ms === undefined ? String(value) : goDuration(ms)
}

/** Keys in the given order, undefined values dropped; an empty result is undefined (omitempty). */
function ordered(entries: [string, unknown][]): Raw | undefined {
  const out: Raw = {}
  for (const [k, v] of entries) if (v !== undefined) out[k] = v
  return Object.keys(out).length ? out : undefined
}

const str = (v: unknown) => (v === undefined || v === '' ? undefined : String(v))
const int = (v: unknown) => (v === undefined ? undefined : Number(v))
const nonZero = (v: unknown) => (v === undefined || Number(v) === 0 ? undefined : Number(v))
const truthy = (v: unknown) => (v ? true : undefined)
const list = <T>(v: T[] | undefined) => (v && v.length ? v : undefined)
const stringMap = (v: Raw | undefined) => (v && Object.keys(v).length ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : undefined)

/** fly-go MachineAutostop.MarshalJSON: off → false, stop → true, suspend → "suspend". */
function autostop(v: unknown): boolean | 'suspend' | undefined {
  if (v === undefined) return undefined
  if (v === 'suspend') return 'suspend'
  return v === true || v === 'stop'
}

function httpCheck(c: Raw): Raw | undefined {
  return ordered([
    ['interval', duration(c.interval, 1)], ['timeout', duration(c.timeout, 1)], ['grace_period', duration(c.grace_period, 1)],
    ['method', str(c.method)], ['path', str(c.path)], ['protocol', str(c.protocol)], ['tls_skip_verify', c.tls_skip_verify],
    ['tls_server_name', str(c.tls_server_name)], ['headers', stringMap(c.headers)],
  ])
}

function tcpCheck(c: Raw): Raw | undefined {
  return ordered([['interval', duration(c.interval, 1)], ['timeout', duration(c.timeout, 1)], ['grace_period', duration(c.grace_period, 1)]])
}

function httpService(s: Raw): Raw | undefined {
  return ordered([
    ['internal_port', nonZero(s.internal_port)], ['force_https', truthy(s.force_https)], ['auto_stop_machines', autostop(s.auto_stop_machines)],
    ['auto_start_machines', s.auto_start_machines], ['min_machines_running', int(s.min_machines_running)], ['processes', list(s.processes)],
    ['concurrency', s.concurrency], ['tls_options', s.tls_options], ['http_options', s.http_options],
    ['checks', list(((s.checks as Raw[] | undefined) ?? []).map((c) => httpCheck(c) ?? {}))], ['machine_checks', list(s.machine_checks)],
  ])
}

function service(s: Raw): Raw {
  return ordered([
    ['protocol', str(s.protocol)], ['internal_port', nonZero(s.internal_port)], ['auto_stop_machines', autostop(s.auto_stop_machines)],
    ['auto_start_machines', s.auto_start_machines], ['min_machines_running', int(s.min_machines_running)],
    ['ports', list(((s.ports as Raw[] | undefined) ?? []).map((p) => ({ ...p, ...(p.port !== undefined ? { port: Number(p.port) } : {}) })))],
    ['concurrency', s.concurrency], ['tcp_checks', list(((s.tcp_checks as Raw[] | undefined) ?? []).map((c) => tcpCheck(c) ?? {}))],
    ['http_checks', list(((s.http_checks as Raw[] | undefined) ?? []).map((c) => httpCheck(c) ?? {}))], ['machine_checks', list(s.machine_checks)],
    ['processes', list(s.processes)],
  ]) ?? {}
}

function topLevelCheck(c: Raw): Raw {
  return ordered([
    ['port', int(c.port)], ['type', str(c.type)], ['interval', duration(c.interval, 1)], ['timeout', duration(c.timeout, 1)],
    ['grace_period', duration(c.grace_period, 1)], ['method', str(c.method)], ['path', str(c.path)], ['protocol', str(c.protocol)],
    ['tls_skip_verify', c.tls_skip_verify], ['tls_server_name', str(c.tls_server_name)], ['headers', stringMap(c.headers)], ['processes', list(c.processes)],
  ]) ?? {}
}

const mount = (m: Raw): Raw =>
  ordered([
    ['source', str(m.source)], ['destination', str(m.destination)], ['initial_size', str(m.initial_size)], ['snapshot_retention', int(m.snapshot_retention)],
    ['scheduled_snapshots', m.scheduled_snapshots], ['auto_extend_size_threshold', nonZero(m.auto_extend_size_threshold)],
    ['auto_extend_size_increment', str(m.auto_extend_size_increment)], ['auto_extend_size_limit', str(m.auto_extend_size_limit)], ['processes', list(m.processes)],
  ]) ?? {}

const compute = (v: Raw): Raw => {
  const { size, memory, processes, ...guest } = v
  return ordered([['size', str(size)], ['memory', memory === undefined ? undefined : String(memory)], ...Object.entries(guest), ['processes', list(processes)]]) ?? {}
}

/**
 * The appconfig.Config JSON of a parsed fly.toml (as `config show --local` prints it, and as
 * `fly deploy` stores it in the release with its own overrides: `app` from -a, --env merged).
 */
export function configDefinition(raw: Raw, overrides: { app?: string; env?: Record<string, string> } = {}): Raw {
  const build = (raw.build as Raw | undefined) ?? {}
  const deploy = (raw.deploy as Raw | undefined) ?? {}
  const env = { ...stringMap(raw.env as Raw | undefined), ...overrides.env }
  return (
    ordered([
      ['app', str(overrides.app ?? raw.app)],
      ['primary_region', str(raw.primary_region)],
      ['kill_signal', str(raw.kill_signal)],
      ['kill_timeout', duration(raw.kill_timeout, 1000)],
      ['swap_size_mb', int(raw.swap_size_mb)],
      ['console_command', str(raw.console_command)],
      ['experimental', raw.experimental === undefined ? undefined : { ...raw.experimental, attached: { secrets: {} } }],
      ['build', ordered([
        ['builder', str(build.builder)], ['args', stringMap(build.args)], ['buildpacks', list(build.buildpacks)], ['image', str(build.image)],
        ['settings', build.settings], ['builtin', str(build.builtin)], ['dockerfile', str(build.dockerfile)], ['ignorefile', str(build.ignorefile)],
        ['build-target', str(build['build-target'] ?? build.build_target)], ['compose', build.compose], ['compression', str(build.compression)], ['compression_level', int(build.compression_level)],
      ])],
      ['deploy', ordered([
        ['strategy', str(deploy.strategy)], ['max_unavailable', deploy.max_unavailable === undefined ? undefined : Number(deploy.max_unavailable)],
        // Not patched: a bare number is nanoseconds (fly.Duration.ParseDuration).
        ['wait_timeout', duration(deploy.wait_timeout, 1e-6)], ['release_command', str(deploy.release_command)],
        ['release_command_timeout', duration(deploy.release_command_timeout, 1e-6)], ['release_command_vm', deploy.release_command_vm === undefined ? undefined : compute(deploy.release_command_vm)],
        ['seed_command', str(deploy.seed_command)],
      ])],
      ['env', Object.keys(env).length ? env : undefined],
      ['processes', raw.processes && Object.keys(raw.processes).length ? raw.processes : undefined],
      ['mounts', list([raw.mounts ?? raw.mount].flat().filter(Boolean).map(mount))],
      ['http_service', raw.http_service === undefined ? undefined : httpService(raw.http_service) ?? {}],
      ['services', list(((raw.services as Raw[] | undefined) ?? []).map(service))],
      ['checks', raw.checks && Object.keys(raw.checks).length ? Object.fromEntries(Object.entries(raw.checks as Raw).map(([k, c]) => [k, topLevelCheck(c)])) : undefined],
      ['files', list(raw.files)],
      ['host_dedication_id', str(raw.host_dedication_id)],
      ['machine_config', str(raw.machine_config)],
      ['container', str(raw.container)],
      ['machine_checks', list(raw.machine_checks)],
      ['restart', list(((raw.restart as Raw[] | undefined) ?? []).map((r) => ordered([['policy', str(r.policy)], ['retries', nonZero(r.retries)], ['processes', list(r.processes)]]) ?? {}))],
      ['vm', list([raw.vm ?? [], raw.compute ?? []].flat().map(compute))],
      ['statics', list(((raw.statics as Raw[] | undefined) ?? []).map((s) => ({ ...s, tigris_bucket: s.tigris_bucket ?? '' })))],
      ['metrics', list([raw.metrics ?? raw.metric ?? []].flat())],
    ]) ?? {}
  )
}

const OPENS_SECTION = /^\s*"?\w+"?:( [[{])?$/

/** serde.go WriteTo("json"): MarshalIndent with 2 spaces, then prettyPrintJSONandYAML's blank lines. */
export function renderConfigJson(definition: Raw): string {
  let section = true
  const out: string[] = []
  // encoding/json escapes <, > and & (HTMLEscape) and the JavaScript line separators.
  const text = JSON.stringify(definition, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  for (const line of text.split('\n')) {
    if (OPENS_SECTION.test(line)) {
      if (!section) out.push('')
      section = true
    } else section = false
    out.push(line)
  }
  return out.join('\n') + '\n'
}
