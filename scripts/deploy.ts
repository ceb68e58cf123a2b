// Sections 5.1 and 5.2 of the deployment strategy: deploy the environment's three apps in order
// (internal API, public API, web admin), apply migrations, check health, and say what happened.
// Production first passes the migration gate (the local migrations and the ones the promoted image
// carries, against staging), the lint and the confirmation, takes a backup, and promotes the exact
// images staging runs healthy (build once) unless IMAGE= or BUILD=1.
// Every deploy is verified on every machine; an app that does not end healthy on its new image is
// put back, every machine of it, on the image it ran before, and the summary says what runs now.
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import chalk from 'chalk'
import { envFlag, main, type Context } from './lib/core/cli.js'
import { backupBeforeMigration } from './lib/database/backup.js'
import { buildContextProblems } from './lib/fly/build-context.js'
import { loadDatabaseTarget, loadPipelineTargets, readEnvFile, envFilePath } from './lib/secrets/env-files.js'
import type { Database } from './lib/database/db.js'
import { CommandError, OperationError, Problems, Refusal, UserError } from './lib/core/errors.js'
import type { FlyIp, FlyStatus } from './lib/fly/types.js'
import { readFlyToml } from './lib/fly/flytoml.js'
import { imageGateFindings } from './lib/database/gate.js'
import { checkTree } from './lib/safety/git.js'
import { checkOnce, describe, evidence, judgeFleet, runningImage, waitHealthy, warningLines, type AppHealth } from './lib/fleet/health.js'
import { describeCrash, smokeFailure } from './lib/fleet/crash.js'
import { driftCause, readDrift, type Drift } from './lib/fleet/drift.js'
import { imageMigrations, record, recordImageMigrations } from './lib/safety/ledger.js'
import { withLock } from './lib/safety/lock.js'
import { appendSummary, formatDuration, publishTable, shortRef, type Logger } from './lib/core/log.js'
import { compareMigrations, listLocalMigrations, pendingMigrations, readMigrationRows, type LocalMigration } from './lib/database/migrations.js'
import { APP_KEYS, type AppKey, buildConfigPath, imageRefProblem, isAppKey, flyAppName, flyConfigPath, shortName } from './lib/core/names.js'
import { isPrivate, makePrivate } from './lib/fly/network.js'
import { preflight } from './lib/safety/preflight.js'
import { UnknownOutcome, runRemoteMigrate, snapshot, verifyMigrations } from './lib/database/remote-migrate.js'
import { chooseRollbackTarget, compactCounts, imageCounts, rollBackFleet } from './lib/fleet/rollback.js'
import { loadSettings, sampleWarning, type Settings } from './lib/core/settings.js'
import { Steps, why } from './lib/core/steps.js'
import { isObject } from './lib/core/shape.js'
import { flyctlError, releaseCommandOutlived, releaseCommandTimedOut } from './lib/fly/errors.js'
import { automaticRollback, startOperation } from './lib/events/operation.js'
import { knob } from './lib/core/knobs.js'

interface AppOutcome {
  key: AppKey
  app: string
  /** The status read before the deploy. */
  status?: FlyStatus
  /** The image every machine ran before (undefined when the fleet was mixed or empty). */
  before?: string
  after?: string
  /** The fleet after a failed rollback, when its machines are not all on one image. */
  mixedNow?: FlyStatus
  result: 'deployed' | 'failed' | 'rolled back' | 'not deployed' | 'dry run' | 'unchanged' | 'unhealthy'
  detail: string
  /** What the deploy applies besides the image (read before any deploy of the run). */
  drift?: Promise<Drift | undefined>
}

interface Plan {
  environment: string
  images: Record<string, { running: string | null; deploy: string | null }>
  migrations: { name: string; checksum: string }[]
  /** Secrets staged on Fly that this deploy would apply (names only). */
  secrets: Record<string, string[]>
}

const CROSS_APP_IMAGE_HELP =
  'production pulls the staging image from registry.fly.io/<staging app>: both apps must be in the same Fly organization and the token must reach both (an org token, not a deploy token of one app); otherwise deploy with BUILD=1'

