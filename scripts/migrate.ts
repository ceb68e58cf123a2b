// Sections 5.1/5.2 step 5: apply pending migrations on Fly, as the strategy document does, but
// with `sh -c` (ssh console runs no shell), the real remote status, and a before/after report.
// Production first passes the migration gate, the lint and the confirmation, and takes a backup.
import { main } from './lib/cli.js'
import { OperationError } from './lib/errors.js'
import { backupBeforeMigration } from './lib/backup.js'
import { loadDatabaseTarget } from './lib/config.js'
import { record } from './lib/ledger.js'
import { withLock } from './lib/lock.js'
import { preflight } from './lib/preflight.js'
import { runRemoteMigrate, verifyMigrations } from './lib/remote-migrate.js'
import { flyAppName } from './lib/names.js'

await main(
  { name: 'migrate', usage: 'migrate <staging|production> [--dry-run] [--yes] [--verbose] [--env-dir DIR]', environment: true },
  async (ctx) => {
    const { db, pending } = await preflight(ctx, `migrate-${ctx.env}`)
    const app = flyAppName(ctx.env, 'internal-api')
    await withLock(ctx, db, 'migrate', async () => {
      const started = performance.now()
      if (ctx.env === 'production' && pending.length) {
        const where = await backupBeforeMigration(ctx, loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
        await record(ctx, db, { operation: 'backup', app, result: 'ok', detail: where })
      }
      try {
        const outcome = await runRemoteMigrate(ctx, db)
        const problems = verifyMigrations(ctx, outcome)
        const durationMs = performance.now() - started
        if (problems.length) {
          await record(ctx, db, { operation: 'migrate', app, migrations: outcome.applied, result: 'failed', durationMs, detail: problems.join('; ') })
          throw new OperationError(`migrations on ${ctx.env} are not all applied after prisma migrate deploy`, problems)
        }
        await record(ctx, db, { operation: 'migrate', app, migrations: outcome.applied, result: 'ok', durationMs })
        if (!ctx.dryRun) ctx.log.ok(outcome.applied.length ? `applied on ${ctx.env}: ${outcome.applied.join(', ')}` : `${ctx.env} was already up to date`)
      } catch (error) {
        if (!(error instanceof OperationError && /are not all applied/.test(error.message))) {
          await record(ctx, db, { operation: 'migrate', app, result: 'failed', durationMs: performance.now() - started, detail: (error as Error).message })
        }
        throw error
      }
    })
  },
)
