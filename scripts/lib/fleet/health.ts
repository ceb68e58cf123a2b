import type { Context } from '../core/cli.js'
import { OperationError } from '../core/errors.js'
import type { FlyMachine, FlyStatus } from '../fly/types.js'
import { autostop, healthPath, readFlyToml, type FlyToml } from '../fly/flytoml.js'
import { knob, seconds } from '../core/knobs.js'
import { waiting } from '../core/progress.js'
import { plain, shortRef } from '../core/log.js'
import { type AppKey, flyAppName, flyConfigPath } from '../core/names.js'
import { loadSettings, type AppSettings } from '../core/settings.js'
import { sendRequest } from '../core/http.js'

// Section 7.1 made a real check, judging the fleet as Fly does (fly-platform.md §1-§3): every
// started machine has every check passing and runs the image just deployed; a machine whose
// image crashed (its newest exit since its last update is a non-zero exit nobody asked for:
// crash-looping, or stopped by a restart policy that gave up) is a failure. Machines stopped by
// anyone else (Fly Proxy's auto-stop, an operator) and fewer started machines than
// min_machines_running are warnings with the command that fixes them, never failures: Fly never
// adds machines on a deploy of an app that has some, and a rolling deploy leaves stopped
// machines stopped. Then, for the public apps, a GET of the health URL answers 2xx; the internal
// API is private, so it is probed through the gateway where the settings say so. Retried until
// HEALTH_TIMEOUT seconds.

/** Something that does not fail a deploy, and the command that fixes it. */
export interface Warning {
  text: string
  fix: string
}

/** What flyd saw when a machine's process last exited on its own (fly-go MachineExitEvent). */
export interface Crash {
  id: string
  exitCode: number
  /** restart_count: how many times the restart policy had restarted it by then. */
  restarts: number
  /** flyd restarts it again (crash-looping); false: the policy gave up, or there is none. */
  restarting: boolean
  oom: boolean
}

export interface Fleet {
  /** `2 machines: 1 started, 1 auto-stopped` */
  summary: string
  /** The app's image, defined only when every machine runs the same one. */
  image?: string
  /** Image → number of machines running it. */
  images: Map<string, number>
  problems: string[]
  warnings: Warning[]
  /** The output of each failing check, for the evidence. */
  failing: string[]
  crashes: Crash[]
  /** Started machines, and those with every check passing (what a health wait reports). */
  started: number
  passing: number
}

export interface AppHealth {
  app: string
  key: AppKey
  healthy: boolean
  fleet: Fleet
  http: string
  /** The probe's status and the start of its body, when it failed. */
  evidence: string[]
  seconds: number
}

const isStandby = (m: FlyMachine) => Boolean(m.config?.standbys?.length)
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/**
 * The machine's crash since its last launch or update, if its newest exit is one: a non-zero exit
 * (or an OOM kill) it did not ask for. The exit code as MachineRequest.GetExitCode reads it (the
 * monitor's event first). Events are newest first (fly-go machine_types.go).
 */
export function lastCrash(m: FlyMachine): Crash | undefined {
  for (const event of m.events ?? []) {
    if (event.type === 'launch' || event.type === 'update') return undefined
    if (event.type !== 'exit') continue
    const exit = event.request?.exit_event ?? {}
    const code = event.request?.MonitorEvent?.exit_event?.exit_code ?? exit.exit_code ?? 0
    if (exit.requested_stop || (code === 0 && !exit.oom_killed)) return undefined
    return { id: m.id, exitCode: code, restarts: event.request?.restart_count ?? 0, restarting: Boolean(exit.restarting), oom: Boolean(exit.oom_killed) }
  }
  return undefined
}

function crashText(c: Crash): string {
  const how = c.oom ? 'was killed for lack of memory' : `exited with code ${c.exitCode}`
  const restarts = `restarted ${plural(c.restarts, 'time')}`
  return c.restarting ? `keeps crashing: it ${how}, ${restarts} so far` : `crashed and is left stopped: it ${how}; ${c.restarts ? `${restarts}, then its restart policy gave up` : 'its restart policy did not restart it'}`
}

/** The services Fly Proxy reads for this machine: its own config, else the fly.toml's. */
function machineAutostop(m: FlyMachine, config: FlyToml): { allowed: boolean; minRunning: number } {
  const services = m.config?.services
  if (!services?.length) return autostop(config)
  const stopping = services.filter((s) => s.autostop === true || s.autostop === 'suspend')
  return { allowed: stopping.length > 0, minRunning: Math.max(0, ...stopping.map((s) => Number(s.min_machines_running ?? 0))) }
}

