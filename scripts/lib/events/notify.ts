import { createHmac, randomUUID } from 'node:crypto'
import { notifyUrlSetting } from '../core/settings.js'
import type { Logger } from '../core/log.js'
import { mask } from '../secrets/mask.js'
import { NOTIFICATION_SPOOL, spoolNotifications, type SpooledNotification } from '../safety/ledger.js'
import { displayUrl, registerNotifySecrets } from './url.js'
import { sendRequest } from '../core/http.js'

// Notifications: one HTTP POST per event to NOTIFY_URL (or notify.url of the settings), JSON or a
// Slack incoming-webhook message, signed as GitHub and Stripe sign theirs:
//   X-MicroBima-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with NOTIFY_SECRET>
// A notification is news, never part of the operation: it never changes an exit code, and a run
// waits for deliveries for at most 10 s in all, whatever the receiver does (a request may take
// 2.5 s; a 5xx or a network error is tried again after 0.5 s and 1 s, three attempts at most; a
// 4xx is the receiver's answer and is not repeated). An event not delivered is one warning line and
// waits in the notification spool for `make notify-retry`. Node's own fetch and crypto; no package.

export type OperationKind = 'deploy' | 'migrate' | 'rollback' | 'restore_drill'
export type Outcome = 'started' | 'succeeded' | 'failed' | 'rolled_back'

/** The body of a JSON notification. */
export interface NotificationEvent {
  /** Unique per event: a receiver that got a retry twice can tell. */
  id: string
  event: `${OperationKind}.${Outcome}`
  /** The target's operation (deploy, migrate, rollback, rollback-migration, restore-drill). */
  operation: string
  environment: string
  apps: string[]
  images: Record<string, string>
  migrations: string[]
  commit: string | null
  performer: string
  /** started | succeeded | failed | rolled-back */
  result: string
  duration_s: number | null
  /** Why it failed (null when it did not). */
  reason: string | null
  at: string
}

export interface Receiver {
  url: string
  secret?: string
  format: 'json' | 'slack'
  /** scheme://host/… : all that output shows of the URL. */
  shown: string
}

export const BUDGET_MS = 10_000
const ATTEMPT_MS = 2_500
const BACKOFF_MS = [500, 1_000]

/** Where notifications go, or undefined when nowhere. NOTIFY_URL wins over notify.url (both are
 * checked at start-up: knobs.ts and settings.ts). */
export function receiver(env: NodeJS.ProcessEnv = process.env): Receiver | undefined {
  const setting = env.NOTIFY_URL === undefined ? notifyUrlSetting() : undefined
  registerNotifySecrets(env, setting)
  const url = env.NOTIFY_URL ?? setting
  if (!url) return undefined
  return { url, secret: env.NOTIFY_SECRET || undefined, format: env.NOTIFY_FORMAT === 'slack' ? 'slack' : 'json', shown: displayUrl(url) }
}

/** Every string in a value, masked. */
function masked<T>(value: T): T {
  if (typeof value === 'string') return mask(value) as T
  if (Array.isArray(value)) return value.map(masked) as T
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, masked(v)])) as T
  return value
}

export function newEvent(fields: Omit<NotificationEvent, 'id' | 'at'> & { at?: string }): NotificationEvent {
  // No secret value is ever sent: every text passes the masker (a reason may quote flyctl's stderr).
  return masked({ id: randomUUID(), ...fields, at: fields.at ?? new Date().toISOString() })
}

