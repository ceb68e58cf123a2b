import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { migrateDeploy, prismaProject } from '../scripts/sandbox/fly-sim/prisma-standin.ts'
// @ts-expect-error plain ESM module shared with the test runner
import { emptyCluster } from '../scripts/sandbox/postgres.mjs'
import { argvs, createSandbox, type Call, type Sandbox } from '../scripts/sandbox/sandbox.ts'
import { freshDatabases, sql, stopDatabases, type TestDatabases } from './support/pg.ts'
import { scenario, type Scenario } from './support/scenario.ts'
import { startReceiver } from './support/receiver.ts'
import { MIGRATIONS, REPO, leftovers, projectCopy, runMake, runScript, tempDir, writeEnvDir, until, type RunResult } from './support/toolkit.ts'

// make restore-drill-<env>: the newest complete backup restored into a scratch copy, checked against
// the live database, destroyed whatever happened. Both database kinds against the simulator, whose
// backups hold the data as it was when they were taken (model/restores.ts): rows written later must
// not come back. One Fly Postgres scenario, then one Managed Postgres sandbox, each reused.

type Expected = (string | RegExp)[]
const PROD_DB = 'microbima-prod-db'
const SCRATCH = /^microbima-prod-db-drill-\d{8}-\d{6}-[0-9a-f]{4}$/

/** The calls' argv against the expected ones (a RegExp matches one argument); repeated identical
 * polls (`mpg status`) count once, as their number depends on timing. */
function assertCalls(calls: Call[], expected: Expected[]): void {
  const actual = argvs(calls).filter((argv, i, all) => !(i > 0 && argv[1] === 'status' && argv.join(' ') === all[i - 1].join(' ')))
  const ok = actual.length === expected.length && actual.every((argv, i) => argv.length === expected[i].length && argv.every((arg, k) => (typeof expected[i][k] === 'string' ? arg === expected[i][k] : (expected[i][k] as RegExp).test(arg))))
  assert.ok(ok, `calls:\n${actual.map((a) => a.join(' ')).join('\n')}\nexpected:\n${expected.map((a) => a.map(String).join(' ')).join('\n')}`)
}

/** The prisma migrations of the sample app, applied as `prisma migrate deploy` does. */
async function migrate(url: string): Promise<void> {
  const u = new URL(url)
  const result = await migrateDeploy(prismaProject(join(REPO, 'examples/microbima/apps/api')), { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1) }, u.host)
  assert.is(result.status, 0, result.stderr)
}

let customers = 0
/** Adds policyholders to a database (the data a backup must bring back). */
async function addCustomers(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    customers++
    await sql(url, `INSERT INTO "Customer" (id, "firstName", "lastName", "phoneNumber", "nationalId", "updatedAt") VALUES ($1, 'Amani', 'Otieno', $2, $3, now())`, [`c${customers}`, `+2547000${customers}`, `ID${customers}`])
  }
}

const count = async (url: string, table: string) => Number((await sql<{ n: string }>(url, `SELECT count(*) AS n FROM "${table}"`))[0].n)
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!)
const lastLedger = async (url: string) => (await sql<{ operation: string; result: string; detail: string; app: string }>(url, 'SELECT operation, result, detail, app FROM microbima_deploy.ledger ORDER BY id DESC LIMIT 1'))[0]
/** The backend the simulator copies a database from (a real server's URL when TEST_DATABASE_URL is set). */
const backend = (url: string) => ({ host: new URL(url).hostname, port: Number(new URL(url).port), url })
const backends = (sandbox: Sandbox) => (JSON.parse(readFileSync(join(sandbox.stateDir, 'sandbox.json'), 'utf8')).postgres ?? {}) as Record<string, unknown>

// ---- Fly Postgres --------------------------------------------------------------------------------

let s: Scenario
let volume: string