/** The fleet rule over `flyctl status --json`; `expected`: the image every machine must run. */
export function judgeFleet(status: FlyStatus, config: FlyToml, expected?: string): Fleet {
  const app = status.Name
  const machines = status.Machines ?? []
  const problems: string[] = []
  const warnings: Warning[] = []
  const failing: string[] = []
  const crashes: Crash[] = []
  const images = new Map<string, number>()
  const count = { started: 0, passing: 0, autoStopped: 0, stopped: 0, crashed: 0, standby: 0 }
  for (const m of machines) {
    const image = m.config?.image ?? '(no image)'
    images.set(image, (images.get(image) ?? 0) + 1)
    const crash = lastCrash(m)
    if (crash) crashes.push(crash)
    if (m.state === 'started') {
      count.started++
      const checks = m.checks ?? []
      const bad = checks.filter((c) => c.status !== 'passing')
      if (crash?.restarting) problems.push(`machine ${m.id} ${crashText(crash)}`)
      else if (crash) warnings.push({ text: `machine ${m.id} restarted after it exited with code ${crash.exitCode}`, fix: `flyctl logs --app ${app} --no-tail` })
      if (!bad.length && !crash?.restarting) count.passing++
      if (bad.length) {
        if (!crash?.restarting) problems.push(`machine ${m.id}: ${bad.map((c) => `${c.name} ${c.status}`).join(', ')}`)
        failing.push(...bad.map((c) => `${m.id} ${c.name}: ${(c.output ?? '').trim().split('\n')[0].slice(0, 160)}`))
      } else if (!checks.length && hasChecks(m)) problems.push(`machine ${m.id}: no check results yet`)
    } else if (isStandby(m)) {
      count.standby++
    } else if (crash || m.state === 'failed') {
      count.crashed++
      problems.push(`machine ${m.id} ${crash ? crashText(crash) : 'is failed'}`)
    } else if (['stopped', 'suspended', 'created'].includes(m.state)) {
      // A stopped machine's checks may be stale (fly-platform.md §2.2): they are not read.
      if (machineAutostop(m, config).allowed) count.autoStopped++
      else {
        count.stopped++
        warnings.push({ text: `machine ${m.id} is ${m.state}, and auto-stop is off, so Fly Proxy did not stop it and will not start it`, fix: `flyctl machine start ${m.id} --app ${app}` })
      }
    } else problems.push(`machine ${m.id} is ${m.state}`)
  }
  if (!machines.length) problems.push('no machines')
  warnings.push(...minRunningWarnings(app, machines, config))
  if (images.size > 1) problems.push(`machines run different images: ${[...images].map(([ref, n]) => `${n} on ${shortRef(ref, status.Name)}`).join(', ')}`)
  if (expected && [...images.keys()].some((ref) => ref !== expected)) {
    const off = machines.filter((m) => m.config?.image !== expected).length
    if (images.size === 1) problems.push(`${off} machine${off === 1 ? '' : 's'} run${off === 1 ? 's' : ''} ${shortRef([...images.keys()][0], status.Name)}, not ${shortRef(expected, status.Name)}`)
  }
  const parts = [
    `${count.started} started`,
    ...(count.autoStopped ? [`${count.autoStopped} auto-stopped`] : []),
    ...(count.stopped ? [`${count.stopped} stopped`] : []),
    ...(count.crashed ? [`${count.crashed} crashed`] : []),
    ...(count.standby ? [`${count.standby} standby`] : []),
  ]
  return {
    summary: `${plural(machines.length, 'machine')}: ${parts.join(', ')}`,
    image: images.size === 1 ? [...images.keys()][0] : undefined,
    images,
    problems,
    warnings,
    failing,
    crashes,
    started: count.started,
    passing: count.passing,
  }
}

/**
 * min_machines_running as Fly Proxy keeps it (fly-platform.md §1.3): per process group, in the
 * primary region only, and only where the group's services auto-stop. Fewer started machines is a
 * warning: the ones that exist can be started; the count can only grow by `flyctl scale count`.
 */
