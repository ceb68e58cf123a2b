import { CommandError, OperationError } from '../core/errors.js'
import { knob } from '../core/knobs.js'
import { formatDuration, shortRef } from '../core/log.js'
import { flyConfigPath, shortName } from '../core/names.js'
import { why } from '../core/steps.js'
import { readMigrationRows } from '../database/migrations.js'
import { describeCrash, smokeFailure } from '../fleet/crash.js'
import { pendingChanges } from '../fleet/drift.js'
import { checkOnce, describe, evidence, judgeFleet, waitHealthy, warningLines, type AppHealth } from '../fleet/health.js'
import { imageCounts } from '../fleet/rollback.js'
import { flyctlError, releaseCommandOutlived, releaseCommandTimedOut } from '../fly/errors.js'
import { readFlyToml } from '../fly/flytoml.js'
import { record } from '../safety/ledger.js'
import { rollBack } from './auto-rollback.js'
import { commitOf } from './label.js'
import type { AppOutcome } from './outcome.js'
import { CROSS_APP_IMAGE_HELP } from './promotion.js'
import type { DeployRun } from './run.js'

// One app's rollout (steps 2 to 4 of sections 5.1 and 5.2): `flyctl deploy --image` of the image
// built (staging) or promoted (production), which runs the release command first; then health on
// every machine; a failure is explained (a crash loop, a release command still running, a token) and
// rolled back.

/** Every machine already runs this image, healthy: the image is not what a deploy would change. */
export function runsImage(run: DeployRun, outcome: AppOutcome, image: string): boolean {
  const machines = outcome.status?.Machines ?? []
  return machines.length > 0 && machines.every((m) => m.config?.image === image) && judgeFleet(outcome.status!, readFlyToml(flyConfigPath(run.ctx.env, outcome.key))).problems.length === 0
}

export async function rollOut(run: DeployRun, outcome: AppOutcome, image: string): Promise<void> {
  const { ctx, db, steps } = run
  // The same image is left alone only when nothing else would change either: staged secrets and a
  // changed fly.toml reach the machines only through a deploy.
  if (runsImage(run, outcome, image)) {
    const drift = await outcome.drift
    const changes = drift ? await pendingChanges(ctx, drift) : ['the deployed configuration cannot be read']
    if (!changes.length) {
      Object.assign(outcome, { result: 'unchanged', after: image, detail: 'already runs this image, no staged secret, fly.toml as deployed' })
      steps.note(`deploy ${outcome.app}`, 'skipped', `already runs ${shortRef(image, outcome.app)}; nothing staged, fly.toml as deployed`)
      return
    }
    ctx.log.info(`${outcome.app} already runs ${shortRef(image, outcome.app)}; deploying it again for: ${changes.join('; ')}`)
  }
  const started = performance.now()
  const machines = outcome.status?.Machines ?? []
  // Read before the first deploy of the run; it must be in before this one changes anything.
  await outcome.drift
  try {
    outcome.after = await steps.run(`deploy ${outcome.app}`, () => ctx.fly().deploys.image(outcome.app, flyConfigPath(ctx.env, outcome.key), image, machines.length), { write: true, detail: (ref) => shortRef(ref, outcome.app) })
    if (ctx.dryRun) {
      // The table says what the run would deploy, and the commit the image was built from.
      const commit = commitOf(image)
      Object.assign(outcome, { after: image, detail: commit ? `would deploy commit ${commit}` : 'would deploy this image' })
      return
    }
    const health = await steps.run(`health ${outcome.app}`, () => waitHealthy(ctx, outcome.key, outcome.after), { detail: describe, result: (h) => (h.healthy ? 'ok' : 'unhealthy') })
    if (!health.healthy) throw await unhealthy(run, outcome, health)
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
    outcome.detail = crash ? describeCrash(crash) : explain(error, image, outcome.app)
    await record(ctx, db, { operation: 'deploy', app: outcome.app, imageBefore: outcome.before, imageAfter: outcome.after, result: 'failed', durationMs: performance.now() - started, detail: outcome.detail })
    if (!ctx.dryRun && ctx.flags['no-rollback']) ctx.log.warn(`automatic rollback is off (--no-rollback): roll back with make rollback-${shortName(ctx.env)} APP=${outcome.key}`)
    else if (!ctx.dryRun) {
      const deployFailure = outcome.detail
      const failed = await rollBack(run, outcome, 'automatic, after the failed deploy')
      // The last word is the rollback's when it failed too: the app is not back where it was.
      if (failed) throw new OperationError(`${outcome.app}: the deploy failed, and its automatic rollback failed too`, [`deploy: ${deployFailure}`, `machines now: ${outcome.mixedNow ? imageCounts(outcome.mixedNow) : `all on ${shortRef(outcome.after, outcome.app)}`}`, `rollback: ${failed}`], `make status-${shortName(ctx.env)}, then make rollback-${shortName(ctx.env)} APP=${outcome.key} (IMAGE= to choose the image)`)
    }
    throw error
  }
}

/** The evidence of a failed health check: failing checks, the probe's answer, the app's last logs. */
async function unhealthy(run: DeployRun, outcome: AppOutcome, health: AppHealth): Promise<OperationError> {
  const lines = await evidence(run.ctx, health)
  for (const line of lines) run.ctx.log.detail(line)
  return new OperationError(`${outcome.app} is unhealthy after its deploy: ${health.fleet.summary}; ${[...health.fleet.problems, health.http].join('; ')}`, lines.slice(0, 8), `read make logs-${shortName(run.ctx.env)} APP=${outcome.key}, fix the app, then deploy again`)
}

function explain(error: unknown, image: string, app: string): string {
  // An image of another app (a promotion) that flyctl cannot reach, by flyctl's own error line only:
  // a migration's "permission denied" in the release command's logs is not about the image.
  const promoted = !image.startsWith(`registry.fly.io/${app}:`)
  if (promoted && error instanceof CommandError && /could not find image|not authorized|unauthorized|denied/i.test(flyctlError(error.stderr))) return `cannot deploy ${shortRef(image)}: ${CROSS_APP_IMAGE_HELP}`
  if (error instanceof CommandError) return why(error)
  return (error as Error).message.split('\n')[0]
}
