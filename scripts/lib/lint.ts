// STUB (being implemented): squawk + Prisma's data-loss warnings over the migrations pending on a target.
import type { Context } from './cli.js'
import type { LocalMigration } from './migrations.js'

/** Staging: findings are warnings. Production: destructive findings refuse (exit 3) unless ALLOW_DESTRUCTIVE names the migration. */
export async function lintPending(ctx: Context, pending: LocalMigration[]): Promise<void> {
  void ctx
  void pending
}
