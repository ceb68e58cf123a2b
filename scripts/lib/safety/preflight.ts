import type { Context } from '../core/cli.js'
import type { DatabaseTarget } from '../secrets/env-files.js'
import { confirmProduction } from './confirm.js'
import { assertDistinct, connect, type Database } from '../database/db.js'
import { gateFindings } from '../database/gate.js'
import { Refusal } from '../core/errors.js'
import { flushSpool } from './ledger.js'
import { lintPending } from '../database/lint.js'
import { refuseIfHeld } from './lock.js'
import { compareMigrations, estimateRows, pendingMigrations, readMigrationRows, type LocalMigration, type MigrationRow } from '../database/migrations.js'

// What every migrating pipeline does before its first change, all read-only (it runs in dry run
// too) and overlapped: connect to the environment's database and read its migrations, lint what
// is pending, for production connect to staging and pass the migration gate, plus whatever other
// reads the caller needs at the same time (flyctl status of the apps). Then the confirmation.

export interface Preflight {
  db: Database
  rows: MigrationRow[] | null
  local: LocalMigration[]
  pending: LocalMigration[]
  staging?: Database
  stagingRows?: MigrationRow[] | null
}

export interface PreflightInput {
  what: string
  target: DatabaseTarget
  stagingTarget?: DatabaseTarget
  local: LocalMigration[]
  /** Reads to overlap with the database ones. */
  alongside?: () => Promise<unknown>
  /** Production only: extra gate findings (the images' migrations), from staging's database. */
  imageGate?: (staging: Database, stagingRows: MigrationRow[] | null) => Promise<{ migration: string; reason: string }[]>
}

export async function preflight(ctx: Context, input: PreflightInput): Promise<Preflight> {
  const own = (async () => {
    const db = await connect(ctx, input.target)
    await flushSpool(ctx, db).catch((error) => ctx.log.warn(`could not write the spooled ledger entries: ${(error as Error).message}`))
    await refuseIfHeld(ctx, db)
    const rows = await readMigrationRows(db)
    const pendingNames = new Set(pendingMigrations(compareMigrations(input.local, rows)))
    const pending = input.local.filter((migration) => pendingNames.has(migration.name))
    await lintPending(ctx, pending, (table) => estimateRows(db, table))
    return { db, rows, pending }
  })()
  const staging = input.stagingTarget
    ? (async () => {
        const db = await connect(ctx, input.stagingTarget!, 'staging')
        return { db, rows: await readMigrationRows(db) }
      })()
    : Promise.resolve(undefined)
  const [mine, theirs] = await Promise.all([own, staging, input.alongside?.()])
  if (theirs) {
    await assertDistinct(theirs.db, mine.db)
    const findings = [...gateFindings(input.local, theirs.rows, mine.rows), ...((await input.imageGate?.(theirs.db, theirs.rows)) ?? [])]
    if (findings.length) {
      throw new Refusal(`migration gate: production is not safe to change (${findings.length} problem${findings.length === 1 ? '' : 's'}); nothing was changed`, findings.map((f) => `${f.migration}: ${f.reason}`))
    }
    ctx.log.ok('migration gate passed: every migration is applied on staging with the same checksum, and staging runs the image that carries them')
  }
  await confirmProduction(ctx, input.what)
  return { db: mine.db, rows: mine.rows, local: input.local, pending: mine.pending, staging: theirs?.db, stagingRows: theirs?.rows }
}
