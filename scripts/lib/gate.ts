// STUB (being implemented): the migration gate of the interface, before any production change.
import type { Context } from './cli.js'
import type { Database } from './db.js'
import type { LocalMigration } from './migrations.js'

/** Refuses (Refusal, exit 3) naming each offending migration and the reason. Read-only. */
export async function migrationGate(ctx: Context, staging: Database, production: Database, local: LocalMigration[]): Promise<void> {
  void ctx
  void staging
  void production
  void local
}
