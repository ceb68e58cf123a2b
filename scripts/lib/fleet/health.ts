import type { Context } from '../core/cli.js'
import { OperationError } from '../core/errors.js'
import type { FlyMachine, FlyStatus } from '../fly/types.js'
import { autostop, healthPath, readFlyToml, type FlyToml } from '../fly/flytoml.js'
import { knob, seconds } from '../core/knobs.js'
import { plain, shortRef } from '../core/log.js'
import { type AppKey, flyAppName, flyConfigPath } from '../core/names.js'
import { loadSettings, type AppSettings } from '../core/settings.js'

// Section 7.1 made a real check, judging the fleet as Fly does (fly-platform.md §2.5): every
// started machine has every check passing; machines Fly Proxy stopped count as healthy where the
// app's fly.toml allows auto-stop, as long as min_machines_running of them run; all machines run
// one image (after a deploy: the image just deployed). Then, for the public apps, a GET of the
// health URL answers 2xx; the internal API is private, so it is probed through the gateway where
// the settings say so. Retried until HEALTH_TIMEOUT seconds.

export interface Fleet {
  /** `2 machines: 1 started, 1 auto-stopped` */
  summary: string
  /** The app's image, defined only when every machine runs the same one. */
  image?: string
  /** Image → number of machines running it. */
  images: Map<string, number>
  problems: string[]
  /** The output of each failing check, for the evidence. */
  failing: string[]
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

/** The fleet rule over `flyctl status --json`; `expected`: the image every machine must run. */
export function judgeFleet(status: FlyStatus, config: FlyToml, expected?: string): Fleet {
  const machines = status.Machines ?? []
  const { allowed, minRunning } = autostop(config)
  const problems: string[] = []
  const failing: string[] = []
  const images = new Map<string, number>()
  let started = 0
  let sleeping = 0
  let standby = 0
  for (const m of machines) {
    const image = m.config?.image ?? '(no image)'
    images.set(image, (images.get(image) ?? 0) + 1)
    if (m.state === 'started') {
      started++
      const checks = m.checks ?? []
      const declared = (m.config?.services ?? []).length > 0 || Object.keys((m.config as { checks?: object } | undefined)?.checks ?? {}).length > 0
      const bad = checks.filter((c) => c.status !== 'passing')
      if (bad.length) {
        problems.push(`machine ${m.id}: ${bad.map((c) => `${c.name} ${c.status}`).join(', ')}`)
        failing.push(...bad.map((c) => `${m.id} ${c.name}: ${(c.output ?? '').trim().split('\n')[0].slice(0, 160)}`))
      } else if (declared && !checks.length && hasChecks(m)) problems.push(`machine ${m.id}: no check results yet`)
    } else if (isStandby(m)) {
      standby++
    } else if (['stopped', 'suspended', 'created'].includes(m.state)) {
      sleeping++
      // A stopped machine's checks may be stale (fly-platform.md §2.2): they are not read.
      if (!allowed) problems.push(`machine ${m.id} is ${m.state}, and the app's fly.toml does not let Fly Proxy stop machines`)
    } else problems.push(`machine ${m.id} is ${m.state}`)
  }
  if (!machines.length) problems.push('no machines')
  else if (started < minRunning) problems.push(`${started} started, fewer than min_machines_running = ${minRunning}`)
  if (images.size > 1) problems.push(`machines run different images: ${[...images].map(([ref, n]) => `${n} on ${shortRef(ref, status.Name)}`).join(', ')}`)
  if (expected && [...images.keys()].some((ref) => ref !== expected)) {
    const off = machines.filter((m) => m.config?.image !== expected).length
    if (images.size === 1) problems.push(`${off} machine${off === 1 ? '' : 's'} run${off === 1 ? 's' : ''} ${shortRef([...images.keys()][0], status.Name)}, not ${shortRef(expected, status.Name)}`)
  }
  const parts = [`${started} started`, ...(sleeping ? [`${sleeping} auto-stopped`] : []), ...(standby ? [`${standby} standby`] : [])]
  return {
    summary: `${machines.length} machine${machines.length === 1 ? '' : 's'}: ${parts.join(', ')}`,
    image: images.size === 1 ? [...images.keys()][0] : undefined,
    images,
    problems,
    failing,
  }
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
    const response = await fetch(url, { signal: AbortSignal.timeout(seconds('HEALTH_PROBE_TIMEOUT')), redirect: 'manual' })
    const body = (await response.text().catch(() => '')).slice(0, 300)
    const ms = Math.round(performance.now() - started)
    return { ok: response.status >= 200 && response.status < 300, text: `${response.status} in ${ms}ms`, body }
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message
    return { ok: false, text: `no answer (${cause})`, body: '' }
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
      http = `GET ${new URL(url).pathname.replace(/^\/microbima-[a-z-]+(?=\/)/, '')} ${answer.text}${via ? ` (through ${via.app})` : ''}`
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
  for (;;) {
    const health = await checkOnce(ctx, key, expected)
    if (health.healthy || performance.now() + interval > deadline) return { ...health, seconds: (performance.now() - started) / 1000 }
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/** One line for tables and errors. */
export function describe(health: AppHealth): string {
  return [health.fleet.summary, ...health.fleet.problems, health.http].join('; ')
}

/** What to show when a health check failed: failing checks, the probe's answer, the app's last log lines. */
export async function evidence(ctx: Context, health: AppHealth): Promise<string[]> {
  const lines = [...health.fleet.problems.map((p) => `fleet: ${p}`), ...health.fleet.failing.map((f) => `check: ${f}`), ...health.evidence.map((e) => `probe: ${e}`)]
  try {
    const out = await ctx.fly().machines.logs(health.app, Math.min(seconds('LOGS_TIMEOUT'), 10_000))
    const tail = plain(out.stdout).split('\n').filter((l) => l.trim()).slice(-knob('LOGS_LINES'))
    lines.push(...tail.map((l) => `log: ${l}`))
  } catch (error) {
    lines.push(`log: (no log lines: ${(error as Error).message.split('\n')[0]})`)
  }
  return lines
}

export class Unhealthy extends OperationError {}
