import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { envFlag, type Context } from './cli.js'
import type { DatabaseTarget } from './config.js'
import { reach } from './db.js'
import { OperationError } from './errors.js'
import { databaseAppName } from './names.js'
import { resolveOnPath } from './fly.js'

// "Have a rollback plan ready", made concrete: before the first production migration, a volume
// snapshot of the Fly Postgres app (and with BACKUP=dump a pg_dump into backups/). A backup
// that fails blocks the migration, unless SKIP_BACKUP=1 says the operator accepts the risk.

async function snapshotVolumes(ctx: Context): Promise<string> {
  const dbApp = databaseAppName(ctx.env)
  const fly = ctx.fly()
  const volumes = (await fly.volumesList(dbApp)).filter((v) => v.attached_machine_id && v.state !== 'destroyed' && v.state !== 'pending_destroy')
  if (!volumes.length) throw new OperationError(`${dbApp} has no attached volume to snapshot`)
  for (const volume of volumes) await fly.snapshotCreate(volume.id, dbApp)
  return `volume snapshot${volumes.length > 1 ? 's' : ''} of ${dbApp} scheduled: ${volumes.map((v) => v.id).join(', ')} (list: flyctl volumes snapshots list ${volumes[0].id})`
}

async function dump(ctx: Context, target: DatabaseTarget): Promise<string> {
  const pgDump = resolveOnPath('pg_dump')
  if (!pgDump) throw new OperationError('BACKUP=dump needs pg_dump on PATH (apt-get install postgresql-client)')
  const { host, port } = await reach(ctx, target)
  const url = new URL(target.url)
  mkdirSync('backups', { recursive: true, mode: 0o700 })
  const file = join('backups', `${ctx.env}-${new Date().toISOString().replace(/[:.]/g, '-')}.sql`)
  // The password travels in the environment (PGPASSWORD), never in argv.
  await ctx.exec.run({
    argv: [pgDump, '--no-owner', '--format=plain', `--file=${file}`, '--host', host, '--port', String(port), '--username', decodeURIComponent(url.username) || 'postgres', '--dbname', target.database],
    write: true,
    env: { PGPASSWORD: decodeURIComponent(url.password) },
    timeoutMs: 30 * 60 * 1000,
  })
  if (!ctx.dryRun) chmodSync(file, 0o600)
  return `pg_dump written to ${file}`
}

export async function backupBeforeMigration(ctx: Context, target: DatabaseTarget): Promise<string> {
  try {
    const done = [await snapshotVolumes(ctx)]
    if (process.env.BACKUP === 'dump') done.push(await dump(ctx, target))
    for (const line of done) ctx.log.ok(line)
    return done.join('; ')
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0]
    if (envFlag('SKIP_BACKUP')) {
      ctx.log.warn(`backup failed (${reason}); continuing WITHOUT a backup because SKIP_BACKUP=1`)
      return `no backup (SKIP_BACKUP=1; it failed: ${reason})`
    }
    throw new OperationError(`the backup before the ${ctx.env} migration failed, so nothing was migrated: ${reason}`, [
      'fix the backup, or run again with SKIP_BACKUP=1 to migrate without one',
      ...(error instanceof OperationError ? error.details : []),
    ])
  }
}
