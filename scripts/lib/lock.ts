import { randomUUID } from 'node:crypto'
import type { Context } from './cli.js'
import { tableExists, type Database } from './db.js'
import { Refusal } from './errors.js'
import { ensureSchema, record } from './ledger.js'
import { shortName } from './names.js'
import { where, who } from './who.js'

// At most one write operation per environment, whether it runs on a laptop or in CI: a row in
// the environment's own database. Taken and released by single atomic statements (no session
// state, so it holds through poolers and PGlite alike), kept alive by a heartbeat, and expiring
// when its holder crashed. A second operation waits up to LOCK_WAIT seconds, then refuses.

const ttlSeconds = () => Number(process.env.LOCK_TTL ?? 120)
const waitSeconds = () => Number(process.env.LOCK_WAIT ?? 60)
const POLL_MS = 500

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

export function describeHolder(holder: LockHolder): string {
  return `${holder.who} on ${holder.host}, running ${holder.operation} since ${new Date(holder.since).toISOString()}`
}

async function tryAcquire(db: Database, environment: string, token: string, operation: string): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO microbima_deploy.deploy_lock (environment, token, who, host, operation, since, expires_at)
     VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6))
     ON CONFLICT (environment) DO UPDATE SET token = EXCLUDED.token, who = EXCLUDED.who, host = EXCLUDED.host,
       operation = EXCLUDED.operation, since = EXCLUDED.since, expires_at = EXCLUDED.expires_at
     WHERE microbima_deploy.deploy_lock.expires_at < now()
     RETURNING token`,
    [environment, token, who(), where(), operation, ttlSeconds()],
  )
  return rows.length === 1
}

/** Runs fn holding the environment's lock; a dry run changes nothing and takes no lock. */
export async function withLock<T>(ctx: Context, db: Database, operation: string, fn: () => Promise<T>): Promise<T> {
  if (ctx.dryRun) {
    const holder = await lockHolder(db, ctx.env)
    if (holder) ctx.log.warn(`the ${ctx.env} deploy lock is held by ${describeHolder(holder)}`)
    return fn()
  }
  await ensureSchema(db)
  const token = randomUUID()
  const deadline = Date.now() + waitSeconds() * 1000
  let announced = false
  while (!(await tryAcquire(db, ctx.env, token, operation))) {
    const holder = await lockHolder(db, ctx.env)
    if (Date.now() >= deadline) {
      await record(ctx, db, { operation, result: 'refused', detail: holder ? `lock held by ${describeHolder(holder)}` : 'lock busy' })
      throw new Refusal(`the ${ctx.env} deploy lock is held by ${holder ? describeHolder(holder) : 'another operation'}; waited ${waitSeconds()}s`, [
        `see it with make lock-status-${shortName(ctx.env)}; if its holder is gone, break it with make unlock-${shortName(ctx.env)} YES=1`,
      ])
    }
    if (!announced && holder) ctx.log.info(`waiting for the ${ctx.env} deploy lock, held by ${describeHolder(holder)}`)
    announced = true
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  const heartbeat = setInterval(() => {
    db.query('UPDATE microbima_deploy.deploy_lock SET expires_at = now() + make_interval(secs => $2) WHERE token = $1', [token, ttlSeconds()]).catch(() => undefined)
  }, (ttlSeconds() * 1000) / 3)
  heartbeat.unref()
  let released = false
  const release = async () => {
    if (released) return
    released = true
    clearInterval(heartbeat)
    await db.query('DELETE FROM microbima_deploy.deploy_lock WHERE token = $1', [token]).catch(() => undefined)
  }
  // Released on success, on failure, and on SIGINT/SIGTERM (cleanups run before the db closes).
  let finished = false
  ctx.onCleanup(async () => {
    if (!finished) await record(ctx, db, { operation, result: 'interrupted', detail: 'stopped by a signal' })
    await release()
  })
  try {
    return await fn()
  } finally {
    finished = true
    await release()
  }
}

/** Breaks the lock whoever holds it; returns who held it. */
export async function breakLock(ctx: Context, db: Database): Promise<LockHolder | undefined> {
  const holder = await lockHolder(db, ctx.env)
  await ensureSchema(db)
  await db.write('DELETE FROM microbima_deploy.deploy_lock WHERE environment = $1', [ctx.env])
  return holder
}
