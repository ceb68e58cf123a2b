// The environment's ledger: every operation, who ran it, from which commit, what changed.
// Entries made while the database was unreachable are written first (see lib/safety/ledger.ts).
// JSON=1 (or --json): one JSON object per line, oldest first, for jq and log shippers.
import { envFlag, main } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { connect } from './lib/database/db.js'
import { UserError } from './lib/core/errors.js'
import { flushSpool, readLedger, type LedgerRow } from './lib/safety/ledger.js'
import { formatDuration, formatWhen, imageLabel, table } from './lib/core/log.js'
import { APP_KEYS, flyAppName, type Environment } from './lib/core/names.js'

/** An app as the interface names it (its key), or the Fly name when it is none of the three. */
function appKey(env: Environment, app: string | null): string | undefined {
  if (!app) return undefined
  return APP_KEYS.find((key) => flyAppName(env, key) === app) ?? app
}

/** One ledger entry as a line of JSON (README, "History as data"). */
function historyRecord(env: Environment, row: LedgerRow) {
  const key = appKey(env, row.app)
  return {
    operation: row.operation,
    result: row.result,
    at: new Date(row.at).toISOString(),
    performer: row.who,
    apps: key ? [key] : [],
    images: { before: row.image_before, after: row.image_after },
    commit: row.git_commit,
    duration_s: row.duration_ms === null ? null : Math.round(row.duration_ms / 100) / 10,
    reason: row.detail,
    migrations: row.migrations,
    environment: row.environment,
    host: row.host,
    id: Number(row.id),
  }
}

void main(
  { name: 'history', usage: 'history <staging|production> [--limit N] [--json] [--env-dir DIR]', environment: true, options: { limit: { type: 'string' }, json: { type: 'boolean' } } },
  async (ctx) => {
    const raw = (ctx.flags.limit as string | undefined) ?? '50'
    if (!/^\d+$/.test(raw) || Number(raw) <= 0 || Number(raw) > 10_000) throw new UserError(`--limit ${raw} is not a number of entries between 1 and 10000`)
    const db = await connect(ctx, await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
    await flushSpool(ctx, db).catch(() => undefined)
    // The newest N entries: the table shows the newest first; JSON lines go oldest first, as a log
    // shipper reads a log.
    const rows = await readLedger(db, ctx.env, Number(raw))
    if (ctx.flags.json || envFlag('JSON')) {
      if (rows.length) ctx.log.result([...rows].reverse().map((row) => JSON.stringify(historyRecord(ctx.env, row))).join('\n'))
      return
    }
    if (!rows.length) {
      ctx.log.result(`${ctx.env}: the ledger is empty`)
      return
    }
    // Images by their labels (the tag, which names the build); the details of a row that do not
    // fit beside it on their own lines under it.
    const images = (r: LedgerRow) => {
      if (!r.image_before && !r.image_after) return ''
      const [before, after] = [imageLabel(r.image_before ?? undefined), imageLabel(r.image_after ?? undefined)]
      // Two builds of one dirty commit (git-0123456789ab-dirty…57825z): the second says only how it differs.
      const shared = /^(.+)…/.exec(before)?.[1]
      return `${before} → ${shared && after.startsWith(`${shared}…`) ? after.slice(shared.length) : after}`
    }
    ctx.log.result(
      table(
        ['when', 'who', 'operation', 'app', 'images', 'result', 'took', 'detail'],
        rows.map((r) => [
          formatWhen(r.at),
          r.who.replace(/ \(GitHub Actions\)$/, ' (CI)'),
          r.operation,
          appKey(ctx.env, r.app) ?? '',
          images(r),
          r.result,
          r.duration_ms === null ? '' : formatDuration(r.duration_ms),
          [r.migrations.join(', '), r.detail ?? '', r.git_commit ? `@${r.git_commit.slice(0, 8)}` : ''].filter(Boolean).join('; '),
        ]),
        [4],
        { spill: true },
      ),
    )
  },
)
