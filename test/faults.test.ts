import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import pg from 'pg'
import { argvs, createSandbox, type Call } from '../scripts/sandbox/sandbox.ts'
import { sql } from './support/pg.ts'
import { STAGING, isRollout, rolledOut, scenario, type Scenario } from './support/scenario.ts'
import { MIGRATIONS, REPO, SECRET, addMigration, leftovers, projectCopy, run, runMake, runScript, tempDir, writeEnvDir, until, type RunResult } from './support/toolkit.ts'

// Faults, signals and races: each ends with the right exit code, a summary that says what changed,
// the ledger entries it should leave, no child process left behind (checked by the pids of the
// flyctl calls this file's runs made) and no secret value in any output. Most tests share one
// sandbox whose staging runs the current code; each leaves it as it found it.

let shared: Scenario | undefined
const ready = async () => (shared ??= await scenario({ stagingDeployed: true }))

const SECRET_VALUES = Object.values(SECRET).flatMap((v) => [v, `${v}P`])
/** No stack trace, no secret value. */
function clean(result: RunResult): RunResult {
  assert.not.match(result.output, /\n\s+at .+:\d+:\d+/, 'stack trace in the output')
  assert.not.match(result.output, /^bug: /m)
  for (const value of SECRET_VALUES) assert.not.ok(result.output.includes(value), `secret ${value} in the output:\n${result.output}`)
  return result
}
const script = async (...args: Parameters<typeof runScript>) => clean(await runScript(...args))
const make = async (...args: Parameters<typeof runMake>) => clean(await runMake(...args))
/** The script's own exit code behind make's 2. */
const code = (result: RunResult) => Number(/make: \*\*\* \[[^\]]+\] Error (\d+)/.exec(result.stderr)?.[1] ?? result.code)

const ledger = async (url: string) =>
  (await sql<{ operation: string; app: string | null; result: string }>(url, 'SELECT operation, app, result FROM microbima_deploy.ledger ORDER BY id')).map((r) => `${r.operation}:${r.app ?? '-'}:${r.result}`)
const ledgerSince = async (url: string, before: string[]) => (await ledger(url)).slice(before.length)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
/** Every flyctl process of these calls has ended, and nothing else the run started is left
 * (within `ms`: the watchdog of a killed toolkit needs a moment). */
async function noChildLeft(calls: Call[], result?: RunResult, ms = 8000): Promise<void> {
  const pids = [...new Set(calls.map((c) => c.pid))]
  await until(`flyctl processes ${pids.join(', ')} to end`, () => pids.every((pid) => !alive(pid)) || undefined, ms)
  if (result) await until(`the processes of the run to end: ${leftovers(result.marker).join('; ')}`, () => leftovers(result.marker).length === 0, ms)
}
const writes = (s: Scenario) => s.sandbox.writes().map((c) => c.argv.join(' '))
/** flyctl as processes of their own (the sandbox's bash client), as on a real machine: for the tests
 * about what becomes of flyctl's processes (a rehearsal's calls are served in the toolkit's own). */
const asProcesses = (env: Record<string, string>) => ({ ...env, FLY_SIM_DIRECT: '' })

/** The scenario's env folder, with staging's and production's databases reached through
 * `flyctl proxy` (host *.flycast), as on Fly. */
function proxied(s: Scenario, edit?: (dir: string) => void): string {
  const port = (url: string) => Number(new URL(url).port)
  s.sandbox.settings({ postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: port(s.dbs.staging) }, 'microbima-prod-db': { host: '127.0.0.1', port: port(s.dbs.production) } } })
  const viaFly = (url: string, app: string) => url.replace(/@127\.0\.0\.1:\d+\//, `@${app}.flycast:5432/`)
  const files = structuredClone(s.files)
  files.staging!['internal-api']!.DATABASE_URL = viaFly(s.files.staging!['internal-api']!.DATABASE_URL, 'microbima-staging-db')
  files.production!['internal-api']!.DATABASE_URL = viaFly(s.files.production!['internal-api']!.DATABASE_URL, 'microbima-prod-db')
  const dir = writeEnvDir(files)
  edit?.(dir)
  return dir
}

// ---- 2. wrong values stored ---------------------------------------------------------------------------

test('a secret flyctl dropped fails set-secrets (exit 1), is not fingerprinted, and the next run pushes it again', async () => {
  const s = await ready()
  const dir = writeEnvDir({ ...s.files, staging: { ...s.files.staging, 'web-admin': { ...s.files.staging!['web-admin'], SESSION_SECRET: `'${SECRET.session}#rotated'` } } })
  const env = { ...s.env, ENV_DIR: dir }
  // Deployed, then pushed once by the toolkit (verified, so fingerprinted): the new value is "changed".
  assert.is((await script('deploy', ['staging', '--app', 'web-admin'], { env: s.env })).code, 0)
  assert.is((await make('set-secrets-staging', { APP: 'web-admin' }, { env: s.env })).code, 0)
  const before = await ledger(s.dbs.staging)
  s.sandbox.fault({ command: 'secrets import', kind: 'drop', detail: 'SESSION_SECRET', times: 1 })
  const dropped = await make('set-secrets-staging', { APP: 'web-admin' }, { env })
  assert.is(code(dropped), 1, dropped.output)
  assert.match(dropped.stderr, 'failed: microbima-staging-web-admin: Fly does not show SESSION_SECRET as stored (secrets list after the import: digest unchanged or missing)')
  assert.equal(await ledgerSince(s.dbs.staging, before), [`set-secrets:${STAGING[2]}:failed`])
  const again = await make('set-secrets-staging', { APP: 'web-admin' }, { env })
  assert.is(again.code, 0, again.output)
  assert.match(again.stdout, /SESSION_SECRET\s+changed/)
  assert.match(again.stderr, 'staged SESSION_SECRET, verified in flyctl secrets list')
  // Stored byte for byte: the quoted '#' and what follows it included.
  const stored = s.sandbox.state().apps[STAGING[2]].secretsLog.filter((e: { name: string }) => e.name === 'SESSION_SECRET').at(-1)
  assert.is(stored?.value, `${SECRET.session}#rotated`)
  const third = await make('set-secrets-staging', { APP: 'web-admin' }, { env })
  assert.match(third.stderr, 'already match the env files: nothing to push')
  // Put the scenario's value back.
  assert.is((await make('set-secrets-staging', { APP: 'web-admin' }, { env: s.env })).code, 0)
})