function minRunningWarnings(app: string, machines: FlyMachine[], config: FlyToml): Warning[] {
  const warnings: Warning[] = []
  const groups = new Map<string, FlyMachine[]>()
  for (const m of machines.filter((x) => !isStandby(x))) {
    const group = m.config?.metadata?.fly_process_group ?? 'app'
    groups.set(group, [...(groups.get(group) ?? []), m])
  }
  for (const [group, members] of groups) {
    const rules = members.map((m) => machineAutostop(m, config)).filter((r) => r.allowed)
    if (!rules.length) continue
    const min = Math.max(...rules.map((r) => r.minRunning))
    const region = config.primary_region ?? members[0].config?.env?.PRIMARY_REGION
    const inRegion = members.filter((m) => !region || m.region === region)
    const started = inRegion.filter((m) => m.state === 'started')
    if (started.length >= min) continue
    const where = `${group === 'app' ? '' : ` of group ${group}`}${region ? ` in ${region}` : ''}`
    const scale = `flyctl scale count ${min}${group === 'app' ? '' : ` --process-group ${group}`}${region && inRegion.length < members.length ? ` --region ${region}` : ''} --app ${app}`
    const stopped = inRegion.filter((m) => m.state !== 'started' && !lastCrash(m))
    if (inRegion.length < min) warnings.push({ text: `${plural(inRegion.length, 'machine')}${where}, fewer than min_machines_running = ${min}, and a deploy never adds machines`, fix: scale })
    else if (stopped.length) warnings.push({ text: `${started.length} of ${plural(inRegion.length, 'machine')}${where} started, fewer than min_machines_running = ${min}`, fix: `flyctl machine start ${stopped.slice(0, min - started.length).map((m) => m.id).join(' ')} --app ${app}` })
  }
  return warnings
}

function hasChecks(m: FlyMachine): boolean {
  return (m.config?.services ?? []).some((s) => ((s as { checks?: unknown[] }).checks ?? []).length > 0) || Object.keys((m.config as { checks?: object } | undefined)?.checks ?? {}).length > 0
}

export function healthUrl(template: string, status: Pick<FlyStatus, 'Hostname'>, app: string, path: string): string {
  return template.replaceAll('{hostname}', status.Hostname).replaceAll('{app}', app).replaceAll('{path}', path)
}

/** The image every machine runs, or undefined when they disagree (a half-done rolling deploy). */
export function runningImage(status: FlyStatus): string | undefined {
  const images = new Set((status.Machines ?? []).map((m) => m.config?.image))
  return images.size === 1 ? [...images][0] : undefined
}

async function probe(url: string): Promise<{ ok: boolean; text: string; body: string }> {
  const started = performance.now()
  try {
    const response = await sendRequest(url, { signal: AbortSignal.timeout(seconds('HEALTH_PROBE_TIMEOUT')), limit: 4096 })
    const body = response.body.slice(0, 300)
    const ms = Math.round(performance.now() - started)
    return { ok: response.status >= 200 && response.status < 300, text: `${response.status} in ${ms}ms`, body }
  } catch (error) {
    return { ok: false, text: `no answer (${(error as Error).message})`, body: '' }
  }
}

/** The app a private app is probed through, and its status, read at the same time as the app's. */
interface Gateway {
  via: NonNullable<AppSettings['probeVia']>
  status: Promise<FlyStatus>
}

/** Where an app's HTTP health is probed, if anywhere: its own public URL, or through another app
 * (the private internal API through the gateway, when the gateway itself runs healthy: a gateway
 * not deployed yet, or down, says nothing about the internal API). */
async function probeTarget(ctx: Context, key: AppKey, status: FlyStatus, gateway?: Gateway): Promise<{ url?: string; note?: string }> {
  const template = process.env.HEALTH_URL_TEMPLATE || 'https://{hostname}{path}'
  if (gateway) {
    const { via } = gateway
    const gatewayStatus = await gateway.status
    const fleet = judgeFleet(gatewayStatus, readFlyToml(flyConfigPath(ctx.env, via.app)))
    if (fleet.problems.length) return { note: `private; not probed through ${via.app} (${fleet.problems[0]})` }
    return { url: healthUrl(template, gatewayStatus, flyAppName(ctx.env, via.app), via.path) }
  }
  if (key === 'internal-api') return { note: 'private (Fly checks only)' }
  return { url: healthUrl(template, status, flyAppName(ctx.env, key), healthPath(readFlyToml(flyConfigPath(ctx.env, key)))) }
}

