// `prisma migrate status` for both environments at once, and the questions it cannot answer:
// every local migration against staging and production (applied, pending, failed, rolled back,
// checksum mismatch, unknown on the remote), whether the production gate would pass, and for a
// failed migration (Prisma refuses every later deploy with P3009) the two ways out.
import chalk from 'chalk'
import { envFlag, main, type Context } from './lib/cli.js'
import { loadDatabaseTarget } from './lib/config.js'
import { connect } from './lib/db.js'
import { gateFindings } from './lib/gate.js'
import { publishTable } from './lib/log.js'
import { compareMigrations, listLocalMigrations, readMigrationRows, type MigrationRow, type MigrationState } from './lib/migrations.js'
import { ENVIRONMENTS, type Environment, shortName } from './lib/names.js'

const COLOUR: Record<MigrationState, (s: string) => string> = {
  applied: chalk.green,
  pending: chalk.yellow,
  failed: chalk.red,
  'rolled-back': chalk.magenta,
  'checksum-mismatch': chalk.red,
  'unknown-on-remote': chalk.red,
}

interface EnvironmentReport {
  reachable: boolean
  error?: string
  rows: MigrationRow[] | null
}

async function read(ctx: Context, env: Environment): Promise<EnvironmentReport> {
  const target = loadDatabaseTarget(ctx.envDir, env, ctx.log)
  try {
    const db = await connect({ ...ctx, env }, target)
    const rows = await readMigrationRows(db)
    await db.close()
    return { reachable: true, rows }
  } catch (error) {
    return { reachable: false, error: (error as Error).message, rows: null }
  }
}

await main({ name: 'migrate-status', usage: 'migrate-status [--json] [--env-dir DIR]', environment: false, options: { json: { type: 'boolean' } } }, async (ctx) => {
  const local = listLocalMigrations()
  const reports = Object.fromEntries(await Promise.all(ENVIRONMENTS.map(async (env) => [env, await read(ctx, env)] as const))) as Record<Environment, EnvironmentReport>
  const statuses = Object.fromEntries(ENVIRONMENTS.map((env) => [env, compareMigrations(local, reports[env].rows)])) as Record<Environment, ReturnType<typeof compareMigrations>>
  const findings = reports.staging.reachable && reports.production.reachable ? gateFindings(local, reports.staging.rows, reports.production.rows) : []
  const gateOk = reports.staging.reachable && reports.production.reachable && findings.length === 0

  if (ctx.flags.json || envFlag('JSON')) {
    const envJson = (env: Environment) => ({
      reachable: reports[env].reachable,
      ...(reports[env].error ? { error: reports[env].error } : {}),
      migrations: statuses[env].map((s) => ({ name: s.name, state: s.state, finished_at: s.row?.finished_at ?? null, rolled_back_at: s.row?.rolled_back_at ?? null, checksum: s.row?.checksum ?? null })),
    })
    ctx.log.result(JSON.stringify({ staging: envJson('staging'), production: envJson('production'), gate: { ok: gateOk, findings } }, null, 2))
  } else {
    const names = [...new Set([...local.map((m) => m.name), ...ENVIRONMENTS.flatMap((env) => statuses[env].map((s) => s.name))])]
    const cell = (env: Environment, name: string) => {
      if (!reports[env].reachable) return chalk.dim('unreachable')
      const state = statuses[env].find((s) => s.name === name)?.state
      return state ? COLOUR[state](state) : '-'
    }
    publishTable(ctx.log, 'migration status', ['migration', 'local', 'staging', 'production'], names.map((name) => [name, local.some((m) => m.name === name) ? 'yes' : chalk.red('missing'), cell('staging', name), cell('production', name)]))
    for (const env of ENVIRONMENTS) {
      if (!reports[env].reachable) ctx.log.error(`${env}: ${reports[env].error}`)
      for (const failed of statuses[env].filter((s) => s.state === 'failed')) {
        ctx.log.error(`${env}: ${failed.name} FAILED; Prisma refuses every later deploy (P3009) until it is resolved. Two ways out:`)
        ctx.log.info(`  1. undo it: make rollback-migration-${shortName(env)} NAME=${failed.name}   (runs its down.sql, marks it rolled back; the next deploy applies it again)`)
        ctx.log.info(`  2. finish it by hand on the database, then mark it applied: flyctl ssh console --app microbima-${env}-internal-api --command "sh -c 'cd /app && npx prisma migrate resolve --applied ${failed.name}'"`)
        if (failed.row?.logs) ctx.log.info(chalk.dim(failed.row.logs.split('\n').filter(Boolean).slice(-3).map((l) => `     ${l}`).join('\n')))
      }
    }
    ctx.log.result(gateOk ? chalk.green('production gate: would pass') : chalk.red(`production gate: would refuse${findings.length ? '' : ' (a database is unreachable)'}`))
    for (const f of findings) ctx.log.result(`  ${f.migration}: ${f.reason}`)
  }
  return ENVIRONMENTS.some((env) => !reports[env].reachable) ? 1 : 0
})
