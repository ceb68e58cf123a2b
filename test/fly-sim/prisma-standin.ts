import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { checksumOf } from '../../scripts/lib/checksum.ts'

// What `prisma migrate deploy` does on the internal API's machine, for the simulator: Prisma's
// `_prisma_migrations` DDL and row semantics (shared/reference/prisma.md §1–§2). Each script runs
// as ONE simple-protocol query, i.e. one implicit transaction (the behaviour of the engine source
// the reference could read; newer engines may split statements — the real engine runs on Fly).

const DDL = `CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`

export interface StandinResult {
  status: number
  stdout: string
  stderr: string
}

export async function migrateDeploy(migrationsDir: string, connection: { host: string; port: number; user?: string; password?: string; database: string }, shownHost: string): Promise<StandinResult> {
  let stdout = 'Prisma schema loaded from prisma/schema.prisma\n'
  const names = existsSync(migrationsDir)
    ? readdirSync(migrationsDir, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(join(migrationsDir, d.name, 'migration.sql'))).map((d) => d.name).sort((a, b) => a.localeCompare(b))
    : []
  stdout += `Datasource "db": PostgreSQL database "${connection.database}", schema "public" at "${shownHost}"\n\n${names.length} migration${names.length === 1 ? '' : 's'} found in prisma/migrations\n\n`
  const client = new pg.Client({ ...connection, connectionTimeoutMillis: 5000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
  } catch {
    return { status: 1, stdout, stderr: `Error: P1001: Can't reach database server at \`${shownHost}\`\n\nPlease make sure your database server is running at \`${shownHost}\`.\n` }
  }
  try {
    await client.query(DDL)
    const failed = (await client.query('SELECT migration_name, started_at, logs FROM _prisma_migrations WHERE finished_at IS NULL AND rolled_back_at IS NULL ORDER BY started_at')).rows
    if (failed.length) {
      const [first] = failed
      return {
        status: 1,
        stdout,
        stderr: `Error: P3009\n\nmigrate found failed migrations in the target database, new migrations will not be applied. Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\nThe \`${first.migration_name}\` migration started at ${new Date(first.started_at).toISOString()} failed\n\n`,
      }
    }
    const applied = new Set((await client.query('SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL')).rows.map((r) => r.migration_name))
    const pending = names.filter((name) => !applied.has(name))
    if (!pending.length) return { status: 0, stdout: stdout + 'No pending migrations to apply.\n', stderr: '' }
    const done: string[] = []
    for (const name of pending) {
      const script = readFileSync(join(migrationsDir, name, 'migration.sql'), 'utf8')
      const id = randomUUID()
      await client.query('INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, $4)', [id, checksumOf(script), name, new Date()])
      stdout += `Applying migration \`${name}\`\n`
      try {
        await client.query(script)
      } catch (error) {
        const e = error as { code?: string; message: string; position?: string }
        const logs = `A migration failed to apply. New migrations cannot be applied before the error is recovered from. Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\nMigration name: ${name}\n\nDatabase error code: ${e.code ?? 'unknown'}\n\nDatabase error:\n${e.message}${e.position ? `\n\nPosition:\n${e.position}` : ''}\n`
        await client.query('UPDATE _prisma_migrations SET logs = $1 WHERE id = $2', [logs, id])
        return { status: 1, stdout, stderr: `Error: P3018\n\n${logs}` }
      }
      await client.query('UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1 WHERE id = $1', [id])
      await client.query('UPDATE _prisma_migrations SET finished_at = $1 WHERE id = $2', [new Date(), id])
      done.push(name)
    }
    stdout += `\nThe following migration(s) have been applied:\n\nmigrations/\n${done.map((n) => `  └─ ${n}/\n    └─ migration.sql`).join('\n')}\n\nAll migrations have been successfully applied.\n`
    return { status: 0, stdout, stderr: '' }
  } finally {
    await client.end().catch(() => undefined)
  }
}
