import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { checksumOf } from '../../lib/database/checksum.ts'

// What `prisma migrate deploy` (and `migrate resolve`) do on the internal API's machine, for the
// simulator: Prisma's `_prisma_migrations` DDL and row semantics (prisma.md §1–§4), its advisory
// lock 72707369 taken for 10 s at most (P1002), the P3005 refusal of a non-empty schema without
// the table, P3019 when migration_lock.toml names another provider, P3009 while a failed row
// exists, P3018 with the failed row's logs. Each script runs as ONE simple-protocol query, i.e.
// one implicit transaction: the behaviour of the engine source the reference could read. Newer
// engines may split statements; the real engine runs on Fly. A deploy killed mid-way (its machine
// destroyed with kill=true) stops where it is: the migration it had started keeps its row without
// finished_at (the bookkeeping statements are not part of the script's transaction, prisma.md
// §1.2), the script's own transaction is rolled back and the session's advisory lock released, as
// Postgres does for a connection that dies; the next `migrate deploy` then stops at P3009.

const DDL = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`

export const PRISMA_ADVISORY_LOCK = 72707369
const LOCK_TIMEOUT_MS = 10_000
/** The status of a process killed with SIGKILL (128 + 9): a destroyed machine's command. */
export const KILLED = 137

export interface StandinResult {
  status: number
  stdout: string
  stderr: string
}

export interface Connection {
  host: string
  port: number
  user?: string
  password?: string
  database: string
}

export interface PrismaProject {
  /** The folder `npx prisma` runs in (the config's folder). */
  cwd: string
  migrationsDir: string
  schemaPath: string
}

/** prisma.config.ts's schema and migrations.path, read the way the file states them (defaults as Prisma's). */
export function prismaProject(cwd: string): PrismaProject {
  const configPath = ['prisma.config.ts', 'prisma.config.mjs', 'prisma.config.js'].map((f) => join(cwd, f)).find(existsSync)
  const text = configPath ? readFileSync(configPath, 'utf8') : ''
  const schema = /schema:\s*['"]([^'"]+)['"]/.exec(text)?.[1] ?? 'prisma/schema.prisma'
  const migrations = /migrations:\s*\{[^}]*path:\s*['"]([^'"]+)['"]/.exec(text)?.[1] ?? join(schema, '..', 'migrations')
  return { cwd, migrationsDir: join(cwd, migrations), schemaPath: join(cwd, schema) }
}

/** Which variable the config takes its URL from: the direct URL when it names one and it is set. */
export function datasourceUrl(cwd: string, env: Record<string, string>): string | undefined {
  const configPath = ['prisma.config.ts', 'prisma.config.mjs', 'prisma.config.js'].map((f) => join(cwd, f)).find(existsSync)
  const text = configPath ? readFileSync(configPath, 'utf8') : ''
  const names = [...text.matchAll(/(?:process\.env\.|env\(\s*['"])(\w+)/g)].map((m) => m[1])
  for (const name of names.length ? names : ['DATABASE_URL']) if (env[name]) return env[name]
  return undefined
}

/** The datasource's provider (a schema's generator block has a `provider` too). */
function providerOf(text: string): string | undefined {
  const block = /datasource\s+\w+\s*\{([^}]*)\}/.exec(text)?.[1] ?? text
  return /provider\s*=\s*"([^"]+)"/.exec(block)?.[1]
}

function header(project: PrismaProject, connection: Connection, shownHost: string, count?: number): string {
  let text = `Prisma schema loaded from ${project.schemaPath.replace(`${project.cwd}/`, '')}\nDatasource "db": PostgreSQL database "${connection.database}", schema "public" at "${shownHost}"\n\n`
  if (count !== undefined) text += `${count} migration${count === 1 ? '' : 's'} found in prisma/migrations\n\n`
  return text
}

async function withClient<T>(connection: Connection, shownHost: string, fn: (client: pg.Client) => Promise<T>): Promise<T | StandinResult> {
  const client = new pg.Client({ ...connection, connectionTimeoutMillis: 5000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
  } catch {
    return { status: 1, stdout: '', stderr: `Error: P1001: Can't reach database server at \`${shownHost}\`\n\nPlease make sure your database server is running at \`${shownHost}\`.\n` }
  }
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Waits ms, or less when the process is killed meanwhile: whether it was killed. */
export function killableWait(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(true)
    const timer = setTimeout(() => (signal?.removeEventListener('abort', kill), resolve(false)), ms)
    const kill = () => (clearTimeout(timer), resolve(true))
    signal?.addEventListener('abort', kill, { once: true })
  })
}

