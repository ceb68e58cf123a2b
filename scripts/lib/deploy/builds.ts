import type { Context } from '../core/cli.js'
import { CommandError, OperationError } from '../core/errors.js'
import { plain } from '../core/log.js'
import { type AppKey, buildConfigPath, flyAppName } from '../core/names.js'
import { board } from '../core/progress.js'
import type { Settings } from '../core/settings.js'
import { uniqueLabel } from './label.js'
import type { AppOutcome } from './outcome.js'

// Build every image first, all at once, then roll out (the interface's "Build first, then roll
// out"): the three remote builds take minutes each on Fly, a rolling update well under one, and a
// build that fails must leave every app as it was. Each build shows one line (its phase) while the
// builds run; a failed one is shown whole, and the others are stopped.

export interface BuildFailure {
  app: string
  /** The build step flyctl was at (a BuildKit step, or a phase such as `==> Building image`). */
  step: string
  /** Its last lines of output. */
  tail: string[]
}

/** What a line of a build's output says about where it is, if anything. */
export function phaseOf(line: string): string | undefined {
  const text = plain(line).trim()
  const step = /^#\d+ \[(\d+\/\d+)\] (.+)$/.exec(text)
  // A base image's digest says nothing about progress: left out.
  if (step) return `step ${step[1]}: ${step[2].replace(/@sha256:[0-9a-f]{64}/, '')}`
  // flyctl's config check and the builder's links are not phases of the build.
  if (/^(==>|-->) (Verifying app config|Verified app config|build:|Build Summary:)/.test(text)) return undefined
  if (/^(==>|-->) /.test(text)) return text.replace(/^(==>|-->) /, '').replace(/\s*\(\u200b?https?:[^)]*\)$/, '')
  if (/^image: /.test(text)) return 'pushed'
  return undefined
}

/** The image refs that will be deployed, per app: registry.fly.io/<app>:<label>. */
export function builtImage(ctx: Context, key: AppKey, label: string): string {
  return `registry.fly.io/${flyAppName(ctx.env, key)}:${label}`
}

/** Builds every app's image at once; resolves when all succeeded, else throws naming the first that
 * failed (its step and last lines) after the others were stopped. */
export async function buildAll(ctx: Context, settings: Settings, keys: AppKey[], label: string): Promise<void> {
  const fly = ctx.fly()
  const apps = keys.map((key) => flyAppName(ctx.env, key))
  if (ctx.dryRun) ctx.log.result(`# the ${keys.length} builds run together; the rollouts start once every build succeeded`)
  const lines = new Map(apps.map((app) => [app, [] as string[]]))
  const steps = new Map(apps.map((app) => [app, 'waiting for a builder']))
  const progress = ctx.dryRun ? undefined : board(ctx.log, apps)
  const stop = new AbortController()
  let failure: BuildFailure | undefined
  const results = await Promise.allSettled(
    keys.map(async (key, i) => {
      const app = apps[i]
      const config = buildConfigPath(settings.toolkitFromRoot, ctx.env, key)
      const source = settings.apps[key]
      const onOutput = (line: string) => {
        lines.get(app)!.push(line)
        const phase = phaseOf(line)
        if (phase) {
          steps.set(app, phase)
          progress?.set(app, phase)
        }
      }
      try {
        await fly.deploys.buildOnly(app, config, label, { WORKSPACE: settings.workspace, APP_DIR: source.source, APP_PACKAGE: source.package }, { cwd: settings.root, showCwd: settings.toolkitFromRoot === '.' ? undefined : settings.root, onOutput, abort: stop.signal })
        progress?.set(app, 'built')
      } catch (error) {
        // The first failure stops the others: nothing will be deployed anyway.
        if (!failure && !stop.signal.aborted) {
          const output = (error instanceof CommandError ? error.stderr.split('\n') : lines.get(app)!).map((l) => plain(l)).filter((l) => l.trim())
          failure = { app, step: steps.get(app)!, tail: output.slice(-12) }
          progress?.set(app, `FAILED at ${steps.get(app)}`)
        } else progress?.set(app, 'stopped')
        stop.abort()
        throw error
      }
    }),
  )
  progress?.close()
  if (ctx.dryRun) {
    ctx.log.result('wait')
    return
  }
  if (failure) throw new OperationError(`the build of ${failure.app} failed at ${failure.step}: no app was changed`, failure.tail)
  const rejected = results.find((r) => r.status === 'rejected')
  if (rejected) throw (rejected as PromiseRejectedResult).reason
}

/** The apps whose image must still be built: an image some machine or some release of the app
 * already used is in Fly's registry (a clean tree's label names its commit), so it is not built
 * again; a dirty tree's label is new every time. */
export async function imagesToBuild(ctx: Context, outcomes: AppOutcome[], images: Map<AppKey, string>): Promise<AppKey[]> {
  const missing = await Promise.all(
    outcomes.map(async (o) => {
      const image = images.get(o.key)!
      if (uniqueLabel(image)) return o.key
      if ((o.status?.Machines ?? []).some((m) => m.config?.image === image)) return undefined
      const releases = await ctx.fly().apps.releases(o.app).catch(() => [])
      return releases.some((r) => r.ImageRef === image) ? undefined : o.key
    }),
  )
  return missing.filter((key): key is AppKey => key !== undefined)
}
