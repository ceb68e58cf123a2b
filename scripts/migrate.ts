// Sections 5.1/5.2 step 5: apply pending migrations on Fly, as the strategy document does, but
// with `sh -c` (ssh console runs no shell), the real remote status, and a before/after report.
// Production first passes the migration gate, the lint and the confirmation, and takes a backup.
// A session that ends without an exit status is reported as unknown, never as failed or done.
import { main } from './lib/core/cli.js'
import { OperationError, Problems } from './lib/core/errors.js'
import { backupBeforeMigration } from './lib/database/backup.js'
import { loadPipelineTargets } from './lib/secrets/env-files.js'
import { checkTree } from './lib/safety/git.js'
import { record } from './lib/safety/ledger.js'
import { withLock } from './lib/safety/lock.js'
import { listLocalMigrations } from './lib/database/migrations.js'
import { preflight } from './lib/safety/preflight.js'
import { UnknownOutcome, runRemoteMigrate, verifyMigrations } from './lib/database/remote-migrate.js'
import { flyAppName, shortName } from './lib/core/names.js'
import { loadSettings } from './lib/core/settings.js'
import { startOperation } from './lib/events/operation.js'

void main(
  { name: 'migrate', usage: 'migrate <staging|production> [--dry-run] [--yes] [--verbose] [--env-dir DIR]', environment: true },
  async (ctx) => {
    const op = startOperation(ctx, { kind: 'migrate' })
    const problems = new Problems()
    const settings = problems.check(() => loadSettings())
    const local = problems.check(() => listLocalMigrations())
    const { target, stagingTarget } = await loadPipelineTargets(ctx.envDir, ctx.env, ctx.log, problems)
    problems.throwIfAny()
    await checkTree(ctx, settings!.root)
    const { db, pending } = await preflight(ctx, { what: `migrate-${shortName(ctx.env)}`, target: target!, stagingTarget, local: local! })
    const app = flyAppName(ctx.env, 'internal-api')
    await withLock(ctx, db, 'migrate', () => op.run({ db, apps: ['internal-api'], migrations: pending.map((m) => m.name) }, async () => {
      const started = performance.now()
      if (ctx.env === 'production' && pending.length) {
        await backupBeforeMigration(ctx, db, target!, app)
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
        if (ctx.dryRun) ctx.log.info(`would apply on ${ctx.env}: ${pending.map((m) => m.name).join(', ') || 'nothing (up to date)'}`)
        else ctx.log.ok(outcome.applied.length ? `applied on ${ctx.env}: ${outcome.applied.join(', ')}` : `${ctx.env} was already up to date`)
      } catch (error) {
        if (!(error instanceof OperationError && /are not all applied/.test(error.message))) {
          await record(ctx, db, { operation: 'migrate', app, result: error instanceof UnknownOutcome ? 'unknown' : 'failed', durationMs: performance.now() - started, detail: (error as Error).message })
        }
        throw error
      }
    }))
  },
)
