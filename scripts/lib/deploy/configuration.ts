import type { Context } from '../core/cli.js'
import { envFlag } from '../core/cli.js'
import { Problems } from '../core/errors.js'
import { flyAppName, flyConfigPath, imageRefProblem } from '../core/names.js'
import { loadSettings, sampleWarning, type Settings } from '../core/settings.js'
import { listLocalMigrations, type LocalMigration } from '../database/migrations.js'
import type { DatabaseTarget } from '../secrets/env-files.js'
import { buildContextProblems } from '../fly/build-context.js'
import { checkAppName } from '../fly/flytoml.js'
import { envFilePath, loadPipelineTargets, readEnvFile } from '../secrets/env-files.js'
import { readPlan, type Plan } from './plan.js'

// Everything a deploy is told and reads before it does anything, checked at once: a run reports
// every problem of its configuration together (exit 2) before its first flyctl call.

export interface DeployConfiguration {
  settings: Settings
  local: LocalMigration[]
  target: DatabaseTarget
  stagingTarget?: DatabaseTarget
  /** IMAGE=: one app's image, chosen by hand. */
  image?: string
  /** Production promotes the staging images, unless IMAGE= or BUILD=1 says otherwise. */
  promote: boolean
  planOut?: string
  approved?: Plan
}

export async function checkConfiguration(ctx: Context): Promise<DeployConfiguration> {
  const image = ctx.flags.image as string | undefined
  const build = Boolean(ctx.flags.build) || envFlag('BUILD')
  const planIn = ctx.flags.plan as string | undefined
  const planOut = ctx.flags['plan-out'] as string | undefined
  const problems = new Problems()
  if (image !== undefined && !ctx.oneApp) problems.add("IMAGE= is one app's image: name the app with APP=")
  if (image !== undefined && build) problems.add('IMAGE= and BUILD=1 contradict each other: choose one')
  const wrongImage = image === undefined ? undefined : imageRefProblem(image)
  if (wrongImage) problems.add(wrongImage)
  if (planOut !== undefined && !ctx.dryRun) problems.add('PLAN_OUT= writes the plan of a dry run: add DRY_RUN=1')
  if (planIn !== undefined && ctx.dryRun) problems.add('PLAN= checks a real deploy against an approved plan: drop DRY_RUN=1')
  if ((planIn !== undefined || planOut !== undefined) && ctx.env !== 'production') problems.add('PLAN= and PLAN_OUT= are for production deploys')
  const settings = problems.check(() => loadSettings())
  for (const key of ctx.apps) problems.check(() => checkAppName(flyConfigPath(ctx.env, key), flyAppName(ctx.env, key)))
  const local = problems.check(() => listLocalMigrations())
  const promote = ctx.env === 'production' && !build && image === undefined
  if (settings && image === undefined && !promote) for (const key of ctx.apps) problems.add(buildContextProblems(settings, key))
  for (const key of ctx.apps) if (key !== 'internal-api') problems.check(() => readEnvFile(envFilePath(ctx.envDir, ctx.env, key), ctx.env, ctx.log))
  const { target, stagingTarget } = await loadPipelineTargets(ctx.envDir, ctx.env, ctx.log, problems)
  const approved = planIn === undefined ? undefined : problems.check(() => readPlan(planIn))
  // Said first: settings still pointing at the sample app explain most of what follows.
  const warning = settings && sampleWarning(settings)
  if (warning) ctx.log.warn(warning)
  problems.throwIfAny()
  return { settings: settings!, local: local!, target: target!, stagingTarget, image, promote, planOut, approved }
}
