import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { tableExists, type Database } from '../database/db.js'
import type { Environment } from '../core/names.js'
import { knob } from '../core/knobs.js'

// What makes set-secrets idempotent. flyctl never reads a value back, and Fly's digest scheme is
// not documented, so the toolkit keeps, per secret, a salted scrypt fingerprint of the value it
// pushed and the digest Fly reported right after. A secret whose local value still matches its
// fingerprint, and whose digest on Fly has not moved since, is unchanged and is not pushed again.
// Kept beside the ledger in the environment's own database, so laptops and CI share it; scrypt
// with a random salt per secret keeps the values out of reach of whoever reads that table. The
// salt column carries scrypt's cost too (`<log2 N>:<salt>`; a bare salt is the original 2^14), so
// SECRETS_FINGERPRINT_COST changes new fingerprints only and an old one still matches its value.

export interface Fingerprint {
  salt: string
  fingerprint: string
  flyDigest: string
}

/** The cost (log2 N) and the salt a salt column holds. */
function saltParts(stored: string): { cost: number; salt: string } {
  const match = /^(\d+):([0-9a-f]+)$/.exec(stored)
  return match ? { cost: Number(match[1]), salt: match[2] } : { cost: 14, salt: stored }
}

function derive(value: string, stored: string): Promise<Buffer> {
  const { cost, salt } = saltParts(stored)
  // maxmem: OpenSSL's default (32 MB) would refuse the higher costs SECRETS_FINGERPRINT_COST allows.
  const options = { N: 2 ** cost, r: 8, p: 1, maxmem: 256 * 2 ** cost * 8 + 1024 * 1024 }
  return new Promise((resolve, reject) => scrypt(value, Buffer.from(salt, 'hex'), 32, options, (error, key) => (error ? reject(error) : resolve(key))))
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
    const salt = `${knob('SECRETS_FINGERPRINT_COST')}:${randomBytes(16).toString('hex')}`
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
