import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { tableExists, type Database } from '../database/db.js'
import type { Environment } from '../core/names.js'

// What makes set-secrets idempotent. flyctl never reads a value back, and Fly's digest scheme is
// not documented, so the toolkit keeps, per secret, a salted scrypt fingerprint of the value it
// pushed and the digest Fly reported right after. A secret whose local value still matches its
// fingerprint, and whose digest on Fly has not moved since, is unchanged and is not pushed again.
// Kept beside the ledger in the environment's own database, so laptops and CI share it; scrypt
// with a random salt per secret keeps the values out of reach of whoever reads that table.

export interface Fingerprint {
  salt: string
  fingerprint: string
  flyDigest: string
}

const SCRYPT = { N: 2 ** 14, r: 8, p: 1 }

function derive(value: string, salt: string): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(value, Buffer.from(salt, 'hex'), 32, SCRYPT, (error, key) => (error ? reject(error) : resolve(key))))
}

export async function valueMatches(print: Fingerprint, value: string): Promise<boolean> {
  return timingSafeEqual(await derive(value, print.salt), Buffer.from(print.fingerprint, 'hex'))
}

/** app → secret name → fingerprint; empty before the first push. */
export async function readFingerprints(db: Database, env: Environment): Promise<Map<string, Map<string, Fingerprint>>> {
  const byApp = new Map<string, Map<string, Fingerprint>>()
  if (!(await tableExists(db, 'microbima_deploy.secret_fingerprints'))) return byApp
  const rows = await db.query<{ app: string; name: string; salt: string; fingerprint: string; fly_digest: string }>(
    'SELECT app, name, salt, fingerprint, fly_digest FROM microbima_deploy.secret_fingerprints WHERE environment = $1',
    [env],
  )
  for (const row of rows) {
    if (!byApp.has(row.app)) byApp.set(row.app, new Map())
    byApp.get(row.app)!.set(row.name, { salt: row.salt, fingerprint: row.fingerprint, flyDigest: row.fly_digest })
  }
  return byApp
}

/** Marks the digest of a value pushed while Fly could not confirm it was stored (see set-secrets). */
export const UNVERIFIED = 'unverified:'

/** Records what was pushed: one fingerprint per secret, with the digest Fly now reports for it. */
export async function saveFingerprints(db: Database, env: Environment, app: string, values: Record<string, string>, flyDigests: Map<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(values)) {
    const digest = flyDigests.get(name)
    if (digest === undefined) continue
    const salt = randomBytes(16).toString('hex')
    const fingerprint = (await derive(value, salt)).toString('hex')
    await db.write(
      `INSERT INTO microbima_deploy.secret_fingerprints (environment, app, name, salt, fingerprint, fly_digest) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (environment, app, name) DO UPDATE SET salt = EXCLUDED.salt, fingerprint = EXCLUDED.fingerprint, fly_digest = EXCLUDED.fly_digest, updated_at = now()`,
      [env, app, name, salt, fingerprint, digest],
      // Salt, fingerprint and digest never appear in a preview: with a short value they give it away.
      { sensitive: [4, 5, 6] },
    )
  }
}

export async function forgetFingerprints(db: Database, env: Environment, app: string, names: string[]): Promise<void> {
  if (names.length) await db.write('DELETE FROM microbima_deploy.secret_fingerprints WHERE environment = $1 AND app = $2 AND name = ANY($3)', [env, app, names])
}
