import chalk from 'chalk'
import type { Context } from '../core/cli.js'
import { publishTable, shortRef } from '../core/log.js'
import type { AppKey } from '../core/names.js'
import { compactCounts, imageCounts } from '../fleet/rollback.js'
import type { Drift } from '../fleet/drift.js'
import type { FlyStatus } from '../fly/types.js'

// What happened to each app of a deploy, as the closing table says it.

export interface AppOutcome {
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

export function newOutcome(ctx: Context, key: AppKey, app: string): AppOutcome {
  return { key, app, result: ctx.dryRun ? 'dry run' : 'not deployed', detail: '' }
}

function colour(result: AppOutcome['result']): string {
  return result === 'deployed' || result === 'unchanged' ? chalk.green(result) : result === 'failed' || result === 'unhealthy' ? chalk.red(result) : chalk.yellow(result)
}

/** The closing table: each app, what happened, the image before and now (by label, which names
 * the commit of a build), and why. */
export function publishOutcomes(ctx: Context, outcomes: AppOutcome[]): void {
  publishTable(
    ctx.log,
    `apps of ${ctx.env}`,
    ['app', 'result', 'image before', 'image now', 'detail'],
    // The app by its key (the title names the environment): room for the images and the detail.
    outcomes.map((o) => [o.key, colour(o.result), shortRef(o.before ?? (o.status ? imageCounts(o.status) : undefined), o.app), o.mixedNow ? compactCounts(o.mixedNow) : shortRef(o.after, o.app), o.detail]),
    // The result and the images stay whole (the labels name the commits); a detail too long for
    // the room left goes on its own lines under the row.
    [1, 2, 3],
    { spill: true },
  )
}
