// Section 8.2 done right. `prisma migrate resolve --rolled-back` only marks a FAILED migration
// (P3012 otherwise) and runs no SQL. Here: run the migration's down.sql on the environment's
// database (one simple query: one implicit transaction), then do the bookkeeping Prisma needs.
// `migrate deploy` applies every local migration that has no row with its name and
// rolled_back_at NULL (prisma.md §2.1), so setting rolled_back_at on the row — exactly what
// `resolve --rolled-back` writes for a failed one — makes the next deploy apply it again, and
// keeps the history that deleting the row would lose. Only the newest applied migration (or a
// failed one) can be undone: undoing an older one would strand the ones built on top of it.
import { existsSync, readFileSync } from 'node:fs'
import { main } from './lib/cli.js'
import { backupBeforeMigration } from './lib/backup.js'
import { loadDatabaseTarget } from './lib/config.js'
import { confirmProduction } from './lib/confirm.js'
import { connect } from './lib/db.js'
import { OperationError, Refusal, UserError } from './lib/errors.js'
import { record } from './lib/ledger.js'
import { isEmptySql } from './lib/lint.js'
import { withLock } from './lib/lock.js'
import { compareMigrations, listLocalMigrations, readMigrationRows } from './lib/migrations.js'
import { flyAppName, shortName } from './lib/names.js'

// SQLSTATEs of "the object is not there": a failed transactional migration left nothing to undo.
const NOTHING_TO_UNDO = /SQLSTATE (42P01|42704|42703|42883)\)/

await main(
  { name: 'rollback-migration', usage: 'rollback-migration <staging|production> --name MIGRATION [--dry-run] [--yes] [--env-dir DIR]', environment: true, options: { name: { type: 'string' } } },
  async (ctx) => {
    const name = ctx.flags.name as string | undefined
    if (!name) throw new UserError('which migration? give NAME=<migration folder name> (see make migrate-status)')
    const migration = listLocalMigrations().find((m) => m.name === name)
    if (!migration) throw new UserError(`no migration ${name} in prisma/migrations: use the full folder name (see make migrate-status)`)
    if (!existsSync(migration.downPath) || isEmptySql(readFileSync(migration.downPath, 'utf8'))) {
      throw new UserError(`${migration.downPath} is missing or empty: write the SQL that undoes ${name} first`)
    }
    const down = readFileSync(migration.downPath, 'utf8')
    const target = loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
    const db = await connect(ctx, target)
    const statuses = compareMigrations(listLocalMigrations(), await readMigrationRows(db))
    const status = statuses.find((s) => s.name === name)!
    const applied = statuses.filter((s) => s.state === 'applied' || s.state === 'checksum-mismatch').sort((a, b) => +new Date(a.row!.finished_at!) - +new Date(b.row!.finished_at!))
    if (status.state !== 'failed') {
      if (status.state !== 'applied' && status.state !== 'checksum-mismatch') throw new Refusal(`${name} is ${status.state} on ${ctx.env}: there is nothing to roll back`)
      const newest = applied.at(-1)!.name
      if (newest !== name) throw new Refusal(`only the newest applied migration can be rolled back on ${ctx.env}: that is ${newest}, not ${name} (roll back ${newest} first)`)
    }

    await confirmProduction(ctx, `rollback-migration ${name}`)
    await withLock(ctx, db, 'rollback-migration', async () => {
      const started = performance.now()
      if (ctx.env === 'production') await record(ctx, db, { operation: 'backup', result: 'ok', detail: await backupBeforeMigration(ctx, target) })
      try {
        try {
          await db.write(down, [], migration.downPath)
        } catch (error) {
          if (!(status.state === 'failed' && error instanceof OperationError && NOTHING_TO_UNDO.test(error.message))) throw error
          ctx.log.warn(`down.sql found nothing to undo (${error.message.split(': ').pop()}): the failed migration left nothing behind`)
        }
        // The bookkeeping `prisma migrate resolve --rolled-back` does, applied to the row we undid.
        await db.write(
          status.state === 'failed'
            ? 'UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL'
            : 'UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL',
          [name],
        )
        await record(ctx, db, { operation: 'rollback-migration', app: flyAppName(ctx.env, 'internal-api'), migrations: [name], result: 'ok', durationMs: performance.now() - started, detail: `${status.state} migration undone with down.sql` })
        if (!ctx.dryRun) ctx.log.ok(`${name} rolled back on ${ctx.env}; the next deploy (or make migrate-${shortName(ctx.env)}) applies it again unless you remove it`)
      } catch (error) {
        await record(ctx, db, { operation: 'rollback-migration', migrations: [name], result: 'failed', durationMs: performance.now() - started, detail: (error as Error).message })
        throw error
      }
    })
  },
)
