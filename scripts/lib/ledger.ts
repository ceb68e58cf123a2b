import type { Context } from './cli.js'
import { tableExists, type Database } from './db.js'
import { gitCommit, where, who } from './who.js'

// The environment's append-only ledger of operations, kept in its own database (schema
// microbima_deploy, away from Prisma's) so laptops and CI share it and it outlives both.
// One INSERT per entry: an interrupted pipeline never leaves half an entry.

export interface LedgerEntry {
  operation: string
  app?: string
  imageBefore?: string
  imageAfter?: string
  migrations?: string[]
  result: 'ok' | 'failed' | 'refused' | 'interrupted' | 'rolled back' | 'started'
  durationMs?: number
  detail?: string
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
)`

const ready = new WeakSet<Database>()

export async function ensureSchema(db: Database): Promise<void> {
  if (ready.has(db)) return
  await db.write(SCHEMA_SQL)
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

/** Appends one entry; nothing in dry run. A ledger failure is a warning, never the operation's failure. */
export async function record(ctx: Context, db: Database, entry: LedgerEntry): Promise<void> {
  if (ctx.dryRun) return
  try {
    await ensureSchema(db)
    await db.write(
      `INSERT INTO microbima_deploy.ledger (environment, operation, app, image_before, image_after, migrations, result, duration_ms, who, host, git_commit, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [ctx.env, entry.operation, entry.app ?? null, entry.imageBefore ?? null, entry.imageAfter ?? null, entry.migrations ?? [], entry.result, entry.durationMs === undefined ? null : Math.round(entry.durationMs), who(), where(), await gitCommit(), entry.detail ?? null],
    )
  } catch (error) {
    ctx.log.warn(`could not write the ledger: ${(error as Error).message}`)
  }
}

export async function readLedger(db: Database, environment: string, limit: number): Promise<LedgerRow[]> {
  if (!(await tableExists(db, 'microbima_deploy.ledger'))) return []
  return db.query<LedgerRow>('SELECT * FROM microbima_deploy.ledger WHERE environment = $1 ORDER BY id DESC LIMIT $2', [environment, limit])
}
