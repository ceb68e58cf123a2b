import type { Context } from '../core/cli.js'
import type { AppOutcome } from './outcome.js'

/** Per app: its `flyctl secrets sync`, settled with the version flyctl's config.yml then holds. */
export type Syncs = Map<string, Promise<number | undefined>>

/** flyctl keeps the latest secrets version on the machine that set them: a deploy from another
 * machine (a fresh CI runner) must learn it, or its machines may start with older secrets. One at
 * a time: each flyctl writes back the whole minimum-version map it read at start, so concurrent
 * syncs on one machine would erase each other's entries (fly-platform.md §6). The chain runs
 * beside the reads and the first deploys; each app waits for its own sync only (ready()). */
export function startSyncs(ctx: Context, outcomes: AppOutcome[]): Syncs {
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
export async function ready(ctx: Context, syncs: Syncs, app: string): Promise<void> {
  const synced = await syncs.get(app)
  const now = await ctx.fly().secrets.knownVersion(app)
  if (synced !== undefined && now !== undefined && now >= synced) return
  if (ctx.verbose) ctx.log.info(`${app}: flyctl's config.yml does not show the synced secrets version (${now ?? 'none'}, synced ${synced ?? 'unknown'}): syncing again`)
  await ctx.fly().secrets.sync(app)
}
