import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { imageLabel, showFullValues, table, wrap, wrapLine } from '../scripts/lib/core/log.ts'

// Tables and prose fit 120 columns and wrap at word boundaries: an app name, a migration or an image
// label is never cut across two lines, and two shortened values never run into each other.

const STAGING_WEB = 'microbima-staging-web-admin'

test('wrap breaks between words, never inside one: an app name moves to the next line whole', () => {
  const text = `automatic, after the failed deploy; was 2 on …:deployment-5RRF…TH07; now 2 on …:deployment-VQ0K…B6HH, healthy; ${STAGING_WEB} rolled back`
  for (const width of [28, 30, 41, 57, 80]) {
    const lines = wrap(text, width)
    assert.ok(lines.every((line) => [...line].length <= width), `${width}: ${JSON.stringify(lines)}`)
    assert.is(lines.join(' '), text, `${width}: nothing lost or cut`)
    assert.ok(lines.some((line) => line.includes(STAGING_WEB)), `${width}: ${JSON.stringify(lines)}`)
  }
  // Narrower than the name itself: it breaks after one of its hyphens, not at the column's edge.
  assert.equal(wrap(`healthy; ${STAGING_WEB} rolled back`, 24), ['healthy;', 'microbima-staging-web-', 'admin rolled back'])
  assert.equal(wrap('20250101000000_init, 20250115000000_add_customer_beneficiaries, 20250201000000_add_premiums', 50), ['20250101000000_init,', '20250115000000_add_customer_beneficiaries,', '20250201000000_add_premiums'])
})

test('only a word longer than a whole line is broken, after a - / : , where it has one', () => {
  assert.equal(wrap('image registry.fly.io/microbima-staging-web-admin:deployment-01K7ABCDEFGH', 30), ['image', 'registry.fly.io/microbima-', 'staging-web-admin:deployment-', '01K7ABCDEFGH'])
  assert.equal(wrap('sha256 0123456789abcdef0123456789abcdef', 16), ['sha256', '0123456789abcdef', '0123456789abcdef'])
  assert.equal(wrapLine('==> a step whose message is long enough to wrap under its first word', 40, 4), ['==> a step whose message is long', '    enough to wrap under its first word'])
})

test('a table cell of two values shortens each side of its arrow; the last column wraps at word boundaries; spilled details go on their own lines', () => {
  showFullValues(false)
  const before = 'registry.fly.io/microbima-staging-web-admin:deployment-5RRFMXPNM4K1C297Z7V6JDTH07'
  const after = 'registry.fly.io/microbima-staging-web-admin:deployment-VQ0K9759YHJH1VACSSBT6PB6HH'
  const detail = `to v1 after ${STAGING_WEB} was unhealthy: the probe answered 503 three times in a row; the migration 20250115000000_add_customer_beneficiaries stayed applied`
  const text = table(['when', 'who', 'operation', 'app', 'images', 'result', 'detail'], [['1s ago', 'octocat (CI)', 'rollback', 'web-admin', `${before} → ${after}`, 'ok', detail]])
  const lines = text.split('\n')
  for (const line of lines) assert.ok([...line].length <= 120, `${[...line].length}: ${line}`)
  assert.match(text, / → /)
  assert.not.match(text, /…[^ ]*…[^ ]*…[^ ]*…/, 'two shortened refs never run into each other')
  assert.ok(lines.some((line) => line.includes(STAGING_WEB)), text)
  assert.ok(lines.some((line) => line.includes('20250115000000_add_customer_beneficiaries')), text)

  const spilled = table(['when', 'app', 'images', 'detail'], [['1s ago', 'web-admin', `${imageLabel(before)} → ${imageLabel(after)}`, 'ok'], ['2s ago', 'internal-api', '', `${detail} ${detail}`]], [2], { spill: true })
  const rows = spilled.split('\n')
  assert.match(rows[1], /web-admin\s+deployment-5RRF…TH07 → deployment-VQ0K…B6HH\s+ok$/)
  assert.match(rows[2], /^2s ago\s+internal-api$/)
  assert.ok(rows.slice(3).every((line) => line.startsWith('    ') && [...line].length <= 120), spilled)
  assert.is(rows.slice(3).map((line) => line.trim()).join(' '), `${detail} ${detail}`)
})

test('images are shown by their labels: the tag, a deployment ULID shortened; the full ref with VERBOSE=1', () => {
  assert.is(imageLabel('registry.fly.io/microbima-staging-web-admin:deployment-5RRFMXPNM4K1C297Z7V6JDTH07'), 'deployment-5RRF…TH07')
  assert.is(imageLabel('registry.fly.io/microbima-staging-web-admin:0123456789ab'), '0123456789ab')
  assert.is(imageLabel('registry.fly.io/microbima-staging-web-admin:0123456789ab-dirty-3f2a@sha256:' + 'a'.repeat(64)), '0123456789ab-dirty-3f2a')
  assert.is(imageLabel(undefined), '-')
  showFullValues(true)
  assert.is(imageLabel('registry.fly.io/x:y'), 'registry.fly.io/x:y')
  showFullValues(false)
})

test.run()
