// CI's way to the env files: each env/<env>/<app>.env is written from one GitHub secret per key
// (<APP>_<KEY>, e.g. INTERNAL_API_DATABASE_URL), the keys taken from the committed .env.example
// beside it. One key is then rotated and masked alone, and the list of secrets a workflow passes
// is generated from the examples, so it cannot drift from them (--check-workflow, and a test).
//
//   write-env-files <target> [--env-dir DIR] [--force]   write the files of the target
//   write-env-files [<target>] --print-workflow-env      the workflow step's `env:` block(s)
//   write-env-files --check-workflow                     exit 2 when a workflow's block differs
//
// Targets: staging, production (its three files, plus staging's internal-api DATABASE_URL from
// STAGING_INTERNAL_API_DATABASE_URL: the migration gate reads staging's database),
// staging-database (that one staging file alone: the pull-request migration status), and
// production-database (production's internal-api.env with DATABASE_URL alone: the restore drill).
// A missing, empty or unusable value fails with exit 2, naming every such secret, before any
// file is written. Values are never printed. NODE_ENV is set by the toolkit, never written.
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import dotenv from 'dotenv'
import { parse as parseYaml } from 'yaml'
import { main } from './lib/core/cli.js'
import { envFilePath } from './lib/secrets/env-files.js'
import { UserError } from './lib/core/errors.js'
import { APP_KEYS, type AppKey, type Environment } from './lib/core/names.js'
import { registerSecret } from './lib/secrets/mask.js'
import { encodeSecret } from './lib/secrets/stdin.js'

export const TARGETS = ['staging', 'production', 'staging-database', 'production-database'] as const
export type Target = (typeof TARGETS)[number]

/** The secret that carries staging's database URL into production's gate and the PR check. */
export const STAGING_DATABASE_SECRET = 'STAGING_INTERNAL_API_DATABASE_URL'

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/

export interface EnvFilePlan {
  env: Environment
  app: AppKey
  /** key in the env file → name of the environment variable (and GitHub secret) holding its value */
  keys: Array<{ key: string; variable: string }>
}

export const upperSnake = (app: AppKey) => app.toUpperCase().replace(/-/g, '_')

/** The keys of env/<env>/<app>.env.example, in file order, less NODE_ENV (the toolkit sets it). */
export function exampleKeys(env: Environment, app: AppKey, examplesDir = 'env'): string[] {
  const path = join(examplesDir, env, `${app}.env.example`)
  if (!existsSync(path)) throw new UserError(`${path} not found: every app needs its committed .env.example, the list of its secrets`)
  const keys = Object.keys(dotenv.parse(readFileSync(path, 'utf8'))).filter((key) => key !== 'NODE_ENV')
  for (const key of keys) {
    if (!KEY.test(key)) throw new UserError(`${path}: ${key} cannot be a GitHub secret or Fly secret name (letters, digits and _, not starting with a digit): rename it`)
  }
  return keys
}

/** Which files a target writes, and from which variables. */
export function planTarget(target: Target, examplesDir = 'env'): EnvFilePlan[] {
  const perKey = (env: Environment): EnvFilePlan[] =>
    APP_KEYS.map((app) => ({ env, app, keys: exampleKeys(env, app, examplesDir).map((key) => ({ key, variable: `${upperSnake(app)}_${key}` })) }))
  const stagingDatabase: EnvFilePlan = { env: 'staging', app: 'internal-api', keys: [{ key: 'DATABASE_URL', variable: STAGING_DATABASE_SECRET }] }
  // The restore drill reads production's database only: its URL, from the same secret production uses.
  const productionDatabase: EnvFilePlan = { env: 'production', app: 'internal-api', keys: [{ key: 'DATABASE_URL', variable: `${upperSnake('internal-api')}_DATABASE_URL` }] }
  const plans = target === 'staging' ? perKey('staging') : target === 'production' ? [...perKey('production'), stagingDatabase] : target === 'production-database' ? [productionDatabase] : [stagingDatabase]
  // GitHub secret names are case-insensitive: two keys that differ only in case would share one.
  const seen = new Map<string, string>()
  for (const { keys } of plans) {
    for (const { variable } of keys) {
      const other = seen.get(variable.toUpperCase())
      if (other !== undefined) throw new UserError(`${other} and ${variable} would be the same GitHub secret (names ignore case): rename one key in its .env.example`)
      seen.set(variable.toUpperCase(), variable)
    }
  }
  return plans
}

