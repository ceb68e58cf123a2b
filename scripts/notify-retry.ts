// make notify-retry: sends again the notifications a receiver never got (kept in
// .deploy-state/pending-notifications.jsonl by the runs that sent them), to the receiver configured
// now (NOTIFY_URL, or notify.url of the settings), signed with the NOTIFY_SECRET of now. Each event
// keeps its body (its id and its `at`: a receiver can tell a late one); those that fail again wait
// for the next try. Exit 0 when every one was delivered (or none waited), 1 when some were not.
import { main } from './lib/core/cli.js'
import { OperationError, UserError } from './lib/core/errors.js'
import { table } from './lib/core/log.js'
import { BUDGET_MS, deliver, receiver, type NotificationEvent } from './lib/events/notify.js'
import { NOTIFICATION_SPOOL, spoolNotifications, takeNotificationSpool, type SpooledNotification } from './lib/safety/ledger.js'

void main({ name: 'notify-retry', usage: 'notify-retry [--dry-run] [--verbose]', environment: false }, async (ctx) => {
  const to = receiver()
  if (!to) throw new UserError('no receiver to send to: set NOTIFY_URL (or "notify.url" in infra/fly/settings.json)')
  const waiting = takeNotificationSpool()
  if (!waiting?.length) {
    ctx.log.ok(`no notification waits in ${NOTIFICATION_SPOOL}: nothing to send`)
    return
  }
  const rows: string[][] = []
  const kept: SpooledNotification[] = []
  try {
    for (const entry of waiting) {
      const event = entry.event as unknown as NotificationEvent
      const row = [String(event.at ?? ''), String(event.event ?? ''), String(event.environment ?? '')]
      if (ctx.dryRun) {
        kept.push(entry)
        rows.push([...row, 'would send', entry.why])
        continue
      }
      // One event at a time, each within the bound a run gives all of its own.
      const why = await deliver(to, event, Date.now() + BUDGET_MS, new AbortController().signal)
      if (why === undefined) rows.push([...row, 'delivered', ''])
      else {
        kept.push({ ...entry, why, to: to.shown, spooledAt: new Date().toISOString() })
        rows.push([...row, 'not delivered', why])
      }
    }
  } finally {
    // Whatever was not delivered (or not tried: a signal) waits for the next try.
    const tried = new Set([...rows.keys()])
    spoolNotifications([...kept, ...waiting.filter((_, i) => !tried.has(i))])
  }
  ctx.log.result(table(['at', 'event', 'environment', 'result', 'why'], rows))
  if (ctx.dryRun) return
  const failed = rows.filter((r) => r[3] !== 'delivered').length
  if (failed) throw new OperationError(`${failed} of ${rows.length} notification(s) not delivered to ${to.shown}: kept in ${NOTIFICATION_SPOOL} for the next make notify-retry`)
  ctx.log.ok(`${rows.length} notification(s) delivered to ${to.shown}`)
})
