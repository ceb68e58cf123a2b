// Sections 5.1 and 5.2 of the deployment strategy: deploy the environment's three apps in order
// (internal API, public API, web admin), apply migrations, check health, and say what happened.
// Production first passes the migration gate, the lint and the confirmation, takes a backup, and
// promotes the image that runs healthy on staging (build once) unless IMAGE= or BUILD=1.
// An app whose health check fails after its deploy is rolled back to the image it ran before.
import chalk from 'chalk'
import { envFlag, main, type Context } from './lib/cli.js'
import { backupBeforeMigration } from './lib/backup.js'
import { loadDatabaseTarget } from './lib/config.js'
import type { Database } from './lib/db.js'
import { CommandError, OperationError, Refusal, UserError } from './lib/errors.js'
import { checkOnce, runningImage, waitHealthy, type AppHealth } from './lib/health.js'
import { record } from './lib/ledger.js'
import { withLock } from './lib/lock.js'
import { formatDuration, publishTable, type Logger } from './lib/log.js'
import { pendingMigrations } from './lib/migrations.js'
import { type AppKey, flyAppName, flyConfigPath, shortName } from './lib/names.js'
import { readFlyToml } from './lib/flytoml.js'
import { preflight } from './lib/preflight.js'
import { runRemoteMigrate, snapshot, verifyMigrations } from './lib/remote-migrate.js'
import { deployImageBack } from './lib/rollback.js'
import { Steps } from './lib/steps.js'

interface AppOutcome {
  key: AppKey
  app: string
  before?: string
  /** The image every machine runs, all started, before the deploy (none when mixed). */
  settledOn?: string
  after?: string
  result: 'deployed' | 'failed' | 'rolled back' | 'not deployed' | 'dry run' | 'unchanged'
  detail: string
}

const CROSS_APP_IMAGE_HELP =
  'production pulls the staging image from registry.fly.io/<staging app>: both apps must be in the same Fly organization and the token must reach both (an org token, not a deploy token of one app); otherwise deploy with BUILD=1'

/** The exact image each staging app runs while healthy: what production receives (build once). */
async function stagingImages(ctx: Context, keys: AppKey[]): Promise<Map<AppKey, string>> {
  const staging = { ...ctx, env: 'staging' as const }
  const looks = await Promise.all(keys.map((key) => checkOnce(staging, key)))
  const problems = looks.filter((h) => !h.healthy || !h.image).map((h) => `${h.app}: ${h.image ? 'unhealthy' : 'no image running'} (${h.machines}, ${h.checks}, ${h.http})`)
  if (problems.length) throw new Refusal('staging must run healthy before its images are promoted to production', problems)
  return new Map(looks.map((h, i) => [keys[i], h.image!]))
}

await main(
  {
    name: 'deploy',
    usage: 'deploy <staging|production> [--app KEY] [--image REF] [--build] [--no-rollback] [--dry-run] [--yes] [--verbose] [--env-dir DIR]',
    environment: true,
    options: { image: { type: 'string' }, build: { type: 'boolean' }, 'no-rollback': { type: 'boolean' } },
  },
  async (ctx) => {
    const image = ctx.flags.image as string | undefined
    const build = Boolean(ctx.flags.build) || envFlag('BUILD')
    const autoRollback = !ctx.flags['no-rollback']
    const parallel = envFlag('PARALLEL')
    if (image !== undefined && ctx.apps.length !== 1) throw new UserError('IMAGE= is one app\'s image: name the app with APP=')
    if (image !== undefined && build) throw new UserError('IMAGE= and BUILD=1 contradict each other: choose one')
    if (image !== undefined && !/^[\w.\-/:@]+$/.test(image)) throw new UserError(`IMAGE=${image} is not an image reference (registry.fly.io/APP:TAG)`)
    for (const key of ctx.apps) readFlyToml(flyConfigPath(ctx.env, key))

    const steps = new Steps(ctx.log)
    const { db } = await steps.run('preflight', () => preflight(ctx, `deploy-${ctx.env}`), (p) => `${p.pending.length} pending migration(s)`)
    const promote = ctx.env === 'production' && !build && image === undefined
    const sources = promote ? await steps.run('staging images', () => stagingImages(ctx, ctx.apps)) : new Map<AppKey, string>()

    const outcomes: AppOutcome[] = ctx.apps.map((key) => ({ key, app: flyAppName(ctx.env, key), result: 'not deployed', detail: '' }))
    try {
      await withLock(ctx, db, `deploy-${ctx.env}`, () => pipeline(ctx, db, steps, outcomes, { image, sources, autoRollback, parallel }))
    } finally {
      steps.publishSummary(`deploy ${ctx.env}`)
      publishTable(ctx.log, `apps of ${ctx.env}`, ['app', 'result', 'image before', 'image after', 'detail'], outcomes.map((o) => [o.app, colourResult(o.result), o.before ?? '-', o.after ?? '-', o.detail]))
    }
  },
)