/** A snapshot of the production database's volume, waited for until it is created (as Fly's daily one). */
async function snapshot(): Promise<string> {
  await s.sandbox.direct(['volumes', 'snapshots', 'create', volume, '--app', PROD_DB])
  return until('the snapshot to be created', () => {
    const newest = s.sandbox.state().volumes[volume].snapshots.at(-1)!
    return Date.now() >= newest.readyAt && newest.id
  })
}

test.before(async () => {
  // The simulator's restores load an empty PGlite cluster kept on disk: read now, beside the set-up,
  // rather than inside the first drill.
  const warm = emptyCluster()
  s = await scenario({ sandbox: { snapshotMs: 20 } })
  s.sandbox.settings({ postgres: { [PROD_DB]: backend(s.dbs.production) } })
  volume = Object.values(s.sandbox.state().volumes).find((v) => v.app === PROD_DB)!.id
  await migrate(s.dbs.production)
  await warm
})

test.after(async () => {
  await s.sandbox.close()
  await mpg?.sandbox.close()
  await stopDatabases()
})

test('Fly Postgres: the newest created snapshot goes into a new app, is checked against the live database and destroyed; rows written after it are not in it; JSON=1 ends stdout with the contract\'s object; the ledger has it', async () => {
  await addCustomers(s.dbs.production, 2)
  const older = await snapshot()
  await addCustomers(s.dbs.production, 1)
  const taken = await snapshot()
  // Written after the newest snapshot: the restore must not have it.
  await addCustomers(s.dbs.production, 2)
  s.sandbox.clearCalls()
  const result = await runMake('restore-drill-prod', { JSON: '1' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  const drill = lastJson(result.stdout)
  assert.equal(Object.keys(drill), ['environment', 'backup', 'restore_s', 'tables', 'migrations', 'result', 'problems'])
  assert.equal([drill.environment, drill.backup.id, drill.result, drill.problems], ['production', taken, 'verified', []])
  assert.not.equal(taken, older)
  assert.type(drill.backup.age_s, 'number')
  assert.ok(drill.restore_s > 0 && drill.restore_s < 60, String(drill.restore_s))
  const live = await count(s.dbs.production, 'Customer')
  assert.equal(drill.tables, [
    { name: 'Beneficiary', restored: 0, live: 0 },
    { name: 'Customer', restored: live - 2, live },
    { name: 'Policy', restored: 0, live: 0 },
    { name: 'Premium', restored: 0, live: 0 },
  ])
  assert.equal(drill.migrations, { restored: 3, live: 3 })
  // The exact flyctl sequence: the snapshots, a name nobody holds, the restore, the tunnel, the destroy.
  const scratch = s.sandbox.calls().find((c) => c.argv[0] === 'postgres')!.argv[3]
  assert.match(scratch, SCRATCH)
  assertCalls(s.sandbox.calls(), [
    ['volumes', 'list', '--app', PROD_DB, '--json'],
    ['volumes', 'snapshots', 'list', volume, '--app', PROD_DB, '--json'],
    ['apps', 'list', '--json'],
    ['postgres', 'create', '--name', scratch, '--snapshot-id', taken, '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10'],
    ['proxy', /^\d+:5432$/, '--app', scratch],
    ['apps', 'destroy', scratch, '--yes'],
  ])
  assert.not.ok(s.sandbox.state().apps[scratch], 'the scratch app is destroyed')
  assert.not.ok(backends(s.sandbox)[scratch], 'its database is stopped')
  assert.ok(s.sandbox.state().apps[PROD_DB] && Object.values(s.sandbox.state().volumes).some((v) => v.id === volume), 'the live app and volume are untouched')
  // The table, the recovery point and the recovery time, within 120 columns.
  assert.match(result.stdout, new RegExp(`Customer\\s+${live - 2}\\s+${live}\\s+ok`))
  assert.match(result.stdout, /recovery point\s+\S+ old when the restore began/)
  assert.match(result.stdout, /recovery time\s+\S+ from the restore request to a checked copy/)
  for (const line of result.stdout.trim().split('\n').slice(0, -1)) assert.ok(line.length <= 120, line)
  const entry = await lastLedger(s.dbs.production)
  assert.equal([entry.operation, entry.result, entry.app], ['restore-drill', 'ok', PROD_DB])
  assert.match(entry.detail, `volume snapshot ${taken} of ${PROD_DB}`)
  assert.match(entry.detail, /verified; destroyed$/)
  assert.equal(leftovers(result.marker), [])
})

test('a failed check (a table the copy lacks, a local migration whose checksum changed) exits 1, names each problem, and still destroys the copy', async () => {
  const taken = await snapshot()
  // After the snapshot: a table only the live database has.
  await sql(s.dbs.production, 'CREATE TABLE "Claim" (id TEXT PRIMARY KEY)')
  const project = projectCopy()
  const changed = join(project, MIGRATIONS, '20250201000000_add_premiums', 'migration.sql')
  writeFileSync(changed, `${readFileSync(changed, 'utf8')}-- edited after it was applied\n`)
  s.sandbox.clearCalls()
  const receiver = await startReceiver(204)
  try {
    const result = await runScript('restore-drill', ['production'], { env: { ...s.env, JSON: '1', NOTIFY_URL: `${receiver.base}/drill` }, cwd: project })
    assert.is(result.code, 1, result.output)
    const drill = lastJson(result.stdout)
    assert.is(drill.result, 'failed')
    assert.equal(drill.problems, [
      `20250201000000_add_premiums: its checksum in the restored copy differs from the local ${join('examples/microbima/apps/api/prisma/migrations', '20250201000000_add_premiums', 'migration.sql')}`,
      'table Claim of the live schema is missing from the restored copy',
    ])
    assert.equal(drill.tables.find((t: { name: string }) => t.name === 'Claim'), { name: 'Claim', restored: null, live: 0 })
    assert.match(result.stderr, 'failed: the restore drill of production did not verify')
    const scratch = s.sandbox.calls().find((c) => c.argv[0] === 'postgres')!.argv[3]
    assert.equal(argvs(s.sandbox.calls()).at(-1), ['apps', 'destroy', scratch, '--yes'])
    assert.not.ok(s.sandbox.state().apps[scratch])
    assert.equal((await lastLedger(s.dbs.production)).result, 'failed')
    assert.ok(taken)
    // The notification: restore_drill.failed, with the reason.
    const [event] = receiver.events()
    assert.equal([event.event, event.environment, event.result, receiver.events().length], ['restore_drill.failed', 'production', 'failed', 1])
    assert.match(String(event.reason), 'the restore drill of production did not verify')
  } finally {
    await receiver.close()
    await sql(s.dbs.production, 'DROP TABLE "Claim"')
    rmSync(project, { recursive: true, force: true })
  }
})

test('KEEP=1 keeps the copy and prints the command that destroys it later', async () => {
  s.sandbox.clearCalls()
  const result = await runMake('restore-drill-prod', { KEEP: '1' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  const scratch = s.sandbox.calls().find((c) => c.argv[0] === 'postgres')!.argv[3]
  assert.not.ok(argvs(s.sandbox.calls()).some((a) => a[1] === 'destroy'), 'nothing destroyed')
  assert.ok(s.sandbox.state().apps[scratch], 'the copy is there')
  assert.match(result.stderr, `KEEP=1: the scratch database app ${scratch} is kept (it is billed until destroyed); destroy it with: flyctl apps destroy ${scratch} --yes`)
  assert.match((await lastLedger(s.dbs.production)).detail, `kept (flyctl apps destroy ${scratch} --yes)`)
  const destroyed = await s.sandbox.direct(['apps', 'destroy', scratch, '--yes'])
  assert.is(destroyed.code, 0)
  assert.not.ok(backends(s.sandbox)[scratch])
})

test('Ctrl-C while flyctl postgres create restores the snapshot: the half-made app is destroyed all the same, exit 130, the ledger says interrupted', async () => {
  // (A snapshot taken while the sandbox has no database behind the app holds no data: no load to wait for.)
  const saved = backends(s.sandbox) as Record<string, { host: string; port: number }>
  s.sandbox.settings({ postgres: {} })
  await snapshot()
  s.sandbox.settings({ postgres: saved, restoreMs: 60_000 })
  s.sandbox.clearCalls()
  try {
    let child: import('node:child_process').ChildProcess | undefined
    const running = runScript('restore-drill', ['production'], { env: s.env, onSpawn: (c) => (child = c) })
    await until('flyctl postgres create', () => s.sandbox.calls().some((c) => c.argv[0] === 'postgres'))
    const scratch = s.sandbox.calls().find((c) => c.argv[0] === 'postgres')!.argv[3]
    await until('the scratch app', () => s.sandbox.state().apps[scratch])
    child!.kill('SIGINT')
    const result = await running
    assert.is(result.code, 130, result.output)
    assert.equal(argvs(s.sandbox.calls()).at(-1), ['apps', 'destroy', scratch, '--yes'])
    assert.not.ok(s.sandbox.state().apps[scratch], 'destroyed')
    await until('its database stopped', () => !backends(s.sandbox)[scratch] || undefined, 10_000).catch(() => undefined)
    assert.not.ok(backends(s.sandbox)[scratch])
    const entry = await lastLedger(s.dbs.production)
    assert.equal([entry.operation, entry.result], ['restore-drill', 'interrupted'])
    assert.match(entry.detail, 'interrupted by SIGINT; destroyed')
    assert.equal(leftovers(result.marker), [])
  } finally {
    s.sandbox.settings({ restoreMs: 0 })
  }
})

test('bad input is one line and exit 2, before anything is created: a BACKUP_ID that is no snapshot, no backup at all, a DRILL_TIMEOUT or KEEP that is not one', async () => {
  s.sandbox.clearCalls()
  const unknown = await runMake('restore-drill-prod', { BACKUP_ID: 'vs_nosuchsnapshot' }, { env: s.env })
  assert.is(unknown.code, 2, unknown.output)
  assert.match(unknown.stderr, `error: BACKUP_ID=vs_nosuchsnapshot is not a snapshot of ${PROD_DB}'s volumes (${volume}): see flyctl volumes snapshots list <volume> --app ${PROD_DB}`)
  // Staging's database app has a volume and no snapshot at all.
  const none = await runMake('restore-drill-staging', {}, { env: s.env })
  assert.is(none.code, 2, none.output)
  assert.match(none.stderr, /error: microbima-staging-db has no created volume snapshot to restore \(its volume vol_\w+\)/)
  assert.equal(s.sandbox.writes(), [], 'nothing created, nothing destroyed')
  const knobs = await Promise.all([{ DRILL_TIMEOUT: 'soon' }, { KEEP: 'maybe' }, { BACKUP_ID: '' }, { BACKUP_ID: 'a b' }].map((vars) => runScript('restore-drill', ['production'], { env: { ...s.env, ...vars } })))
  assert.equal(knobs.map((r) => r.code), [2, 2, 2, 2])
  assert.match(knobs[0].stderr, 'error: DRILL_TIMEOUT=soon is not a number of seconds')
  assert.match(knobs[1].stderr, 'error: KEEP=maybe is not a yes/no value: use 1 or 0')
  assert.match(knobs[2].stderr, 'error: BACKUP_ID= is empty')
  assert.match(knobs[3].stderr, 'error: BACKUP_ID=a b is not a backup id')
  assert.equal(s.sandbox.writes(), [])
  assert.equal(Object.keys(s.sandbox.state().apps).filter((a) => a.includes('-drill-')), [])
})

test('DRY_RUN=1 reads the snapshots, then prints the restore and the destroy a person can paste, and creates nothing', async () => {
  s.sandbox.clearCalls()
  const result = await runMake('restore-drill-prod', { DRY_RUN: '1' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  const create = /^flyctl postgres create --name (microbima-prod-db-drill-\S+) --snapshot-id (vs_\w+) --region jnb --org microbima --initial-cluster-size 1 --vm-size shared-cpu-1x --volume-size 10$/m.exec(result.stdout)
  assert.ok(create, result.stdout)
  assert.match(result.stdout, `\nflyctl apps destroy ${create![1]} --yes`)
  assert.equal(s.sandbox.writes(), [])
})

// ---- Managed Postgres ----------------------------------------------------------------------------

let mpg: { sandbox: Sandbox; dbs: TestDatabases; env: Record<string, string>; cluster: string; project: string } | undefined

/** A sandbox whose production database is a Managed Postgres cluster (the env file names it). */
async function mpgScenario(): Promise<NonNullable<typeof mpg>> {
  if (mpg) return mpg
  const dbs = await freshDatabases()
  await migrate(dbs.production)
  const sandbox = await createSandbox({ timeScale: 0.005, postgres: { [PROD_DB]: backend(dbs.production) } })
  await sandbox.direct(['mpg', 'create', '--name', PROD_DB, '--org', 'microbima', '--region', 'fra', '--plan', 'basic'])
  const cluster = Object.values(sandbox.state().mpg)[0]
  const u = new URL(dbs.production)
  // The toolkit reaches the live cluster through flyctl mpg proxy, with the database's own credentials.
  const direct = `postgresql://${u.username}:${u.password}@direct.${cluster.id}.flympg.net${u.pathname}`
  const envDir = writeEnvDir({ production: { 'internal-api': { DATABASE_URL: `postgresql://${u.username}:${u.password}@pgbouncer.${cluster.id}.flympg.net${u.pathname}`, DIRECT_DATABASE_URL: direct, JWT_SECRET: 'drill-jwt-secret-0123' } } }, tempDir('mb-drill-mpg-'))
  // A project copy as the working directory: what a run spools (its ledger entry once the tunnel is
  // gone, after Ctrl-C) stays there.
  mpg = { sandbox, dbs, env: { ...sandbox.env, ENV_DIR: envDir, DB_KIND: 'mpg' }, cluster: cluster.id, project: projectCopy() }
  return mpg
}

test('Managed Postgres: the newest completed backup goes into a new cluster (mpg restore), polled until ready, reached through mpg proxy with its own credentials, checked and destroyed; rows written after the backup are not in it', async () => {
  const m = await mpgScenario()
  await addCustomers(m.dbs.production, 3)
  await m.sandbox.direct(['mpg', 'backup', 'create', m.cluster])
  await addCustomers(m.dbs.production, 1)
  const backup = m.sandbox.state().mpg[m.cluster].backups.at(-1)!.id
  m.sandbox.settings({ restoreMs: 2500 }) // the new cluster stays initializing a while
  m.sandbox.clearCalls()
  const result = await runMake('restore-drill-prod', { JSON: '1' }, { env: m.env })
  assert.is(result.code, 0, result.output)
  const scratch = Object.values(m.sandbox.calls()).find((c) => c.argv[1] === 'restore')!.argv[6]
  assert.match(scratch, SCRATCH)
  const restoredId = m.sandbox.calls().find((c) => c.argv[1] === 'status')!.argv[2]
  assertCalls(m.sandbox.calls(), [
    ['mpg', 'backup', 'list', m.cluster, '--json', '--all'],
    ['mpg', 'proxy', m.cluster, '--local-port', /^\d+$/],
    ['mpg', 'list', '--org', 'microbima', '--json'],
    ['mpg', 'restore', m.cluster, '--backup-id', backup, '--name', scratch],
    ['mpg', 'status', restoredId, '--json'],
    ['mpg', 'proxy', restoredId, '--local-port', /^\d+$/],
    ['mpg', 'destroy', restoredId, '--yes'],
  ])
  assert.ok(m.sandbox.calls().filter((c) => c.argv[1] === 'status').length >= 2, 'polled while it was initializing')
  const drill = lastJson(result.stdout)
  const live = await count(m.dbs.production, 'Customer')
  assert.equal([drill.result, drill.backup.id, drill.migrations], ['verified', backup, { restored: 3, live: 3 }])
  assert.equal(drill.tables.find((t: { name: string }) => t.name === 'Customer'), { name: 'Customer', restored: live - 1, live })
  assert.not.ok(m.sandbox.state().mpg[restoredId], 'the scratch cluster is destroyed')
  assert.ok(m.sandbox.state().mpg[m.cluster], 'the live cluster is untouched')
  assert.not.ok(backends(m.sandbox)[scratch])
  const entry = await lastLedger(m.dbs.production)
  assert.equal([entry.operation, entry.result, entry.app], ['restore-drill', 'ok', m.cluster])
  assert.equal(leftovers(result.marker), [])
})

test('Managed Postgres: Ctrl-C while the new cluster is initializing destroys it (the destroy starts while the run is stopping); the ledger entry waits in the spool, as the tunnel is gone', async () => {
  const m = await mpgScenario()
  // (A backup taken while the sandbox has no database behind the cluster holds no data: no load.)
  m.sandbox.settings({ postgres: {} })
  await m.sandbox.direct(['mpg', 'backup', 'create', m.cluster])
  m.sandbox.settings({ postgres: { [PROD_DB]: backend(m.dbs.production) }, restoreMs: 600_000 })
  m.sandbox.clearCalls()
  let child: import('node:child_process').ChildProcess | undefined
  const running = runScript('restore-drill', ['production'], { env: m.env, cwd: m.project, onSpawn: (c) => (child = c) })
  await until('polling mpg status', () => m.sandbox.calls().some((c) => c.argv[1] === 'status'))
  const restoredId = m.sandbox.calls().find((c) => c.argv[1] === 'status')!.argv[2]
  child!.kill('SIGINT')
  const result: RunResult = await running
  assert.is(result.code, 130, result.output)
  assert.equal(argvs(m.sandbox.calls()).filter((a) => a[1] === 'destroy'), [['mpg', 'destroy', restoredId, '--yes']])
  assert.not.ok(m.sandbox.state().mpg[restoredId])
  assert.ok(m.sandbox.state().mpg[m.cluster])
  const spool = readdirSync(join(m.project, '.deploy-state')).filter((f) => f.startsWith('pending-ledger-production-'))
  const entries = spool.flatMap((f) => readFileSync(join(m.project, '.deploy-state', f), 'utf8').trim().split('\n').map((l) => JSON.parse(l)))
  assert.equal(entries.map((e) => [e.operation, e.result]), [['restore-drill', 'interrupted']])
  assert.equal(leftovers(result.marker), [])
})

test('Managed Postgres: an unknown BACKUP_ID, or a cluster without any backup, is exit 2 and creates nothing', async () => {
  const m = await mpgScenario()
  m.sandbox.clearCalls()
  const unknown = await runMake('restore-drill-prod', { BACKUP_ID: 'bk_nosuchbackup' }, { env: m.env })
  assert.is(unknown.code, 2, unknown.output)
  assert.match(unknown.stderr, `error: BACKUP_ID=bk_nosuchbackup is not a backup of production's cluster ${m.cluster}: see flyctl mpg backup list ${m.cluster} --all`)
  m.sandbox.update((state) => void (state.mpg[m.cluster].backups = []))
  const none = await runMake('restore-drill-prod', {}, { env: m.env })
  assert.is(none.code, 2, none.output)
  assert.match(none.stderr, `error: production's cluster ${m.cluster} has no completed backup to restore: see flyctl mpg backup list ${m.cluster} --all`)
  assert.equal(m.sandbox.writes(), [])
  assert.equal(Object.keys(m.sandbox.state().mpg), [m.cluster])
  assert.ok(existsSync(m.project))
})

test.run()