test('a secret the toolkit never pushed, already Staged on Fly, whose digest did not move: said unverified; the run after the next deploy pushes it once more and stores it', async () => {
  const s = await ready()
  await sql(s.dbs.staging, 'DELETE FROM microbima_deploy.secret_fingerprints WHERE app = $1', [STAGING[2]])
  // Staged on Fly by hand, never by the toolkit: the file's value differs, and flyctl drops it.
  await s.sandbox.fly(['secrets', 'set', 'SESSION_SECRET=set-by-hand-0x51', '--app', STAGING[2], '--stage'])
  s.sandbox.fault({ command: 'secrets import', kind: 'drop', detail: 'SESSION_SECRET', times: 1 })
  const first = await make('set-secrets-staging', { APP: 'web-admin' }, { env: s.env })
  assert.is(first.code, 0, first.output)
  assert.match(first.stderr, /SESSION_SECRET[^\n]* imported, but Fly's digest did not change and (it was|they were) already Staged: [^\n]*; the first run after the next deploy pushes (it|them) once more to tell/)
  assert.not.match(first.stderr, /staged [^\n]*SESSION_SECRET[^\n]*verified/)
  // Twice in a row: nothing new to learn, nothing written.
  s.sandbox.clearCalls()
  const second = await make('set-secrets-staging', { APP: 'web-admin' }, { env: s.env })
  assert.is(second.code, 0, second.output)
  assert.equal(s.sandbox.writes(), [])
  // After a deploy it is Deployed: one more push, and this time Fly's answer tells.
  assert.is((await script('deploy', ['staging', '--app', 'web-admin'], { env: s.env })).code, 0)
  s.sandbox.clearCalls()
  const third = await make('set-secrets-staging', { APP: 'web-admin' }, { env: s.env })
  assert.is(third.code, 0, third.output)
  assert.match(third.stdout, /SESSION_SECRET\s+pushed while Fly could not confirm it, now deployed: re-staged to verify it/)
  assert.match(third.stderr, /staged [^\n]*SESSION_SECRET[^\n]*, verified in flyctl secrets list/)
  const stored = s.sandbox.state().apps[STAGING[2]].secretsLog.filter((e: { name: string }) => e.name === 'SESSION_SECRET').at(-1)
  assert.is(stored?.value, SECRET.session)
  s.sandbox.clearCalls()
  assert.is((await make('set-secrets-staging', { APP: 'web-admin' }, { env: s.env })).code, 0)
  assert.equal(s.sandbox.writes(), [])
})

test("a plain word as a secret value is warned about (masking it would show it where the toolkit's own words stand); JSON- and HTML-escaped copies in app logs are masked", async () => {
  const s = await ready()
  const word = writeEnvDir({ ...s.files, staging: { ...s.files.staging, 'web-admin': { ...s.files.staging!['web-admin'], SESSION_SECRET: 'verified' } } })
  const dry = await make('set-secrets-staging', { APP: 'web-admin', DRY_RUN: '1' }, { env: { ...s.env, ENV_DIR: word } })
  assert.is(dry.code, 0, dry.output)
  assert.match(dry.stderr, "the value of SESSION_SECRET is a plain word, which the toolkit's own output may contain: it cannot be hidden in the output; use a long random value")
  const tricky = 'Pa"ss\\word/long-77<&>'
  const dir = writeEnvDir({ ...s.files, staging: { ...s.files.staging, 'web-admin': { ...s.files.staging!['web-admin'], SESSION_SECRET: `'${tricky}'` } } })
  s.sandbox.appLog(STAGING[2], `json ${JSON.stringify({ s: tricky })}`)
  s.sandbox.appLog(STAGING[2], `html ${tricky.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')}`)
  const logs = await make('logs-staging', { APP: 'web-admin' }, { env: { ...s.env, ENV_DIR: dir } })
  assert.is(logs.code, 0, logs.output)
  assert.match(logs.stdout, 'json {"s":"****"}')
  assert.match(logs.stdout, 'html ****')
  for (const form of [JSON.stringify(tricky).slice(1, -1), 'Pa&quot;ss']) assert.not.ok(logs.output.includes(form), logs.output)
})

test('a dropped secret that the toolkit never pushed before (status still Deployed) is caught too', async () => {
  const s = await ready()
  await sql(s.dbs.staging, "DELETE FROM microbima_deploy.secret_fingerprints WHERE app = $1", [STAGING[1]])
  // Deployed: every machine runs a release newer than the secret.
  assert.is((await script('deploy', ['staging', '--app', 'public-api'], { env: s.env })).code, 0)
  const dir = writeEnvDir({ ...s.files, staging: { ...s.files.staging, 'public-api': { KONG_PARTNER_API_KEY: `${SECRET.kong}-rotated` } } })
  s.sandbox.fault({ command: 'secrets import', kind: 'drop', detail: 'KONG_PARTNER_API_KEY', times: 1 })
  const dropped = await make('set-secrets-staging', { APP: 'public-api' }, { env: { ...s.env, ENV_DIR: dir } })
  assert.is(code(dropped), 1, dropped.output)
  assert.match(dropped.stderr, 'Fly does not show KONG_PARTNER_API_KEY as stored')
  assert.equal(await sql(s.dbs.staging, 'SELECT name FROM microbima_deploy.secret_fingerprints WHERE app = $1 ORDER BY name', [STAGING[1]]), [{ name: 'NODE_ENV' }])
  assert.is((await make('set-secrets-staging', { APP: 'public-api' }, { env: s.env })).code, 0)
})

// ---- 3. data changed, bookkeeping not -----------------------------------------------------------------

test('clock skew: the newest migration is the last by name, not by finished_at', async () => {
  const s = await ready()
  await sql(s.dbs.staging, "UPDATE _prisma_migrations SET finished_at = now() + interval '1 day' WHERE migration_name = '20250115000000_add_customer_beneficiaries'")
  s.sandbox.clearCalls()
  const older = await make('rollback-migration-staging', { NAME: '20250115000000_add_customer_beneficiaries' }, { env: s.env })
  assert.is(code(older), 3, older.output)
  assert.match(older.stderr, 'refused: only the newest applied migration can be rolled back on staging: that is 20250201000000_add_premiums, not 20250115000000_add_customer_beneficiaries (roll back 20250201000000_add_premiums first)')
  const newest = await make('rollback-migration-staging', { NAME: '20250201000000_add_premiums' }, { env: s.env })
  assert.is(newest.code, 0, newest.output)
  assert.equal(await sql(s.dbs.staging, `SELECT to_regclass('"Premium"') IS NULL AS gone, (SELECT rolled_back_at IS NOT NULL FROM _prisma_migrations WHERE migration_name = '20250201000000_add_premiums') AS marked`), [{ gone: true, marked: true }])
  assert.equal(writes(s), [])
  // Apply it again, as the next deploy would.
  const again = await make('migrate-staging', {}, { env: s.env })
  assert.is(again.code, 0, again.output)
  assert.match(again.stderr, 'applied on staging: 20250201000000_add_premiums')
})

test('create-apps DB=1: when the env file cannot be written after the database was created, the credentials go to a 0600 file, never printed (exit 1)', async () => {
  const sandbox = await createSandbox({ latencyMs: { postgres: 500 } })
  const envDir = tempDir()
  const tmp = tempDir('mb-tmpdir-')
  const pending = runMake('create-apps-staging', { DB: '1' }, { env: { ...sandbox.env, ENV_DIR: envDir, TMPDIR: tmp } })
  await until('postgres create', () => sandbox.calls().some((c) => c.argv[0] === 'postgres' && c.argv[1] === 'create'))
  // The check before creating passed; now the file cannot be written.
  mkdirSync(join(envDir, 'staging', 'internal-api.env'), { recursive: true })
  const result = clean(await pending)
  assert.is(code(result), 1, result.output)
  const [fallback] = readdirSync(tmp).filter((f) => f.startsWith('microbima-staging-database-'))
  assert.ok(fallback, result.output)
  const path = join(tmp, fallback)
  assert.is(statSync(path).mode & 0o777, 0o600)
  const url = /^DATABASE_URL='(postgres:\/\/[^']+)'$/m.exec(readFileSync(path, 'utf8'))?.[1]
  assert.ok(url)
  assert.match(result.stderr, `could not write ${join(envDir, 'staging', 'internal-api.env')} (EISDIR); the credentials are in ${path} (mode 0600)`)
  assert.match(result.stderr, 'failed: the apps are ready, but')
  const password = new URL(url!).password
  const operator = /^OPERATOR_PASSWORD='([^']+)'$/m.exec(readFileSync(join(envDir, 'staging', 'database.env'), 'utf8'))?.[1]
  for (const value of [url!, password, operator!]) assert.not.ok(result.output.includes(value), `${value} printed`)
  // The attach output of production (printed by flyctl, read by the toolkit) is not shown either.
  const prod = clean(await runMake('create-apps-prod', { DB: '1', YES: '1' }, { env: { ...sandbox.env, ENV_DIR: envDir } }))
  assert.is(prod.code, 0, prod.output)
  const prodUrl = /^DATABASE_URL='([^']+)'$/m.exec(readFileSync(join(envDir, 'production', 'internal-api.env'), 'utf8'))?.[1]
  assert.ok(prodUrl)
  for (const file of readdirSync(join(envDir, 'production'))) assert.is(statSync(join(envDir, 'production', file)).mode & 0o777, 0o600)
  assert.not.ok(prod.output.includes(prodUrl!))
  assert.not.ok(prod.output.includes(new URL(prodUrl!).password))
  await sandbox.close()
})

