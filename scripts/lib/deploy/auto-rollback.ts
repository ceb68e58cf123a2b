import { CommandError } from '../core/errors.js'
import type { Context } from '../core/cli.js'
import { shortRef } from '../core/log.js'
import { shortName } from '../core/names.js'
import { why } from '../core/steps.js'
import { snapshot } from '../database/remote-migrate.js'
import { automaticRollback } from '../events/operation.js'
import { describeCrash, smokeFailure } from '../fleet/crash.js'
import { driftCause } from '../fleet/drift.js'
import { runningImage, warningLines } from '../fleet/health.js'
import { chooseRollbackTarget, imageCounts, rollBackFleet } from '../fleet/rollback.js'
import { imageMigrations, record } from '../safety/ledger.js'
import type { AppOutcome } from './outcome.js'
import type { DeployRun } from './run.js'

// The automatic rollback after a failed deploy (the interface's "Rollback"): every machine of the
// app back on the image it ran before, checked machine by machine, and the summary says what runs
// now and what stayed changed (a migration the release command applied stays applied).

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
export async function rollBack(run: DeployRun, outcome: AppOutcome, occasion: string): Promise<string | undefined> {
  const { ctx, db, steps } = run
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