await main(
  {
    name: 'deploy',
    usage: 'deploy <staging|production> [--app KEY] [--image REF] [--build] [--no-rollback] [--plan FILE] [--plan-out FILE] [--dry-run] [--yes] [--verbose] [--env-dir DIR]',
    environment: true,
    options: { image: { type: 'string' }, build: { type: 'boolean' }, 'no-rollback': { type: 'boolean' }, plan: { type: 'string' }, 'plan-out': { type: 'string' } },
  },
  async (ctx) => {
    // Hooks and notifications (lib/events): checked now, run around the pipeline below.
    const op = startOperation(ctx, { kind: 'deploy' })
    const image = ctx.flags.image as string | undefined
    const build = Boolean(ctx.flags.build) || envFlag('BUILD')
    const planIn = ctx.flags.plan as string | undefined
    const planOut = ctx.flags['plan-out'] as string | undefined

    // Every configuration problem of the run, reported together, before anything else.
    const problems = new Problems()
    if (image !== undefined && !ctx.oneApp) problems.add("IMAGE= is one app's image: name the app with APP=")
    if (image !== undefined && build) problems.add('IMAGE= and BUILD=1 contradict each other: choose one')
    const wrongImage = image === undefined ? undefined : imageRefProblem(image)
    if (wrongImage) problems.add(wrongImage)
    if (planOut !== undefined && !ctx.dryRun) problems.add('PLAN_OUT= writes the plan of a dry run: add DRY_RUN=1')
    if (planIn !== undefined && ctx.dryRun) problems.add('PLAN= checks a real deploy against an approved plan: drop DRY_RUN=1')
    if ((planIn !== undefined || planOut !== undefined) && ctx.env !== 'production') problems.add('PLAN= and PLAN_OUT= are for production deploys')
    const settings = problems.check(() => loadSettings())
    for (const key of ctx.apps) problems.check(() => readFlyToml(flyConfigPath(ctx.env, key)))
    const local = problems.check(() => listLocalMigrations())
    const promote = ctx.env === 'production' && !build && image === undefined
    if (settings && (ctx.env === 'staging' || build)) for (const key of ctx.apps) problems.add(buildContextProblems(settings, key))
    for (const key of ctx.apps) if (key !== 'internal-api') problems.check(() => readEnvFile(envFilePath(ctx.envDir, ctx.env, key), ctx.env, ctx.log))
    const { target, stagingTarget } = await loadPipelineTargets(ctx.envDir, ctx.env, ctx.log, problems)
    let approved: Plan | undefined
    if (planIn !== undefined) problems.check(() => (approved = readPlan(planIn)))
    // Said first: settings still pointing at the sample app explain most of what follows.
    const warning = settings && sampleWarning(settings)
    if (warning) ctx.log.warn(warning)
    problems.throwIfAny()
    await checkTree(ctx, settings!.root)

    const steps = new Steps(ctx.log, ctx.dryRun)
    const fly = ctx.fly()
    const outcomes: AppOutcome[] = ctx.apps.map((key) => ({ key, app: flyAppName(ctx.env, key), result: ctx.dryRun ? 'dry run' : 'not deployed', detail: '' }))
    const sources = new Map<AppKey, string>()
    let apiIps: FlyIp[] | undefined
    let syncing: Syncs | undefined
    try {
      const pre = await steps.run(
        'preflight',
        () =>
          preflight(ctx, {
            what: `deploy-${shortName(ctx.env)}`,
            target: target!,
            stagingTarget,
            local: local!,
            // Read what runs now, at the same time: the first flyctl call also finds a missing app or login.
            // Staging also learns its secrets versions meanwhile (production does after its confirmation).
            alongside: () =>
              Promise.all([
                ...outcomes.map(async (o) => (o.status = await fly.apps.status(o.app))),
                ctx.apps.includes('internal-api') ? fly.network.ips(flyAppName(ctx.env, 'internal-api')).then((ips) => (apiIps = ips)) : undefined,
                ctx.env === 'staging' && !ctx.dryRun ? void (syncing = startSyncs(ctx, outcomes)) : undefined,
              ]),
            imageGate: promote ? (staging, rows) => promotionGate(ctx, staging, rows, sources, image) : undefined,
          }),
        (p) => `${p.pending.length} pending migration(s)`,
      )
      for (const o of outcomes) o.before = runningImage(o.status!)
      if (image !== undefined) await checkImageExists(ctx, image, outcomes[0])
      if (planOut !== undefined || approved) {
        const plan = await makePlan(ctx, pre.pending, outcomes, sources, image)
        if (planOut !== undefined) writePlan(ctx, planOut, plan)
        if (approved) comparePlans(approved, plan)
      }
      // Hooks and events: what each app runs (or will run), a rollback after a failure said as such.
      const events = {
        db: pre.db,
        apps: ctx.apps,
        migrations: pre.pending.map((m) => m.name),
        images: () => Object.fromEntries(outcomes.map((o) => [o.key, o.after ?? image ?? sources.get(o.key)]).filter(([, ref]) => ref)),
        failedAs: () => (outcomes.some((o) => o.result === 'rolled back') ? ('rolled-back' as const) : ('failed' as const)),
      }
      await withLock(ctx, pre.db, `deploy-${ctx.env}`, () => op.run(events, () => pipeline(ctx, settings!, pre.db, steps, outcomes, { image, sources, pending: pre.pending, local: local!, apiIps, syncing })))
    } finally {
      steps.publishSummary(`deploy ${ctx.env}`)
      publishTable(ctx.log, `apps of ${ctx.env}`, ['app', 'result', 'image before', 'image now', 'detail'], outcomes.map((o) => [o.app, colour(o.result), shortRef(o.before ?? (o.status ? imageCounts(o.status) : undefined), o.app), o.mixedNow ? compactCounts(o.mixedNow) : shortRef(o.after, o.app), o.detail]))
    }
  },
)