// ---- 4. safety rules bypassed ----------------------------------------------------------------------------

test('deploy-prod while staging is being deployed (its lock held): refused (exit 3), nothing changed', async () => {
  const s = await ready()
  await sql(s.dbs.staging, "INSERT INTO microbima_deploy.deploy_lock VALUES ('staging', 'other-token', 'ci', 'runner-7', 'deploy-staging', now(), now() + interval '10 minutes')")
  try {
    s.sandbox.clearCalls()
    const result = await make('deploy-prod', { YES: '1' }, { env: { ...s.env, LOCK_WAIT: '1' } })
    assert.is(code(result), 3, result.output)
    assert.match(result.stderr, 'refused: the staging deploy lock is held by ci on runner-7, running deploy-staging since')
    assert.equal(writes(s), [])
    // Production was not locked either (its tables may not even exist yet).
    assert.equal(await sql(s.dbs.production, 'SELECT * FROM microbima_deploy.deploy_lock').catch(() => []), [])
  } finally {
    await sql(s.dbs.staging, 'DELETE FROM microbima_deploy.deploy_lock')
  }
})

test('the deploy lock is lost when its proxy dies: the run stops (exit 1) and starts nothing more', async () => {
  const s = await ready()
  const envDir = proxied(s)
  s.sandbox.settings({ latencyMs: { deploy: 3000 } })
  s.sandbox.fault({ command: 'proxy', app: 'microbima-staging-db', kind: 'proxy-dies', ms: 2500, times: 1 })
  s.sandbox.clearCalls()
  const before = s.sandbox.state().apps[STAGING[0]].machines.map((m) => m.image)
  try {
    const result = await script('deploy', ['staging'], { env: { ...s.env, ENV_DIR: envDir, LOCK_TTL: '1' } })
    assert.is(result.code, 1, result.output)
    assert.match(result.stderr, /the staging deploy lock was lost \(.*\): stopping, so nothing more is written without it/)
    assert.match(result.stderr, 'failed: the staging deploy lock was lost')
    assert.equal(rolledOut(s.sandbox.calls()), [STAGING[0]])
    assert.equal(s.sandbox.state().apps[STAGING[0]].machines.map((m) => m.image), before)
    await noChildLeft(s.sandbox.calls(), result)
  } finally {
    s.sandbox.settings({ latencyMs: {} })
  }
  // It was not recorded while the database was gone: the next run writes it.
  const history = await make('history-staging', {}, { env: { ...s.env, ENV_DIR: envDir } })
  assert.match(history.stderr, /ledger: recorded \d+ entr(y|ies) made while the staging database was unreachable/)
})

