import type { Context } from '../core/cli.js'
import { Refusal, UserError } from '../core/errors.js'
import { shortRef } from '../core/log.js'
import { type AppKey, flyAppName } from '../core/names.js'
import type { Database } from '../database/db.js'
import { imageGateFindings, type GateFinding } from '../database/gate.js'
import type { MigrationRow } from '../database/migrations.js'
import { checkOnce, describe } from '../fleet/health.js'
import { imageMigrations } from '../safety/ledger.js'
import { withLock } from '../safety/lock.js'
import type { AppOutcome } from './outcome.js'

// Section 5.2's "deploy to production", done as "build once": production runs the exact images
// staging runs healthy, and the migration gate follows them (the migrations the internal API image
// carries must be applied on staging).

export const CROSS_APP_IMAGE_HELP =
  'production pulls the staging image from registry.fly.io/<staging app>: both apps must be in the same Fly organization and the token must reach both (an org token, not a deploy token of one app); otherwise deploy with BUILD=1'

/** What production will receive: the image each staging app runs while healthy (build once),
 * read while holding staging's lock, so a staging deploy cannot be half-way through. Also the
 * gate that follows the images: the internal API image's migrations against staging's database. */
export async function promotionGate(ctx: Context, staging: Database, rows: MigrationRow[] | null, sources: Map<AppKey, string>): Promise<GateFinding[]> {
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
export async function checkImageExists(ctx: Context, image: string, outcome: AppOutcome): Promise<void> {
  const apps = [...new Set([outcome.app, flyAppName('staging', outcome.key), flyAppName('production', outcome.key)])]
  const releases = (await Promise.all(apps.map((app) => ctx.fly().apps.releases(app).catch(() => [])))).flat()
  if (!releases.some((r) => r.ImageRef === image)) {
    throw new UserError(`IMAGE=${image} is not the image of any release of ${apps.join(' or ')}: pick one from flyctl releases --app ${outcome.app} --json`)
  }
}