function colourResult(result: AppOutcome['result']): string {
  return result === 'deployed' ? chalk.green(result) : result === 'failed' ? chalk.red(result) : chalk.yellow(result)
}

interface PipelineOptions {
  image?: string
  sources: Map<AppKey, string>
  autoRollback: boolean
  parallel: boolean
}

async function pipeline(ctx: Context, db: Database, steps: Steps, outcomes: AppOutcome[], options: PipelineOptions): Promise<void> {
  const fly = ctx.fly()
  const initial = await snapshot(db)
  // Also the first flyctl call: a missing app or a missing login stops here, before any write.
  const before = await Promise.all(outcomes.map((outcome) => fly.status(outcome.app)))
  outcomes.forEach((outcome, i) => {
    outcome.before = runningImage(before[i])
    const machines = before[i].Machines ?? []
    if (machines.length && machines.every((m) => m.state === 'started' && m.config?.image === outcome.before)) outcome.settledOn = outcome.before
  })

  if (ctx.env === 'production' && pendingMigrations(initial.statuses).length) {
    const where = await steps.run('backup', () => backupBeforeMigration(ctx, loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)), (w) => w)
    await record(ctx, db, { operation: 'backup', result: 'ok', detail: where })
  }

  const deployOne = async (outcome: AppOutcome, log: Logger) => {
    const config = flyConfigPath(ctx.env, outcome.key)
    const source = options.image ?? options.sources.get(outcome.key)
    // Promoting an image the app already runs would only restart it: a second run changes nothing.
    if (source && outcome.settledOn === source) {
      Object.assign(outcome, { result: 'unchanged', after: source, detail: 'already runs this image' })
      steps.note(`deploy ${outcome.app}`, 'skipped', `already runs ${source}`)
      return
    }
    const started = performance.now()
    try {
      outcome.after = await steps.run(`deploy ${outcome.app}`, () =>
        source ? fly.deployImage(outcome.app, config, source) : fly.deployBuild(outcome.app, config),
        (ref) => ref ?? '',
      )
      if (ctx.dryRun) {
        outcome.result = 'dry run'
        return
      }
      const health = await steps.run(`health ${outcome.app}`, () => waitHealthy(ctx, outcome.key), (h) => describe(h))
      if (!health.healthy) throw new OperationError(`${outcome.app} is unhealthy after its deploy: ${describe(health)}`)
      outcome.result = 'deployed'
      outcome.detail = `healthy after ${formatDuration(health.seconds * 1000)}`
      await record(ctx, db, { operation: 'deploy', app: outcome.app, imageBefore: outcome.before, imageAfter: outcome.after, result: 'ok', durationMs: performance.now() - started })
    } catch (error) {
      outcome.result = 'failed'
      outcome.detail = explain(error, source)
      await record(ctx, db, { operation: 'deploy', app: outcome.app, imageBefore: outcome.before, imageAfter: outcome.after, result: 'failed', durationMs: performance.now() - started, detail: outcome.detail })
      await rollBackIfChanged(ctx, db, steps, outcome, options.autoRollback, log)
      throw error
    }
  }

  if (options.parallel) {
    ctx.log.info('PARALLEL=1: deploying the apps at once')
    const results = await Promise.allSettled(outcomes.map((o) => deployOne(o, ctx.log.child(o.key))))
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failure) throw failure.reason
  } else {
    for (const outcome of outcomes) {
      try {
        await deployOne(outcome, ctx.log)
      } catch (error) {
        if (envFlag('ROLLBACK_ALL')) {
          for (const earlier of outcomes.filter((o) => o.result === 'deployed')) {
            await rollBackIfChanged(ctx, db, steps, earlier, options.autoRollback, ctx.log)
          }
        }
        throw error
      }
    }
  }

  if (!ctx.apps.includes('internal-api')) return
  const outcome = await steps.run('migrate', () => runRemoteMigrate(ctx, db), (o) => (ctx.dryRun ? 'dry run' : `${o.after?.statuses.length ?? 0} migrations checked`))
  const problems = verifyMigrations(ctx, outcome)
  const applied = outcome.after
    ? pendingMigrations(initial.statuses).filter((name) => outcome.after!.statuses.find((s) => s.name === name)?.state === 'applied')
    : []
  await record(ctx, db, { operation: 'migrate', app: flyAppName(ctx.env, 'internal-api'), migrations: applied, result: problems.length ? 'failed' : 'ok', detail: problems.join('; ') || undefined })
  if (problems.length) throw new OperationError(`migrations on ${ctx.env} are not all applied`, problems)
  if (applied.length) steps.note('migrations applied', 'ok', applied.join(', '))
}