test('the lock broken and taken by someone else mid-deploy: the next write proves it lost, the run stops (exit 1), the hold stays', async () => {
  const s = await ready()
  s.sandbox.settings({ latencyMs: { deploy: 2500 } })
  s.sandbox.clearCalls()
  try {
    // Default LOCK_TTL: the heartbeat alone would notice only 40 s later, after every deploy.
    const pending = make('deploy-staging', {}, { env: s.env })
    await until('the first deploy', () => s.sandbox.calls().some((c) => isRollout(c.argv)))
    assert.is((await make('unlock-staging', { YES: '1' }, { env: s.env })).code, 0)
    assert.is((await make('lock-staging', { REASON: 'incident-42' }, { env: s.env })).code, 0)
    const result = await pending
    assert.is(code(result), 1, result.output)
    assert.match(result.stderr, 'the staging deploy lock was lost (someone broke it (make unlock), or it expired): stopping, so nothing more is written without it')
    assert.equal(rolledOut(s.sandbox.writes()), [STAGING[0]])
    assert.equal(await sql(s.dbs.staging, 'SELECT operation FROM microbima_deploy.deploy_lock'), [{ operation: 'hold: incident-42' }])
    await noChildLeft(s.sandbox.calls(), result)
  } finally {
    s.sandbox.settings({ latencyMs: {} })
    await sql(s.dbs.staging, 'DELETE FROM microbima_deploy.deploy_lock')
  }
})

// ---- 6. success reported for nothing --------------------------------------------------------------------

test('a deploy flyctl reports done but that changed nothing is not "deployed" (exit 1)', async () => {
  const s = await ready()
  const before = s.sandbox.state().apps[STAGING[2]].machines.map((m) => m.image)
  const rows = await ledger(s.dbs.staging)
  s.sandbox.fault({ command: 'deploy', app: STAGING[2], kind: 'no-op', times: 1 })
  const result = await make('deploy-staging', { APP: 'web-admin', HEALTH_TIMEOUT: '1' }, { env: s.env })
  assert.is(code(result), 1, result.output)
  assert.not.match(result.stdout, /microbima-staging-web-admin\s+deployed/)
  assert.not.match(result.stderr, /✔ .*deployed/)
  assert.equal(s.sandbox.state().apps[STAGING[2]].machines.map((m) => m.image), before)
  assert.equal((await ledgerSince(s.dbs.staging, rows)).filter((e) => e === `deploy:${STAGING[2]}:ok`), [])
})

test('rollback: a no-op rollback is a failure, rolling back to what runs is "nothing to do", flyctl null is an empty list', async () => {
  const s = await ready()
  const first = s.sandbox.state().apps[STAGING[2]].machines[0].image
  assert.is((await script('deploy', ['staging', '--app', 'web-admin'], { env: s.env })).code, 0)
  const second = s.sandbox.state().apps[STAGING[2]].machines[0].image
  assert.is.not(second, first)
  s.sandbox.fault({ command: 'deploy', app: STAGING[2], kind: 'no-op', times: 1 })
  const noop = await make('rollback-staging', { APP: 'web-admin' }, { env: s.env })
  assert.is(code(noop), 1, noop.output)
  assert.match(noop.stderr, `flyctl reported the rollback of ${STAGING[2]} as done, but 2 of 2 machines do not run`)
  assert.not.match(noop.output, /rolled back, healthy|✔ .*every machine runs/)
  const versions = s.sandbox.state().apps[STAGING[2]].releases as Array<{ Version: number; ImageRef: string; Status: string }>
  const running = versions.filter((r) => r.ImageRef === second && r.Status === 'complete').sort((a, b) => b.Version - a.Version)[0]
  s.sandbox.clearCalls()
  const same = await make('rollback-staging', { APP: 'web-admin', VERSION: String(running.Version) }, { env: s.env })
  assert.is(same.code, 0, same.output)
  assert.match(same.stderr, 'nothing to roll back: every machine already runs the target image')
  assert.match(same.stdout, new RegExp(`^web-admin\\s+unchanged\\s+v${running.Version}`, 'm'))
  assert.equal(writes(s), [])
  s.sandbox.fault({ command: 'releases', kind: 'json-null', times: 1 })
  const none = await make('rollback-staging', { APP: 'web-admin' }, { env: s.env })
  assert.is(code(none), 1, none.output)
  assert.match(none.stderr, 'has no earlier complete release with another image than the running one: nothing to roll back to')
  assert.equal(writes(s), [])
})

