// STUB (being implemented): per-environment deploy lock in the environment's own database.
import type { Context } from './cli.js'
import type { Database } from './db.js'

/** Runs fn while holding the environment's deploy lock; in dry run takes no lock. */
export async function withLock<T>(ctx: Context, db: Database, operation: string, fn: () => Promise<T>): Promise<T> {
  void ctx
  void db
  void operation
  return fn()
}
