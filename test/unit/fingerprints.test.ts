import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { scryptSync } from 'node:crypto'
import { knobProblems } from '../../scripts/lib/core/knobs.ts'
import type { Database } from '../../scripts/lib/database/db.ts'
import { saveFingerprints, valueMatches, type Fingerprint } from '../../scripts/lib/secrets/fingerprints.ts'

// set-secrets' fingerprints: scrypt's cost is SECRETS_FINGERPRINT_COST (log2 N, default 14), kept
// in the salt column beside the salt, so a fingerprint made at one cost still matches its value
// after the setting changed; a bare salt (fingerprints made before the setting existed) is 2^14.

/** The fingerprints saveFingerprints writes, as set-secrets reads them back. */
async function saved(cost: string | undefined, values: Record<string, string>): Promise<Fingerprint[]> {
  const before = process.env.SECRETS_FINGERPRINT_COST
  if (cost === undefined) delete process.env.SECRETS_FINGERPRINT_COST
  else process.env.SECRETS_FINGERPRINT_COST = cost
  const rows: Fingerprint[] = []
  const db = { write: async (_sql: string, params: unknown[]) => void rows.push({ salt: String(params[3]), fingerprint: String(params[4]), flyDigest: String(params[5]) }) } as unknown as Database
  try {
    await saveFingerprints(db, 'staging', 'microbima-staging-web-admin', values, new Map(Object.keys(values).map((name) => [name, `digest-${name}`])))
  } finally {
    if (before === undefined) delete process.env.SECRETS_FINGERPRINT_COST
    else process.env.SECRETS_FINGERPRINT_COST = before
  }
  return rows
}

test('the default cost is 2^14, written with the salt; the value matches, another does not', async () => {
  const [print] = await saved(undefined, { SESSION_SECRET: 's3cret-value' })
  assert.match(print.salt, /^14:[0-9a-f]{32}$/)
  const salt = Buffer.from(print.salt.slice(3), 'hex')
  assert.is(print.fingerprint, scryptSync('s3cret-value', salt, 32, { N: 2 ** 14, r: 8, p: 1 }).toString('hex'))
  assert.ok(await valueMatches(print, 's3cret-value'))
  assert.not.ok(await valueMatches(print, 's3cret-valuE'))
})

test('SECRETS_FINGERPRINT_COST=10 makes cheaper fingerprints that keep matching once the setting is gone', async () => {
  const [print] = await saved('10', { JWT_SECRET: 'another value' })
  assert.match(print.salt, /^10:[0-9a-f]{32}$/)
  assert.is(print.fingerprint, scryptSync('another value', Buffer.from(print.salt.slice(3), 'hex'), 32, { N: 2 ** 10, r: 8, p: 1 }).toString('hex'))
  assert.ok(await valueMatches(print, 'another value'))
  assert.not.ok(await valueMatches(print, 'another valu'))
})

test('a bare salt (a fingerprint made before the setting existed) is read as 2^14', async () => {
  const salt = 'a1'.repeat(16)
  const print = { salt, fingerprint: scryptSync('old value', Buffer.from(salt, 'hex'), 32, { N: 2 ** 14, r: 8, p: 1 }).toString('hex'), flyDigest: 'd' }
  assert.ok(await valueMatches(print, 'old value'))
  assert.not.ok(await valueMatches(print, 'new value'))
})

test('SECRETS_FINGERPRINT_COST outside 10-20, or not a whole number, is refused before anything runs', () => {
  assert.equal(knobProblems({ SECRETS_FINGERPRINT_COST: '9' }), ['SECRETS_FINGERPRINT_COST=9 is less than 10: give it a whole number from 10 to 20'])
  assert.equal(knobProblems({ SECRETS_FINGERPRINT_COST: '21' }), ['SECRETS_FINGERPRINT_COST=21 is more than 20: give it a whole number up to 20'])
  assert.equal(knobProblems({ SECRETS_FINGERPRINT_COST: '12.5' }), ['SECRETS_FINGERPRINT_COST=12.5 is not a whole number'])
  assert.equal(knobProblems({ SECRETS_FINGERPRINT_COST: '16' }), [])
})

test.run()
