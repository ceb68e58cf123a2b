import { readFileSync, statSync, writeFileSync } from 'node:fs'
import type { Context } from '../core/cli.js'
import { Refusal, UserError } from '../core/errors.js'
import { appendSummary } from '../core/log.js'
import { APP_KEYS, type AppKey, isAppKey } from '../core/names.js'
import { isObject } from '../core/shape.js'
import type { LocalMigration } from '../database/migrations.js'
import { commitOf } from './label.js'
import type { AppOutcome } from './outcome.js'

// The production plan (the interface's "Plan, then approve"): DRY_RUN=1 PLAN_OUT=plan.json writes
// what a deploy would do; PLAN=plan.json refuses (exit 3) a deploy that would do anything else.

export interface Plan {
  environment: string
  images: Record<string, { running: string | null; deploy: string | null }>
  migrations: { name: string; checksum: string }[]
  /** Secrets staged on Fly that this deploy would apply (names only). */
  secrets: Record<string, string[]>
}


/** What a production deploy would do: the images (what runs, what it would deploy), the migrations
 * it would apply, the staged secrets it would apply. */
export async function makePlan(ctx: Context, pending: LocalMigration[], outcomes: AppOutcome[], images: Map<AppKey, string>): Promise<Plan> {
  const staged = await Promise.all(outcomes.map(async (o) => [o.key, (await ctx.fly().secrets.list(o.app)).filter((s) => s.status === 'Staged' || s.status === 'Partial').map((s) => s.name).sort()] as const))
  return {
    environment: ctx.env,
    images: Object.fromEntries(outcomes.map((o) => [o.key, { running: o.before ?? null, deploy: images.get(o.key) ?? null }])),
    migrations: pending.map((m) => ({ name: m.name, checksum: m.checksum })),
    secrets: Object.fromEntries(staged),
  }
}

export function readPlan(path: string): Plan {
  let plan: Plan
  try {
    // A regular file only: a FIFO or a device would block the run.
    if (!statSync(path).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' })
    plan = JSON.parse(readFileSync(path, 'utf8')) as Plan
  } catch (error) {
    throw new UserError(`PLAN=${path} cannot be read as a plan (${(error as NodeJS.ErrnoException).code ?? (error as Error).message.split('\n')[0]}): pass the plan.json that DRY_RUN=1 PLAN_OUT= wrote`)
  }
  const wrong = planShapeProblem(plan)
  if (wrong) throw new UserError(`PLAN=${path} is not a plan written by PLAN_OUT= (${wrong}): pass the plan.json that DRY_RUN=1 PLAN_OUT= wrote`)
  return plan
}

/** What makes a value not a Plan (the shape writePlan writes), or undefined. */
function planShapeProblem(plan: unknown): string | undefined {
  const isText = (v: unknown) => typeof v === 'string' && v !== ''
  if (!isObject(plan)) return 'it is not a JSON object'
  const known = ['environment', 'images', 'migrations', 'secrets']
  const extra = Object.keys(plan).find((k) => !known.includes(k))
  if (extra !== undefined) return `unknown key "${extra}"`
  if (!isText(plan.environment)) return '"environment" must be a string'
  if (!isObject(plan.images)) return '"images" must be an object of apps'
  for (const [key, image] of Object.entries(plan.images)) {
    if (!isAppKey(key)) return `"images" names "${key}", which is not an app (${APP_KEYS.join(', ')})`
    if (!isObject(image)) return `"images.${key}" must be {"running": …, "deploy": …}`
    const extraField = Object.keys(image).find((k) => k !== 'running' && k !== 'deploy')
    if (extraField !== undefined) return `"images.${key}" has unknown key "${extraField}"`
    for (const field of ['running', 'deploy']) if (image[field] !== null && !isText(image[field])) return `"images.${key}.${field}" must be an image reference or null`
  }
  if (!Array.isArray(plan.migrations)) return '"migrations" must be a list'
  for (const [i, migration] of plan.migrations.entries()) {
    if (!isObject(migration) || !isText(migration.name) || !isText(migration.checksum) || Object.keys(migration).length !== 2) return `"migrations[${i}]" must be {"name": …, "checksum": …}`
  }
  if (!isObject(plan.secrets)) return '"secrets" must be an object of apps'
  for (const [key, names] of Object.entries(plan.secrets)) {
    if (!isAppKey(key)) return `"secrets" names "${key}", which is not an app (${APP_KEYS.join(', ')})`
    if (!Array.isArray(names) || !names.every(isText)) return `"secrets.${key}" must be a list of secret names`
  }
  return undefined
}

export function writePlan(ctx: Context, path: string, plan: Plan): void {
  try {
    writeFileSync(path, JSON.stringify(plan, null, 2) + '\n')
  } catch (error) {
    throw new UserError(`PLAN_OUT=${path} cannot be written (${(error as NodeJS.ErrnoException).code}): choose a writable path`)
  }
  const commit = (ref: string | null) => (ref && commitOf(ref) ? ` (commit ${commitOf(ref)})` : '')
  const rows = Object.entries(plan.images).map(([key, i]) => `| ${key} | ${i.running ?? '-'}${commit(i.running)} | ${i.deploy ?? 'build from source'}${commit(i.deploy)} |`)
  appendSummary(ctx.log, ['### Plan: deploy production', '', '| app | runs now | would deploy |', '| --- | --- | --- |', ...rows, '', `Migrations to apply: ${plan.migrations.map((m) => m.name).join(', ') || 'none'}`, '', `Staged secrets this deploy applies: ${Object.entries(plan.secrets).filter(([, n]) => n.length).map(([k, n]) => `${k}: ${n.join(', ')}`).join('; ') || 'none'}`, ''].join('\n'))
  ctx.log.ok(`plan written to ${path}`)
}

/** The deploy refuses (exit 3) when what it would do is not what was approved. */
export function comparePlans(approved: Plan, now: Plan): void {
  const differences: string[] = []
  if (approved.environment !== now.environment) differences.push(`environment: approved ${approved.environment}, now ${now.environment}`)
  for (const key of new Set([...Object.keys(approved.images), ...Object.keys(now.images)])) {
    const a = approved.images[key]?.deploy ?? null
    const b = now.images[key]?.deploy ?? null
    if (a !== b) differences.push(`${key}: approved ${a ?? 'none'}, would now deploy ${b ?? 'none'}`)
  }
  const names = (list: { name: string; checksum: string }[]) => list.map((m) => `${m.name}@${m.checksum.slice(0, 12)}`).join(', ')
  if (names(approved.migrations) !== names(now.migrations)) differences.push(`migrations: approved [${names(approved.migrations)}], would now apply [${names(now.migrations)}]`)
  for (const key of new Set([...Object.keys(approved.secrets ?? {}), ...Object.keys(now.secrets)])) {
    if ((approved.secrets?.[key] ?? []).join(',') !== (now.secrets[key] ?? []).join(',')) differences.push(`${key} staged secrets: approved [${(approved.secrets?.[key] ?? []).join(', ')}], now [${(now.secrets[key] ?? []).join(', ')}]`)
  }
  if (differences.length) throw new Refusal('what this deploy would do differs from the approved plan: nothing was changed', differences)
}
