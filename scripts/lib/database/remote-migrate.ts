import chalk from 'chalk'
import type { Context } from '../core/cli.js'
import type { Database } from './db.js'
import { CommandError, OperationError } from '../core/errors.js'
import { remoteExitStatus, sessionLost } from '../fly/errors.js'
import { table } from '../core/log.js'
import {
  compareMigrations,
  domainRowCounts,
  listLocalMigrations,
  pendingMigrations,
  readMigrationRows,
  type MigrationStatus,
} from './migrations.js'
import { flyAppName } from '../core/names.js'

// Section 5.1 step 5 / 2.2 step 2 done right: `prisma migrate deploy` on the internal API's
// machine through `flyctl ssh console`. -C runs no shell on Fly, hence `sh -c '…'`; flyctl exits
// 1 for any remote failure and reports the real status only on stderr. Before and after, the
// toolkit reads `_prisma_migrations` itself and checks what section 2.3 asks for.

export const REMOTE_MIGRATE_COMMAND = "sh -c 'cd /app && npx prisma migrate deploy'"

export interface MigrationSnapshot {
  statuses: MigrationStatus[]
  counts: Record<string, number>
}

export async function snapshot(db: Database): Promise<MigrationSnapshot> {
  const rows = await readMigrationRows(db)
  return { statuses: compareMigrations(listLocalMigrations(), rows), counts: await domainRowCounts(db) }
}

export interface MigrateOutcome {
  applied: string[]
  pendingBefore: string[]
  before: MigrationSnapshot
  after?: MigrationSnapshot
  remoteOutput: string
}

/** Runs the remote migration; throws OperationError with the remote status and output on failure. */
export async function runRemoteMigrate(ctx: Context, db: Database): Promise<MigrateOutcome> {
  const app = flyAppName(ctx.env, 'internal-api')
  const before = await snapshot(db)
  const pendingBefore = pendingMigrations(before.statuses)
  ctx.log.info(pendingBefore.length ? `pending on ${ctx.env}: ${pendingBefore.join(', ')}` : `no pending migrations on ${ctx.env}`)
  let remoteOutput = ''
  try {
    const out = await ctx.fly().machines.ssh(app, REMOTE_MIGRATE_COMMAND, { write: true })
    remoteOutput = out.stdout + out.stderr
  } catch (error) {
    if (!(error instanceof CommandError)) throw error
    const status = remoteExitStatus(error.stderr)
    const after = await snapshot(db).catch(() => undefined)
    // A session that ended without an exit status (dropped, or stopped by our timeout) says
    // nothing about the command: it may have finished, failed, or still be running.
    if (status === undefined && (sessionLost(error.stderr) || error.status === null)) throw unknownOutcome(ctx, app, error, pendingBefore, after)
    const failed = after?.statuses.filter((s) => s.state === 'failed').map((s) => s.name) ?? []
    throw new OperationError(
      status === undefined
        ? `could not run prisma migrate deploy on ${app} (flyctl ssh console failed before the command ran)`
        : `prisma migrate deploy failed on ${app} with status ${status}`,
      [
        ...error.stderr.trim().split('\n').slice(-12),
        ...(failed.length ? [`failed migration(s) on ${ctx.env}: ${failed.join(', ')}; see make migrate-status for the ways out`] : []),
      ],
    )
  }
  if (ctx.dryRun) return { applied: [], pendingBefore, before, remoteOutput }
  const after = await snapshot(db)
  const applied = pendingBefore.filter((name) => after.statuses.find((s) => s.name === name)?.state === 'applied')
  return { applied, pendingBefore, before, after, remoteOutput }
}

/** Section 2.3's "verify data integrity": no failed or unfinished rows, every local migration applied
 * with a matching checksum, and row counts before and after (a drop is shown, and is a warning). */
export function verifyMigrations(ctx: Context, outcome: MigrateOutcome): string[] {
  const { before, after } = outcome
  if (!after) return []
  const problems = after.statuses
    .filter((s) => s.state !== 'applied')
    .map((s) => `${s.name}: ${s.state}${s.state === 'pending' ? ' (not in the deployed image?)' : ''}`)
  const tables = [...new Set([...Object.keys(before.counts), ...Object.keys(after.counts)])].sort()
  const rows = tables.map((name) => {
    const was = before.counts[name]
    const now = after.counts[name]
    const lost = was !== undefined && (now === undefined || now < was)
    if (lost) ctx.log.warn(`${name}: ${was} rows before the migration, ${now ?? 'table gone'} after`)
    return [name, was === undefined ? '-' : String(was), now === undefined ? 'dropped' : String(now), lost ? chalk.red('LOST ROWS') : 'ok']
  })
  if (rows.length) ctx.log.result(table(['table', 'rows before', 'rows after', ''], rows))
  return problems
}

/** The outcome of a migration whose ssh session ended without a status: what the database shows. */
export class UnknownOutcome extends OperationError {}

function unknownOutcome(ctx: Context, app: string, error: CommandError, pendingBefore: string[], after: MigrationSnapshot | undefined): UnknownOutcome {
  const states = new Map(after?.statuses.map((s) => [s.name, s.state]) ?? [])
  const applied = pendingBefore.filter((name) => states.get(name) === 'applied')
  const started = pendingBefore.filter((name) => states.get(name) === 'failed')
  const waiting = pendingBefore.filter((name) => states.get(name) === 'pending' || states.get(name) === 'rolled-back')
  return new UnknownOutcome(`prisma migrate deploy on ${app}: the ssh session ended without an exit status (${error.reason}); the outcome is unknown and it may still be running`, [
    ...(after ? [] : [`the ${ctx.env} database could not be read to find out more`]),
    ...(applied.length ? [`applied since the start: ${applied.join(', ')}`] : []),
    ...(started.length ? [`started and not finished: ${started.join(', ')} (it may still be running: do NOT roll it back or resolve it now)`] : []),
    ...(waiting.length ? [`not started yet (or starting): ${waiting.join(', ')}`] : []),
    'look again in a minute with make migrate-status; run the migration again only once nothing is running',
  ])
}
