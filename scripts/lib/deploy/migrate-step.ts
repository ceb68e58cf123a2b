import { OperationError } from '../core/errors.js'
import { flyAppName, shortName } from '../core/names.js'
import { compareMigrations, readMigrationRows } from '../database/migrations.js'
import { runRemoteMigrate, UnknownOutcome, verifyMigrations } from '../database/remote-migrate.js'
import { record } from '../safety/ledger.js'
import type { DeployRun } from './run.js'

// Step 5 of sections 5.1 and 5.2: run the database migration. The internal API's release command
// has already run `prisma migrate deploy` before its machines took the new image; the database
// says whether that applied everything. Only what is still pending runs over ssh (with `sh -c`:
// `flyctl ssh console -C` runs no shell).

export async function migrateAfterRollout(run: DeployRun, pending: string[]): Promise<void> {
  const { ctx, db, steps } = run
  ctx.checkpoint()
  const app = flyAppName(ctx.env, 'internal-api')
  // Every local migration is applied there already: an ssh session would change nothing.
  if (!pending.length) {
    ctx.log.info(`no pending migrations on ${ctx.env}: prisma migrate deploy not needed`)
    steps.note('migrate', 'skipped', 'no pending migrations')
    return
  }
  const started = performance.now()
  // When the release command applied everything, a second run over ssh would only find nothing to do.
  if (!ctx.dryRun) {
    const now = compareMigrations(run.local, await readMigrationRows(db))
    if (now.every((s) => s.state === 'applied' || s.state === 'unknown-on-remote') && pending.every((name) => now.some((s) => s.name === name && s.state === 'applied'))) {
      ctx.log.ok(`the release command applied ${pending.join(', ')} on ${ctx.env}: no ssh session needed`)
      await record(ctx, db, { operation: 'migrate', app, migrations: pending, result: 'ok', durationMs: performance.now() - started, detail: 'applied by the release command' })
      steps.note('migrations applied', 'ok', `${pending.join(', ')} (by the release command)`)
      return
    }
  }
  let outcome
  try {
    outcome = await steps.run('migrate', () => runRemoteMigrate(ctx, db), { write: true, detail: (o) => (ctx.dryRun ? 'would run prisma migrate deploy' : `${o.applied.length} applied`) })
  } catch (error) {
    await record(ctx, db, { operation: 'migrate', app, result: error instanceof UnknownOutcome ? 'unknown' : 'failed', durationMs: performance.now() - started, detail: (error as Error).message })
    throw error
  }
  const problems = verifyMigrations(ctx, outcome)
  const applied = outcome.after ? pending.filter((name) => outcome.after!.statuses.find((s) => s.name === name)?.state === 'applied') : []
  await record(ctx, db, { operation: 'migrate', app, migrations: applied, result: problems.length ? 'failed' : 'ok', durationMs: performance.now() - started, detail: problems.join('; ') || undefined })
  if (problems.length) {
    const last = steps.records.at(-1)
    if (last?.name === 'migrate') Object.assign(last, { result: 'failed', detail: `not all applied: ${problems.join('; ')}` })
    throw new OperationError(`migrations on ${ctx.env} are not all applied`, problems, `make migrate-status, then make migrate-${shortName(ctx.env)} once the cause is fixed`)
  }
  if (applied.length) steps.note('migrations applied', 'ok', applied.join(', '))
}