function colour(result: AppOutcome['result']): string {
  return result === 'deployed' || result === 'unchanged' ? chalk.green(result) : result === 'failed' || result === 'unhealthy' ? chalk.red(result) : chalk.yellow(result)
}

/** What production will receive: the image each staging app runs while healthy (build once),
 * read while holding staging's lock, so a staging deploy cannot be half-way through. Also the
 * gate that follows the images: the internal API image's migrations against staging's database. */
async function promotionGate(ctx: Context, staging: Database, rows: Awaited<ReturnType<typeof import('./lib/database/migrations.js').readMigrationRows>>, sources: Map<AppKey, string>, _image: string | undefined) {
  const stagingCtx = { ...ctx, env: 'staging' as const }
  const looks = await withLock(stagingCtx, staging, 'read for promotion to production', () => Promise.all(ctx.apps.map((key) => checkOnce(stagingCtx, key))), 'staging')
  const sick = looks.filter((h) => !h.healthy || !h.fleet.image)
  if (sick.length) throw new Refusal('staging must run healthy, every machine on one image, before its images are promoted to production', sick.map((h) => `${h.app}: ${describe(h)}`))
  looks.forEach((h) => sources.set(h.key, h.fleet.image!))
  const api = sources.get('internal-api')
  if (!api) return []
  const carried = await imageMigrations(staging, api)
  if (!carried) {
    ctx.log.warn(`the ledger does not say which migrations ${shortRef(api)} carries (built before this toolkit recorded it): the gate checks the local migrations only`)
    return []
  }
  return imageGateFindings(carried, rows, shortRef(api, flyAppName('staging', 'internal-api')))
}

/** IMAGE= must name an image some release used, before anything (a backup, a deploy) happens. */
async function checkImageExists(ctx: Context, image: string, outcome: AppOutcome): Promise<void> {
  const apps = [...new Set([outcome.app, flyAppName('staging', outcome.key), flyAppName('production', outcome.key)])]
  const releases = (await Promise.all(apps.map((app) => ctx.fly().apps.releases(app).catch(() => [])))).flat()
  if (!releases.some((r) => r.ImageRef === image)) {
    throw new UserError(`IMAGE=${image} is not the image of any release of ${apps.join(' or ')}: pick one from flyctl releases --app ${outcome.app} --json`)
  }
}

async function makePlan(ctx: Context, pending: LocalMigration[], outcomes: AppOutcome[], sources: Map<AppKey, string>, image: string | undefined): Promise<Plan> {
  const staged = await Promise.all(outcomes.map(async (o) => [o.key, (await ctx.fly().secrets.list(o.app)).filter((s) => s.status === 'Staged' || s.status === 'Partial').map((s) => s.name).sort()] as const))
  return {
    environment: ctx.env,
    images: Object.fromEntries(outcomes.map((o) => [o.key, { running: o.before ?? null, deploy: image ?? sources.get(o.key) ?? null }])),
    migrations: pending.map((m) => ({ name: m.name, checksum: m.checksum })),
    secrets: Object.fromEntries(staged),
  }
}