test('an expired token in the middle of a pipeline, after a change, is an operation failure (exit 1), not bad usage', async () => {
  const s = await ready()
  const before = await ledger(s.dbs.staging)
  s.sandbox.fault({ command: 'deploy', app: STAGING[1], kind: 'unauthenticated', times: 1 })
  const result = await make('deploy-staging', {}, { env: s.env })
  assert.is(code(result), 1, result.output)
  assert.match(result.stderr, 'failed: flyctl is not logged in or its token expired (after changes were made in this run)')
  assert.match(result.stderr, "next: run 'flyctl auth login' or set FLY_API_TOKEN")
  assert.equal(await ledgerSince(s.dbs.staging, before), [`deploy:${STAGING[0]}:ok`, `deploy:${STAGING[1]}:failed`])
})

test('GITHUB_STEP_SUMMARY that cannot be written: a healthy run still exits 0', async () => {
  const s = await ready()
  const summary = join(tempDir(), 'summary-dir')
  mkdirSync(summary)
  const result = await make('health-staging', {}, { env: { ...s.env, GITHUB_STEP_SUMMARY: summary } })
  assert.is(result.code, 0, result.output)
  assert.match(result.stderr, `cannot write the step summary ${summary} (EISDIR): the tables are in the log only`)
  // A FIFO nobody reads would block the write for ever.
  const fifo = join(tempDir(), 'summary.fifo')
  execFileSync('mkfifo', [fifo])
  const blocked = await make('health-staging', { APP: 'web-admin' }, { env: { ...s.env, GITHUB_STEP_SUMMARY: fifo }, timeoutMs: 30_000 })
  assert.is(blocked.code, 0, blocked.output)
  assert.match(blocked.stderr, `cannot write the step summary ${fifo}`)
})

// ---- 7. hangs ------------------------------------------------------------------------------------------

test('flyctl hangs: the call is stopped after FLY_READ_TIMEOUT, exit 1, no flyctl left', async () => {
  const s = await ready()
  s.sandbox.clearCalls()
  s.sandbox.fault({ command: 'status', kind: 'hang', times: 1 })
  const started = Date.now()
  const result = await make('health-staging', { APP: 'web-admin', FLY_READ_TIMEOUT: '1' }, { env: asProcesses(s.env) })
  assert.is(code(result), 1, result.output)
  assert.match(result.stderr, 'timed out after 1s and was stopped')
  assert.ok(Date.now() - started < 15_000)
  await noChildLeft(s.sandbox.calls(), result)
})

test('the database is unreachable: exit 1 naming it, nothing deployed, no flyctl left', async () => {
  const s = await ready()
  const down = writeEnvDir({ ...s.files, staging: { ...s.files.staging, 'internal-api': { DATABASE_URL: `postgres://u:${SECRET.stagingDbPassword}@127.0.0.1:1/db` } } })
  s.sandbox.clearCalls()
  const result = await make('deploy-staging', {}, { env: { ...s.env, ENV_DIR: down, DB_CONNECT_TIMEOUT: '2' } })
  assert.is(code(result), 1, result.output)
  assert.match(result.stderr, 'failed: cannot connect to the staging database at 127.0.0.1:1/db')
  assert.equal(writes(s), [])
  await noChildLeft(s.sandbox.calls(), result, 3000)
})

test('a table lock held by another session ends the step within the database timeouts (exit 1)', async () => {
  const s = await ready()
  const holder = new pg.Client({ connectionString: s.dbs.staging })
  await holder.connect()
  await holder.query('BEGIN')
  await holder.query('LOCK TABLE microbima_deploy.deploy_lock IN ACCESS EXCLUSIVE MODE')
  try {
    s.sandbox.clearCalls()
    const started = Date.now()
    const result = await make('deploy-staging', {}, { env: { ...s.env, DB_CONNECT_TIMEOUT: '2', DB_STATEMENT_TIMEOUT: '1', DB_LOCK_TIMEOUT: '1' } })
    assert.is(code(result), 1, result.output)
    assert.match(result.stderr, /cannot connect to the staging database|another session holds a lock on it|the database did not answer|statement timeout/)
    assert.ok(Date.now() - started < 20_000, `${Date.now() - started}ms`)
    assert.equal(writes(s), [])
  } finally {
    await holder.query('ROLLBACK')
    await holder.end()
  }
})

test("migrate-status with production's env file still holding CHANGE_ME ends (exit 0) and leaves no flyctl proxy", async () => {
  const s = await ready()
  const envDir = proxied(s, (d) => writeFileSync(join(d, 'production', 'internal-api.env'), 'DATABASE_URL=postgres://USER:CHANGE_ME@microbima-prod-db.flycast:5432/microbima\n', { mode: 0o600 }))
  s.sandbox.clearCalls()
  const result = await make('migrate-status', {}, { env: { ...s.env, ENV_DIR: envDir }, timeoutMs: 30_000 })
  assert.is(result.code, 0, result.output)
  assert.match(result.stdout, /20250201000000_add_premiums\s+yes\s+applied\s+not configured/)
  assert.match(result.stderr, 'production: not configured')
  const proxies = s.sandbox.calls().filter((c) => c.argv[0] === 'proxy')
  assert.is(proxies.length, 1)
  await noChildLeft(proxies, result, 3000)
})

