import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { envFlag, type Context } from '../core/cli.js'
import type { DatabaseTarget } from '../secrets/env-files.js'
import { privateApp, proxyKind, reach, type Database } from './db.js'
import { OperationError } from '../core/errors.js'
import { resolveOnPath } from '../fly/flyctl.js'
import { knob } from '../core/knobs.js'
import { record } from '../safety/ledger.js'
import { databaseAppName } from '../core/names.js'
import { loadSettings } from '../core/settings.js'
import type { MpgBackup } from '../fly/types.js'

// "Have a rollback plan ready", made concrete: before the first production migration, a backup
// of the database — a volume snapshot of the Fly Postgres app, or a Managed Postgres backup — and
// with BACKUP=dump a pg_dump into backups/. Both kinds are asynchronous on Fly: `create` schedules
// and names nothing. A backup counts only once it is listed complete, so the toolkit waits for it
// (up to BACKUP_TIMEOUT, with a progress line at least every 10 s). A backup that fails or does not
// complete in time blocks the migration, unless SKIP_BACKUP=1 says the operator accepts the risk.
// A dry run says what it would do; it schedules nothing.

export interface BackupOutcome {
  /** What was done, or in a dry run what would be. */
  detail: string
  /** Whether a backup exists now (false in dry runs and with SKIP_BACKUP after a failure). */
  made: boolean
  /** It failed and SKIP_BACKUP=1 let the migration go on without one. */
  skipped?: boolean
}

/** The Fly Postgres app of an environment: the app its URL's private host names (APP.flycast,
 * APP.internal), so a database restored under another name is the one backed up; otherwise (a URL
 * that reaches it some other way) the environment's database app by its name. */
export function databaseAppOf(env: Context['env'], target: DatabaseTarget): string {
  return proxyKind(target.host) === 'flyctl' ? privateApp(target.host) : databaseAppName(env)
}

/** The MPG cluster of an environment, from its direct or pooled URL host. */
export function mpgCluster(target: DatabaseTarget): string | undefined {
  return /^(?:direct|pgbouncer)\.([a-z0-9]+)\.flympg\.net$/.exec(target.host)?.[1]
}

// Status words. Snapshots: waiting → running → created (Fly's docs). MPG backups: not documented,
// and flyctl compares none; "completed" is the one seen. Anything unknown is read as still running
// (never as done), and a timeout names the word it saw.
const FAILED = /^(failed|failure|error|errored|cancel+ed|aborted)$/i
const MPG_DONE = /^(completed?|succeeded|success(ful)?|done|finished)$/i
const SNAPSHOT_DONE = /^created$/i

/** A Managed Postgres backup listed complete (restorable). */
export const isCompleteMpgBackup = (status: string): boolean => MPG_DONE.test(status)
/** A volume snapshot listed complete: status created, with its id. */
export const isCompleteSnapshot = (snapshot: { id: string; status: string }): boolean => Boolean(snapshot.id) && SNAPSHOT_DONE.test(snapshot.status)

/** What one look at a backup's list says. */
export interface Look<T> {
  done?: T
  /** Why it failed (it will not complete). */
  failed?: string
  /** The status word(s) seen while it is neither, for progress lines and the timeout message. */
  status: string
}

export interface WaitOptions<T> {
  /** "snapshot of vol_…", "Managed Postgres backup of cluster …". */
  what: string
  timeoutS: number
  look: () => Promise<Look<T>>
  progress: (line: string) => void
  /** For tests: a clock that does not wait. */
  clock?: { now(): number; sleep(ms: number): Promise<void> }
}

const PROGRESS_EVERY_MS = 10_000

/** Looks until done, failed or timeoutS: first after 250 ms, then less often (at most every 2 s),
 * and says what it sees at least every 10 s. */
export async function waitForBackup<T>(options: WaitOptions<T>): Promise<T> {
  const clock = options.clock ?? { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)) }
  const started = clock.now()
  const deadline = started + options.timeoutS * 1000
  let interval = 250
  let lastLine: number | undefined
  for (;;) {
    await clock.sleep(Math.max(0, Math.min(interval, deadline - clock.now())))
    interval = Math.min(interval * 2, 2000)
    const look = await options.look()
    if (look.done !== undefined) return look.done
    if (look.failed) throw new OperationError(`the ${options.what} failed: ${look.failed}`)
    const now = clock.now()
    if (now >= deadline) {
      throw new OperationError(`the ${options.what} did not complete within ${options.timeoutS}s (last seen: ${look.status}); it may still complete on Fly, but this run does not count on it`, [
        'a backup of a large database can take longer: raise BACKUP_TIMEOUT (seconds) and run again',
      ])
    }
    if (lastLine === undefined || now - lastLine >= PROGRESS_EVERY_MS) {
      options.progress(`waiting for ${options.what}: ${look.status} (${Math.round((now - started) / 1000)} s of ${options.timeoutS} s)`)
      lastLine = now
    }
  }
}

/** Snapshots the database app's attached volumes, and waits until each new snapshot is listed
 * with an id and status created. A pending snapshot is listed with an empty id (and may keep it
 * empty until it is created, with a zero created_at that sorts it first): the new snapshot is the
 * one whose id was not there before; a snapshot that failed is counted, id or not. */
