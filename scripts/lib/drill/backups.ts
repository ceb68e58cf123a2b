import type { Context } from '../core/cli.js'
import { UserError } from '../core/errors.js'
import { formatWhen } from '../core/log.js'
import type { DatabaseKind } from '../core/settings.js'
import { databaseAppOf, isCompleteMpgBackup, isCompleteSnapshot, mpgCluster } from '../database/backup.js'
import type { DatabaseTarget } from '../secrets/env-files.js'

// Step 1 of a restore drill: the backup to restore. With Managed Postgres, the cluster's backups
// (`flyctl mpg backup list <cluster> --json --all`: an older backup is still a backup, and its age
// shows); with Fly Postgres, the snapshots of the database app's volumes (the app the URL names). Only a complete one
// counts (a pending snapshot has no id yet). The newest, unless BACKUP_ID= names one. No backup at
// all, or a BACKUP_ID that is not a complete backup of this environment: one line, exit 2, before
// anything is created.

export interface ChosenBackup {
  id: string
  kind: DatabaseKind
  /** The MPG cluster or the Fly Postgres app it is a backup of. */
  source: string
  /** When its data was taken (the recovery point): a backup's start, a snapshot's created_at. */
  takenAt?: Date
  /** Fly Postgres: the volume it is a snapshot of (a restore needs a volume at least as large). */
  volume?: { id: string; sizeGb: number; region: string }
}

const dateOf = (text: string | undefined) => {
  const t = Date.parse(text ?? '')
  return Number.isNaN(t) || t <= 0 ? undefined : new Date(t)
}

export async function chooseBackup(ctx: Context, kind: DatabaseKind, target: DatabaseTarget, wanted: string | undefined): Promise<ChosenBackup> {
  const fly = ctx.fly()
  if (kind === 'mpg') {
    const cluster = mpgCluster(target)
    if (!cluster) throw new UserError(`the ${ctx.env} database URL names no Managed Postgres cluster (*.flympg.net), though ${ctx.env} uses Managed Postgres (DB_KIND/settings)`)
    const backups = await fly.mpg.backupList(cluster, { all: true })
    const complete = backups.filter((b) => isCompleteMpgBackup(b.status))
    const listing = `flyctl mpg backup list ${cluster} --all`
    if (wanted) {
      const found = backups.find((b) => b.id === wanted)
      if (!found) throw new UserError(`BACKUP_ID=${wanted} is not a backup of ${ctx.env}'s cluster ${cluster}: see ${listing}`)
      if (!isCompleteMpgBackup(found.status)) throw new UserError(`BACKUP_ID=${wanted} is "${found.status}", not completed: choose a completed backup (${listing})`)
      return { id: found.id, kind, source: cluster, takenAt: dateOf(found.start) }
    }
    const newest = complete.sort((a, b) => (dateOf(a.start)?.getTime() ?? 0) - (dateOf(b.start)?.getTime() ?? 0)).at(-1)
    if (!newest) throw new UserError(`${ctx.env}'s cluster ${cluster} has no completed backup to restore${backups.length ? ` (${backups.length} listed, none completed)` : ''}: see ${listing}`)
    return { id: newest.id, kind, source: cluster, takenAt: dateOf(newest.start) }
  }
  const dbApp = databaseAppOf(ctx.env, target)
  const volumes = (await fly.postgres.volumes(dbApp)).filter((v) => v.state !== 'destroyed' && v.state !== 'pending_destroy')
  const snapshots = []
  for (const volume of volumes) {
    for (const snapshot of await fly.postgres.snapshots(volume.id, dbApp)) snapshots.push({ snapshot, volume })
  }
  if (wanted) {
    const found = snapshots.find(({ snapshot }) => snapshot.id === wanted)
    if (!found) throw new UserError(`BACKUP_ID=${wanted} is not a snapshot of ${dbApp}'s volumes (${volumes.map((v) => v.id).join(', ') || 'none'}): see flyctl volumes snapshots list <volume> --app ${dbApp}`)
    if (!isCompleteSnapshot(found.snapshot)) throw new UserError(`BACKUP_ID=${wanted} is "${found.snapshot.status}", not created: choose a created snapshot`)
    return { id: found.snapshot.id, kind, source: dbApp, takenAt: dateOf(found.snapshot.created_at), volume: { id: found.volume.id, sizeGb: found.volume.size_gb, region: found.volume.region } }
  }
  const complete = snapshots.filter(({ snapshot }) => isCompleteSnapshot(snapshot))
  const newest = complete.sort((a, b) => (dateOf(a.snapshot.created_at)?.getTime() ?? 0) - (dateOf(b.snapshot.created_at)?.getTime() ?? 0)).at(-1)
  if (!newest) {
    const where = volumes.length ? `its volume${volumes.length > 1 ? 's' : ''} ${volumes.map((v) => v.id).join(', ')}` : 'it has no volume'
    throw new UserError(`${dbApp} has no created volume snapshot to restore (${where}${snapshots.length ? `; ${snapshots.length} listed, none created yet` : ''}): Fly snapshots volumes daily; make deploy-prod takes one before migrating`)
  }
  return { id: newest.snapshot.id, kind, source: dbApp, takenAt: dateOf(newest.snapshot.created_at), volume: { id: newest.volume.id, sizeGb: newest.volume.size_gb, region: newest.volume.region } }
}

/** The backup as one line: its id, what it is of, and when it was taken (`relative`: and how long
 * ago, for a person; the ledger keeps the time alone). */
export function describeBackup(backup: ChosenBackup, relative = true): string {
  const what = backup.kind === 'mpg' ? `Managed Postgres backup ${backup.id} of cluster ${backup.source}` : `volume snapshot ${backup.id} of ${backup.source} (${backup.volume!.id})`
  const when = backup.takenAt ? `${backup.takenAt.toISOString().replace(/\.\d+Z$/, 'Z')}${relative ? ` (${formatWhen(backup.takenAt)})` : ''}` : 'at an unknown time'
  return `${what}, taken ${when}`
}