/** The workflow step's `env:` entries for a target: each variable from the secret of the same name. */
export function workflowEnv(target: Target, examplesDir = 'env'): Record<string, string> {
  return Object.fromEntries(planTarget(target, examplesDir).flatMap((p) => p.keys.map(({ variable }) => [variable, `\${{ secrets.${variable} }}`])))
}

export function printWorkflowEnv(target: Target, examplesDir = 'env'): string {
  return ['env:', ...Object.entries(workflowEnv(target, examplesDir)).map(([name, value]) => `  ${name}: ${value}`)].join('\n')
}

/**
 * The text after `KEY=` that dotenv (the parser scripts/lib/secrets/envfile.ts uses) reads back as exactly
 * `value`, or why none does. Quoted forms keep every byte; dotenv's single quotes and backticks
 * expand nothing, its double quotes expand \n and \r, and in every quoted form a backslash before
 * the closing quote reads as an escaped quote, which can swallow the lines after it.
 */
export function dotenvValue(value: string): { text: string } | { problem: string } {
  const candidates: string[] = []
  if (!value.endsWith('\\')) {
    if (!value.includes("'")) candidates.push(`'${value}'`)
    if (!value.includes('`')) candidates.push(`\`${value}\``)
    if (!value.includes('"') && !/\\[nr]/.test(value)) candidates.push(`"${value}"`)
  }
  // Unquoted: one line, no comment sign, nothing dotenv would trim or take for a quote.
  if (/^[^\s'"`#][^\n\r#]*$/.test(value) && !/\s$/.test(value)) candidates.push(value)
  for (const text of candidates) if (dotenv.parse(`K=${text}\n`).K === value) return { text }
  if (value.includes('\r')) return { problem: 'contains a carriage return, which dotenv turns into a newline' }
  return { problem: "holds ', ` and \" together, or ends with a backslash after such a mix, which no dotenv quoting carries byte for byte" }
}

/** Renders one env file, or the problems of its values (keyed by variable name, values never shown). */
export function renderEnvFile(plan: EnvFilePlan, source: NodeJS.ProcessEnv): { text: string; problems: string[] } {
  const problems: string[] = []
  const lines = [`# Written by scripts/write-env-files.ts from one secret per key (${plan.keys.map((k) => k.variable).join(', ')}). Never commit it.`]
  const expected: Record<string, string> = {}
  for (const { key, variable } of plan.keys) {
    const value = source[variable]
    if (value === undefined || value === '') {
      problems.push(`${variable}: missing or empty (the value of ${key} in ${plan.env}/${plan.app}.env)`)
      continue
    }
    registerSecret(value)
    if (value.includes('CHANGE_ME')) {
      problems.push(`${variable}: still holds the CHANGE_ME placeholder of the .env.example`)
      continue
    }
    const flyctl = encodeSecret(key, value)
    if ('problem' in flyctl) {
      problems.push(`${variable}: ${flyctl.problem}, so flyctl secrets import cannot take it`)
      continue
    }
    const encoded = dotenvValue(value)
    if ('problem' in encoded) {
      problems.push(`${variable}: ${encoded.problem}`)
      continue
    }
    lines.push(`${key}=${encoded.text}`)
    expected[key] = value
  }
  const text = `${lines.join('\n')}\n`
  if (!problems.length) {
    // The whole file must read back as written, as the toolkit's reader will see it.
    const parsed = dotenv.parse(text)
    for (const { key, variable } of plan.keys) if (parsed[key] !== expected[key]) problems.push(`${variable}: does not read back unchanged from the env file`)
    for (const key of Object.keys(parsed)) if (!(key in expected)) problems.push(`${key}: appears in the written file but is no key of the example`)
  }
  return { text, problems }
}

/** Writes with mode 0600 whatever the umask: a new file next to the target, chmod, then rename. */
function writePrivate(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
  writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' })
  chmodSync(temporary, 0o600)
  renameSync(temporary, path)
}

export function writeEnvFiles(target: Target, options: { envDir: string; source?: NodeJS.ProcessEnv; force?: boolean; examplesDir?: string }): string[] {
  const source = options.source ?? process.env
  const plans = planTarget(target, options.examplesDir)
  const rendered = plans.map((plan) => ({ path: envFilePath(options.envDir, plan.env, plan.app), ...renderEnvFile(plan, source) }))
  const problems = rendered.flatMap((r) => r.problems)
  if (problems.length) {
    throw new UserError(`${problems.length} secret(s) of the ${target} env files are missing or unusable; nothing was written:`, undefined, [...problems, "set each as a secret of the workflow job's GitHub environment (README, CI/CD)"])
  }
  const existing = rendered.filter((r) => existsSync(r.path)).map((r) => r.path)
  if (existing.length && !options.force) {
    throw new UserError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}: this script writes env files in CI from secrets; --force replaces them`)
  }
  for (const { path, text } of rendered) writePrivate(path, text)
  return rendered.map((r) => r.path)
}

/** Finds the workflow steps that write env files, and what their `env:` blocks lack or add. */
export function checkWorkflows(dir = '.github/workflows', examplesDir = 'env'): { checked: string[]; drift: string[] } {
  const checked: string[] = []
  const drift: string[] = []
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)) : []
  for (const file of files) {
    const workflow = parseYaml(readFileSync(join(dir, file), 'utf8')) as { jobs?: Record<string, { steps?: Array<{ name?: string; run?: string; env?: Record<string, unknown> }> }> }
    for (const [jobName, job] of Object.entries(workflow?.jobs ?? {})) {
      for (const [index, step] of (job.steps ?? []).entries()) {
        const match = /write-env-files(?:\.ts|\.mjs)?\s+([a-z-]+)/.exec(step.run ?? '')
        if (!match) continue
        const where = `${dir}/${file} ${jobName} step ${step.name ? `"${step.name}"` : index + 1}`
        if (!(TARGETS as readonly string[]).includes(match[1])) {
          drift.push(`${where}: unknown target ${match[1]} (use ${TARGETS.join(', ')})`)
          continue
        }
        checked.push(where)
        const want = workflowEnv(match[1] as Target, examplesDir)
        const have = step.env ?? {}
        for (const [name, value] of Object.entries(want)) {
          if (!(name in have)) drift.push(`${where}: lacks ${name}: ${value}`)
          else if (have[name] !== value) drift.push(`${where}: ${name} must be ${value}`)
        }
        for (const name of Object.keys(have)) if (!(name in want)) drift.push(`${where}: ${name} is no key of the ${match[1]} examples: remove it`)
      }
    }
  }
  return { checked, drift }
}

// Imported by the tests for its functions; run as a script otherwise.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(
    {
      name: 'write-env-files',
      usage: `write-env-files <${TARGETS.join('|')}> [--env-dir DIR] [--force] | [<target>] --print-workflow-env | --check-workflow`,
      environment: false,
      positionals: 1,
      options: { force: { type: 'boolean' }, 'print-workflow-env': { type: 'boolean' }, 'check-workflow': { type: 'boolean' } },
    },
    async (ctx) => {
      const [given] = ctx.positionals
      if (given !== undefined && !(TARGETS as readonly string[]).includes(given === 'prod' ? 'production' : given)) {
        throw new UserError(`unknown target "${given}": use ${TARGETS.join(', ')}`)
      }
      const target = (given === 'prod' ? 'production' : given) as Target | undefined
      if (ctx.flags['check-workflow']) {
        const { checked, drift } = checkWorkflows()
        if (drift.length) throw new UserError(`the workflows' env blocks differ from the .env.example keys (print them with --print-workflow-env):`, undefined, drift)
        ctx.log.ok(`${checked.length} workflow step(s) pass exactly the secrets the examples name`)
        return
      }
      if (ctx.flags['print-workflow-env']) {
        const targets = target ? [target] : TARGETS
        ctx.log.result(targets.map((t) => `${targets.length > 1 ? `# write-env-files ${t}\n` : ''}${printWorkflowEnv(t)}`).join('\n\n'))
        return
      }
      if (!target) throw new UserError(`no target given: usage: write-env-files <${TARGETS.join('|')}>`)
      const written = writeEnvFiles(target, { envDir: ctx.envDir, force: Boolean(ctx.flags.force) })
      ctx.log.ok(`wrote ${written.join(', ')} (mode 0600; values not shown)`)
    },
  )
}
