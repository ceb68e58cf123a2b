// Runs the real renderer (POSIX sh, as in the Kong image) with each environment's settings.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('../docker-entrypoint.sh', import.meta.url))

function render(env) {
  // Only what the test gives: a stray KONG_* in the caller's environment must not leak in.
  const r = spawnSync('sh', [script, 'render'], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const staging = { KONG_UPSTREAM_URL: 'http://microbima-staging-internal-api.flycast', KONG_PARTNER_API_KEY: 'stg-key-1' }
const production = { KONG_UPSTREAM_URL: 'http://microbima-production-internal-api.flycast', KONG_PARTNER_API_KEY: 'prd-key-1', KONG_PARTNER_KEYS: 'prd-key-2, prd-key-3' }

test('staging and production get their own upstream and keys from one template', () => {
  const s = render(staging)
  const p = render(production)
  assert.equal(s.status, 0, s.stderr)
  assert.equal(p.status, 0, p.stderr)
  assert.match(s.stdout, /^_format_version: "3\.0"$/m)
  assert.match(s.stdout, /^ {4}url: 'http:\/\/microbima-staging-internal-api\.flycast'$/m)
  assert.match(s.stdout, /^ {4}url: 'http:\/\/microbima-staging-internal-api\.flycast\/health'$/m)
  assert.match(s.stdout, /- key: 'stg-key-1'$/m)
  assert.doesNotMatch(s.stdout, /production|prd-key/)
  assert.match(p.stdout, /^ {4}url: 'http:\/\/microbima-production-internal-api\.flycast'$/m)
  for (const key of ['prd-key-1', 'prd-key-2', 'prd-key-3']) assert.match(p.stdout, new RegExp(`- key: '${key}'$`, 'm'))
  assert.equal(p.stdout.match(/- username: partner-\d+$/gm).length, 3)
  assert.doesNotMatch(p.stdout, /staging|stg-key|\{\{/)
})

test('keys holding quotes, backslashes, #, colons and spaces are quoted, not interpreted', () => {
  const r = render({ ...staging, KONG_PARTNER_API_KEY: `it's a "k\\ey": #1` })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /- key: 'it''s a "k\\ey": #1'$/m)
})

test('missing settings: one line on stderr, exit 1, nothing on stdout', () => {
  for (const env of [{ KONG_PARTNER_API_KEY: 'k' }, { KONG_UPSTREAM_URL: 'http://x.flycast' }, {}, { ...staging, KONG_PARTNER_API_KEY: '' }]) {
    const r = render(env)
    assert.equal(r.status, 1)
    assert.equal(r.stdout, '')
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, /KONG_(UPSTREAM_URL|PARTNER_API_KEY)/)
  }
})

test('refuses what Kong could not load: a non-HTTP upstream, a repeated key, a newline in a key', () => {
  for (const env of [
    { ...staging, KONG_UPSTREAM_URL: 'microbima.flycast' },
    { ...staging, KONG_PARTNER_KEYS: 'stg-key-1' },
    { ...staging, KONG_PARTNER_API_KEY: 'a\nb' },
  ]) {
    const r = render(env)
    assert.equal(r.status, 1)
    assert.equal(r.stdout, '')
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
  }
})