test('flyctl proxy never ready: stopped after PROXY_READY_TIMEOUT and tried once more, exit 1, nothing written, no proxy left', async () => {
  const s = await ready()
  const envDir = proxied(s)
  s.sandbox.fault({ command: 'proxy', kind: 'proxy-never-ready', times: 2 })
  s.sandbox.clearCalls()
  const result = await make('migrate-staging', {}, { env: { ...s.env, ENV_DIR: envDir, PROXY_READY_TIMEOUT: '1' } })
  assert.is(code(result), 1, result.output)
  assert.match(result.stderr, 'failed: flyctl proxy to microbima-staging-db: the WireGuard tunnel did not come up (flyctl proxy printed no Proxying line within 1 s, twice), and was stopped')
  assert.equal(writes(s), [])
  await noChildLeft(s.sandbox.calls(), result, 3000)
})

// ---- 8. signals and races --------------------------------------------------------------------------------

async function interrupt(s: Scenario, signal: NodeJS.Signals, args: string[], env: Record<string, string>, when: (calls: Call[]) => boolean) {
  let child!: import('node:child_process').ChildProcess
  const pending = runScript(args[0], args.slice(1), { env, onSpawn: (c) => (child = c) })
  await until('the moment to interrupt', () => when(s.sandbox.calls()))
  await sleep(200)
  child.kill(signal)
  return clean(await pending)
}

