import type { Context } from './cli.js'
import { loadDatabaseTarget } from './config.js'
import { confirmProduction } from './confirm.js'
import { connect, type Database } from './db.js'
import { migrationGate } from './gate.js'
import { lintPending } from './lint.js'
import { compareMigrations, estimateRows, listLocalMigrations, pendingMigrations, readMigrationRows, type LocalMigration } from './migrations.js'

// What every migrating pipeline does before its first change: read the environment's migration
// state, lint what is pending, and for production pass the migration gate against staging and
// ask for confirmation. All of it is read-only and runs in dry run too.

export interface Preflight {
  db: Database
  local: LocalMigration[]
  pending: LocalMigration[]
}

export async function preflight(ctx: Context, what: string): Promise<Preflight> {
  const target = loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
  const local = listLocalMigrations()
  const db = await connect(ctx, target)
  const pendingNames = new Set(pendingMigrations(compareMigrations(local, await readMigrationRows(db))))
  const pending = local.filter((migration) => pendingNames.has(migration.name))
  if (ctx.env === 'production') {
    const staging = await connect({ ...ctx, env: 'staging' }, loadDatabaseTarget(ctx.envDir, 'staging', ctx.log))
    await migrationGate(ctx, staging, db, local)
    await staging.close()
    ctx.log.ok('migration gate passed: every local migration is applied on staging with the same checksum')
  }
  await lintPending(ctx, pending, (table) => estimateRows(db, table))
  await confirmProduction(ctx, what)
  return { db, local, pending }
}
