// `make diff`: what staging runs that production does not, before promoting it: per app the image
// each environment runs, the migrations applied on one database and not the other, and the secret
// names one app has and the other lacks (names only: values differ between environments by design).
// Read-only.
import chalk from 'chalk'
import { main, type Context } from './lib/core/cli.js'
import { configuredDatabase, envFilePath, loadDatabaseTarget } from './lib/secrets/env-files.js'
import { UserError } from './lib/core/errors.js'
import { assertDistinct, connect } from './lib/database/db.js'
import { runningImage } from './lib/fleet/health.js'
import { publishTable, shortRef } from './lib/core/log.js'
import { readMigrationRows, type MigrationRow } from './lib/database/migrations.js'
import { type Environment, flyAppName } from './lib/core/names.js'
import { imageCounts } from './lib/fleet/rollback.js'

const appliedNames = (rows: MigrationRow[] | null) => new Set((rows ?? []).filter((r) => r.finished_at !== null && r.rolled_back_at === null).map((r) => r.migration_name))

/** The migrations applied on one database only. An environment not configured yet (no env file, or
 * CHANGE_ME still in it) or a database that does not answer leaves them uncompared, said in the
 * table (the latter exits 1); a configuration problem (the same database twice, a broken URL) is
 * an error (exit 2), as in every other target. */
async function migrations(ctx: Context): Promise<{ rows: string[][]; unreachable: boolean }> {
  const envs = ['staging', 'production'] as Environment[]
  const missing = envs.filter((env) => !configuredDatabase(ctx.envDir, env))
  if (missing.length) return { rows: [['(databases)', chalk.yellow('not compared'), missing.map((env) => `${env} is not configured (${envFilePath(ctx.envDir, env, 'internal-api')})`).join('; ')]], unreachable: false }
  const targets = await Promise.all(envs.map((env) => loadDatabaseTarget(ctx.envDir, env, ctx.log)))
  try {
    const [staging, production] = await Promise.all(envs.map((env, i) => connect(ctx, targets[i], env)))
    await assertDistinct(staging, production)
    const [s, p] = await Promise.all([readMigrationRows(staging), readMigrationRows(production)])
    const [a, b] = [appliedNames(s), appliedNames(p)]
    return { rows: [...new Set([...a, ...b])].sort().filter((name) => a.has(name) !== b.has(name)).map((name) => [name, a.has(name) ? 'applied' : chalk.yellow('not applied'), b.has(name) ? 'applied' : chalk.yellow('not applied')]), unreachable: false }
  } catch (error) {
    if (error instanceof UserError) throw error
    return { rows: [['(databases)', chalk.red('not compared'), (error as Error).message.split('\n')[0]]], unreachable: true }
  }
}

void main({ name: 'diff', usage: 'diff [--app KEY] [--env-dir DIR]', environment: false }, async (ctx) => {
  const fly = ctx.fly()
  const [apps, migrationRows] = await Promise.all([
    Promise.all(
      ctx.apps.map(async (key) => {
        const [s, p] = [flyAppName('staging', key), flyAppName('production', key)]
        const [ss, ps, sSecrets, pSecrets] = await Promise.all([fly.apps.status(s), fly.apps.status(p), fly.secrets.list(s), fly.secrets.list(p)])
        return { key, s, p, ss, ps, sNames: new Set(sSecrets.map((x) => x.name)), pNames: new Set(pSecrets.map((x) => x.name)) }
      }),
    ),
    migrations(ctx),
  ])
  publishTable(
    ctx.log,
    'images: staging → production',
    ['app', 'staging runs', 'production runs', ''],
    apps.map(({ key, s, ss, ps }) => {
      const [a, b] = [runningImage(ss), runningImage(ps)]
      return [key, a ? shortRef(a, s) : imageCounts(ss), b ? shortRef(b) : imageCounts(ps), a && a === b ? chalk.green('same') : chalk.yellow('differs')]
    }),
  )
  publishTable(ctx.log, 'migrations applied on one database only', ['migration', 'staging', 'production'], migrationRows.rows.length ? migrationRows.rows : [['(none)', '', '']])
  const secretRows = apps.flatMap(({ key, sNames, pNames }) => [...new Set([...sNames, ...pNames])].sort().filter((n) => sNames.has(n) !== pNames.has(n)).map((n) => [key, n, sNames.has(n) ? 'set' : chalk.yellow('missing'), pNames.has(n) ? 'set' : chalk.yellow('missing')]))
  publishTable(ctx.log, 'secret names set on one app only', ['app', 'secret', 'staging', 'production'], secretRows.length ? secretRows : [['(none)', '', '', '']])
  return migrationRows.unreachable ? 1 : 0
})
