// Section 8.2 done right. `prisma migrate resolve --rolled-back` only marks a FAILED migration
// (P3012 otherwise) and runs no SQL. Here: run the migration's down.sql on the environment's
// database and do the bookkeeping Prisma needs, in ONE transaction, holding Prisma's own advisory
// lock (72707369) so no `prisma migrate deploy` elsewhere can interleave. `migrate deploy` applies
// every local migration that has no row with its name and rolled_back_at NULL, so setting
// rolled_back_at on the row (what `resolve --rolled-back` writes for a failed one) makes the next
// deploy apply it again and keeps the history. Only the newest applied migration, by name (the
// order Prisma applies them in), or a failed one can be undone: undoing an older one would strand
// the ones built on top of it. A down.sql that ends the transaction itself is refused.
import { existsSync, readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { main, type Context } from './lib/core/cli.js'
import { backupBeforeMigration } from './lib/database/backup.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { confirmProduction } from './lib/safety/confirm.js'
import { connect, type Database } from './lib/database/db.js'
import { OperationError, Refusal, UserError } from './lib/core/errors.js'
import { shellQuote } from './lib/core/exec.js'
import { flushSpool, record } from './lib/safety/ledger.js'
import { isEmptySql, transactionControl } from './lib/database/lint.js'
import { withLock } from './lib/safety/lock.js'
import { compareMigrations, listLocalMigrations, migrationsFolder, readMigrationRows } from './lib/database/migrations.js'
import { flyAppName, shortName } from './lib/core/names.js'
import { startOperation } from './lib/events/operation.js'

// SQLSTATEs of "the object is not there": a failed transactional migration left nothing to undo.
const NOTHING_TO_UNDO = /SQLSTATE (42P01|42704|42703|42883)\)/
const PRISMA_LOCK = 72707369

/** Prisma's advisory lock, waited for as Prisma does (10 s), so a running migrate is never crossed. */
async function withPrismaLock<T>(ctx: Context, db: Database, fn: () => Promise<T>): Promise<T> {
  if (ctx.dryRun) return fn()
  const deadline = Date.now() + 10_000
  while (!(await db.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [PRISMA_LOCK]))[0].locked) {
    if (Date.now() >= deadline) throw new Refusal(`a prisma migrate is running on ${ctx.env} (it holds Prisma's advisory lock ${PRISMA_LOCK}): wait until it ends, then look at make migrate-status`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  try {
    return await fn()
  } finally {
    await db.query('SELECT pg_advisory_unlock($1)', [PRISMA_LOCK]).catch(() => undefined)
  }
}

void main(
  { name: 'rollback-migration', usage: 'rollback-migration <staging|production> --name MIGRATION [--dry-run] [--yes] [--env-dir DIR]', environment: true, options: { name: { type: 'string' } } },
  async (ctx) => {
    // Undoing a migration changes the schema: a migrate operation (its hooks, migrate.* events).
    const op = startOperation(ctx, { kind: 'migrate', operation: 'rollback-migration' })
    const name = ctx.flags.name as string | undefined
    if (!name) throw new UserError('which migration? give NAME=<migration folder name> (see make migrate-status)')
    if (!/^[\w.-]+$/.test(name)) throw new UserError(`NAME="${name}" is not a migration folder name (one word, e.g. 20250201000000_add_premiums): see make migrate-status`)
    const local = listLocalMigrations()
    const migration = local.find((m) => m.name === name)
    if (!migration) throw new UserError(`no migration ${name} in ${migrationsFolder()}: use the full folder name (see make migrate-status)`)
    if (!existsSync(migration.downPath)) throw new UserError(`${migration.downPath} is missing or empty: write the SQL that undoes ${name} first`)
    // (listLocalMigrations refused a down.sql that is not a regular file: a pipe would block the read.)
    const down = readFileSync(migration.downPath, 'utf8')
    if (isEmptySql(down)) throw new UserError(`${migration.downPath} is missing or empty: write the SQL that undoes ${name} first`)
    const control = transactionControl(down)
    if (control) throw new UserError(`${migration.downPath} contains ${control}: it would end the transaction that keeps the undo and its bookkeeping together (a failure later would leave the migration recorded as applied); remove it`)
    const target = await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
    const db = await connect(ctx, target)
    await flushSpool(ctx, db).catch(() => undefined)
    const statuses = compareMigrations(local, await readMigrationRows(db))
    const status = statuses.find((s) => s.name === name)!
    // Prisma applies by name: the newest applied migration is the last by name, whatever the clocks said.
    const applied = statuses.filter((s) => s.state === 'applied' || s.state === 'checksum-mismatch').map((s) => s.name).sort((a, b) => a.localeCompare(b))
    if (status.state !== 'failed') {
      if (status.state !== 'applied' && status.state !== 'checksum-mismatch') throw new Refusal(`${name} is ${status.state} on ${ctx.env}: there is nothing to roll back`)
      const newest = applied.at(-1)!
      if (newest !== name) throw new Refusal(`only the newest applied migration can be rolled back on ${ctx.env}: that is ${newest}, not ${name} (roll back ${newest} first)`)
    }

    await confirmProduction(ctx, `rollback-migration-prod NAME=${name}`)
    await withLock(ctx, db, 'rollback-migration', () => op.run({ db, apps: ['internal-api'], migrations: [name] }, async () => {
      const started = performance.now()
      if (ctx.env === 'production') {
        await backupBeforeMigration(ctx, db, target)
      }
      try {
        await withPrismaLock(ctx, db, async () => {
          const bookkeeping = status.state === 'failed'
            ? 'UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL'
            : 'UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL'
          if (ctx.dryRun) {
            // psql runs every -f and -c in one transaction with --single-transaction, as the toolkit does.
            await ctx.exec.change(`psql "$DATABASE_URL" -v ON_ERROR_STOP=1 --single-transaction -f ${shellQuote(relative(process.cwd(), migration.downPath))} -c ${shellQuote(bookkeeping.replace('$1', `'${name}'`))}`, async () => undefined)
            return
          }
          // The undo and its bookkeeping commit together, or neither does.
          await db.transaction(async () => {
            try {
              await db.write(down, [], { file: migration.downPath })
            } catch (error) {
              if (!(status.state === 'failed' && error instanceof OperationError && NOTHING_TO_UNDO.test(error.message))) throw error
              ctx.log.warn(`down.sql found nothing to undo (${error.message.split(': ').pop()}): the failed migration left nothing behind`)
              await db.query('ROLLBACK')
              await db.query('BEGIN')
            }
            await db.write(bookkeeping, [name])
          })
        })
        await record(ctx, db, { operation: 'rollback-migration', app: flyAppName(ctx.env, 'internal-api'), migrations: [name], result: 'ok', durationMs: performance.now() - started, detail: `${status.state} migration undone with down.sql` })
        if (!ctx.dryRun) ctx.log.ok(`${name} rolled back on ${ctx.env}; the next deploy (or make migrate-${shortName(ctx.env)}) applies it again unless you remove it`)
      } catch (error) {
        await record(ctx, db, { operation: 'rollback-migration', migrations: [name], result: 'failed', durationMs: performance.now() - started, detail: (error as Error).message })
        throw error
      }
    }))
  },
)
