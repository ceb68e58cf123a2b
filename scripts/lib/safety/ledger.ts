import { createHash } from 'node:crypto'
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Context } from '../core/cli.js'
import { configuredDatabase, type DatabaseTarget } from '../secrets/env-files.js'
import { tableExists, type Database } from '../database/db.js'
import type { Environment } from '../core/names.js'
import { mask } from '../secrets/mask.js'
import { gitCommit } from './git.js'
import { where, who } from './who.js'

// The environment's append-only ledger of operations, kept in its own database (schema
// microbima_deploy, away from Prisma's) so laptops and CI share it and it outlives both.
// One INSERT per entry: an interrupted pipeline never leaves half an entry. An operation that
// runs while the database is unreachable (a code rollback must) keeps its entries in a local
// spool file, written to the ledger by the next run that reaches the database.

export interface LedgerEntry {
  operation: string
  app?: string
  imageBefore?: string
  imageAfter?: string
  migrations?: string[]
  result: 'ok' | 'failed' | 'refused' | 'interrupted' | 'rolled back' | 'started' | 'unknown'
  durationMs?: number
  detail?: string
  /** When it happened, for entries written late from the spool. */
  at?: string
}

export const SCHEMA_SQL = `
CREATE SCHEMA IF NOT EXISTS microbima_deploy;
CREATE TABLE IF NOT EXISTS microbima_deploy.ledger (
  id           BIGSERIAL PRIMARY KEY,
  at           TIMESTAMPTZ NOT NULL DEFAULT now(),
  environment  TEXT NOT NULL,
  operation    TEXT NOT NULL,
  app          TEXT,
  image_before TEXT,
  image_after  TEXT,
  migrations   TEXT[] NOT NULL DEFAULT '{}',
  result       TEXT NOT NULL,
  duration_ms  INTEGER,
  who          TEXT NOT NULL,
  host         TEXT NOT NULL,
  git_commit   TEXT,
  detail       TEXT
);
CREATE TABLE IF NOT EXISTS microbima_deploy.deploy_lock (
  environment TEXT PRIMARY KEY,
  token       TEXT NOT NULL,
  who         TEXT NOT NULL,
  host        TEXT NOT NULL,
  operation   TEXT NOT NULL,
  since       TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS microbima_deploy.secret_fingerprints (
  environment TEXT NOT NULL,
  app         TEXT NOT NULL,
  name        TEXT NOT NULL,
  salt        TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  fly_digest  TEXT NOT NULL,
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (environment, app, name)
);
CREATE TABLE IF NOT EXISTS microbima_deploy.image_migrations (
  image       TEXT PRIMARY KEY,
  migrations  JSONB NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

const ready = new WeakSet<Database>()

/** Creates the toolkit's tables once per database. Two first runs at once must not both fail on
 * CREATE SCHEMA: the creation is serialised by a transaction-scoped advisory lock, and a
 * concurrent creation that still wins the race is simply retried. */
export async function ensureSchema(db: Database): Promise<void> {
  if (ready.has(db)) return
  // Already there (every run after the first): nothing to write, nothing for a dry run to print.
  const [{ n }] = await db.query<{ n: string }>("SELECT count(*) AS n FROM pg_catalog.pg_tables WHERE schemaname = 'microbima_deploy' AND tablename IN ('ledger', 'deploy_lock', 'secret_fingerprints', 'image_migrations')")
  if (Number(n) === 4) {
    ready.add(db)
    return
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await db.transaction(async () => {
        await db.query("SELECT pg_advisory_xact_lock(hashtext('microbima_deploy schema'))")
        await db.write(SCHEMA_SQL)
      }, { bookkeeping: true })
      break
    } catch (error) {
      if (attempt >= 3 || !/SQLSTATE (23505|42P06|42P07)/.test((error as Error).message)) throw error
    }
  }
  ready.add(db)
}

export interface LedgerRow {
  id: string
  at: Date
  environment: string
  operation: string
  app: string | null
  image_before: string | null
  image_after: string | null
  migrations: string[]
  result: string
  duration_ms: number | null
  who: string
  host: string
  git_commit: string | null
  detail: string | null
}

/** The spool of one database: what waits for it is written to it, and to no other (a rehearsal's
 * sandbox database, or another env folder's, must never receive this one's entries). */
function spoolPath(envDir: string, env: Environment): string {
  let target: DatabaseTarget | undefined
  try {
    target = configuredDatabase(envDir, env)
  } catch {
    // an unreadable env file: the run reports it; its entries wait under the environment's name
  }
  const id = target ? createHash('sha256').update(`${target.host}:${target.port}/${target.database}`).digest('hex').slice(0, 12) : 'unconfigured'
  return join('.deploy-state', `pending-ledger-${env}-${id}.jsonl`)
}

async function insert(db: Database, env: Environment, entry: LedgerEntry & { who?: string; host?: string; commit?: string | null }): Promise<void> {
  await db.write(
    `INSERT INTO microbima_deploy.ledger (at, environment, operation, app, image_before, image_after, migrations, result, duration_ms, who, host, git_commit, detail)
     VALUES (coalesce($1::timestamptz, now()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [entry.at ?? null, env, entry.operation, entry.app ?? null, entry.imageBefore ?? null, entry.imageAfter ?? null, entry.migrations ?? [], entry.result, entry.durationMs === undefined ? null : Math.round(entry.durationMs), entry.who ?? who(), entry.host ?? where(), entry.commit === undefined ? await gitCommit() : entry.commit, entry.detail === undefined ? null : mask(entry.detail)],
  )
}

