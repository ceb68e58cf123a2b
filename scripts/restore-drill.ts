// `make restore-drill-<env>`: a backup counts once it has been restored and checked. The newest
// complete backup (BACKUP_ID= to choose) is restored into a NEW scratch cluster or database app,
// waited for (DRILL_TIMEOUT), checked against the live database (lib/drill/check.ts), and destroyed
// whatever the outcome (KEEP=1 keeps it). Nothing that existed is changed, so nothing is confirmed;
// the ledger records the drill and the restore_drill.* notification goes out. Exit 0: verified;
// 1: not; 2: bad input (no backup at all, an unknown BACKUP_ID), before anything is created.
import { main, envFlag, type RunEnd } from './lib/core/cli.js'
import { OperationError } from './lib/core/errors.js'
import { knob } from './lib/core/knobs.js'
import { loadSettings } from './lib/core/settings.js'
import { connect } from './lib/database/db.js'
import { listLocalMigrations } from './lib/database/migrations.js'
import { chooseBackup, describeBackup } from './lib/drill/backups.js'
import { check, readSide } from './lib/drill/check.js'
import { drillJson, printReport, problemsOf, verified, type DrillOutcome } from './lib/drill/report.js'
import { Scratch, scratchName } from './lib/drill/scratch.js'
import { reasonOf, startOperation } from './lib/events/operation.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { flushSpool, record } from './lib/safety/ledger.js'

void main(
  {
    name: 'restore-drill',
    usage: 'restore-drill <staging|production> [--backup-id ID] [--keep] [--json] [--dry-run] [--env-dir DIR]',
    environment: true,
    options: { 'backup-id': { type: 'string' }, keep: { type: 'boolean' }, json: { type: 'boolean' } },
  },
  async (ctx) => {
    const op = startOperation(ctx, { kind: 'restore_drill', operation: 'restore-drill' })
    const settings = loadSettings()
    const local = listLocalMigrations()
    const target = await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
    const kind = settings.database[ctx.env]
    const json = Boolean(ctx.flags.json) || envFlag('JSON')
    const keep = Boolean(ctx.flags.keep) || envFlag('KEEP')
    const timeoutS = knob('DRILL_TIMEOUT')

    ctx.log.step('the backup to restore')
    const backup = await chooseBackup(ctx, kind, target, (ctx.flags['backup-id'] as string | undefined) ?? process.env.BACKUP_ID)
    ctx.log.info(describeBackup(backup))
    const live = await connect(ctx, target)
    await flushSpool(ctx, live).catch(() => undefined)
    const scratch = new Scratch(ctx, settings, backup, scratchName(ctx), keep)
    const started = performance.now()

    // The end of the drill, once, whoever reaches it first: the body, or a signal's cleanup.
    let outcome: DrillOutcome | undefined
    let ended: Promise<void> | undefined
    const finish = (partial: Omit<DrillOutcome, 'scratch' | 'environment' | 'backup'>, end?: RunEnd) =>
      (ended ??= (async () => {
        const what = await scratch.dispose()
        if (ctx.dryRun) return
        // A signal stops the children first: the body may get here before the signal's cleanup does.
        const interrupted = end?.signal ? `interrupted by ${end.signal}` : ctx.aborted.reason?.startsWith('interrupted') ? ctx.aborted.reason : undefined
        outcome = { environment: ctx.env, backup, scratch: what, ...partial, ...(interrupted ? { failure: interrupted } : {}) }
        printReport(ctx, outcome)
        if (json) ctx.log.result(drillJson(outcome))
        const problems = problemsOf(outcome)
        await record(ctx, live, {
          operation: 'restore-drill',
          app: backup.source,
          result: interrupted ? 'interrupted' : verified(outcome) ? 'ok' : 'failed',
          durationMs: performance.now() - started,
          detail: `${describeBackup(backup, false)}; restored into ${scratch.name}${outcome.restoreS !== null ? ` and checked in ${outcome.restoreS} s` : ''}: ${verified(outcome) ? 'verified' : problems.join('; ')}; ${what}`,
        })
      })())
    let ageS: number | null = null
    let restoreS: number | null = null
    ctx.onCleanup((end) => finish({ ageS, restoreS, failure: end.signal ? `interrupted by ${end.signal}` : end.error ? reasonOf(end.error) : undefined }, end))

    await op.run({ db: live, apps: [] }, async () => {
      let partial: Omit<DrillOutcome, 'scratch' | 'environment' | 'backup'> = { ageS, restoreS }
      try {
        const requested = Date.now()
        ageS = backup.takenAt ? Math.max(0, Math.round((requested - backup.takenAt.getTime()) / 1000)) : null
        const deadline = requested + timeoutS * 1000
        ctx.log.step(`restore it into ${kind === 'mpg' ? 'a new cluster' : 'a new database app'}, ${scratch.name} (the live database is not touched)`)
        await scratch.create(deadline - Date.now())
        if (ctx.dryRun) {
          await finish({ ageS, restoreS })
          return
        }
        ctx.log.ok(`${kind === 'mpg' ? 'restore started' : 'restored'}: ${scratch.label}`)
        const credentials = await scratch.ready(deadline)
        ctx.log.step(`check the ${scratch.label} against the live ${ctx.env} database`)
        const copy = await scratch.connect(target, credentials, deadline)
        const [liveSide, restoredSide] = [await readSide(live), await readSide(copy)]
        await copy.close()
        const result = check(liveSide, restoredSide, local, backup.takenAt)
        restoreS = Math.round((Date.now() - requested) / 100) / 10
        partial = { ageS, restoreS, check: result }
      } catch (error) {
        await finish({ ageS, restoreS, failure: reasonOf(error) })
        throw error
      }
      await finish(partial)
      if (!verified(outcome!)) throw new OperationError(`the restore drill of ${ctx.env} did not verify ${backup.id}`, problemsOf(outcome!))
      ctx.log.ok(`${backup.id} restores: the copy has every table and migration of the live ${ctx.env} database (recovery point ${ageS ?? '?'} s, recovery time ${restoreS} s)`)
    })
  },
)