/** One look at one app: Fly's view, then the HTTP probe. */
export async function checkOnce(ctx: Context, key: AppKey, expected?: string): Promise<AppHealth> {
  const app = flyAppName(ctx.env, key)
  const started = performance.now()
  const via = loadSettings().apps[key].probeVia
  const gateway = via ? { via, status: ctx.fly().apps.status(flyAppName(ctx.env, via.app)) } : undefined
  gateway?.status.catch(() => undefined) // awaited only when the app's own fleet is fine
  const status = await ctx.fly().apps.status(app)
  const fleet = judgeFleet(status, readFlyToml(flyConfigPath(ctx.env, key)), expected)
  let http = 'not probed'
  const evidence: string[] = []
  let ok = fleet.problems.length === 0
  if (ok) {
    const { url, note } = await probeTarget(ctx, key, status, gateway)
    if (url) {
      const answer = await probe(url)
      http = `GET ${new URL(url).pathname.replace(new RegExp(`^/${flyAppName(ctx.env, via?.app ?? key)}(?=/)`), '')} ${answer.text}${via ? ` (through ${via.app})` : ''}`
      ok = answer.ok
      if (!answer.ok) evidence.push(`GET ${url}: ${answer.text}${answer.body ? `: ${answer.body.replace(/\s+/g, ' ')}` : ''}`)
    } else http = note ?? 'not probed'
  }
  return { app, key, healthy: ok, fleet, http, evidence, seconds: (performance.now() - started) / 1000 }
}

/** Polls until healthy or HEALTH_TIMEOUT; returns the last look either way. */
export async function waitHealthy(ctx: Context, key: AppKey, expected?: string, timeoutSeconds = knob('HEALTH_TIMEOUT')): Promise<AppHealth> {
  const deadline = performance.now() + timeoutSeconds * 1000
  const started = performance.now()
  const interval = seconds('HEALTH_INTERVAL')
  // No silent wait: after the first look that is not healthy, a line says what is awaited.
  let progress: ReturnType<typeof waiting> | undefined
  try {
    for (;;) {
      const health = await checkOnce(ctx, key, expected)
      const elapsed = (performance.now() - started) / 1000
      if (health.healthy || performance.now() + interval > deadline) return { ...health, seconds: elapsed }
      progress ??= waiting(ctx.log, `health ${health.app}`)
      const probe = /^GET \S+ (\d{3})/.exec(health.http)?.[1] ?? (health.http.startsWith('GET') ? 'no answer' : health.http)
      progress.update(`still waiting: ${health.fleet.passing} of ${health.fleet.started} machines passing, probe ${probe}`, `(${Math.round(elapsed)} s of ${timeoutSeconds} s)`)
      await new Promise((resolve) => setTimeout(resolve, interval))
    }
  } finally {
    progress?.close()
  }
}

/** One line for tables and errors (warnings without their command: warningLines() has them). */
export function describe(health: AppHealth): string {
  return [health.fleet.summary, ...health.fleet.problems, health.http, ...health.fleet.warnings.map((w) => `warning: ${w.text}`)].join('; ')
}

/** Each warning with the command that fixes it, for the log. */
export function warningLines(health: Pick<AppHealth, 'app' | 'fleet'>): string[] {
  return health.fleet.warnings.map((w) => `${health.app}: ${w.text}; fix: ${w.fix}`)
}

/** What to show when a health check failed: failing checks, the probe's answer, the app's last log lines. */
export async function evidence(ctx: Context, health: AppHealth): Promise<string[]> {
  const lines = [...health.fleet.problems.map((p) => `fleet: ${p}`), ...health.fleet.failing.map((f) => `check: ${f}`), ...health.evidence.map((e) => `probe: ${e}`)]
  try {
    const out = await ctx.fly().machines.logs(health.app, Math.min(seconds('LOGS_TIMEOUT'), 10_000))
    const all = plain(out.stdout).split('\n').filter((l) => l.trim())
    // A crashed machine's own lines say why it crashed: those first, when it logged any.
    const crashed = all.filter((l) => health.fleet.crashes.some((c) => l.includes(`[${c.id}]`)))
    const tail = (crashed.length ? crashed : all).slice(-knob('LOGS_LINES'))
    lines.push(...tail.map((l) => `log: ${l}`))
  } catch (error) {
    lines.push(`log: (no log lines: ${(error as Error).message.split('\n')[0]})`)
  }
  return lines
}

export class Unhealthy extends OperationError {}