/** Appends one entry; nothing in dry run. Without a database the entry waits in the spool. A
 * ledger failure is a warning, never the operation's failure. */
export async function record(ctx: Context, db: Database | undefined, entry: LedgerEntry): Promise<void> {
  if (ctx.dryRun) return
  if (!db || !db.alive()) {
    spool(ctx, entry)
    return
  }
  try {
    await ensureSchema(db)
    await insert(db, ctx.env, entry)
  } catch (error) {
    spool(ctx, entry)
    ctx.log.warn(`could not write the ledger (${(error as Error).message.split('\n')[0]}): kept in ${spoolPath(ctx.envDir, ctx.env)} for the next run`)
  }
}

function spool(ctx: Context, entry: LedgerEntry): void {
  mkdirSync('.deploy-state', { recursive: true, mode: 0o700 })
  appendFileSync(spoolPath(ctx.envDir, ctx.env), JSON.stringify({ ...entry, at: entry.at ?? new Date().toISOString(), who: who(), host: where() }) + '\n', { mode: 0o600 })
}

/** Writes the entries a run made while the database was unreachable; says how many. */
export async function flushSpool(ctx: Context, db: Database): Promise<number> {
  const path = spoolPath(ctx.envDir, db.env)
  if (ctx.dryRun || !existsSync(path)) return 0
  const taken = `${path}.${process.pid}`
  try {
    renameSync(path, taken) // one run takes the spool; a second run started now finds none
  } catch {
    return 0
  }
  const entries = readFileSync(taken, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as LedgerEntry & { who: string; host: string })
  try {
    await ensureSchema(db)
    for (const entry of entries) await insert(db, db.env, { ...entry, commit: null })
    rmSync(taken)
    ctx.log.info(`ledger: recorded ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} made while the ${db.env} database was unreachable`)
    return entries.length
  } catch (error) {
    renameSync(taken, path)
    throw error
  }
}

export async function readLedger(db: Database, environment: string, limit: number): Promise<LedgerRow[]> {
  if (!(await tableExists(db, 'microbima_deploy.ledger'))) return []
  return db.query<LedgerRow>('SELECT * FROM microbima_deploy.ledger WHERE environment = $1 ORDER BY id DESC LIMIT $2', [environment, limit])
}

export interface CarriedMigration {
  name: string
  checksum: string
}

/** Which migrations an image carries: recorded when it is built (the image's prisma/migrations). */
export async function recordImageMigrations(ctx: Context, db: Database, image: string, migrations: CarriedMigration[]): Promise<void> {
  if (ctx.dryRun) return
  await ensureSchema(db)
  await db.write('INSERT INTO microbima_deploy.image_migrations (image, migrations) VALUES ($1, $2) ON CONFLICT (image) DO NOTHING', [image, JSON.stringify(migrations)])
}

export async function imageMigrations(db: Database, image: string): Promise<CarriedMigration[] | undefined> {
  if (!(await tableExists(db, 'microbima_deploy.image_migrations'))) return undefined
  const [row] = await db.query<{ migrations: CarriedMigration[] }>('SELECT migrations FROM microbima_deploy.image_migrations WHERE image = $1', [image])
  return row?.migrations
}

// Beside the ledger's spool, the notifications' one: events a receiver never got (a timeout, a 5xx,
// a refusal), kept on this machine until `make notify-retry` delivers them. It holds the events
// only (already masked), never the receiver's URL or the signing secret: those are read again when
// they are sent, so a rotated secret signs the retry.

export const NOTIFICATION_SPOOL = join('.deploy-state', 'pending-notifications.jsonl')

export interface SpooledNotification {
  /** The event as it was to be sent (JSON body, before formatting). */
  event: Record<string, unknown>
  /** Why it was not delivered, and where it was to go (scheme://host/… only). */
  why: string
  to: string
  spooledAt: string
}

export function spoolNotifications(entries: SpooledNotification[]): void {
  if (!entries.length) return
  mkdirSync('.deploy-state', { recursive: true, mode: 0o700 })
  // One append per call: two runs spooling at once never interleave inside a line. (The events
  // and reasons were masked when they were made.)
  appendFileSync(NOTIFICATION_SPOOL, entries.map((entry) => JSON.stringify(entry) + '\n').join(''), { mode: 0o600 })
}

/** Takes the whole spool (a second run started now finds none); undefined when nothing waits. */
export function takeNotificationSpool(): SpooledNotification[] | undefined {
  if (!existsSync(NOTIFICATION_SPOOL)) return undefined
  const taken = `${NOTIFICATION_SPOOL}.${process.pid}`
  try {
    renameSync(NOTIFICATION_SPOOL, taken)
  } catch {
    return undefined
  }
  const entries: SpooledNotification[] = []
  for (const line of readFileSync(taken, 'utf8').split('\n').filter(Boolean)) {
    try {
      entries.push(JSON.parse(line) as SpooledNotification)
    } catch {
      // a line cut short (a full disk): kept aside, never lost silently
      appendFileSync(`${NOTIFICATION_SPOOL}.unreadable`, `${line}\n`, { mode: 0o600 })
    }
  }
  rmSync(taken)
  return entries
}
