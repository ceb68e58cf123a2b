// The environment's ledger: every operation, who ran it, from which commit, what changed.
import { main } from './lib/cli.js'
import { loadDatabaseTarget } from './lib/config.js'
import { connect } from './lib/db.js'
import { UserError } from './lib/errors.js'
import { readLedger } from './lib/ledger.js'
import { formatDuration, table } from './lib/log.js'

await main(
  { name: 'history', usage: 'history <staging|production> [--limit N] [--json] [--env-dir DIR]', environment: true, options: { limit: { type: 'string' }, json: { type: 'boolean' } } },
  async (ctx) => {
    const limit = Number(ctx.flags.limit ?? 50)
    if (!Number.isInteger(limit) || limit <= 0) throw new UserError(`--limit ${ctx.flags.limit} is not a positive number`)
    const db = await connect(ctx, loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
    const rows = await readLedger(db, ctx.env, limit)
    if (ctx.flags.json || process.env.JSON === '1') {
      ctx.log.result(JSON.stringify(rows, null, 2))
      return
    }
    if (!rows.length) {
      ctx.log.result(`${ctx.env}: the ledger is empty`)
      return
    }
    ctx.log.result(
      table(
        ['when', 'who', 'operation', 'app', 'image before → after', 'migrations', 'result', 'took', 'commit', 'detail'],
        rows.map((r) => [
          new Date(r.at).toISOString().replace('T', ' ').slice(0, 19),
          r.who,
          r.operation,
          r.app ?? '',
          r.image_before || r.image_after ? `${r.image_before ?? '-'} → ${r.image_after ?? '-'}` : '',
          r.migrations.join(', '),
          r.result,
          r.duration_ms === null ? '' : formatDuration(r.duration_ms),
          r.git_commit?.slice(0, 8) ?? '',
          r.detail ?? '',
        ]),
      ),
    )
  },
)
