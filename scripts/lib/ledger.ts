// STUB (being implemented): append-only ledger of operations in the environment's own database.
import type { Context } from './cli.js'
import type { Database } from './db.js'

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

/** Appends one entry; does nothing in dry run. Never throws: a ledger failure is a warning. */
export async function record(ctx: Context, db: Database, entry: LedgerEntry): Promise<void> {
  void ctx
  void db
  void entry
}
