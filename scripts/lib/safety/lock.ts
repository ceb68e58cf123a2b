import { randomUUID } from 'node:crypto'
import type { Context } from '../core/cli.js'
import { tableExists, type Database } from '../database/db.js'
import { OperationError, Refusal } from '../core/errors.js'
import { guardWrites, killAllChildren, stopStarting } from '../core/exec.js'
import { knob } from '../core/knobs.js'
import { ensureSchema, record } from './ledger.js'
import { formatWhen } from '../core/log.js'
import { type Environment, shortName } from '../core/names.js'
import { machine, where, who } from './who.js'

// At most one write operation per environment, whether it runs on a laptop or in CI: a row in
// the environment's own database. Taken and released by single atomic statements (no session
// state, so it holds through poolers and PGlite alike), kept alive by a heartbeat, and expiring
// when its holder crashed. A second operation waits up to LOCK_WAIT seconds, then refuses.
// A holder whose heartbeat fails (the proxy died, the database went away) no longer knows it
// holds the lock: the run stops at once instead of writing on without it.
// `make lock-<env> REASON=…` holds the environment by hand (an incident): deploys refuse at once.

const POLL_MS = 500
const HOLD = 'hold: '

export interface LockHolder {
  environment: string
  token: string
  who: string
  host: string
  operation: string
  since: Date
  expires_at: Date
}

export async function lockHolder(db: Database, environment: string): Promise<LockHolder | undefined> {
  if (!(await tableExists(db, 'microbima_deploy.deploy_lock'))) return undefined
  const [row] = await db.query<LockHolder>('SELECT * FROM microbima_deploy.deploy_lock WHERE environment = $1 AND expires_at > now()', [environment])
  return row
}

export const isHold = (holder: LockHolder) => holder.operation.startsWith(HOLD)

export function describeHolder(holder: LockHolder): string {
  if (isHold(holder)) return `${holder.who} on ${holder.host}, holding it since ${formatWhen(holder.since)}: ${holder.operation.slice(HOLD.length)}`
  return `${holder.who} on ${holder.host}, running ${holder.operation} since ${formatWhen(holder.since)}`
}