function readPlan(path: string): Plan {
  let plan: Plan
  try {
    // A regular file only: a FIFO or a device would block the run.
    if (!statSync(path).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' })
    plan = JSON.parse(readFileSync(path, 'utf8')) as Plan
  } catch (error) {
    throw new UserError(`PLAN=${path} cannot be read as a plan (${(error as NodeJS.ErrnoException).code ?? (error as Error).message.split('\n')[0]}): pass the plan.json that DRY_RUN=1 PLAN_OUT= wrote`)
  }
  const wrong = planShapeProblem(plan)
  if (wrong) throw new UserError(`PLAN=${path} is not a plan written by PLAN_OUT= (${wrong}): pass the plan.json that DRY_RUN=1 PLAN_OUT= wrote`)
  return plan
}

/** What makes a value not a Plan (the shape writePlan writes), or undefined. */
function planShapeProblem(plan: unknown): string | undefined {
  const isText = (v: unknown) => typeof v === 'string' && v !== ''
  if (!isObject(plan)) return 'it is not a JSON object'
  const known = ['environment', 'images', 'migrations', 'secrets']
  const extra = Object.keys(plan).find((k) => !known.includes(k))
  if (extra !== undefined) return `unknown key "${extra}"`
  if (!isText(plan.environment)) return '"environment" must be a string'
  if (!isObject(plan.images)) return '"images" must be an object of apps'
  for (const [key, image] of Object.entries(plan.images)) {
    if (!isAppKey(key)) return `"images" names "${key}", which is not an app (${APP_KEYS.join(', ')})`
    if (!isObject(image)) return `"images.${key}" must be {"running": …, "deploy": …}`
    const extraField = Object.keys(image).find((k) => k !== 'running' && k !== 'deploy')
    if (extraField !== undefined) return `"images.${key}" has unknown key "${extraField}"`
    for (const field of ['running', 'deploy']) if (image[field] !== null && !isText(image[field])) return `"images.${key}.${field}" must be an image reference or null`
  }
  if (!Array.isArray(plan.migrations)) return '"migrations" must be a list'
  for (const [i, migration] of plan.migrations.entries()) {
    if (!isObject(migration) || !isText(migration.name) || !isText(migration.checksum) || Object.keys(migration).length !== 2) return `"migrations[${i}]" must be {"name": …, "checksum": …}`
  }
  if (!isObject(plan.secrets)) return '"secrets" must be an object of apps'
  for (const [key, names] of Object.entries(plan.secrets)) {
    if (!isAppKey(key)) return `"secrets" names "${key}", which is not an app (${APP_KEYS.join(', ')})`
    if (!Array.isArray(names) || !names.every(isText)) return `"secrets.${key}" must be a list of secret names`
  }
  return undefined
}

function writePlan(ctx: Context, path: string, plan: Plan): void {
  try {
    writeFileSync(path, JSON.stringify(plan, null, 2) + '\n')
  } catch (error) {
    throw new UserError(`PLAN_OUT=${path} cannot be written (${(error as NodeJS.ErrnoException).code}): choose a writable path`)
  }
  const rows = Object.entries(plan.images).map(([key, i]) => `| ${key} | ${i.running ?? '-'} | ${i.deploy ?? 'build from source'} |`)
  appendSummary(ctx.log, ['### Plan: deploy production', '', '| app | runs now | would deploy |', '| --- | --- | --- |', ...rows, '', `Migrations to apply: ${plan.migrations.map((m) => m.name).join(', ') || 'none'}`, '', `Staged secrets this deploy applies: ${Object.entries(plan.secrets).filter(([, n]) => n.length).map(([k, n]) => `${k}: ${n.join(', ')}`).join('; ') || 'none'}`, ''].join('\n'))
  ctx.log.ok(`plan written to ${path}`)
}

/** The deploy refuses (exit 3) when what it would do is not what was approved. */
function comparePlans(approved: Plan, now: Plan): void {
  const differences: string[] = []
  if (approved.environment !== now.environment) differences.push(`environment: approved ${approved.environment}, now ${now.environment}`)
  for (const key of new Set([...Object.keys(approved.images), ...Object.keys(now.images)])) {
    const a = approved.images[key]?.deploy ?? null
    const b = now.images[key]?.deploy ?? null
    if (a !== b) differences.push(`${key}: approved ${a ?? 'none'}, would now deploy ${b ?? 'none'}`)
  }
  const names = (list: { name: string; checksum: string }[]) => list.map((m) => `${m.name}@${m.checksum.slice(0, 12)}`).join(', ')
  if (names(approved.migrations) !== names(now.migrations)) differences.push(`migrations: approved [${names(approved.migrations)}], would now apply [${names(now.migrations)}]`)
  for (const key of new Set([...Object.keys(approved.secrets ?? {}), ...Object.keys(now.secrets)])) {
    if ((approved.secrets?.[key] ?? []).join(',') !== (now.secrets[key] ?? []).join(',')) differences.push(`${key} staged secrets: approved [${(approved.secrets?.[key] ?? []).join(', ')}], now [${(now.secrets[key] ?? []).join(', ')}]`)
  }
  if (differences.length) throw new Refusal('what this deploy would do differs from the approved plan: nothing was changed', differences)
}

interface PipelineOptions {
  image?: string
  sources: Map<AppKey, string>
  pending: LocalMigration[]
  /** The local migrations. */
  local: LocalMigration[]
  /** The internal API's IPs, read in the preflight. */
  apiIps?: FlyIp[]
  /** The secrets syncs, when the preflight started them. */
  syncing?: Syncs
}

/** Per app: its `flyctl secrets sync`, settled with the version flyctl's config.yml then holds. */
type Syncs = Map<string, Promise<number | undefined>>

/** flyctl keeps the latest secrets version on the machine that set them: a deploy from another
 * machine (a fresh CI runner) must learn it, or its machines may start with older secrets. One at
 * a time: each flyctl writes back the whole minimum-version map it read at start, so concurrent
 * syncs on one machine would erase each other's entries (fly-platform.md §6). The chain runs
 * beside the reads and the first deploys; each app waits for its own sync only (ready()). */
function startSyncs(ctx: Context, outcomes: AppOutcome[]): Syncs {
  const fly = ctx.fly()
  const syncs: Syncs = new Map()
  let chain: Promise<unknown> = Promise.resolve()
  for (const o of outcomes) {
    const done = chain.then(async () => {
      await fly.secrets.sync(o.app)
      return fly.secrets.knownVersion(o.app)
    })
    done.catch(() => undefined) // awaited by ready(); a failure must not surface unhandled first
    syncs.set(o.app, done)
    chain = done
  }
  return syncs
}

/** The app's sync is done and still in flyctl's config.yml. Another flyctl that saved the file
 * meanwhile (a deploy recreating its builder, a proxy saving WireGuard state) writes back the map
 * it read at its start, which may undo the sync: then it runs again, now that nothing else runs. */
async function ready(ctx: Context, syncs: Syncs, app: string): Promise<void> {
  const synced = await syncs.get(app)
  const now = await ctx.fly().secrets.knownVersion(app)
  if (synced !== undefined && now !== undefined && now >= synced) return
  if (ctx.verbose) ctx.log.info(`${app}: flyctl's config.yml does not show the synced secrets version (${now ?? 'none'}, synced ${synced ?? 'unknown'}): syncing again`)
  await ctx.fly().secrets.sync(app)
}

async function pipeline(ctx: Context, settings: Settings, db: Database, steps: Steps, outcomes: AppOutcome[], options: PipelineOptions): Promise<void> {
  const fly = ctx.fly()
  // Read again now that the lock is held: another run may have migrated since the preflight.
  const pendingOnTarget = pendingMigrations(compareMigrations(options.local, await readMigrationRows(db)))
  const backup = ctx.env === 'production' && pendingOnTarget.length > 0 && ctx.apps.includes('internal-api')
  // Production's syncs start after its confirmation, beside the backup; a dry run prints them in order.
  const syncs = options.syncing ?? (ctx.dryRun ? undefined : startSyncs(ctx, outcomes))
  if (!syncs) await steps.run('secrets sync', async () => {
    for (const o of outcomes) await fly.secrets.sync(o.app)
  }, { detail: () => 'latest secrets version of each app', write: true })
  // What each deploy applies besides the image, for a rollback whose old image fails too: read now,
  // beside the syncs and the backup (an app's deploy changes no other app's secrets or config).
  // An app that runs nothing yet has nothing to roll back to.
  for (const o of outcomes) if (!ctx.dryRun && o.status?.Machines?.length && !alreadyRuns(ctx, o, options.image ?? options.sources.get(o.key))) o.drift = readDrift(ctx, o.key)

  if (ctx.apps.includes('internal-api')) {
    const api = flyAppName(ctx.env, 'internal-api')
    const ips = options.apiIps ?? (await fly.network.ips(api))
    if (!isPrivate(ips)) await steps.run('private network', () => makePrivate(ctx, api, ips), { write: true, detail: (done) => `${api}: ${done.join('; ')}` })
  }

  if (backup) {
    const target = await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
    await steps.run('backup', () => backupBeforeMigration(ctx, db, target), { detail: (b) => b.detail, write: true })
  }
  if (syncs) await steps.run('secrets sync', () => ready(ctx, syncs, outcomes[0].app), { detail: () => 'latest secrets version, learnt for each app before its deploy', write: true })

  for (const [i, outcome] of outcomes.entries()) {
    ctx.checkpoint()
    try {
      if (syncs && i > 0) await ready(ctx, syncs, outcome.app)
      await deployOne(ctx, settings, db, steps, outcome, options.image ?? options.sources.get(outcome.key))
    } catch (error) {
      if (envFlag('ROLLBACK_ALL')) {
        for (const earlier of outcomes.filter((o) => o.result === 'deployed')) await rollBack(ctx, db, steps, earlier, 'ROLLBACK_ALL=1 after a later app failed')
      }
      throw error
    }
  }

  if (!ctx.apps.includes('internal-api')) return
  ctx.checkpoint()
  const app = flyAppName(ctx.env, 'internal-api')
  // Every local migration is applied there already: an ssh session would change nothing.
  if (!pendingOnTarget.length) {
    ctx.log.info(`no pending migrations on ${ctx.env}: prisma migrate deploy not needed`)
    steps.note('migrate', 'skipped', 'no pending migrations')
    return
  }
  const started = performance.now()
  // The internal API's release command runs `prisma migrate deploy` before its machines change:
  // when it applied everything, a second run over ssh would only find nothing to do.
  if (!ctx.dryRun) {
    const now = compareMigrations(options.local, await readMigrationRows(db))
    if (now.every((s) => s.state === 'applied' || s.state === 'unknown-on-remote') && pendingOnTarget.every((name) => now.some((s) => s.name === name && s.state === 'applied'))) {
      ctx.log.ok(`the release command applied ${pendingOnTarget.join(', ')} on ${ctx.env}: no ssh session needed`)
      await record(ctx, db, { operation: 'migrate', app, migrations: pendingOnTarget, result: 'ok', durationMs: performance.now() - started, detail: 'applied by the release command' })
      steps.note('migrations applied', 'ok', `${pendingOnTarget.join(', ')} (by the release command)`)
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
  const applied = outcome.after ? pendingOnTarget.filter((name) => outcome.after!.statuses.find((s) => s.name === name)?.state === 'applied') : []
  await record(ctx, db, { operation: 'migrate', app, migrations: applied, result: problems.length ? 'failed' : 'ok', durationMs: performance.now() - started, detail: problems.join('; ') || undefined })
  if (problems.length) {
    const last = steps.records.at(-1)
    if (last?.name === 'migrate') Object.assign(last, { result: 'failed', detail: `not all applied: ${problems.join('; ')}` })
    throw new OperationError(`migrations on ${ctx.env} are not all applied`, problems)
  }
  if (applied.length) steps.note('migrations applied', 'ok', applied.join(', '))
}

/** Promoting an image every machine already runs would only restart them: a second run changes nothing. */
function alreadyRuns(ctx: Context, outcome: AppOutcome, source: string | undefined): boolean {
  const machines = outcome.status?.Machines ?? []
  return Boolean(source && machines.length && machines.every((m) => m.config?.image === source) && judgeFleet(outcome.status!, readFlyToml(flyConfigPath(ctx.env, outcome.key))).problems.length === 0)
}

async function deployOne(ctx: Context, settings: Settings, db: Database, steps: Steps, outcome: AppOutcome, source: string | undefined): Promise<void> {
  const fly = ctx.fly()
  const log: Logger = ctx.log
  if (alreadyRuns(ctx, outcome, source)) {
    Object.assign(outcome, { result: 'unchanged', after: source, detail: 'already runs this image' })
    steps.note(`deploy ${outcome.app}`, 'skipped', `already runs ${shortRef(source, outcome.app)}`)
    return
  }
  const started = performance.now()
  const machines = outcome.status?.Machines ?? []
  const local = outcome.key === 'internal-api' && !source ? listLocalMigrations() : undefined
  // Read before the first deploy of the run; it must be in before this one changes anything.
  await outcome.drift
  try {
    outcome.after = await steps.run(
      `deploy ${outcome.app}`,
      () => {
        if (source) return fly.deploys.image(outcome.app, flyConfigPath(ctx.env, outcome.key), source, machines.length)
        const app = settings.apps[outcome.key]
        return fly.deploys.build(outcome.app, buildConfigPath(settings.toolkitFromRoot, ctx.env, outcome.key), { WORKSPACE: settings.workspace, APP_DIR: app.source, APP_PACKAGE: app.package }, settings.root, settings.toolkitFromRoot === '.' ? undefined : settings.root, machines.length)
      },
      { write: true, detail: (ref) => shortRef(ref, outcome.app) },
    )
    if (ctx.dryRun) return
    if (local && outcome.after) await recordImageMigrations(ctx, db, outcome.after, local.map((m) => ({ name: m.name, checksum: m.checksum })))
    const health = await steps.run(`health ${outcome.app}`, () => waitHealthy(ctx, outcome.key, outcome.after), { detail: describe, result: (h) => (h.healthy ? 'ok' : 'unhealthy') })
    if (!health.healthy) throw await unhealthy(ctx, outcome, health)
    for (const line of warningLines(health)) ctx.log.warn(line)
    Object.assign(outcome, { result: 'deployed', detail: `${health.fleet.summary}, healthy after ${formatDuration(health.seconds * 1000)}${health.fleet.warnings.map((w) => `; warning: ${w.text}`).join('')}` })
    await record(ctx, db, { operation: 'deploy', app: outcome.app, imageBefore: outcome.before, imageAfter: outcome.after, result: 'ok', durationMs: performance.now() - started, detail: health.fleet.summary })
  } catch (error) {
    // flyctl gave up waiting for the release command, which may go on (a migration holding Prisma's
    // lock). No machine changed, so there is nothing to roll back; and a deploy of this app that
    // runs the release command would destroy its machine and kill it. The run stops here.
    const leftover = error instanceof CommandError ? releaseCommandTimedOut(error.stderr) : undefined
    if (leftover) {
      const unfinished = await readMigrationRows(db).then((rows) => (rows ?? []).filter((r) => !r.finished_at && !r.rolled_back_at).map((r) => r.migration_name), () => undefined)
      const timeout = String(readFlyToml(flyConfigPath(ctx.env, outcome.key)).deploy?.release_command_timeout ?? '5m')
      const still = releaseCommandOutlived(outcome.app, leftover, timeout, ctx.env, unfinished)
      Object.assign(outcome, { result: 'failed', detail: `release command may still be running on machine ${leftover}: not rolled back` })
      await record(ctx, db, { operation: 'deploy', app: outcome.app, imageBefore: outcome.before, result: 'failed', durationMs: performance.now() - started, detail: still.message })
      throw still
    }
    // flyctl stopped on a machine that failed its checks: show what Fly and the app say about it.
    if (error instanceof CommandError && /waiting for health checks/.test(error.stderr)) {
      const look = await checkOnce(ctx, outcome.key).catch(() => undefined)
      if (look) for (const line of await evidence(ctx, look)) ctx.log.detail(line)
    }
    // A crash-looping image: flyctl's smoke checks named the machine and gave its last log lines.
    const crash = error instanceof CommandError ? smokeFailure(error.stderr) : undefined
    if (crash) {
      ctx.log.error(`${outcome.app}: ${describeCrash(crash)}`)
      for (const line of crash.lines.slice(-knob('LOGS_LINES'))) ctx.log.detail(`log: ${line}`)
      if (crash.noLogs) ctx.log.detail(`log: none shown: ${crash.noLogs}; read them with flyctl logs --app ${outcome.app} --machine ${crash.machine} --no-tail`)
      const step = [...steps.records].reverse().find((r) => r.name === `deploy ${outcome.app}`)
      if (step) step.detail = describeCrash(crash)
    }
    outcome.result = 'failed'
    outcome.detail = crash ? describeCrash(crash) : explain(error, source)
    await record(ctx, db, { operation: 'deploy', app: outcome.app, imageBefore: outcome.before, imageAfter: outcome.after, result: 'failed', durationMs: performance.now() - started, detail: outcome.detail })
    if (!ctx.dryRun && ctx.flags['no-rollback']) log.warn(`automatic rollback is off (--no-rollback): roll back with make rollback-${shortName(ctx.env)} APP=${outcome.key}`)
    else if (!ctx.dryRun) {
      const deployFailure = outcome.detail
      const failed = await rollBack(ctx, db, steps, outcome, 'automatic, after the failed deploy')
      // The last word is the rollback's when it failed too: the app is not back where it was.
      if (failed) throw new OperationError(`${outcome.app}: the deploy failed, and its automatic rollback failed too`, [`deploy: ${deployFailure}`, `machines now: ${outcome.mixedNow ? imageCounts(outcome.mixedNow) : `all on ${shortRef(outcome.after, outcome.app)}`}`, `rollback: ${failed}`])
    }
    throw error
  }
}

/** The evidence of a failed health check: failing checks, the probe's answer, the app's last logs. */
async function unhealthy(ctx: Context, outcome: AppOutcome, health: AppHealth): Promise<OperationError> {
  const lines = await evidence(ctx, health)
  for (const line of lines) ctx.log.detail(line)
  return new OperationError(`${outcome.app} is unhealthy after its deploy: ${health.fleet.summary}; ${[...health.fleet.problems, health.http].join('; ')}`, lines.slice(0, 8))
}

function explain(error: unknown, source: string | undefined): string {
  // flyctl's own error line only: a migration's "permission denied" in the release command's logs is not about the image.
  if (error instanceof CommandError && source && /could not find image|not authorized|unauthorized|denied/i.test(flyctlError(error.stderr))) return `cannot deploy ${shortRef(source)}: ${CROSS_APP_IMAGE_HELP}`
  if (error instanceof CommandError) return why(error)
  return (error as Error).message.split('\n')[0]
}

/** The image to go back to: what every machine ran before, else the newest complete release
 * before this deploy's (a fleet that was already mixed). */
async function priorImage(ctx: Context, outcome: AppOutcome): Promise<string | undefined> {
  if (outcome.before) return outcome.before
  const releases = await ctx.fly().apps.releases(outcome.app)
  return chooseRollbackTarget(releases, outcome.after, {})?.ImageRef
}

/** Puts every machine that runs another image than before back on it, and says what runs now
 * and what stayed changed (a migration the release command applied stays applied). Returns why,
 * when a rollback ran and did not leave the app healthy on its earlier image. */
async function rollBack(ctx: Context, db: Database, steps: Steps, outcome: AppOutcome, occasion: string): Promise<string | undefined> {
  const app = outcome.app
  const now = await ctx.fly().apps.status(app).catch(() => undefined)
  const target = await priorImage(ctx, outcome).catch(() => undefined)
  if (!now) {
    outcome.detail += '; could not read the fleet to roll it back'
    return undefined
  }
  const changed = (now.Machines ?? []).filter((m) => m.config?.image !== target)
  if (!target) {
    outcome.detail += `; no earlier image to roll back to (${imageCounts(now)})`
    ctx.log.warn(`${app} had no earlier image: nothing to roll back to`)
    return undefined
  }
  if (!changed.length) {
    outcome.detail += `; every machine still runs ${shortRef(target, app)}: nothing to roll back`
    return undefined
  }
  const started = performance.now()
  /** What this deploy changed besides the image, when the old image fails too (undefined: nothing known). */
  const blame = async () => driftCause(ctx, await outcome.drift)
  /** The fleet as it is after a failed rollback: one image, or how many machines run which. */
  const showFleet = async () => {
    const after = await ctx.fly().apps.status(app).catch(() => undefined)
    if (!after) return
    outcome.after = runningImage(after)
    outcome.mixedNow = outcome.after ? undefined : after
    outcome.detail += `; machines now: ${imageCounts(after)}`
  }
  try {
    const result = await steps.run(`rollback ${app}`, () => automaticRollback(outcome.key, target, occasion, async () => {
      const rolled = await rollBackFleet(ctx, outcome.key, target, now)
      return { ...rolled, cause: rolled.health.healthy ? undefined : ((await blame()) ?? `STILL UNHEALTHY (${rolled.health.fleet.problems.join('; ') || rolled.health.http})`) }
    }, (r) => r.health.healthy), { detail: (r) => `${r.before} → ${r.after}${r.cause ? ` (${r.cause})` : ''}`, result: (r) => (r.health.healthy ? 'rolled back' : 'unhealthy') })
    outcome.result = result.health.healthy ? 'rolled back' : 'unhealthy'
    outcome.after = target
    const cause = result.cause
    outcome.detail += `; was ${result.before}; now ${result.after}${cause ? `, ${cause}` : ', healthy'}${result.health.fleet.warnings.map((w) => `; warning: ${w.text}`).join('')}`
    for (const line of warningLines(result.health)) ctx.log.warn(line)
    if (outcome.key === 'internal-api') {
      const applied = (await snapshot(db).catch(() => undefined))?.statuses.filter((s) => s.state === 'applied').map((s) => s.name) ?? []
      const carried = await imageMigrations(db, target).catch(() => undefined)
      const stayed = carried ? applied.filter((name) => !carried.some((m) => m.name === name)) : []
      if (stayed.length) outcome.detail += `; migration${stayed.length > 1 ? 's' : ''} ${stayed.join(', ')} stayed applied (make rollback-migration-${shortName(ctx.env)} NAME=… undoes one)`
    }
    await record(ctx, db, { operation: 'rollback', app, imageBefore: runningImage(now) ?? imageCounts(now), imageAfter: target, result: result.health.healthy ? 'rolled back' : 'failed', durationMs: performance.now() - started, detail: `${occasion}; ${result.before} → ${result.after}${cause ? `; ${cause}` : ''}` })
    // rollBackFleet saw every machine on the target: what runs is known.
    return cause ? `every machine runs ${shortRef(target, app)} again, but ${cause}` : undefined
  } catch (error) {
    const crash = error instanceof CommandError ? smokeFailure(error.stderr) : undefined
    const reason = crash ? describeCrash(crash) : why(error)
    const step = [...steps.records].reverse().find((r) => r.name === `rollback ${app}`)
    if (crash && step) step.detail = reason
    // Only an old image that started and failed again points at what the deploy changed besides it.
    const ran = crash || (error instanceof CommandError && /waiting for health checks|waiting for machine's state/.test(error.stderr))
    const cause = ran ? await blame() : undefined
    outcome.detail += `; automatic rollback FAILED: ${reason}${cause ? `; ${cause}` : ''}`
    await record(ctx, db, { operation: 'rollback', app, imageAfter: target, result: 'failed', durationMs: performance.now() - started, detail: `${occasion}: ${reason}` })
    await showFleet()
    return `to ${shortRef(target, app)}: ${reason}${cause ? `; ${cause}` : ''}`
  }
}
