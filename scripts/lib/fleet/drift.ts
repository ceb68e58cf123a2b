import { isDeepStrictEqual } from 'node:util'
import type { Context } from '../core/cli.js'
import { type AppKey, flyAppName, flyConfigPath } from '../core/names.js'

// What a deploy applies besides the image: the secrets staged on Fly (not yet on every machine)
// and the fly.toml, when it differs from the current release's config. A rollback redeploys the
// old image with both, so when the old image fails too, they are the likely cause. Read before
// the deploy, which would apply them (after it, the secrets list says Deployed).

export interface Drift {
  /** Secrets `flyctl secrets list` shows Staged or Partial. */
  staged: string[]
  /** The local fly.toml against `flyctl config show` (undefined: unknown, e.g. a first deploy). */
  configChanged?: boolean
  configPath: string
}

export async function readDrift(ctx: Context, key: AppKey): Promise<Drift> {
  const app = flyAppName(ctx.env, key)
  const configPath = flyConfigPath(ctx.env, key)
  const fly = ctx.fly()
  const [secrets, deployed, local] = await Promise.all([
    fly.secrets.list(app).catch(() => []),
    fly.apps.deployedConfig(app).catch(() => undefined),
    fly.apps.deployedConfig(app, configPath).catch(() => undefined),
  ])
  const staged = secrets.filter((s) => s.status === 'Staged' || s.status === 'Partial').map((s) => s.name).sort()
  return { staged, configChanged: deployed === undefined || local === undefined ? undefined : !isDeepStrictEqual(deployed, local), configPath }
}

/** Why an old image that ran fine fails again after a rollback, when the drift says. */
export function driftCause(drift: Drift | undefined): string | undefined {
  if (!drift) return undefined
  const causes = [
    ...(drift.staged.length ? [`the secrets staged since the last release (${drift.staged.join(', ')})`] : []),
    ...(drift.configChanged ? [`the change to ${drift.configPath} since the last release (flyctl config show differs from it)`] : []),
  ]
  return causes.length ? `the old image fails too: the cause is likely ${causes.join(' or ')}, not the image` : undefined
}
