import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { checksumOf, scriptMatchesChecksum } from './checksum.js'
import { UserError } from '../core/errors.js'
import { tableExists, type Database } from './db.js'
import { loadSettings, migrationsDir } from '../core/settings.js'

// The local migrations (the folder infra/fly/settings.json names) against the `_prisma_migrations`
// table, the way Prisma reads both: folders sorted with localeCompare, a migration counts as
// applied when a row with its name has finished_at set and rolled_back_at null.

export interface LocalMigration {
  name: string
  dir: string
  script: string
  checksum: string
  downPath: string
}

export interface MigrationRow {
  id: string
  checksum: string
  finished_at: Date | null
  migration_name: string
  logs: string | null
  rolled_back_at: Date | null
  started_at: Date
  applied_steps_count: number
}

export type MigrationState = 'applied' | 'pending' | 'failed' | 'rolled-back' | 'checksum-mismatch' | 'unknown-on-remote'

export interface MigrationStatus {
  name: string
  state: MigrationState
  row?: MigrationRow
}

/** The migrations folder the settings name (relative paths shown in messages stay readable). */
export function migrationsFolder(): string {
  const dir = migrationsDir(loadSettings())
  return relative(process.cwd(), dir) || '.'
}

/** Local migrations as Prisma lists them: folders sorted with localeCompare, each with migration.sql. */
export function listLocalMigrations(base = migrationsFolder()): LocalMigration[] {
  let entries: string[]
  try {
    entries = readdirSync(base)
  } catch (error) {
    throw new UserError(`cannot read ${base} (${(error as NodeJS.ErrnoException).code}): fix "prisma.migrations" in infra/fly/settings.json`)
  }
  return entries
    .filter((name) => {
      const path = join(base, name)
      let stat
      try {
        stat = statSync(path)
      } catch {
        // A dangling symlink (or an entry removed while reading) is not a migration, and says so.
        throw new UserError(`${path} is a broken link: remove it or point it at a migration folder`)
      }
      return stat.isDirectory()
    })
    .sort((a, b) => a.localeCompare(b))
    .map((name) => {
      const dir = join(base, name)
      const file = join(dir, 'migration.sql')
      if (!existsSync(file)) throw new UserError(`${dir} has no migration.sql: add it or remove the folder`)
      // A pipe or a device would block the read for ever.
      if (!statSync(file).isFile()) throw new UserError(`${file} is not a regular file: make it a plain file`)
      let script: string
      try {
        script = readFileSync(file, 'utf8')
      } catch (error) {
        throw new UserError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code}): check its permissions`)
      }
      const downPath = join(dir, 'down.sql')
      if (existsSync(downPath) && !statSync(downPath).isFile()) throw new UserError(`${downPath} is not a regular file: make it a plain file`)
      return { name, dir, script, checksum: checksumOf(script), downPath }
    })
}

/** Rows of `_prisma_migrations` ordered as Prisma reads them, or null when the table does not exist. */
export async function readMigrationRows(db: Database): Promise<MigrationRow[] | null> {
  if (!(await tableExists(db, '_prisma_migrations'))) return null
  return db.query<MigrationRow>('SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name')
}

const isApplied = (row: MigrationRow) => row.finished_at !== null && row.rolled_back_at === null
const isFailed = (row: MigrationRow) => row.finished_at === null && row.rolled_back_at === null

export function compareMigrations(local: LocalMigration[], rows: MigrationRow[] | null): MigrationStatus[] {
  const all = rows ?? []
  const result: MigrationStatus[] = local.map((migration) => {
    const own = all.filter((row) => row.migration_name === migration.name)
    const applied = own.filter(isApplied).at(-1)
    if (applied) {
      const state = scriptMatchesChecksum(migration.script, applied.checksum) ? 'applied' : 'checksum-mismatch'
      return { name: migration.name, state, row: applied }
    }
    const failed = own.filter(isFailed).at(-1)
    if (failed) return { name: migration.name, state: 'failed', row: failed }
    if (own.length) return { name: migration.name, state: 'rolled-back', row: own.at(-1) }
    return { name: migration.name, state: 'pending' }
  })
  const known = new Set(local.map((migration) => migration.name))
  for (const row of all) {
    if (!known.has(row.migration_name) && row.rolled_back_at === null && !result.some((r) => r.name === row.migration_name)) {
      result.push({ name: row.migration_name, state: 'unknown-on-remote', row })
    }
  }
  return result
}

/** Migrations `prisma migrate deploy` would apply next (pending or rolled back). */
export function pendingMigrations(statuses: MigrationStatus[]): string[] {
  return statuses.filter((s) => s.state === 'pending' || s.state === 'rolled-back').map((s) => s.name)
}

/** Row counts of the domain tables (every table in the schema but Prisma's own), to make data loss visible. */
export async function domainRowCounts(db: Database): Promise<Record<string, number>> {
  const tables = await db.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations' ORDER BY table_name",
  )
  const counts: Record<string, number> = {}
  for (const { name } of tables) {
    const [{ count }] = await db.query<{ count: string }>(`SELECT count(*) AS count FROM "${name.replace(/"/g, '""')}"`)
    counts[name] = Number(count)
  }
  return counts
}

/** Postgres' own row estimate for a table (0 when it does not exist yet): cheap on a big table. */
export async function estimateRows(db: Database, table: string): Promise<number> {
  const [row] = await db.query<{ rows: string }>("SELECT GREATEST(reltuples, 0)::bigint AS rows FROM pg_class WHERE relname = $1 AND relkind = 'r'", [table])
  return Number(row?.rows ?? 0)
}
