import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { databaseAppOf, waitForBackup, type Look } from '../scripts/lib/database/backup.ts'
import { parseDatabaseUrl } from '../scripts/lib/secrets/env-files.ts'

// The wait for an asynchronous backup (a volume snapshot, a Managed Postgres backup), on a clock
// that does not wait: how often it looks, when it speaks, and how it ends.

function fakeClock() {
  let now = 0
  return { now: () => now, sleep: async (ms: number) => void (now += ms), advance: (ms: number) => void (now += ms) }
}

test('a progress line at least every 10 s, naming the status and the time waited out of BACKUP_TIMEOUT; done when the look says so', async () => {
  const clock = fakeClock()
  const lines: string[] = []
  const looks: number[] = []
  const done = await waitForBackup({
    what: 'snapshot of vol_abc',
    timeoutS: 900,
    clock,
    progress: (line) => lines.push(`${clock.now()} ${line}`),
    look: async (): Promise<Look<string>> => {
      looks.push(clock.now())
      // Each flyctl call takes a while too.
      clock.advance(700)
      return clock.now() >= 31_000 ? { done: 'vs_1', status: 'created' } : { status: clock.now() < 8000 ? 'waiting' : 'running' }
    },
  })
  assert.is(done, 'vs_1')
  // The first look soon after the create, then less often, never more than 2 s apart.
  assert.equal(looks.slice(0, 4), [250, 1450, 3150, 5850])
  assert.ok(looks.slice(1).every((t, i) => t - looks[i] <= 2000 + 700))
  // Three lines in 31 s: the first at once, then one whenever 10 s have passed since the last
  // (never more than one look later), each with the seconds waited so far.
  assert.is(lines.length, 3, lines.join('\n'))
  assert.equal(lines.map((l) => /: (\w+) \(\d+ s of 900 s\)$/.exec(l)?.[1]), ['waiting', 'running', 'running'])
  const at = lines.map((l) => Number(l.split(' ')[0]))
  const said = lines.map((l) => Number(/\((\d+) s of/.exec(l)![1]))
  assert.ok(at[0] <= 1000, at.join(' '))
  assert.ok(at.slice(1).every((t, i) => t - at[i] >= 10_000 && t - at[i] <= 10_000 + 2700), at.join(' '))
  assert.equal(said, at.map((t) => Math.round(t / 1000)))
})

test('a failure ends the wait at once; a timeout names the last status seen and BACKUP_TIMEOUT', async () => {
  const failing = waitForBackup({ what: 'snapshot of vol_abc', timeoutS: 900, clock: fakeClock(), progress: () => undefined, look: async () => ({ failed: 'it shows failed', status: 'failed' }) })
  await failing.then(() => assert.unreachable('it failed'), (error: Error) => assert.is(error.message, 'the snapshot of vol_abc failed: it shows failed'))

  const clock = fakeClock()
  let looks = 0
  const stuck = waitForBackup({ what: 'Managed Postgres backup of cluster c1', timeoutS: 30, clock, progress: () => undefined, look: async () => (looks++, { status: 'bk_1 is "in_progress"' }) })
  await stuck.then(
    () => assert.unreachable('it timed out'),
    (error: Error & { details: string[] }) => {
      assert.match(error.message, /^the Managed Postgres backup of cluster c1 did not complete within 30s \(last seen: bk_1 is "in_progress"\)/)
      assert.match(error.details.join('\n'), 'raise BACKUP_TIMEOUT')
    },
  )
  // It looked right up to the deadline, not past it.
  assert.is(clock.now(), 30_000)
  assert.ok(looks >= 15 && looks <= 20, String(looks))
})

test('the Fly Postgres app backed up (and drilled) is the one the URL names, so a database restored under another name is the one protected; a URL without a Fly host falls back to the environment\'s database app', () => {
  const app = (url: string) => databaseAppOf('production', parseDatabaseUrl(url, 'test'))
  assert.is(app('postgres://u:p@microbima-prod-db-restored.flycast:5432/db?sslmode=disable'), 'microbima-prod-db-restored')
  assert.is(app('postgres://u:p@top2.nearest.of.microbima-prod-db.internal:5432/db'), 'microbima-prod-db')
  assert.is(app('postgres://u:p@127.0.0.1:5432/db'), 'microbima-prod-db')
})

test.run()