/** The signature header's value for a body sent at unix time t. */
export function signature(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`
}

/** A Slack message: one line with the environment, apps, commit, result, duration and reason. */
export function slackText(event: NotificationEvent): string {
  const apps = event.apps.length ? event.apps.join(', ') : 'no app'
  const kind = event.event.split('.')[0]
  const operation = event.operation === kind ? '' : ` (${event.operation})`
  const parts = [`${event.event}${operation} on ${event.environment}: ${apps}`, `commit ${event.commit ? event.commit.slice(0, 12) : 'unknown'}`, `result ${event.result}`]
  if (event.duration_s !== null) parts.push(`${event.duration_s}s`)
  parts.push(`by ${event.performer}`)
  if (event.reason) parts.push(`reason: ${event.reason}`)
  return parts.join(' · ').replace(/\s*\n\s*/g, ' ')
}

export function requestBody(to: Receiver, event: NotificationEvent): string {
  return to.format === 'slack' ? JSON.stringify({ text: slackText(event) }) : JSON.stringify(event)
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true })
  })

/** Delivers one event: undefined once the receiver answered 2xx, else why not (one line, no URL). */
export async function deliver(to: Receiver, event: NotificationEvent, deadline: number, cutoff: AbortSignal): Promise<string | undefined> {
  const body = requestBody(to, event)
  let why = 'not sent'
  for (let attempt = 1; attempt <= BACKOFF_MS.length + 1; attempt++) {
    const left = deadline - Date.now()
    if (cutoff.aborted || left <= 0) return `${why}; stopped there: a run waits ${BUDGET_MS / 1000}s at most for its notifications`
    const t = Math.floor(Date.now() / 1000)
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'microbima-deploy', 'x-microbima-event': event.event, 'x-microbima-delivery': event.id }
    if (to.secret) headers['x-microbima-signature'] = signature(to.secret, t, body)
    try {
      // No redirect is followed: the body (and its signature) goes to the URL given, nowhere else.
      const answer = await sendRequest(to.url, { method: 'POST', body, headers, signal: AbortSignal.any([cutoff, AbortSignal.timeout(Math.min(ATTEMPT_MS, left))]), limit: 0 })
      if (answer.status >= 200 && answer.status < 300) return undefined
      why = `HTTP ${answer.status}${attempt > 1 ? ` after ${attempt} attempts` : ''}`
      if (answer.status < 500) return `${why} (not retried: the receiver refused it${answer.status >= 300 && answer.status < 400 ? '; redirects are not followed' : ''})`
    } catch (error) {
      const { code, message, name } = error as NodeJS.ErrnoException
      const timedOut = name === 'TimeoutError' || name === 'AbortError'
      why = `${timedOut ? `no answer within ${Math.round(Math.min(ATTEMPT_MS, left) / 100) / 10}s` : code ?? message}${attempt > 1 ? ` after ${attempt} attempts` : ''}`
    }
    if (attempt <= BACKOFF_MS.length) await pause(Math.min(BACKOFF_MS[attempt - 1], Math.max(0, deadline - Date.now())), cutoff)
  }
  return why
}

/** A run's notifications: sent in the background as they happen, waited for at the run's end (or a
 * stage's end) within what is left of the run's 10 s. */
export class Notifier {
  private pending: Array<{ event: NotificationEvent; done: Promise<string | undefined> }> = []
  private cutoff = new AbortController()
  /** How long this run has waited for deliveries so far. */
  private held = 0

  constructor(
    private readonly to: Receiver | undefined,
    private readonly log: Logger,
    private readonly dryRun: boolean,
  ) {}

  get receiver(): Receiver | undefined {
    return this.to
  }

  send(event: NotificationEvent): void {
    if (!this.to) return
    if (this.dryRun) {
      this.log.info(`would notify ${this.to.shown}: ${event.event}`)
      return
    }
    // Each delivery has its own bound too (three attempts), so one started early ends by itself.
    this.pending.push({ event, done: deliver(this.to, event, Date.now() + BUDGET_MS, this.cutoff.signal) })
  }

  /** Waits for what is being sent, at most what is left of the run's 10 s; then stops it, warns
   * once per event not delivered and keeps those for make notify-retry. */
  async flush(): Promise<void> {
    if (!this.pending.length || !this.to) return
    const batch = this.pending
    this.pending = []
    const started = performance.now()
    let timer: NodeJS.Timeout | undefined
    const all = Promise.all(batch.map((p) => p.done))
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, BUDGET_MS - this.held))))])
    clearTimeout(timer)
    this.cutoff.abort()
    this.cutoff = new AbortController()
    const results = await all
    this.held += performance.now() - started
    const lost: SpooledNotification[] = []
    results.forEach((why, i) => {
      if (why === undefined) return
      lost.push({ event: batch[i].event as unknown as Record<string, unknown>, why: mask(why), to: this.to!.shown, spooledAt: new Date().toISOString() })
      this.log.warn(`notification ${batch[i].event.event} not delivered to ${this.to!.shown} (${why}): kept in ${NOTIFICATION_SPOOL}; make notify-retry sends it`)
    })
    try {
      spoolNotifications(lost)
    } catch (error) {
      this.log.warn(`could not keep ${lost.length} notification(s) in ${NOTIFICATION_SPOOL} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): they are lost`)
    }
  }
}