test('SIGHUP in the middle of a deploy: exit 129, children stopped, lock released, one "interrupted" entry', async () => {
  const s = await ready()
  const before = await ledger(s.dbs.staging)
  const images = s.sandbox.state().apps[STAGING[2]].machines.map((m) => m.image)
  s.sandbox.settings({ latencyMs: { deploy: 4000 } })
  s.sandbox.clearCalls()
  let result: RunResult
  try {
    result = await interrupt(s, 'SIGHUP', ['deploy', 'staging', '--app', 'web-admin'], asProcesses(s.env), (calls) => calls.some((c) => isRollout(c.argv)))
  } finally {
    s.sandbox.settings({ latencyMs: {} })
  }
  assert.is(result.code, 129, result.output)
  assert.match(result.stderr, 'interrupted by SIGHUP: stopping children and releasing locks')
  assert.equal(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.deploy_lock'), [])
  const entries = await ledgerSince(s.dbs.staging, before)
  assert.is(entries.filter((e) => e.endsWith(':interrupted')).length, 1, entries.join(', '))
  assert.ok(entries.includes('deploy-staging:-:interrupted'), entries.join(', '))
  assert.equal(s.sandbox.state().apps[STAGING[2]].machines.map((m) => m.image), images)
  // Nothing started after the signal: one deploy, no automatic rollback.
  assert.is(rolledOut(s.sandbox.writes()).length, 1)
  await noChildLeft(s.sandbox.calls(), result)
})

test('Ctrl-C during set-secrets keeps its "interrupted" ledger entry (exactly one) and releases the lock', async () => {
  const s = await ready()
  const dir = writeEnvDir({ ...s.files, staging: { ...s.files.staging, 'web-admin': { ...s.files.staging!['web-admin'], SESSION_SECRET: `${SECRET.session}-v2` } } })
  const before = await ledger(s.dbs.staging)
  s.sandbox.settings({ latencyMs: { secrets: 1500 } })
  s.sandbox.clearCalls()
  let result: RunResult
  try {
    result = await interrupt(s, 'SIGINT', ['set-secrets', 'staging', '--app', 'web-admin'], { ...s.env, ENV_DIR: dir }, (calls) => calls.some((c) => c.argv[1] === 'import'))
  } finally {
    s.sandbox.settings({ latencyMs: {} })
  }
  assert.is(result.code, 130, result.output)
  assert.equal(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.deploy_lock'), [])
  assert.equal(await ledgerSince(s.dbs.staging, before), ['set-secrets:-:interrupted'])
  await noChildLeft(s.sandbox.calls(), result)
})

test("SIGTERM to make's whole process group (kill %1) is one interrupt, though make passes it on: lock released, one entry", async () => {
  const s = await ready()
  const before = await ledger(s.dbs.staging)
  const pidFile = join(tempDir(), 'make.pid')
  s.sandbox.settings({ latencyMs: { deploy: 4000 } })
  s.sandbox.clearCalls()
  let result: RunResult
  try {
    // set -m: make runs as a job, in a process group of its own, as in an operator's shell.
    const pending = run('bash', ['-c', `set -m; make -s deploy-staging APP=web-admin & echo $! > ${pidFile}; wait $!`], { env: asProcesses(s.env) })
    await until('the deploy', () => s.sandbox.calls().some((c) => isRollout(c.argv)))
    await sleep(200)
    process.kill(-Number(readFileSync(pidFile, 'utf8')), 'SIGTERM')
    result = clean(await pending)
  } finally {
    s.sandbox.settings({ latencyMs: {} })
  }
  assert.match(result.stderr, 'interrupted by SIGTERM: stopping children and releasing locks')
  assert.not.match(result.stderr, 'interrupted again')
  assert.equal(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.deploy_lock'), [])
  assert.equal((await ledgerSince(s.dbs.staging, before)).filter((e) => e.endsWith(':interrupted')), ['deploy-staging:-:interrupted'])
  await noChildLeft(s.sandbox.calls(), result)
})

test('SIGTERM while down.sql runs: its transaction rolls back, the migration stays applied, the ledger says interrupted', async () => {
  const s = await ready()
  const project = projectCopy()
  const down = join(project, MIGRATIONS, '20250201000000_add_premiums', 'down.sql')
  writeFileSync(down, readFileSync(down, 'utf8').replace('-- DropTable', 'SELECT pg_sleep(3);\n\n-- DropTable'))
  const before = await ledger(s.dbs.staging)
  let child!: import('node:child_process').ChildProcess
  let output = ''
  // --verbose prints each write as it starts (PGlite serves one session at a time: no peeking).
  const pending = runScript('rollback-migration', ['staging', '--name', '20250201000000_add_premiums', '--verbose'], { env: s.env, cwd: project, onSpawn: (c) => ((child = c), c.stdout!.on('data', (d) => (output += d)), c.stderr!.on('data', (d) => (output += d))) })
  await until('down.sql to start', () => output.includes('down.sql'))
  await sleep(1000)
  child.kill('SIGTERM')
  const result = clean(await pending)
  assert.is(result.code, 143, result.output)
  assert.equal(await sql(s.dbs.staging, `SELECT to_regclass('"Premium"') IS NOT NULL AS still, EXISTS (SELECT 1 FROM _prisma_migrations WHERE migration_name = '20250201000000_add_premiums' AND finished_at IS NOT NULL AND rolled_back_at IS NULL) AS applied`), [{ still: true, applied: true }])
  assert.equal((await ledgerSince(s.dbs.staging, before)).filter((e) => e.endsWith(':interrupted')), ['rollback-migration:-:interrupted'])
  assert.not.ok((await ledgerSince(s.dbs.staging, before)).some((e) => e.endsWith(':ok')))
  assert.equal(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.deploy_lock'), [])
})

for (const wrapped of [false, true]) {
  test(`kill -9 of the toolkit: its flyctl proxy ends within a few seconds (the watchdog)${wrapped ? ', also behind a FLY_BIN wrapper that does not exec' : ''}`, async () => {
    const s = await ready()
    const envDir = proxied(s)
    const wrapper = join(tempDir(), 'flyctl-wrapper')
    writeFileSync(wrapper, `#!/bin/sh\n"${s.env.FLY_BIN}" "$@"\n`, { mode: 0o755 })
    await sql(s.dbs.staging, "INSERT INTO microbima_deploy.deploy_lock VALUES ('staging', 'other-token', 'ci', 'runner-7', 'deploy-staging', now(), now() + interval '10 minutes')")
    s.sandbox.clearCalls()
    let child!: import('node:child_process').ChildProcess
    let stderr = ''
    const env = { ...asProcesses(s.env), ENV_DIR: envDir, LOCK_WAIT: '60', ...(wrapped ? { FLY_BIN: wrapper } : {}) }
    const pending = runScript('deploy', ['staging', '--app', 'web-admin'], { env, onSpawn: (c) => ((child = c), c.stderr!.on('data', (d) => (stderr += d))) })
    try {
      await until('the toolkit to wait for the lock', () => stderr.includes('waiting for the staging deploy lock'))
      const proxies = s.sandbox.calls().filter((c) => c.argv[0] === 'proxy')
      assert.is(proxies.length, 1)
      assert.ok(alive(proxies[0].pid))
      child.kill('SIGKILL')
      await noChildLeft(proxies, await pending, 12_000)
    } finally {
      await sql(s.dbs.staging, 'DELETE FROM microbima_deploy.deploy_lock')
    }
  })
}

test('Ctrl-D at the production prompt is a refusal (exit 3); a wrong name too; the right one proceeds', async () => {
  const s = await ready()
  const tty = (input: string) => run('script', ['-qec', `${process.execPath} ${join(REPO, 'dist', 'set-secrets.cjs')} production --app web-admin`, '/dev/null'], { env: s.env, input })
  s.sandbox.clearCalls()
  const eof = clean(await tty('\x04'))
  assert.is(eof.code, 3, eof.output)
  assert.match(eof.output, 'Type "production" to continue')
  assert.match(eof.output, 'refused: no answer (the input ended): nothing was changed')
  assert.not.match(eof.output, /bug:/)
  const wrong = clean(await tty('staging\r'))
  assert.is(wrong.code, 3, wrong.output)
  assert.match(wrong.output, 'refused: not confirmed (typed "staging"): nothing was changed')
  assert.equal(writes(s), [])
  const right = clean(await tty('production\r'))
  assert.is(right.code, 0, right.output)
  assert.ok(writes(s).some((w) => w.startsWith('secrets import --app microbima-production-web-admin')))
})

test('two first uses of a fresh database at once do not fail on creating the schema', async () => {
  const s = await ready()
  await sql(s.dbs.production, 'DROP SCHEMA IF EXISTS microbima_deploy CASCADE')
  const both = await Promise.all([make('lock-prod', { REASON: 'incident 1', YES: '1' }, { env: s.env }), make('lock-prod', { REASON: 'incident 2', YES: '1' }, { env: s.env })])
  assert.equal(both.map(code).sort(), [0, 3], both.map((r) => r.output).join('\n'))
  for (const r of both) assert.not.match(r.output, /SQLSTATE|already exists/)
  const unlock = await make('unlock-prod', { YES: '1' }, { env: s.env })
  assert.is(unlock.code, 0, unlock.output)
})

// ---- earlier faults, on the same sandbox ------------------------------------------------------------------

test('deploy fails on the second app of three: exit 1, the first stays deployed, summary and ledger say so', async () => {
  const s = await ready()
  const before = await ledger(s.dbs.staging)
  s.sandbox.fault({ command: 'deploy', app: STAGING[1], kind: 'fail', times: 1 })
  const result = await make('deploy-staging', {}, { env: s.env })
  assert.is(code(result), 1, result.output)
  assert.match(result.stdout, /^public-api\s+failed/m)
  assert.match(result.stdout, /^internal-api\s+deployed/m)
  assert.equal(await ledgerSince(s.dbs.staging, before), [`deploy:${STAGING[0]}:ok`, `deploy:${STAGING[1]}:failed`])
})

test('the release command fails during deploy: machines untouched, exit 1', async () => {
  const s = await ready()
  const images = s.sandbox.state().apps[STAGING[0]].machines.map((m) => m.image)
  s.sandbox.fault({ command: 'deploy', app: STAGING[0], kind: 'release-command-fail', times: 1 })
  const result = await make('deploy-staging', { APP: 'internal-api' }, { env: s.env })
  assert.is(code(result), 1, result.output)
  assert.match(result.output, 'release command failed')
  assert.equal(s.sandbox.state().apps[STAGING[0]].machines.map((m) => m.image), images)
})

test('a release command that outlives release_command_timeout: reported as possibly still running, with how to watch it; no rollback, no second deploy of the internal API', async () => {
  const s = await ready()
  const app = STAGING[0]
  const project = projectCopy()
  const NEW = '20250301000000_add_claims'
  addMigration(project, NEW, 'CREATE TABLE "Claim" ("id" TEXT NOT NULL PRIMARY KEY);\n')
  const images = s.sandbox.state().apps[app].machines.map((m) => m.image)
  const before = await ledger(s.dbs.staging)
  // release_command_timeout = "10m" × timeScale 0.005 = 3 s; the migration takes 4.5 s.
  s.sandbox.fault({ command: 'deploy', app, kind: 'release-command-slow', ms: 4500, times: 1 })
  s.sandbox.clearCalls()
  const result = clean(await runScript('deploy', ['staging', '--app', 'internal-api'], { env: { ...s.env, FLY_DEPLOY_TIMEOUT: '2000' }, cwd: project }))
  assert.is(result.code, 1, result.output)
  const machine = /Created release_command machine ([0-9a-f]{14})/.exec(result.stderr)?.[1]
  assert.ok(machine, result.output)
  const text = result.output.replace(/\s+/g, ' ')
  assert.match(text, `the release command of ${app} ran longer than its release_command_timeout (10m): flyctl stopped waiting, but the migration may still be running on machine ${machine}, holding Prisma's advisory lock 72707369`)
  assert.match(text, `no machine of ${app} was changed; the toolkit does not deploy ${app} again in this run, not even to roll back`)
  assert.match(text, `started and not finished now: ${NEW}`)
  assert.match(text, `flyctl machine list --app ${app} --json`)
  assert.match(text, `flyctl logs --app ${app} --machine ${machine}`)
  assert.match(text, "make migrate-status; the lock: SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369")
  assert.match(text, `only once machine ${machine} is gone from that list and make migrate-status shows no unfinished migration`)
  assert.match(text, new RegExp(`deploy ${app} failed \\S+ the release command outlived its timeout and may still be running on machine ${machine}`))
  // FLY_DEPLOY_TIMEOUT below what flyctl may itself wait for this app (2 machines: 3020 s) is said.
  assert.match(text, `FLY_DEPLOY_TIMEOUT=2000 is shorter than flyctl may itself wait for ${app} (up to 3020 s`)
  // One deploy, pinned to --deploy-retries 0; nothing after it touched the app.
  assert.equal(argvs(s.sandbox.writes()).filter(isRollout).map((a) => a.slice(-2)), [['--deploy-retries', '0']])
  assert.equal(s.sandbox.state().apps[app].machines.map((m) => m.image), images)
  assert.equal(await ledgerSince(s.dbs.staging, before), [`deploy:${app}:failed`])
  // The migration went on, on the machine named, and finished by itself.
  assert.equal(s.sandbox.state().apps[app].releaseCommandMachines?.map((m) => m.id), [machine])
  await until('the release machine gone', () => !s.sandbox.state().apps[app].releaseCommandMachines?.length, 10_000)
  assert.equal(await sql(s.dbs.staging, `SELECT finished_at IS NOT NULL AS finished FROM _prisma_migrations WHERE migration_name = '${NEW}'`), [{ finished: true }])
  await sql(s.dbs.staging, `DELETE FROM _prisma_migrations WHERE migration_name = '${NEW}'; DROP TABLE "Claim"`)
})

test('a migration that fails with "permission denied for table" is not blamed on the Fly token', async () => {
  const s = await ready()
  const project = projectCopy()
  const NEW = '20250301000000_grant_less'
  addMigration(project, NEW, `DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'permission denied for table "Customer"'; END $$;\n`)
  const result = clean(await runScript('deploy', ['staging', '--app', 'internal-api'], { env: s.env, cwd: project }))
  assert.is(result.code, 1, result.output)
  // The release command's log lines carry Prisma's error; flyctl's own error line does not.
  assert.match(result.stderr, 'permission denied for table "Customer"')
  assert.not.match(result.output, /token cannot|org token/)
  assert.match(result.output.replace(/\s+/g, ' '), /deploy microbima-staging-internal-api failed \S+ the release command exited 1: no machine was changed/)
  await sql(s.dbs.staging, `DELETE FROM _prisma_migrations WHERE migration_name = '${NEW}'`)
})

test.after(async () => {
  await shared?.sandbox.close()
})

test.run()