/** pg_advisory_lock(72707369) within 10 s, as the schema engine does (acquire_lock). */
async function advisoryLock(client: pg.Client, shownHost: string, signal?: AbortSignal, timeoutMs = LOCK_TIMEOUT_MS): Promise<StandinResult | undefined> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (signal?.aborted) return { status: KILLED, stdout: '', stderr: '' }
    const [{ locked }] = (await client.query('SELECT pg_try_advisory_lock($1) AS locked', [PRISMA_ADVISORY_LOCK])).rows
    if (locked) return undefined
    if (Date.now() >= deadline) {
      return { status: 1, stdout: '', stderr: `Error: P1002\n\nThe database server at \`${shownHost}\` was reached but timed out.\n\nPlease try again.\n\nPlease make sure your database server is running at \`${shownHost}\`.\n\nContext: Timed out trying to acquire a postgres advisory lock (SELECT pg_advisory_lock(72707369)). Elapsed: ${timeoutMs}ms. See https://pris.ly/d/migrate-advisory-locking for details.\n` }
    }
    await killableWait(200, signal)
  }
}

function localMigrations(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql'))).map((d) => d.name).sort((a, b) => a.localeCompare(b))
    : []
}

/** P3019: migration_lock.toml's provider must be the schema's. */
function providerMismatch(project: PrismaProject): StandinResult | undefined {
  const lock = join(project.migrationsDir, 'migration_lock.toml')
  const locked = existsSync(lock) ? providerOf(readFileSync(lock, 'utf8')) : undefined
  const schema = existsSync(project.schemaPath) ? providerOf(readFileSync(project.schemaPath, 'utf8')) : 'postgresql'
  if (!locked || locked === schema) return undefined
  return { status: 1, stdout: '', stderr: `Error: P3019\n\nThe datasource provider \`${schema}\` specified in your schema does not match the one specified in the migration_lock.toml, \`${locked}\`. Please remove your current migration directory and start a new migration history with prisma migrate dev. Read more: https://pris.ly/d/migrate-provider-switch\n` }
}

export interface DeployOptions {
  /** Holds the started row this long before running the script (a slow migration). */
  slowMs?: number
  /** Aborted when the process is killed: it stops where it is (status 137). */
  signal?: AbortSignal
  /** How long to wait for Prisma's advisory lock: 10 s, as Prisma; shorter only in a test of it. */
  lockTimeoutMs?: number
}

