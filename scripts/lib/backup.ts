// STUB (being implemented): pre-migration backup of production.
import type { Context } from './cli.js'
import type { DatabaseTarget } from './config.js'

/** Takes the backup and returns where it is; throws OperationError when it fails (unless SKIP_BACKUP=1). */
export async function backupBeforeMigration(ctx: Context, target: DatabaseTarget): Promise<string> {
  void ctx
  void target
  return 'skipped (not implemented yet)'
}
