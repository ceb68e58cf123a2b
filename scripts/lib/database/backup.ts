import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { envFlag, type Context } from '../core/cli.js'
import type { DatabaseTarget } from '../secrets/env-files.js'
import { reach, type Database } from './db.js'
import { OperationError } from '../core/errors.js'
import { resolveOnPath } from '../fly/flyctl.js'
import { knob } from '../core/knobs.js'
import { record } from '../safety/ledger.js'
import { databaseAppName } from '../core/names.js'
import { loadSettings } from '../core/settings.js'

// "Have a rollback plan ready", made concrete: before the first production migration, a backup
// of the database — a volume snapshot of the Fly Postgres app, or a Managed Postgres backup
// (asynchronous: created, then waited for until it is listed as completed, bounded by
// BACKUP_TIMEOUT) — and with BACKUP=dump a pg_dump into backups/. Each is checked to exist
// before it is reported. A backup that fails blocks the migration, unless SKIP_BACKUP=1 says the
// operator accepts the risk. A dry run says what it would do; it schedules nothing.

export interface BackupOutcome {
  /** What was done, or in a dry run what would be. */
  detail: string
  /** Whether a backup exists now (false in dry runs and with SKIP_BACKUP after a failure). */
  made: boolean
  /** It failed and SKIP_BACKUP=1 let the migration go on without one. */
  skipped?: boolean
}

/** The MPG cluster of an environment, from its direct or pooled URL host. */
export function mpgCluster(target: DatabaseTarget): string | undefined {
  return /^(?:direct|pgbouncer)\.([a-z0-9]+)\.flympg\.net$/.exec(target.host)?.[1]
}

async function snapshotVolumes(ctx: Context): Promise<string> {
  const dbApp = databaseAppName(ctx.env)
  const fly = ctx.fly()
  const volumes = (await fly.postgres.volumes(dbApp)).filter((v) => v.attached_machine_id && v.state !== 'destroyed' && v.state !== 'pending_destroy')
  if (!volumes.length) throw new OperationError(`${dbApp} has no attached volume to snapshot`)
  if (ctx.dryRun) {
    for (const volume of volumes) await fly.postgres.snapshot(volume.id, dbApp)
    return `would snapshot ${volumes.map((v) => v.id).join(', ')} of ${dbApp}`
  }
  for (const volume of volumes) {
    const before = (await fly.postgres.snapshots(volume.id, dbApp)).length
    await fly.postgres.snapshot(volume.id, dbApp)
    // `create` returns no ID: the new snapshot must show up in the list (pending or done).
    const after = (await fly.postgres.snapshots(volume.id, dbApp)).length
    if (after <= before) throw new OperationError(`flyctl said a snapshot of ${volume.id} was scheduled, but none appeared in flyctl volumes snapshots list ${volume.id}`)
  }
  return `volume snapshot${volumes.length > 1 ? 's' : ''} of ${dbApp} scheduled and listed: ${volumes.map((v) => v.id).join(', ')}`
}

async function mpgBackup(ctx: Context, cluster: string): Promise<string> {
  const fly = ctx.fly()
  if (ctx.dryRun) {
    await fly.mpg.backupCreate(cluster)
    return `would back up Managed Postgres cluster ${cluster} and wait until the backup is completed`
  }
  const known = new Set((await fly.mpg.backupList(cluster)).map((b) => b.id))
  await fly.mpg.backupCreate(cluster)
  const deadline = Date.now() + knob('BACKUP_TIMEOUT') * 1000
  let last = 'not listed yet'
  for (;;) {
    const fresh = (await fly.mpg.backupList(cluster)).filter((b) => !known.has(b.id))
    const backup = fresh.at(-1)
    if (backup?.status === 'completed') return `Managed Postgres backup ${backup.id} of cluster ${cluster} completed`
    if (backup && /fail|error/i.test(backup.status)) throw new OperationError(`the Managed Postgres backup ${backup.id} of cluster ${cluster} ended ${backup.status}`)
    if (backup) last = `${backup.id} is ${backup.status}`
    if (Date.now() >= deadline) throw new OperationError(`the Managed Postgres backup of cluster ${cluster} did not complete within ${knob('BACKUP_TIMEOUT')}s (${last})`, [`see it with flyctl mpg backup list ${cluster}`])
    await new Promise((resolve) => setTimeout(resolve, Math.min(2000, Math.max(100, deadline - Date.now()))))
  }
}

async function dump(ctx: Context, target: DatabaseTarget): Promise<string> {
  const pgDump = resolveOnPath('pg_dump')
  if (!pgDump) throw new OperationError('BACKUP=dump needs pg_dump on PATH (apt-get install postgresql-client)')
  const { host, port } = await reach(ctx, target)
  mkdirSync('backups', { recursive: true, mode: 0o700 })
  const file = join('backups', `${ctx.env}-${new Date().toISOString().replace(/[:.]/g, '-')}.sql`)
  // The password travels in the environment (PGPASSWORD), never in argv.
  await ctx.exec.run({
    argv: [pgDump, '--no-owner', '--format=plain', `--file=${file}`, '--host', host, '--port', String(port), '--username', target.user ?? 'postgres', '--dbname', target.database],
    write: true,
    env: { PGPASSWORD: target.password ?? '' },
    timeoutMs: 30 * 60 * 1000,
  })
  if (ctx.dryRun) return `would write a pg_dump to ${file}`
  chmodSync(file, 0o600)
  return `pg_dump written to ${file}`
}

/** The backup, and its entry in the ledger whatever came of it (ok, failed, or skipped). */
export async function backupBeforeMigration(ctx: Context, db: Database | undefined, target: DatabaseTarget, app?: string): Promise<BackupOutcome> {
  try {
    const outcome = await takeBackup(ctx, target)
    if (outcome.made || outcome.skipped) await record(ctx, db, { operation: 'backup', app, result: outcome.made ? 'ok' : 'failed', detail: outcome.detail })
    return outcome
  } catch (error) {
    await record(ctx, db, { operation: 'backup', app, result: 'failed', detail: (error as Error).message })
    throw error
  }
}

async function takeBackup(ctx: Context, target: DatabaseTarget): Promise<BackupOutcome> {
  const kind = loadSettings().database[ctx.env]
  try {
    const cluster = mpgCluster(target)
    if (kind === 'mpg' && !cluster) throw new OperationError(`the ${ctx.env} database is Managed Postgres (DB_KIND/settings) but its URL names no *.flympg.net cluster`)
    const done = [kind === 'mpg' ? await mpgBackup(ctx, cluster!) : await snapshotVolumes(ctx)]
    if (process.env.BACKUP === 'dump') done.push(await dump(ctx, target))
    for (const line of done) (ctx.dryRun ? ctx.log.info : ctx.log.ok)(line)
    return { detail: done.join('; '), made: !ctx.dryRun }
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0]
    if (envFlag('SKIP_BACKUP')) {
      ctx.log.warn(`backup failed (${reason}); continuing WITHOUT a backup because SKIP_BACKUP=1`)
      return { detail: `no backup (SKIP_BACKUP=1; it failed: ${reason})`, made: false, skipped: true }
    }
    throw new OperationError(`the backup before the ${ctx.env} migration failed, so nothing was migrated: ${reason}`, [
      'fix the backup, or run again with SKIP_BACKUP=1 to migrate without one',
      ...(error instanceof OperationError ? error.details : []),
    ])
  }
}
