import type { Context } from './cli.js'
import type { FlyStatus } from './fly.js'
import { readFlyToml, healthPath } from './flytoml.js'
import { type AppKey, flyAppName, flyConfigPath } from './names.js'

// Section 7.1 made a real check: every machine started, every Fly check passing, and the app's
// health URL answering 2xx; retried at a short interval until HEALTH_TIMEOUT seconds.

export interface AppHealth {
  app: string
  healthy: boolean
  machines: string
  checks: string
  http: string
  image?: string
  seconds: number
}

export const healthTimeoutSeconds = () => Number(process.env.HEALTH_TIMEOUT ?? 60)
const intervalMs = () => Number(process.env.HEALTH_INTERVAL ?? 0.5) * 1000
const probeTimeoutMs = () => Number(process.env.HEALTH_PROBE_TIMEOUT ?? 5) * 1000

export function healthUrl(template: string, status: Pick<FlyStatus, 'Hostname'>, app: string, path: string): string {
  return template.replaceAll('{hostname}', status.Hostname).replaceAll('{app}', app).replaceAll('{path}', path)
}

/** The image every started machine runs (the first one's), as `flyctl status --json` reports it. */
export function runningImage(status: FlyStatus): string | undefined {
  return status.Machines?.find((machine) => machine.config?.image)?.config?.image
}

async function probe(url: string): Promise<{ ok: boolean; text: string }> {
  const started = performance.now()
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(probeTimeoutMs()), redirect: 'manual' })
    await response.arrayBuffer().catch(() => undefined)
    const ms = Math.round(performance.now() - started)
    return { ok: response.status >= 200 && response.status < 300, text: `${response.status} in ${ms}ms` }
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message
    return { ok: false, text: `no answer (${cause})` }
  }
}

/** One look at one app: Fly's view, then the HTTP probe. */
export async function checkOnce(ctx: Context, key: AppKey): Promise<AppHealth> {
  const app = flyAppName(ctx.env, key)
  const started = performance.now()
  const status = await ctx.fly().status(app)
  const machines = status.Machines ?? []
  const started_ = machines.filter((m) => m.state === 'started').length
  const checks = machines.flatMap((m) => m.checks ?? [])
  const passing = checks.filter((c) => c.status === 'passing').length
  const flyOk = machines.length > 0 && started_ === machines.length && passing === checks.length
  const template = process.env.HEALTH_URL_TEMPLATE || 'https://{hostname}{path}'
  const url = healthUrl(template, status, app, healthPath(readFlyToml(flyConfigPath(ctx.env, key))))
  const http = flyOk ? await probe(url) : { ok: false, text: 'not probed' }
  return {
    app,
    healthy: flyOk && http.ok,
    machines: machines.length ? `${started_}/${machines.length} started` : 'no machines',
    checks: checks.length ? `${passing}/${checks.length} passing` : 'no checks',
    http: `${url} ${http.text}`,
    image: runningImage(status),
    seconds: (performance.now() - started) / 1000,
  }
}

/** Polls until healthy or HEALTH_TIMEOUT; returns the last look either way. */
export async function waitHealthy(ctx: Context, key: AppKey, timeoutSeconds = healthTimeoutSeconds()): Promise<AppHealth> {
  const deadline = performance.now() + timeoutSeconds * 1000
  const started = performance.now()
  for (;;) {
    const health = await checkOnce(ctx, key)
    if (health.healthy || performance.now() + intervalMs() > deadline) {
      return { ...health, seconds: (performance.now() - started) / 1000 }
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs()))
  }
}
