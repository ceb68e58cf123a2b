import { join } from 'node:path'
import type { Database } from '../database/db.js'
import { compareMigrations, domainRowCounts, migrationsFolder, readMigrationRows, type LocalMigration, type MigrationRow } from '../database/migrations.js'

// Step 4 of a restore drill: the restored copy against the live database. Every table of the live
// schema must be in the copy, and readable (its rows counted: the copy's numbers are read from the
// copy, never from the live database); `_prisma_migrations` in the copy must be complete, with
// checksums equal to the local migration files. Row counts differ by what was written after the
// backup: that is shown, not counted as a problem. A migration the live database applied after the
// backup was taken is missing from the copy by right; one applied before it is a problem.

export interface Side {
  counts: Record<string, number>
  migrations: MigrationRow[] | null
}

export interface CheckResult {
  tables: { name: string; restored: number | null; live: number }[]
  migrations: { restored: number; live: number }
  problems: string[]
  /** What is worth saying but is not a problem (migrations applied after the backup). */
  notes: string[]
}

/** What the check reads from one database. */
export async function readSide(db: Database): Promise<Side> {
  return { counts: await domainRowCounts(db), migrations: await readMigrationRows(db) }
}

const appliedRows = (rows: MigrationRow[] | null) => (rows ?? []).filter((r) => r.finished_at !== null && r.rolled_back_at === null)
const at = (d: Date) => new Date(d).toISOString().replace(/\.\d+Z$/, 'Z')

export function check(live: Side, restored: Side, local: LocalMigration[], takenAt: Date | undefined): CheckResult {
  const problems: string[] = []
  const notes: string[] = []
  const liveApplied = new Map(appliedRows(live.migrations).map((r) => [r.migration_name, r]))
  const after = (name: string) => {
    const row = liveApplied.get(name)
    return row?.finished_at && takenAt !== undefined && new Date(row.finished_at).getTime() > takenAt.getTime()
  }
  const missingAfter: string[] = []
  if (restored.migrations === null && live.migrations !== null) {
    problems.push('_prisma_migrations is missing from the restored copy')
  } else if (restored.migrations !== null) {
    for (const status of compareMigrations(local, restored.migrations)) {
      const file = join(migrationsFolder(), status.name, 'migration.sql')
      if (status.state === 'checksum-mismatch') problems.push(`${status.name}: its checksum in the restored copy differs from the local ${file}`)
      else if (status.state === 'failed') problems.push(`${status.name}: started and never finished in the restored copy`)
      else if (status.state === 'unknown-on-remote') problems.push(`${status.name}: in the restored copy's _prisma_migrations, but there is no such local migration`)
      else if (status.state === 'pending' || status.state === 'rolled-back') {
        const row = liveApplied.get(status.name)
        if (!row) continue // not applied on the live database either: not deployed yet
        if (after(status.name)) {
          missingAfter.push(status.name)
          notes.push(`${status.name}: applied on the live database at ${at(row.finished_at!)}, after the backup: not in the copy, as expected`)
        } else problems.push(`${status.name}: applied on the live database${row.finished_at ? ` at ${at(row.finished_at)}` : ''}, before the backup, but missing from the restored copy`)
      }
    }
  }
  const tables = Object.entries(live.counts).map(([name, rows]) => ({ name, restored: restored.counts[name] ?? null, live: rows }))
  for (const table of tables.filter((t) => t.restored === null)) {
    const why = missingAfter.length ? ` (the backup predates ${missingAfter.join(', ')}: a newer backup has it)` : ''
    problems.push(`table ${table.name} of the live schema is missing from the restored copy${why}`)
  }
  return { tables, migrations: { restored: appliedRows(restored.migrations).length, live: liveApplied.size }, problems, notes }
}
