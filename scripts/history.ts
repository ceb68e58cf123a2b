// The environment's ledger: every operation, who ran it, from which commit, what changed.
// Entries made while the database was unreachable are written first (see lib/ledger.ts).
import { envFlag, main } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { connect } from './lib/database/db.js'
import { UserError } from './lib/core/errors.js'
import { flushSpool, readLedger } from './lib/safety/ledger.js'
import { formatDuration, formatWhen, shortRef, table } from './lib/core/log.js'

await main(
  { name: 'history', usage: 'history <staging|production> [--limit N] [--json] [--env-dir DIR]', environment: true, options: { limit: { type: 'string' }, json: { type: 'boolean' } } },
  async (ctx) => {
    const raw = (ctx.flags.limit as string | undefined) ?? '50'
    if (!/^\d+$/.test(raw) || Number(raw) <= 0 || Number(raw) > 10_000) throw new UserError(`--limit ${raw} is not a number of entries between 1 and 10000`)
    const db = await connect(ctx, await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
    await flushSpool(ctx, db).catch(() => undefined)
    const rows = await readLedger(db, ctx.env, Number(raw))
    if (ctx.flags.json || envFlag('JSON')) {
      ctx.log.result(JSON.stringify(rows, null, 2))
      return
    }
    if (!rows.length) {
      ctx.log.result(`${ctx.env}: the ledger is empty`)
      return
    }
    ctx.log.result(
      table(
        ['when', 'who', 'operation', 'app', 'images', 'result', 'took', 'detail'],
        rows.map((r) => [
          formatWhen(r.at),
          r.who.replace(/ \(GitHub Actions\)$/, ' (CI)'),
          r.operation,
          (r.app ?? '').replace(/^microbima-(staging|production)-/, ''),
          r.image_before || r.image_after ? `${shortRef(r.image_before ?? undefined, r.app ?? undefined)} → ${shortRef(r.image_after ?? undefined, r.app ?? undefined)}` : '',
          r.result,
          r.duration_ms === null ? '' : formatDuration(r.duration_ms),
          [r.migrations.join(', '), r.detail ?? '', r.git_commit ? `@${r.git_commit.slice(0, 8)}` : ''].filter(Boolean).join('; '),
        ]),
      ),
    )
  },
)
