// Section 8.1: roll an app back to an earlier release's image, with the release table shown and
// the chosen target marked. Production asks for confirmation. Every machine is checked to run the
// target afterwards, then health. A rollback never depends on the database: the lock and the
// ledger are used when it answers; when it does not, the rollback still runs, says it is not
// recorded yet, and the next run that reaches the database records it.
import chalk from 'chalk'
import { main, type Context } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { confirmProduction } from './lib/safety/confirm.js'
import { connect, type Database } from './lib/database/db.js'
import { OperationError, UserError } from './lib/core/errors.js'
import type { FlyRelease, FlyStatus } from './lib/fly/types.js'
import { runningImage, warningLines } from './lib/fleet/health.js'
import { flushSpool, imageMigrations, readLedger, record } from './lib/safety/ledger.js'
import { withLock } from './lib/safety/lock.js'
import { formatWhen, publishTable, shortRef, table } from './lib/core/log.js'
import { compareMigrations, listLocalMigrations, readMigrationRows } from './lib/database/migrations.js'
import { type AppKey, flyAppName, flyConfigPath, imageRefProblem, shortName } from './lib/core/names.js'
import { checkAppName } from './lib/fly/flytoml.js'
import { chooseRollbackTarget, imageCounts, imagesThatFailed, noTargetReason, rollBackFleet, type RollbackChoice } from './lib/fleet/rollback.js'
import { startOperation } from './lib/events/operation.js'

interface RollbackPlan {
  key: AppKey
  app: string
  status: FlyStatus
  current?: string
  target: FlyRelease
  result: string
  now: string
  detail: string
}