async function snapshotVolumes(ctx: Context, target: DatabaseTarget): Promise<string> {
  const dbApp = databaseAppOf(ctx.env, target)
  const fly = ctx.fly()
  const volumes = (await fly.postgres.volumes(dbApp)).filter((v) => v.attached_machine_id && v.state !== 'destroyed' && v.state !== 'pending_destroy')
  if (!volumes.length) throw new OperationError(`${dbApp} has no attached volume to snapshot`)
  if (ctx.dryRun) {
    for (const volume of volumes) await fly.postgres.snapshot(volume.id, dbApp)
    return `would snapshot ${volumes.map((v) => v.id).join(', ')} of ${dbApp} and wait until each snapshot is created`
  }
  const scheduled: { volume: string; known: Set<string>; failedBefore: number }[] = []
  for (const volume of volumes) {
    const before = await fly.postgres.snapshots(volume.id, dbApp)
    await fly.postgres.snapshot(volume.id, dbApp)
    scheduled.push({ volume: volume.id, known: new Set(before.map((s) => s.id).filter(Boolean)), failedBefore: before.filter((s) => FAILED.test(s.status)).length })
  }
  const done = await Promise.all(
    scheduled.map(async ({ volume, known, failedBefore }) => {
      const snapshot = await waitForBackup({
        what: `snapshot of ${volume}`,
        timeoutS: knob('BACKUP_TIMEOUT'),
        progress: ctx.log.info,
        look: async () => {
          const list = await fly.postgres.snapshots(volume, dbApp)
          const fresh = list.filter((s) => s.id && !known.has(s.id))
          const complete = fresh.filter((s) => SNAPSHOT_DONE.test(s.status)).sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at)).at(-1)
          if (complete) return { done: complete, status: complete.status }
          const failed = list.filter((s) => FAILED.test(s.status))
          if (failed.length > failedBefore) return { failed: `flyctl volumes snapshots list ${volume} shows it ${failed.at(-1)!.status}`, status: failed.at(-1)!.status }
          // Id-less snapshots listed before cannot be told from this one: their words are shown too.
          const pending = list.filter((s) => (!s.id || !known.has(s.id)) && !FAILED.test(s.status))
          return { status: pending.length ? [...new Set(pending.map((s) => s.status || 'no status'))].join(', ') : 'not listed yet' }
        },
      }).catch((error: unknown) => {
        if (error instanceof OperationError) throw new OperationError(error.message, [...error.details, `see it with flyctl volumes snapshots list ${volume} --app ${dbApp}`])
        throw error
      })
      return `${snapshot.id} of ${volume}`
    }),
  )
  return `volume snapshot${done.length > 1 ? 's' : ''} of ${dbApp} created: ${done.join(', ')}`
}

/** Backs up a Managed Postgres cluster and waits until the backup is listed complete. `backup
 * create` names nothing, and the platform's own scheduled backups (hourly) appear in the same list:
 * this run's backup is the newest of those that were new at the first look after `create`; any
 * that appear later are not its own. Two started in the same second cannot be told apart: then
 * both must complete. */
async function mpgBackup(ctx: Context, cluster: string): Promise<string> {
  const fly = ctx.fly()
  if (ctx.dryRun) {
    await fly.mpg.backupCreate(cluster)
    return `would back up Managed Postgres cluster ${cluster} and wait until the backup is completed`
  }
  const known = new Set((await fly.mpg.backupList(cluster)).map((b) => b.id))
  await fly.mpg.backupCreate(cluster)
  let ours: string[] | undefined
  const backups = await waitForBackup({
    what: `Managed Postgres backup of cluster ${cluster}`,
    timeoutS: knob('BACKUP_TIMEOUT'),
    progress: ctx.log.info,
    look: async () => {
      const list = await fly.mpg.backupList(cluster)
      if (!ours) {
        const fresh = list.filter((b) => !known.has(b.id))
        if (!fresh.length) return { status: 'not listed yet' }
        const startOf = (b: MpgBackup) => (Number.isNaN(Date.parse(b.start)) ? -Infinity : Date.parse(b.start))
        const newest = Math.max(...fresh.map(startOf))
        ours = fresh.filter((b) => startOf(b) === newest).map((b) => b.id)
        for (const other of fresh.filter((b) => !ours!.includes(b.id))) ctx.log.info(`backup ${other.id} (${other.type || 'no type'}, started ${other.start}) began before this run's: not counted as its backup`)
        if (ours.length > 1) ctx.log.warn(`backups ${ours.join(' and ')} started at the same moment and cannot be told apart: waiting until all of them are completed`)
      }
      const mine = ours.map((id) => list.find((b) => b.id === id))
      const gone = ours.filter((_, i) => !mine[i])
      if (gone.length) return { failed: `${gone.join(', ')} is no longer listed by flyctl mpg backup list ${cluster}`, status: 'gone' }
      const listed = mine as MpgBackup[]
      const failed = listed.find((b) => FAILED.test(b.status))
      if (failed) return { failed: `${failed.id} ended ${failed.status}`, status: failed.status }
      if (listed.every((b) => MPG_DONE.test(b.status))) return { done: listed, status: 'completed' }
      return { status: listed.filter((b) => !MPG_DONE.test(b.status)).map((b) => `${b.id} is "${b.status}"`).join(', ') }
    },
  }).catch((error: unknown) => {
    if (error instanceof OperationError) throw new OperationError(error.message, [...error.details, `see it with flyctl mpg backup list ${cluster}`])
    throw error
  })
  return `Managed Postgres backup ${backups.map((b) => b.id).join(' and ')} of cluster ${cluster} completed`
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
    const done = [kind === 'mpg' ? await mpgBackup(ctx, cluster!) : await snapshotVolumes(ctx, target)]
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