export async function migrateDeploy(project: PrismaProject, connection: Connection, shownHost: string, options: DeployOptions = {}): Promise<StandinResult> {
  const names = localMigrations(project.migrationsDir)
  const mismatch = providerMismatch(project)
  if (mismatch) return mismatch
  let stdout = header(project, connection, shownHost, names.length)
  const result = await withClient(connection, shownHost, async (client): Promise<StandinResult> => {
    const locked = await advisoryLock(client, shownHost, options.signal, options.lockTimeoutMs)
    if (locked) return { ...locked, stdout }
    const killed = (): StandinResult => ({ status: KILLED, stdout, stderr: '' })
    try {
      const exists = (await client.query("SELECT to_regclass('_prisma_migrations') IS NOT NULL AS e")).rows[0].e
      if (!exists) {
        const tables = (await client.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")).rows[0].n
        if (tables > 0) return { status: 1, stdout, stderr: 'Error: P3005\n\nThe database schema is not empty. Read more about how to baseline an existing production database: https://pris.ly/d/migrate-baseline\n' }
        await client.query(DDL)
      }
      const failed = (await client.query('SELECT migration_name, started_at, logs FROM _prisma_migrations WHERE finished_at IS NULL AND rolled_back_at IS NULL ORDER BY started_at')).rows
      if (failed.length) {
        const lines = failed.map((f) => `The \`${f.migration_name}\` migration started at ${new Date(f.started_at).toISOString()} failed${f.logs ? ` with the following logs:\n${f.logs}` : ''}`).join('\n')
        return { status: 1, stdout, stderr: `Error: P3009\n\nmigrate found failed migrations in the target database, new migrations will not be applied. Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n${lines}\n\n` }
      }
      const applied = new Set((await client.query('SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL')).rows.map((r) => r.migration_name))
      const pending = names.filter((name) => !applied.has(name))
      if (!pending.length) return { status: 0, stdout: stdout + 'No pending migrations to apply.\n', stderr: '' }
      const done: string[] = []
      for (const name of pending) {
        if (options.signal?.aborted) return killed()
        const script = readFileSync(join(project.migrationsDir, name, 'migration.sql'), 'utf8')
        const id = randomUUID()
        await client.query('INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, $4)', [id, checksumOf(script), name, new Date()])
        stdout += `Applying migration \`${name}\`\n`
        if (options.slowMs && (await killableWait(options.slowMs, options.signal))) return killed()
        try {
          await client.query(script)
          // Killed between the script and its bookkeeping: applied, yet the row looks failed.
          if (options.signal?.aborted) return killed()
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
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK]).catch(() => undefined)
    }
  })
  return result as StandinResult
}

/** `prisma migrate resolve --applied NAME | --rolled-back NAME` (prisma.md §4.1, §4.2). */
export async function migrateResolve(project: PrismaProject, connection: Connection, shownHost: string, mode: 'applied' | 'rolled-back', name: string): Promise<StandinResult> {
  const mismatch = mode === 'applied' ? providerMismatch(project) : undefined
  if (mismatch) return mismatch
  const stdout = header(project, connection, shownHost)
  const result = await withClient(connection, shownHost, async (client): Promise<StandinResult> => {
    const locked = await advisoryLock(client, shownHost)
    if (locked) return { ...locked, stdout }
    try {
      const exists = (await client.query("SELECT to_regclass('_prisma_migrations') IS NOT NULL AS e")).rows[0].e
      if (mode === 'applied') {
        const file = join(project.migrationsDir, name, 'migration.sql')
        if (!existsSync(file)) return { status: 1, stdout, stderr: `Error: P3017\n\nThe migration ${name} could not be found. Please make sure that the migration exists, and that you included the whole name of the directory. (example: "20201207184859_initial_migration")\n` }
        if (!exists) await client.query(DDL)
        const rows = (await client.query('SELECT finished_at FROM _prisma_migrations WHERE migration_name = $1', [name])).rows
        if (rows.some((r) => r.finished_at !== null)) return { status: 1, stdout, stderr: `Error: P3008\n\nThe migration \`${name}\` is already recorded as applied in the database.\n` }
        await client.query('UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL', [name])
        const now = new Date()
        await client.query("INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, finished_at) VALUES ($1, $2, $3, '', $4, $4)", [randomUUID(), checksumOf(readFileSync(file, 'utf8')), name, now])
        return { status: 0, stdout: `${stdout}Migration ${name} marked as applied.\n`, stderr: '' }
      }
      if (!exists) return { status: 1, stdout, stderr: 'Error: Invariant violation: migration persistence is not initialized.\n' }
      const rows = (await client.query('SELECT finished_at, rolled_back_at FROM _prisma_migrations WHERE migration_name = $1', [name])).rows
      if (!rows.length) return { status: 1, stdout, stderr: `Error: P3011\n\nMigration \`${name}\` cannot be rolled back because it was never applied to the database. Hint: did you pass in the whole migration name? (example: "20201207184859_initial_migration")\n` }
      if (rows.every((r) => r.finished_at !== null)) return { status: 1, stdout, stderr: `Error: P3012\n\nMigration \`${name}\` cannot be rolled back because it is not in a failed state.\n` }
      await client.query('UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL', [name])
      return { status: 0, stdout: `${stdout}Migration ${name} marked as rolled back.\n`, stderr: '' }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK]).catch(() => undefined)
    }
  })
  return result as StandinResult
}
