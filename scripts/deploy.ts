// Sections 5.1 and 5.2 of the deployment strategy, as one run per environment:
//   1. the right branch and a clean tree (production), every configuration problem at once;
//   2. before any change: what runs now, the databases, the migration gate and the confirmation
//      (production), and the plan (production: PLAN_OUT= writes it, PLAN= refuses anything else);
//   3. under the environment's lock: each app learns its latest secrets version, the internal API
//      stays private, production takes a backup before migrating;
//   4. the images: built first, all at once (staging; BUILD=1 in production), or the exact images
//      staging runs healthy (production: build once), or IMAGE= for one app;
//   5. the rollouts in the document's order — internal API (its release command migrates), public
//      API, web admin — each checked healthy on every machine, or rolled back;
//   6. the migrations the release command did not apply, over ssh;
// and a closing summary of every step and every app.
import { envFlag, main } from './lib/core/cli.js'
import { type AppKey, flyAppName, shortName } from './lib/core/names.js'
import { Steps } from './lib/core/steps.js'
import { backupBeforeMigration } from './lib/database/backup.js'
import { compareMigrations, pendingMigrations, readMigrationRows } from './lib/database/migrations.js'
import { builtImage, buildAll, imagesToBuild } from './lib/deploy/builds.js'
import { checkConfiguration } from './lib/deploy/configuration.js'
import { buildLabel } from './lib/deploy/label.js'
import { migrateAfterRollout } from './lib/deploy/migrate-step.js'
import { newOutcome, publishOutcomes } from './lib/deploy/outcome.js'
import { comparePlans, makePlan, writePlan } from './lib/deploy/plan.js'
import { checkImageExists, promotionGate } from './lib/deploy/promotion.js'
import { rollBack } from './lib/deploy/auto-rollback.js'
import { rollOut } from './lib/deploy/rollout.js'
import type { DeployRun } from './lib/deploy/run.js'
import { ready, startSyncs, type Syncs } from './lib/deploy/secrets-sync.js'
import { startOperation } from './lib/events/operation.js'
import { readDrift } from './lib/fleet/drift.js'
import { runningImage } from './lib/fleet/health.js'
import { isPrivate, makePrivate } from './lib/fly/network.js'
import type { FlyIp } from './lib/fly/types.js'
import { checkTree } from './lib/safety/git.js'
import { recordImageMigrations } from './lib/safety/ledger.js'
import { withLock } from './lib/safety/lock.js'
import { preflight } from './lib/safety/preflight.js'