function describe(health: AppHealth): string {
  return `${health.machines}, ${health.checks}, ${health.http}`
}

function explain(error: unknown, source: string | undefined): string {
  if (error instanceof CommandError && source && /Could not find image|not authorized|unauthorized|denied/i.test(error.stderr)) {
    return `cannot deploy ${source}: ${CROSS_APP_IMAGE_HELP}`
  }
  if (error instanceof CommandError) return error.stderr.trim().split('\n').filter(Boolean).pop() ?? error.message
  return (error as Error).message.split('\n')[0]
}

/** Automatic rollback: if the app now runs another image than before, put the old one back and check it. */
async function rollBackIfChanged(ctx: Context, db: Database, steps: Steps, outcome: AppOutcome, enabled: boolean, log: Logger): Promise<void> {
  if (ctx.dryRun) return
  const now = runningImage(await ctx.fly().status(outcome.app).catch(() => ({ Machines: [] }) as never))
  if (!now || now === outcome.before) return
  if (!enabled) {
    log.warn(`${outcome.app} now runs ${now}; automatic rollback is off (--no-rollback): roll back with make rollback-${shortName(ctx.env)} APP=${outcome.key}`)
    return
  }
  if (!outcome.before) {
    log.warn(`${outcome.app} had no earlier image: nothing to roll back to`)
    return
  }
  const started = performance.now()
  try {
    await steps.run(`rollback ${outcome.app}`, () => deployImageBack(ctx, outcome.key, outcome.before!), () => outcome.before!)
    const health = await steps.run(`health ${outcome.app} after rollback`, () => waitHealthy(ctx, outcome.key), describe)
    outcome.result = 'rolled back'
    outcome.detail += `; rolled back to ${outcome.before} (${health.healthy ? 'healthy' : 'STILL UNHEALTHY'})`
    await record(ctx, db, { operation: 'rollback', app: outcome.app, imageBefore: now, imageAfter: outcome.before, result: health.healthy ? 'rolled back' : 'failed', durationMs: performance.now() - started, detail: 'automatic, after a failed health check' })
  } catch (error) {
    outcome.detail += `; automatic rollback FAILED: ${(error as Error).message.split('\n')[0]}`
    await record(ctx, db, { operation: 'rollback', app: outcome.app, imageBefore: now, imageAfter: outcome.before, result: 'failed', durationMs: performance.now() - started, detail: 'automatic rollback failed' })
  }
}
