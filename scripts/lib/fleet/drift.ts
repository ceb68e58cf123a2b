import { isDeepStrictEqual } from 'node:util'
import type { Context } from '../core/cli.js'
import { type AppKey, flyAppName, flyConfigPath } from '../core/names.js'

// What a deploy applies besides the image: the secrets staged on Fly (not yet on every machine)
// and the fly.toml, when it differs from the current release's config. A rollback redeploys the
// old image with both, so when the old image fails too, they are the likely cause. The secrets
// and the release's config are read before the deploy, which changes both (after it, the secrets
// list says Deployed).

export interface Drift {
  app: string
  /** Secrets `flyctl secrets list` showed Staged or Partial. */
  staged: string[]
  /** `flyctl config show` before the deploy (undefined: unknown). */
  deployed?: unknown
  configPath: string
}

/** Before the deploy: the staged secrets and the current release's config. */
export async function readDrift(ctx: Context, key: AppKey): Promise<Drift> {
  const app = flyAppName(ctx.env, key)
  const fly = ctx.fly()
  const [secrets, deployed] = await Promise.all([fly.secrets.list(app).catch(() => []), fly.apps.deployedConfig(app).catch(() => undefined)])
  const staged = secrets.filter((s) => s.status === 'Staged' || s.status === 'Partial').map((s) => s.name).sort()
  return { app, staged, deployed, configPath: flyConfigPath(ctx.env, key) }
}

/** Whether the app's fly.toml differs from the deployed configuration, both read through flyctl's
 * own serialiser (`flyctl config show` and `--local`, normalised alike); undefined: unknown. */
export async function configChanged(ctx: Context, drift: Drift): Promise<boolean | undefined> {
  if (drift.deployed === undefined) return undefined
  const local = await ctx.fly().apps.deployedConfig(drift.app, drift.configPath).catch(() => undefined)
  return local === undefined ? undefined : !isDeepStrictEqual(drift.deployed, local)
}

/** Why an old image that ran fine fails again after a rollback, when the drift says. */
export async function driftCause(ctx: Context, drift: Drift | undefined): Promise<string | undefined> {
  if (!drift) return undefined
  return blameText(drift.staged, (await configChanged(ctx, drift)) === true, drift.configPath)
}

/** What a deploy of the image the app already runs would still change: staged secrets, a fly.toml
 * that differs from the deployed configuration (the interface's "Same images, new settings"). An
 * unknown configuration counts as a change: a deploy is the safe side. */
export async function pendingChanges(ctx: Context, drift: Drift): Promise<string[]> {
  const changed = await configChanged(ctx, drift)
  return [
    ...(drift.staged.length ? [`staged secrets ${drift.staged.join(', ')}`] : []),
    ...(changed === false ? [] : [changed ? `${drift.configPath} differs from the deployed configuration` : 'the deployed configuration cannot be read']),
  ]
}

/** The cause, in words: the staged secrets by name, the fly.toml change by path. */
export function blameText(staged: string[], configChanged: boolean, configPath: string): string | undefined {
  const causes = [
    ...(staged.length ? [`the secrets staged since the last release (${staged.join(', ')})`] : []),
    ...(configChanged ? [`the change to ${configPath} since the last release (flyctl config show differs from it)`] : []),
  ]
  return causes.length ? `the old image fails too: the cause is likely ${causes.join(' or ')}, not the image` : undefined
}
