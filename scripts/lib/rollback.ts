import type { Context } from './cli.js'
import { UserError } from './errors.js'
import type { FlyRelease } from './fly.js'
import { type AppKey, flyAppName, flyConfigPath } from './names.js'

// Section 8.1 done right. `fly deploy --image-label v1.0.0` rebuilds the current code; a real
// rollback redeploys an earlier release's image. The interface's target rule: the newest release
// with Status `complete` whose ImageRef differs from the running one (secrets-only releases reuse
// the running image and failed releases never ran, so both are skipped), or the one IMAGE= or
// VERSION= names.

export interface RollbackChoice {
  image?: string
  version?: number
}

export function chooseRollbackTarget(releases: FlyRelease[], currentImage: string | undefined, choice: RollbackChoice): FlyRelease | undefined {
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
  return newestFirst.find((r) => r.Status === 'complete' && r.ImageRef !== currentImage)
}

/** flyctl deploy --app A --config C --image REF --skip-release-command: the old image, and no
 * migrations run inside it (the release command of today's config may not suit yesterday's image). */
export async function deployImageBack(ctx: Context, key: AppKey, image: string): Promise<void> {
  await ctx.fly().deployRollback(flyAppName(ctx.env, key), flyConfigPath(ctx.env, key), image)
}
