import type { Context } from '../core/cli.js'
import { OperationError, UserError } from '../core/errors.js'
import type { FlyRelease, FlyStatus } from '../fly/types.js'
import type { LedgerRow } from '../safety/ledger.js'
import { judgeFleet, waitHealthy, type AppHealth } from './health.js'
import { readFlyToml } from '../fly/flytoml.js'
import { shortRef } from '../core/log.js'
import { type AppKey, flyAppName, flyConfigPath } from '../core/names.js'

// Section 8.1 done right. `fly deploy --image-label v1.0.0` rebuilds the current code; a real
// rollback redeploys an earlier release's image. The target: the newest `complete` release older
// than the one running now whose image differs from the running one and never failed health here
// (secrets-only releases reuse the running image and failed releases never ran, so both are
// skipped; an image an automatic rollback moved away from is skipped too, though Fly may list its
// release as complete), or the one IMAGE= or VERSION= names. A rollback is verified on every
// machine: flyctl exiting 0 proves nothing.

export interface RollbackChoice {
  image?: string
  version?: number
}

/** Why an app has no automatic target: the running image is the oldest complete one left, or every
 * older one failed health here. */
export function noTargetReason(releases: FlyRelease[], currentImage: string | undefined, failedHere: ReadonlySet<string>): string {
  const older = olderReleases(releases, currentImage).filter((r) => r.Status === 'complete' && r.ImageRef !== currentImage)
  if (!older.length) return 'no earlier complete release with another image than the running one'
  return `every earlier image failed its health checks here (${[...new Set(older.map((r) => `v${r.Version}`))].join(', ')}): choose one with VERSION= if you must`
}

/** The releases older than the running one (the newest release of the running image). */
function olderReleases(releases: FlyRelease[], currentImage: string | undefined): FlyRelease[] {
  const newestFirst = [...releases].sort((a, b) => b.Version - a.Version)
  const running = newestFirst.find((r) => r.ImageRef === currentImage)
  return running ? newestFirst.filter((r) => r.Version < running.Version) : newestFirst
}

export function chooseRollbackTarget(releases: FlyRelease[], currentImage: string | undefined, choice: RollbackChoice, failedHere: ReadonlySet<string> = new Set()): FlyRelease | undefined {
  const newestFirst = [...releases].sort((a, b) => b.Version - a.Version)
  if (choice.version !== undefined) {
    const release = newestFirst.find((r) => r.Version === choice.version)
    if (!release) throw new UserError(`VERSION=${choice.version} is not among the app's last ${releases.length} releases: pick one from the table above`)
    if (release.Status !== 'complete') throw new UserError(`VERSION=${choice.version} is a ${release.Status} release: pick a complete one`)
    return release
  }
  if (choice.image !== undefined) {
    const release = newestFirst.find((r) => r.ImageRef === choice.image && r.Status === 'complete')
    if (!release) throw new UserError(`IMAGE=${choice.image} is not the image of any complete release of this app: pick one from the table above`)
    return release
  }
  return olderReleases(releases, currentImage).find((r) => r.Status === 'complete' && r.ImageRef !== currentImage && !failedHere.has(r.ImageRef))
}

/** The images that failed health here: a failed release of the app (flyctl's own checks), and from
 * the ledger, a deploy the toolkit found unhealthy or an automatic rollback moved away from. */
export function imagesThatFailed(app: string, releases: FlyRelease[], ledger: LedgerRow[]): Set<string> {
  const failed = new Set(releases.filter((r) => r.Status === 'failed').map((r) => r.ImageRef))
  for (const row of ledger.filter((r) => r.app === app)) {
    if (row.operation === 'deploy' && row.result === 'failed' && row.image_after) failed.add(row.image_after)
    if (row.operation === 'rollback' && row.result === 'rolled back' && row.detail?.startsWith('automatic') && row.image_before) failed.add(row.image_before)
  }
  return failed
}

/** "3 on …:deployment-01K7…WXYZ, 1 on …:v1.0.0" */
export function imageCounts(status: FlyStatus): string {
  const counts = new Map<string, number>()
  for (const m of status.Machines ?? []) counts.set(m.config?.image ?? '(none)', (counts.get(m.config?.image ?? '(none)') ?? 0) + 1)
  return [...counts].map(([ref, n]) => `${n} on ${shortRef(ref, status.Name)}`).join(', ') || 'no machines'
}

/** The same in a table's narrow column: "2×01K7…WXYZ, 1×v1.0.0" (tags without `deployment-`). */
export function compactCounts(status: FlyStatus): string {
  const counts = new Map<string, number>()
  for (const m of status.Machines ?? []) {
    const tag = shortRef(m.config?.image ?? '(none)', status.Name).replace(/^…:(deployment-)?/, '')
    counts.set(tag, (counts.get(tag) ?? 0) + 1)
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([tag, n]) => `${n}×${tag}`).join(', ') || 'no machines'
}

export interface RollbackResult {
  /** Machines per image before the rollback. */
  before: string
  /** Machines per image after it (all on the target when it worked). */
  after: string
  health: AppHealth
}

/** flyctl deploy --app A --config C --image REF --skip-release-command (the migrations of today's
 * config are not for yesterday's image), then every machine checked to run REF, then health. */
export async function rollBackFleet(ctx: Context, key: AppKey, image: string, beforeStatus?: FlyStatus): Promise<RollbackResult> {
  const app = flyAppName(ctx.env, key)
  const fly = ctx.fly()
  const before = beforeStatus ?? (await fly.apps.status(app))
  await fly.deploys.rollback(app, flyConfigPath(ctx.env, key), image, (before.Machines ?? []).length)
  if (ctx.dryRun) return { before: imageCounts(before), after: `would be all on ${shortRef(image, app)}`, health: { app, key, healthy: false, fleet: { summary: '', images: new Map(), problems: [], warnings: [], failing: [], crashes: [], started: 0, passing: 0 }, http: '', evidence: [], seconds: 0 } }
  const now = await fly.apps.status(app)
  const fleet = judgeFleet(now, readFlyToml(flyConfigPath(ctx.env, key)), image)
  const off = (now.Machines ?? []).filter((m) => m.config?.image !== image)
  if (off.length || !(now.Machines ?? []).length) {
    throw new OperationError(`flyctl reported the rollback of ${app} as done, but ${off.length} of ${(now.Machines ?? []).length} machines do not run ${shortRef(image, app)}`, [`machines now: ${imageCounts(now)}`, ...fleet.problems])
  }
  const health = await waitHealthy(ctx, key, image)
  return { before: imageCounts(before), after: imageCounts(now), health }
}