async function tryAcquire(db: Database, environment: string, token: string, operation: string, ttl: number | 'forever', host = where()): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO microbima_deploy.deploy_lock (environment, token, who, host, operation, since, expires_at)
     VALUES ($1, $2, $3, $4, $5, now(), CASE WHEN $6::float8 IS NULL THEN 'infinity'::timestamptz ELSE now() + make_interval(secs => $6::float8) END)
     ON CONFLICT (environment) DO UPDATE SET token = EXCLUDED.token, who = EXCLUDED.who, host = EXCLUDED.host,
       operation = EXCLUDED.operation, since = EXCLUDED.since, expires_at = EXCLUDED.expires_at
     WHERE microbima_deploy.deploy_lock.expires_at < now()
     RETURNING token`,
    [environment, token, who(), host, operation, ttl === 'forever' ? null : ttl],
  )
  return rows.length === 1
}

function refusal(env: Environment, holder: LockHolder | undefined, waited?: number): Refusal {
  const short = shortName(env)
  return new Refusal(`the ${env} deploy lock is held by ${holder ? describeHolder(holder) : 'another operation'}${waited === undefined ? '' : `; waited ${waited}s`}`, [
    holder && isHold(holder) ? `when the incident is over: make unlock-${short} YES=1` : `see it with make lock-status-${short}; if its holder is gone, break it with make unlock-${short} YES=1`,
  ])
}

/** Runs fn holding the lock of `env` (the run's own by default); a dry run takes no lock. */
export async function withLock<T>(ctx: Context, db: Database, operation: string, fn: () => Promise<T>, env: Environment = ctx.env): Promise<T> {
  if (ctx.dryRun) {
    const holder = await lockHolder(db, env)
    if (holder) ctx.log.warn(`the ${env} deploy lock is held by ${describeHolder(holder)}`)
    return fn()
  }
  await ensureSchema(db)
  const token = randomUUID()
  const ttl = knob('LOCK_TTL')
  const deadline = Date.now() + knob('LOCK_WAIT') * 1000
  let announced = false
  while (!(await tryAcquire(db, env, token, operation, ttl))) {
    const holder = await lockHolder(db, env)
    if ((holder && isHold(holder)) || Date.now() >= deadline) {
      await record({ ...ctx, env }, db, { operation, result: 'refused', detail: holder ? `lock held by ${describeHolder(holder)}` : 'lock busy' })
      throw refusal(env, holder, holder && isHold(holder) ? undefined : knob('LOCK_WAIT'))
    }
    if (!announced && holder) ctx.log.info(`waiting for the ${env} deploy lock, held by ${describeHolder(holder)}`)
    announced = true
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  let lost: string | undefined
  const loseIt = async (error: unknown) => {
    if (lost) return
    lost = `the ${env} deploy lock was lost (${(error as Error).message.split('\n')[0]})`
    ctx.log.error(`${lost}: stopping, so nothing more is written without it`)
    ctx.aborted.reason ??= lost
    stopStarting(lost, true)
    await killAllChildren()
  }
  // Extends the lock (the heartbeat), or proves it is still held (before every write).
  const stillHeld = async (sql: string, params: unknown[]) => {
    if (!db.alive()) throw new Error('the connection to the database is gone')
    const rows = await db.query(sql, params)
    if (!rows.length) throw new Error('someone broke it (make unlock), or it expired')
  }
  const beat = async () => {
    if (lost) return
    await stillHeld('UPDATE microbima_deploy.deploy_lock SET expires_at = now() + make_interval(secs => $2) WHERE token = $1 RETURNING token', [token, ttl]).catch(loseIt)
  }
  const heartbeat = setInterval(() => void beat(), Math.max(200, (ttl * 1000) / 3))
  heartbeat.unref()
  const unguard = guardWrites(async () => {
    if (!lost) await stillHeld('SELECT token FROM microbima_deploy.deploy_lock WHERE token = $1 AND expires_at > now()', [token]).catch(loseIt)
    if (lost) throw new OperationError(lost, ['nothing more was started: check make history and make health, then run it again'])
  })
  let released = false
  const release = async () => {
    if (released) return
    released = true
    unguard()
    clearInterval(heartbeat)
    await db.query('DELETE FROM microbima_deploy.deploy_lock WHERE token = $1', [token]).catch(() => undefined)
  }
  // Released on success, on failure, and on SIGINT/SIGTERM/SIGHUP (cleanups run before the db closes).
  // A signal gets one "interrupted" entry, whichever comes first: the signal's cleanup pass or the
  // body's own error path (the killed child fails it); both wait for the same write.
  let finished = false
  let interrupted: Promise<void> | undefined
  const recordInterrupted = () => (interrupted ??= record({ ...ctx, env }, db, { operation, result: 'interrupted', detail: ctx.aborted.reason ?? 'stopped by a signal' }))
  const bySignal = () => ctx.aborted.reason?.startsWith('interrupted by ') ?? false
  ctx.onCleanup(async () => {
    if (!finished || bySignal()) await recordInterrupted()
    await release()
  })
  try {
    const result = await fn()
    if (lost) throw new OperationError(lost, ['the operation may be incomplete: check make history and make health, then run it again'])
    return result
  } catch (error) {
    if (lost && !(error instanceof OperationError && error.message === lost)) throw new OperationError(lost, [`what was running: ${(error as Error).message.split('\n')[0]}`])
    throw error
  } finally {
    finished = true
    if (bySignal()) await recordInterrupted()
    await release()
  }
}

/** Refuses (exit 3) at once when someone holds the environment by hand. */
export async function refuseIfHeld(ctx: Context, db: Database, env: Environment = ctx.env): Promise<void> {
  const holder = await lockHolder(db, env)
  if (holder && isHold(holder)) throw refusal(env, holder)
}

/** `make lock-<env> REASON=…`: holds the environment until unlocked. */
export async function holdLock(ctx: Context, db: Database, reason: string): Promise<void> {
  await ensureSchema(db)
  if (ctx.dryRun) {
    // The row a real run inserts (when the lock is free), printed as the write it is.
    await db.write("INSERT INTO microbima_deploy.deploy_lock (environment, token, who, host, operation, since, expires_at) VALUES ($1, gen_random_uuid(), $2, $3, $4, now(), 'infinity')", [ctx.env, who(), machine(), `${HOLD}${reason}`])
    return
  }
  // A hold outlives this process: it names the machine, not a pid that is gone in a moment.
  if (!(await tryAcquire(db, ctx.env, randomUUID(), `${HOLD}${reason}`, 'forever', machine()))) throw refusal(ctx.env, await lockHolder(db, ctx.env))
}

/** Breaks the lock whoever holds it; returns who held it. */
export async function breakLock(ctx: Context, db: Database): Promise<LockHolder | undefined> {
  const holder = await lockHolder(db, ctx.env)
  await ensureSchema(db)
  await db.write('DELETE FROM microbima_deploy.deploy_lock WHERE environment = $1', [ctx.env])
  return holder
}