async function reachDatabase(ctx: Context): Promise<Database | undefined> {
  try {
    const db = await connect(ctx, await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
    await flushSpool(ctx, db).catch(() => undefined)
    return db
  } catch (error) {
    if (error instanceof UserError) throw error
    ctx.log.warn(`the ${ctx.env} database is unreachable (${(error as Error).message.split('\n')[0]}): rolling back without the deploy lock; the ledger entry is kept locally and recorded by the next run that reaches the database`)
    return undefined
  }
}

void main(
  {
    name: 'rollback',
    usage: 'rollback <staging|production> [--app KEY] [--image REF | --version N] [--dry-run] [--yes] [--verbose]',
    environment: true,
    options: { image: { type: 'string' }, version: { type: 'string' } },
  },
  async (ctx) => {
    const op = startOperation(ctx, { kind: 'rollback' })
    const choice: RollbackChoice = {}
    const problems: string[] = []
    if (ctx.flags.image !== undefined && ctx.flags.version !== undefined) problems.push('IMAGE= and VERSION= both choose the target: give only one')
    if (ctx.flags.version !== undefined) {
      if (!/^\d{1,9}$/.test(ctx.flags.version as string)) problems.push(`VERSION=${ctx.flags.version} is not a release number: use the number from flyctl releases (e.g. VERSION=41)`)
      choice.version = Number(ctx.flags.version)
    }
    if (ctx.flags.image !== undefined) {
      choice.image = ctx.flags.image as string
      const wrong = imageRefProblem(choice.image)
      if (wrong) problems.push(wrong)
    }
    if ((choice.image || choice.version !== undefined) && !ctx.oneApp) problems.push('IMAGE= and VERSION= belong to one app: name it with APP=')
    for (const key of ctx.apps) {
      try {
        checkAppName(flyConfigPath(ctx.env, key), flyAppName(ctx.env, key))
      } catch (error) {
        problems.push((error as Error).message)
      }
    }
    if (problems.length) throw new UserError(problems)

    // The ledger says which images failed health here (an automatic rollback's, a deploy found
    // unhealthy): a rollback never proposes one. The database is reached beside the reads of Fly;
    // without it, Fly's failed releases only. (A configuration error about it is said once the
    // targets are known, as before: a rollback with nothing to do never needed the database.)
    const reaching = reachDatabase(ctx).then((db) => ({ db, error: undefined }), (error: unknown) => ({ db: undefined, error }))
    const fly = ctx.fly()
    const looks = await Promise.all(ctx.apps.map(async (key) => ({ key, app: flyAppName(ctx.env, key), fleet: await Promise.all([fly.apps.releases(flyAppName(ctx.env, key)), fly.apps.status(flyAppName(ctx.env, key))]) })))
    const reached = await reaching
    const db = reached.db
    const ledger = db && !choice.image && choice.version === undefined ? await readLedger(db, ctx.env, 500).catch(() => []) : []
    const plans: RollbackPlan[] = []
    const skipped: { key: AppKey; now: string; reason: string }[] = []
    for (const { key, app, fleet } of looks) {
      const [releases, status] = fleet
      const current = runningImage(status)
      const failedHere = imagesThatFailed(app, releases, ledger)
      const target = chooseRollbackTarget(releases, current, choice, failedHere)
      ctx.log.result(chalk.bold(`${app} (${current ? `running ${shortRef(current, app)}` : `mixed: ${imageCounts(status)}`})`))
      ctx.log.result(
        table(
          ['', 'version', 'status', 'image', 'when', 'who'],
          releases.slice(0, 10).map((r) => [r === target ? chalk.green('→') : r.ImageRef === current ? '*' : failedHere.has(r.ImageRef) ? chalk.red('✗') : '', `v${r.Version}`, r.Status, shortRef(r.ImageRef, app), formatWhen(r.CreatedAt), r.User?.Name ?? r.User?.Email ?? '']),
        ),
      )
      if (!target) {
        // One app named: nothing to do is an error. All apps: the others still roll back.
        const reason = noTargetReason(releases, current, failedHere)
        if (ctx.oneApp) throw new OperationError(reason.startsWith('no ') ? `${app} has ${reason}: nothing to roll back to` : `${app} has no image to roll back to: ${reason}`)
        skipped.push({ key, now: imageCounts(status), reason })
        continue
      }
      plans.push({ key, app, status, current, target, result: ctx.dryRun ? 'dry run' : 'not rolled back', now: imageCounts(status), detail: '' })
    }
    if (skipped.length) ctx.log.warn(`not rolled back: ${skipped.map((s) => `${s.key}: ${s.reason}`).join('; ')}`)
    if (!plans.length) throw new OperationError(`no app of ${ctx.env} has an image to roll back to`, skipped.map((s) => `${s.key}: ${s.reason}`))

    // Rolling back to what every machine already runs changes nothing: said as such.
    const work = plans.filter((p) => {
      const already = (p.status.Machines ?? []).length > 0 && (p.status.Machines ?? []).every((m) => m.config?.image === p.target.ImageRef)
      if (already) Object.assign(p, { result: 'unchanged', detail: `already runs v${p.target.Version}: nothing to do` })
      return !already
    })
    if (!work.length) {
      publish(ctx, plans, skipped)
      ctx.log.ok('nothing to roll back: every machine already runs the target image')
      return
    }
    if (reached.error) throw reached.error
    if (db && !choice.image && choice.version === undefined) {
      // The rule picks the newest older release, so a rollback run twice may go forward again.
      for (const plan of work) {
        const last = ledger.find((row) => row.app === plan.app && (row.operation === 'rollback' || row.operation === 'deploy') && row.result !== 'failed')
        if (last?.operation === 'rollback' && last.image_before === plan.target.ImageRef) {
          ctx.log.warn(`${plan.app}: v${plan.target.Version} runs ${shortRef(plan.target.ImageRef, plan.app)}, the image the last rollback moved away from; choose an older one with VERSION= if that is not what you want`)
        }
      }
    }
    await confirmProduction(ctx, 'rollback-prod')
    const run = async () => {
      for (const plan of work) {
        ctx.checkpoint()
        const started = performance.now()
        try {
          const result = await rollBackFleet(ctx, plan.key, plan.target.ImageRef, plan.status)
          if (ctx.dryRun) continue
          plan.now = result.after
          plan.result = result.health.healthy ? 'rolled back, healthy' : 'rolled back, UNHEALTHY'
          plan.detail = `was ${result.before}${await stayedChanged(ctx, db, plan)}${result.health.fleet.warnings.map((w) => `; warning: ${w.text}`).join('')}`
          for (const line of warningLines(result.health)) ctx.log.warn(line)
          await record(ctx, db, { operation: 'rollback', app: plan.app, imageBefore: plan.current ?? imageCounts(plan.status), imageAfter: plan.target.ImageRef, result: result.health.healthy ? 'ok' : 'failed', durationMs: performance.now() - started, detail: `to v${plan.target.Version}${db ? '' : ' (recorded late: the database was unreachable)'}` })
          if (!result.health.healthy) throw new OperationError(`${plan.app} is unhealthy after the rollback to v${plan.target.Version}`, [...result.health.fleet.problems, result.health.http])
          ctx.log.ok(`${plan.app}: every machine runs v${plan.target.Version} (${shortRef(plan.target.ImageRef, plan.app)}) and is healthy`)
        } catch (error) {
          if (plan.result === 'not rolled back') plan.result = 'failed'
          plan.detail ||= (error as Error).message.split('\n')[0]
          // A rolling update that stopped half-way leaves some machines on each image: the summary
          // shows the fleet as it is now, not as it was before.
          const fleet = ctx.dryRun ? undefined : await ctx.fly().apps.status(plan.app).catch(() => undefined)
          if (fleet) plan.now = imageCounts(fleet)
          if (fleet && new Set((fleet.Machines ?? []).map((m) => m.config?.image)).size > 1) {
            ctx.log.warn(`${plan.app} is left with machines on different images (${plan.now}): run the rollback again (make rollback-${shortName(ctx.env)} APP=${plan.key} VERSION=${plan.target.Version}) or deploy a fixed image`)
          }
          if (!(error instanceof OperationError && /unhealthy after the rollback/.test(error.message))) {
            await record(ctx, db, { operation: 'rollback', app: plan.app, imageBefore: plan.current, imageAfter: plan.target.ImageRef, result: 'failed', durationMs: performance.now() - started, detail: (error as Error).message })
          }
          throw error
        }
      }
    }
    // The hooks see the apps rolled back and the images they go back to.
    const guarded = () => op.run({ db, apps: work.map((p) => p.key), images: Object.fromEntries(work.map((p) => [p.key, p.target.ImageRef])) }, run)
    try {
      if (db) await withLock(ctx, db, `rollback-${ctx.env}`, guarded)
      else await guarded()
    } finally {
      publish(ctx, plans, skipped)
    }
  },
)

/** What the rollback does not undo: migrations the rolled-back image applied stay applied. */
async function stayedChanged(ctx: Context, db: Database | undefined, plan: RollbackPlan): Promise<string> {
  if (plan.key !== 'internal-api' || !db) return ''
  const carried = await imageMigrations(db, plan.target.ImageRef).catch(() => undefined)
  if (!carried) return ''
  const applied = compareMigrations(listLocalMigrations(), await readMigrationRows(db)).filter((s) => s.state === 'applied' || s.state === 'unknown-on-remote').map((s) => s.name)
  const stayed = applied.filter((name) => !carried.some((m) => m.name === name))
  return stayed.length ? `; ${stayed.join(', ')} stayed applied (make rollback-migration-${shortName(ctx.env)} NAME=… undoes one)` : ''
}

function publish(ctx: Context, plans: RollbackPlan[], skipped: { key: AppKey; now: string; reason: string }[]): void {
  // The target's image is in the releases table above and, once rolled back, under machines now.
  // Apps by key (the title names the environment); result and images whole; a long detail (a
  // failed command) on its own lines under the row.
  publishTable(ctx.log, `rollback of ${ctx.env}`, ['app', 'result', 'target', 'machines now', 'detail'], [...plans.map((p) => [p.key, p.result, `v${p.target.Version}`, p.now, p.detail]), ...skipped.map((s) => [s.key, 'skipped', '-', s.now, s.reason])].sort((a, b) => ctx.apps.indexOf(a[0] as AppKey) - ctx.apps.indexOf(b[0] as AppKey)), [1, 2, 3], { spill: true })
}
