// `prisma migrate status` for both environments at once, and the questions it cannot answer:
// every local migration against staging and production (applied, pending, failed, rolled back,
// checksum mismatch, unknown on the remote), whether the production gate would pass, and for a
// failed migration (Prisma refuses every later deploy with P3009) the two ways out. An
// environment whose env file is not there yet (the pull-request workflow writes only staging's;
// a first-time setup copied production's .env.example) is reported as not configured.
import { existsSync } from 'node:fs'
import chalk from 'chalk'
import { envFlag, main, type Context } from './lib/core/cli.js'
import { envFilePath, loadDatabaseTarget, readText, type DatabaseTarget } from './lib/secrets/env-files.js'
import { assertDistinct, connect, type Database } from './lib/database/db.js'
import { parseEnvText } from './lib/secrets/envfile.js'
import { UserError } from './lib/core/errors.js'
import { gateFindings } from './lib/database/gate.js'
import { publishTable } from './lib/core/log.js'
import { compareMigrations, listLocalMigrations, readMigrationRows, type MigrationRow, type MigrationState } from './lib/database/migrations.js'
import { ENVIRONMENTS, type Environment, flyAppName, shortName } from './lib/core/names.js'

const COLOUR: Record<MigrationState, (s: string) => string> = {
  applied: chalk.green,
  pending: chalk.yellow,
  failed: chalk.red,
  'rolled-back': chalk.magenta,
  'checksum-mismatch': chalk.red,
  'unknown-on-remote': chalk.red,
}

interface EnvironmentReport {
  state: 'reachable' | 'unreachable' | 'not configured'
  note?: string
  rows: MigrationRow[] | null
  db?: Database
}

/** The environment's database target, or why it is not configured yet (not an error). */
async function targetOf(ctx: Context, env: Environment): Promise<DatabaseTarget | string> {
  const path = envFilePath(ctx.envDir, env, 'internal-api')
  if (!existsSync(path)) return `not configured (${path} not found)`
  const values = parseEnvText(path, readText(path)).values
  if (!values.DATABASE_URL || values.DATABASE_URL.includes('CHANGE_ME')) return `not configured (${path} has no DATABASE_URL yet)`
  return loadDatabaseTarget(ctx.envDir, env, ctx.log)
}

async function read(ctx: Context, env: Environment, target: DatabaseTarget | string): Promise<EnvironmentReport> {
  if (typeof target === 'string') return { state: 'not configured', note: target, rows: null }
  try {
    const db = await connect(ctx, target, env)
    return { state: 'reachable', rows: await readMigrationRows(db), db }
  } catch (error) {
    if (error instanceof UserError) throw error
    return { state: 'unreachable', note: (error as Error).message, rows: null }
  }
}

void main({ name: 'migrate-status', usage: 'migrate-status [--json] [--env-dir DIR]', environment: false, options: { json: { type: 'boolean' } } }, async (ctx) => {
  const local = listLocalMigrations()
  // Configuration first, both environments, every problem together (exit 2).
  const problems: string[] = []
  const targets = await Promise.all(ENVIRONMENTS.map((env) => targetOf(ctx, env).catch((error) => {
    if (!(error instanceof UserError)) throw error
    problems.push(...error.problems)
    return ''
  })))
  if (problems.length) throw new UserError([...new Set(problems)])
  const list = await Promise.all(ENVIRONMENTS.map((env, i) => read(ctx, env, targets[i])))
  const reports = Object.fromEntries(ENVIRONMENTS.map((env, i) => [env, list[i]])) as Record<Environment, EnvironmentReport>
  if (reports.staging.db && reports.production.db) await assertDistinct(reports.staging.db, reports.production.db)
  const statuses = Object.fromEntries(ENVIRONMENTS.map((env) => [env, compareMigrations(local, reports[env].rows)])) as Record<Environment, ReturnType<typeof compareMigrations>>
  const both = reports.staging.state === 'reachable' && reports.production.state === 'reachable'
  const findings = both ? gateFindings(local, reports.staging.rows, reports.production.rows) : []
  const gateOk = both && findings.length === 0
  const gateText = gateOk ? 'would pass' : both ? 'would refuse' : `cannot tell (${ENVIRONMENTS.filter((e) => reports[e].state !== 'reachable').map((e) => `${e} is ${reports[e].state}`).join(', ')})`

  if (ctx.flags.json || envFlag('JSON')) {
    const envJson = (env: Environment) => ({
      state: reports[env].state,
      reachable: reports[env].state === 'reachable',
      ...(reports[env].note ? { note: reports[env].note } : {}),
      migrations: reports[env].state === 'reachable' ? statuses[env].map((s) => ({ name: s.name, state: s.state, finished_at: s.row?.finished_at ?? null, rolled_back_at: s.row?.rolled_back_at ?? null, checksum: s.row?.checksum ?? null })) : [],
    })
    ctx.log.result(JSON.stringify({ staging: envJson('staging'), production: envJson('production'), gate: { ok: gateOk, decided: both, findings } }, null, 2))
  } else {
    const names = [...new Set([...local.map((m) => m.name), ...ENVIRONMENTS.flatMap((env) => statuses[env].map((s) => s.name))])]
    const cell = (env: Environment, name: string) => {
      if (reports[env].state !== 'reachable') return chalk.dim(reports[env].state)
      const state = statuses[env].find((s) => s.name === name)?.state
      return state ? COLOUR[state](state) : '-'
    }
    publishTable(ctx.log, 'migration status', ['migration', 'local', 'staging', 'production'], names.map((name) => [name, local.some((m) => m.name === name) ? 'yes' : chalk.red('missing'), cell('staging', name), cell('production', name)]))
    for (const env of ENVIRONMENTS) {
      if (reports[env].state === 'unreachable') ctx.log.error(`${env}: ${reports[env].note}`)
      if (reports[env].state === 'not configured') ctx.log.info(`${env}: ${reports[env].note}`)
      for (const failed of statuses[env].filter((s) => s.state === 'failed')) {
        ctx.log.error(`${env}: ${failed.name} FAILED (or is still running); Prisma refuses every later deploy (P3009) until it is resolved. Two ways out:`)
        ctx.log.info(`  1. undo it: make rollback-migration-${shortName(env)} NAME=${failed.name}   (runs its down.sql, marks it rolled back; the next deploy applies it again)`)
        ctx.log.info(`  2. finish it by hand on the database, then mark it applied: flyctl ssh console --app ${flyAppName(env, 'internal-api')} --command "sh -c 'cd /app && npx prisma migrate resolve --applied ${failed.name}'"`)
        if (failed.row?.logs) ctx.log.info(chalk.dim(failed.row.logs.split('\n').filter(Boolean).slice(-3).map((l) => `     ${l}`).join('\n')))
      }
    }
    ctx.log.result(gateOk ? chalk.green('production gate: would pass') : both ? chalk.red('production gate: would refuse') : chalk.yellow(`production gate: ${gateText}`))
    for (const f of findings) ctx.log.result(`  ${f.migration}: ${f.reason}`)
  }
  return ENVIRONMENTS.some((env) => reports[env].state === 'unreachable') ? 1 : 0
})