void main(
  {
    name: 'deploy',
    usage: 'deploy <staging|production> [--app KEY] [--image REF] [--build] [--no-rollback] [--plan FILE] [--plan-out FILE] [--dry-run] [--yes] [--verbose] [--env-dir DIR]',
    environment: true,
    options: { image: { type: 'string' }, build: { type: 'boolean' }, 'no-rollback': { type: 'boolean' }, plan: { type: 'string' }, 'plan-out': { type: 'string' } },
  },
  async (ctx) => {
    // Hooks and notifications (lib/events): checked now, run around the work below.
    const op = startOperation(ctx, { kind: 'deploy' })
    // 1. Every problem of the configuration, then the branch and the tree.
    const config = await checkConfiguration(ctx)
    const tree = await checkTree(ctx, config.settings.root)
    const label = buildLabel(tree, envFlag('REBUILD'))

    const fly = ctx.fly()
    const steps = new Steps(ctx.log, ctx.dryRun)
    const outcomes = ctx.apps.map((key) => newOutcome(ctx, key, flyAppName(ctx.env, key)))
    /** What each app will run: this commit's build, a staging image (promotion) or IMAGE=. */
    const images = new Map<AppKey, string>()
    let apiIps: FlyIp[] | undefined
    let syncing: Syncs | undefined
    try {
      // 2. Before any change. The first flyctl calls read what runs now (and find a missing app or
      // login); staging also learns its secrets versions meanwhile (production after its confirmation).
      const pre = await steps.run(
        'preflight',
        () =>
          preflight(ctx, {
            what: `deploy-${shortName(ctx.env)}`,
            target: config.target,
            stagingTarget: config.stagingTarget,
            local: config.local,
            alongside: () =>
              Promise.all([
                ...outcomes.map(async (o) => (o.status = await fly.apps.status(o.app))),
                ctx.apps.includes('internal-api') ? fly.network.ips(flyAppName(ctx.env, 'internal-api')).then((ips) => (apiIps = ips)) : undefined,
                ctx.env === 'staging' && !ctx.dryRun ? void (syncing = startSyncs(ctx, outcomes)) : undefined,
              ]),
            imageGate: config.promote ? (staging, rows) => promotionGate(ctx, staging, rows, images) : undefined,
          }),
        (p) => `${p.pending.length} pending migration(s)`,
      )
      for (const o of outcomes) o.before = runningImage(o.status!)
      if (config.image) {
        await checkImageExists(ctx, config.image, outcomes[0])
        images.set(outcomes[0].key, config.image)
      } else if (!config.promote) for (const o of outcomes) images.set(o.key, builtImage(ctx, o.key, label))
      if (config.planOut !== undefined || config.approved) {
        const plan = await makePlan(ctx, pre.pending, outcomes, images)
        if (config.planOut !== undefined) writePlan(ctx, config.planOut, plan)
        if (config.approved) comparePlans(config.approved, plan)
      }
      const run: DeployRun = { ctx, settings: config.settings, db: pre.db, steps, outcomes, local: config.local }
      // Hooks and events: what each app runs (or will run), a rollback after a failure said as such.
      const events = {
        db: pre.db,
        apps: ctx.apps,
        migrations: pre.pending.map((m) => m.name),
        images: () => Object.fromEntries(outcomes.map((o) => [o.key, o.after ?? images.get(o.key)]).filter(([, ref]) => ref)),
        failedAs: () => (outcomes.some((o) => o.result === 'rolled back') ? ('rolled-back' as const) : ('failed' as const)),
      }

      await withLock(ctx, pre.db, `deploy-${ctx.env}`, () =>
        op.run(events, async () => {
          // Read again now that the lock is held: another run may have migrated since the preflight.
          const pending = pendingMigrations(compareMigrations(config.local, await readMigrationRows(pre.db)))

          // 3. Secrets versions, the private network, a backup before a production migration.
          const syncs = syncing ?? (ctx.dryRun ? undefined : startSyncs(ctx, outcomes))
          if (!syncs) await steps.run('secrets sync', async () => {
            for (const o of outcomes) await fly.secrets.sync(o.app)
          }, { detail: () => 'latest secrets version of each app', write: true })
          // What each deploy applies besides the image, read now beside the rest: whether an app
          // that runs its image already needs a deploy at all, and the likely cause when a rollback's
          // old image fails too.
          for (const o of outcomes) if (o.status?.Machines?.length) o.drift = readDrift(ctx, o.key)
          if (ctx.apps.includes('internal-api')) {
            const api = flyAppName(ctx.env, 'internal-api')
            const ips = apiIps ?? (await fly.network.ips(api))
            if (!isPrivate(ips)) await steps.run('private network', () => makePrivate(ctx, api, ips), { write: true, detail: (done) => `${api}: ${done.join('; ')}` })
          }
          if (ctx.env === 'production' && pending.length && ctx.apps.includes('internal-api')) {
            await steps.run('backup', () => backupBeforeMigration(ctx, pre.db, config.target), { detail: (b) => b.detail, write: true })
          }
          if (syncs) await steps.run('secrets sync', () => ready(ctx, syncs, outcomes[0].app), { detail: () => 'latest secrets version, learnt for each app before its deploy', write: true })

          // 4. Build first: every image this commit still needs, all at once, before any app changes.
          if (!config.promote && !config.image) {
            const toBuild = await imagesToBuild(ctx, outcomes, images)
            if (toBuild.length) await steps.run('build', () => buildAll(ctx, config.settings, toBuild, label), { write: true, detail: () => `${toBuild.join(', ')} as ${label}, built together` })
            else steps.note('build', 'skipped', `every image of ${label} is built already`)
            // The internal API's image carries the local migrations: the gate of a later promotion reads them.
            if (!ctx.dryRun && toBuild.includes('internal-api')) await recordImageMigrations(ctx, pre.db, images.get('internal-api')!, config.local.map((m) => ({ name: m.name, checksum: m.checksum })))
          }

          // 5. The rollouts, in order; each app learns its secrets version first.
          for (const [i, outcome] of outcomes.entries()) {
            ctx.checkpoint()
            try {
              if (syncs && i > 0) await ready(ctx, syncs, outcome.app)
              await rollOut(run, outcome, images.get(outcome.key)!)
            } catch (error) {
              if (envFlag('ROLLBACK_ALL')) for (const earlier of outcomes.filter((o) => o.result === 'deployed')) await rollBack(run, earlier, 'ROLLBACK_ALL=1 after a later app failed')
              throw error
            }
          }

          // 6. What the release command did not migrate.
          if (ctx.apps.includes('internal-api')) await migrateAfterRollout(run, pending)
        }),
      )
    } finally {
      steps.publishSummary(`deploy ${ctx.env}`)
      publishOutcomes(ctx, outcomes)
    }
  },
)
