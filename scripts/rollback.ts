// Section 8.1: roll an app back to an earlier release's image, with the release table shown and
// the chosen target marked. Production asks for confirmation. Health is checked afterwards.
import chalk from 'chalk'
import { main } from './lib/cli.js'
import { loadDatabaseTarget } from './lib/config.js'
import { confirmProduction } from './lib/confirm.js'
import { connect } from './lib/db.js'
import { OperationError, UserError } from './lib/errors.js'
import { runningImage, waitHealthy } from './lib/health.js'
import { readLedger, record } from './lib/ledger.js'
import { withLock } from './lib/lock.js'
import { publishTable, table } from './lib/log.js'
import { type AppKey, flyAppName } from './lib/names.js'
import type { FlyRelease } from './lib/fly.js'
import { chooseRollbackTarget, deployImageBack, type RollbackChoice } from './lib/rollback.js'

await main(
  {
    name: 'rollback',
    usage: 'rollback <staging|production> [--app KEY] [--image REF | --version N] [--dry-run] [--yes] [--verbose]',
    environment: true,
    options: { image: { type: 'string' }, version: { type: 'string' } },
  },
  async (ctx) => {
    const choice: RollbackChoice = {}
    if (ctx.flags.image !== undefined && ctx.flags.version !== undefined) throw new UserError('IMAGE= and VERSION= both choose the target: give only one')
    if (ctx.flags.version !== undefined) {
      if (!/^\d+$/.test(ctx.flags.version as string)) throw new UserError(`VERSION=${ctx.flags.version} is not a release number: use the number from flyctl releases (e.g. VERSION=41)`)
      choice.version = Number(ctx.flags.version)
    }
    if (ctx.flags.image !== undefined) choice.image = ctx.flags.image as string
    if ((choice.image || choice.version !== undefined) && ctx.apps.length !== 1) throw new UserError('IMAGE= and VERSION= belong to one app: name it with APP=')

    const fly = ctx.fly()
    const plans: Array<{ key: AppKey; app: string; current?: string; target: FlyRelease }> = []
    for (const key of ctx.apps) {
      const app = flyAppName(ctx.env, key)
      const [releases, status] = await Promise.all([fly.releases(app), fly.status(app)])
      const current = runningImage(status)
      const target = chooseRollbackTarget(releases, current, choice)
      ctx.log.result(chalk.bold(`${app} (running ${current ?? 'nothing'})`))
      ctx.log.result(
        table(
          ['', 'version', 'status', 'image', 'when', 'who'],
          releases.map((r) => [r === target ? chalk.green('→') : r.ImageRef === current ? '*' : '', `v${r.Version}`, r.Status, r.ImageRef, r.CreatedAt, r.User?.Name ?? r.User?.Email ?? '']),
        ),
      )
      if (!target) throw new OperationError(`${app} has no earlier complete release with another image than the running one: nothing to roll back to`)
      plans.push({ key, app, current, target })
    }

    const db = await connect(ctx, loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
    // The interface's rule picks the newest other image, so a rollback run twice goes forward again
    // to the image the first one left: say so before the operator confirms.
    if (!choice.image && choice.version === undefined) {
      const recent = await readLedger(db, ctx.env, 200)
      for (const plan of plans) {
        const last = recent.find((row) => row.app === plan.app && (row.operation === 'rollback' || row.operation === 'deploy') && row.result !== 'failed')
        if (last?.operation === 'rollback' && last.image_before === plan.target.ImageRef) {
          ctx.log.warn(`${plan.app}: v${plan.target.Version} runs ${plan.target.ImageRef}, the image the last rollback moved away from; choose an older one with VERSION= if that is not what you want`)
        }
      }
    }
    await confirmProduction(ctx, 'rollback')
    const outcome = new Map(plans.map((p) => [p.app, ctx.dryRun ? 'dry run' : 'not rolled back']))
    try {
      await withLock(ctx, db, `rollback-${ctx.env}`, async () => {
        for (const { key, app, current, target } of plans) {
          const started = performance.now()
          try {
            await deployImageBack(ctx, key, target.ImageRef)
            if (ctx.dryRun) continue
            const health = await waitHealthy(ctx, key)
            outcome.set(app, health.healthy ? 'rolled back, healthy' : 'rolled back, UNHEALTHY')
            await record(ctx, db, { operation: 'rollback', app, imageBefore: current, imageAfter: target.ImageRef, result: health.healthy ? 'ok' : 'failed', durationMs: performance.now() - started, detail: `to v${target.Version}` })
            if (!health.healthy) throw new OperationError(`${app} is unhealthy after the rollback to v${target.Version}`, [health.machines, health.checks, health.http])
            ctx.log.ok(`${app} rolled back to v${target.Version} (${target.ImageRef}) and healthy`)
          } catch (error) {
            if (outcome.get(app) === 'not rolled back') outcome.set(app, 'failed')
            if (!(error instanceof OperationError)) {
              await record(ctx, db, { operation: 'rollback', app, imageBefore: current, imageAfter: target.ImageRef, result: 'failed', durationMs: performance.now() - started, detail: (error as Error).message })
            }
            throw error
          }
        }
      })
    } finally {
      publishTable(ctx.log, `rollback of ${ctx.env}`, ['app', 'result', 'image before', 'image after'], plans.map((p) => [p.app, outcome.get(p.app)!, p.current ?? '-', `v${p.target.Version} ${p.target.ImageRef}`]))
    }
  },
)
