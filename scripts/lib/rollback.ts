// STUB (being implemented): choosing and deploying a rollback target.
import type { Context } from './cli.js'
import type { FlyRelease } from './fly.js'
import type { AppKey } from './names.js'

/** The newest complete release whose image differs from the running one (or the one IMAGE=/VERSION= names). */
export function chooseRollbackTarget(releases: FlyRelease[], currentImage: string | undefined, choice: { image?: string; version?: number }): FlyRelease | undefined {
  void choice
  return [...releases].sort((a, b) => b.Version - a.Version).find((r) => r.Status === 'complete' && r.ImageRef !== currentImage)
}

/** flyctl deploy --app A --config C --image REF --skip-release-command. */
export async function deployImageBack(ctx: Context, key: AppKey, image: string): Promise<void> {
  void ctx
  void key
  void image
}
