import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import { freshDatabases, sql } from './support/pg.ts'
import { STAGING, addMachine, scenario, shownLabel } from './support/scenario.ts'
import { MIGRATIONS, addMigration, projectCopy, runMake, runScript, tempDir, writeEnvDir } from './support/toolkit.ts'
import { chooseRollbackTarget, imagesThatFailed, noTargetReason } from '../scripts/lib/fleet/rollback.ts'
import type { LedgerRow } from '../scripts/lib/safety/ledger.ts'
import type { FlyRelease } from '../scripts/lib/fly/types.ts'

const release = (Version: number, Status: string, ImageRef: string): FlyRelease => ({ ID: `r${Version}`, Version, Status, Description: 'Release', ImageRef, CreatedAt: '2026-11-01T00:00:00Z' })

test('the target is the newest complete release with another image; failed and secrets-only releases are skipped', () => {
  const releases = [release(5, 'complete', 'img:c'), release(4, 'complete', 'img:c'), release(3, 'failed', 'img:b'), release(2, 'complete', 'img:a'), release(1, 'complete', 'img:0')]
  assert.is(chooseRollbackTarget(releases, 'img:c', {})?.Version, 2)
  assert.is(chooseRollbackTarget(releases, 'img:c', { version: 1 })?.ImageRef, 'img:0')
  assert.is(chooseRollbackTarget(releases, 'img:c', { image: 'img:a' })?.Version, 2)
  assert.is(chooseRollbackTarget([release(1, 'complete', 'img:c')], 'img:c', {}), undefined)
  assert.throws(() => chooseRollbackTarget(releases, 'img:c', { version: 3 }), /VERSION=3 is a failed release/)
  assert.throws(() => chooseRollbackTarget(releases, 'img:c', { version: 9 }), /VERSION=9 is not among/)
  assert.throws(() => chooseRollbackTarget(releases, 'img:c', { image: 'img:b' }), /IMAGE=img:b is not the image of any complete release/)
})

test('the target is older than the running release and never failed health here (a failed release, or the ledger\'s unhealthy deploy)', () => {
  // v4 is an automatic rollback to img:b after img:c failed the toolkit's health probe (Fly lists v3 as complete).
  const releases = [release(4, 'complete', 'img:b'), release(3, 'complete', 'img:c'), release(2, 'complete', 'img:b'), release(1, 'complete', 'img:a')]
  assert.is(chooseRollbackTarget(releases, 'img:b', {})?.Version, 3, 'without the ledger, the interface rule')
  const ledger = [{ app: 'web', operation: 'deploy', result: 'failed', image_before: 'img:b', image_after: 'img:c', detail: 'unhealthy' }] as LedgerRow[]
  const failed = imagesThatFailed('web', releases, ledger)
  assert.equal([...failed], ['img:c'])
  assert.is(chooseRollbackTarget(releases, 'img:b', {}, failed)?.Version, 1)
  // An image whose release failed (flyctl's own checks) counts too, and another app's rows do not.
  assert.equal([...imagesThatFailed('api', [release(2, 'failed', 'img:x'), release(1, 'complete', 'img:y')], ledger)], ['img:x'])
  // Newer releases than the running one (a mixed fleet's leftovers) are never a rollback.
  assert.is(chooseRollbackTarget([release(3, 'complete', 'img:new'), release(2, 'complete', 'img:run'), release(1, 'complete', 'img:old')], 'img:run', {})?.Version, 1)
  assert.match(noTargetReason([release(2, 'complete', 'img:b'), release(1, 'complete', 'img:a')], 'img:b', new Set(['img:a'])), 'every earlier image failed its health checks here (v1)')
})

test('after an automatic rollback, rollback-staging APP= goes past the image that just failed; without APP= every app with an earlier image is rolled back and the others are named as skipped', async () => {
  const s = await scenario({ stagingDeployed: true })
  const app = STAGING[2]
  const first = s.sandbox.state().apps[app].machines[0].image
  assert.is((await runScript('deploy', ['staging', '--app', 'web-admin'], { env: s.env })).code, 0)
  const second = s.sandbox.state().apps[app].machines[0].image
  // The third image passes flyctl's checks but not the toolkit's probe: rolled back to the second.
  s.sandbox.fault({ command: 'deploy', app, kind: 'http-5xx', times: 1 })
  assert.is((await runScript('deploy', ['staging', '--app', 'web-admin'], { env: { ...s.env, HEALTH_TIMEOUT: '1' } })).code, 1)
  assert.equal(s.sandbox.state().apps[app].machines.map((m) => m.image), [second, second])
  s.sandbox.clearCalls()
  const result = await runMake('rollback-staging', {}, { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.equal(argvs(s.sandbox.writes()), [['deploy', '--app', app, '--config', 'infra/fly/web-admin-staging/fly.toml', '--image', first, '--skip-release-command', '--deploy-retries', '0']])
  assert.match(result.stdout, /✗\s+v3\s+complete/)
  for (const key of ['internal-api', 'public-api']) assert.match(result.stdout, new RegExp(`^${key}\\s+skipped\\s+-\\s+2 on \\S+\\s+no earlier complete release with another image than the running one$`, 'm'))
  assert.match(result.stdout, /^web-admin\s+rolled back, healthy\s+v1\s/m)
  assert.match(result.stderr, 'not rolled back: internal-api: no earlier complete release with another image than the running one; public-api: no earlier')
  await s.sandbox.close()
})

test('make rollback-staging APP= redeploys the previous image with the interface command line and prints the release table', async () => {
  const s = await scenario({ stagingDeployed: true })
  const first = s.sandbox.state().apps[STAGING[1]].machines[0].image
  assert.is((await runScript('deploy', ['staging', '--app', 'public-api'], { env: s.env })).code, 0)
  await s.sandbox.fly(['secrets', 'set', 'A=1', '--app', STAGING[1]]) // a secrets-only release: same image
  s.sandbox.clearCalls()
  const result = await runMake('rollback-staging', { APP: 'public-api' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.equal(argvs(s.sandbox.writes()), [['deploy', '--app', STAGING[1], '--config', 'infra/fly/public-api-staging/fly.toml', '--image', first, '--skip-release-command', '--deploy-retries', '0']])
  const ref = (image: string) => `…:${shownLabel(image)}`
  assert.match(result.stdout, new RegExp(`→\\s+v1\\s+complete\\s+${ref(first)}`), result.stdout)
  assert.match(result.stdout, new RegExp(`^public-api\\s+rolled back, healthy\\s+v1\\s+2 on ${ref(first)}\\s+was 2 on`, 'm'), result.stdout)
  assert.match(result.stdout, /\*\s+v3\s+complete/)
  assert.is(s.sandbox.state().apps[STAGING[1]].machines[0].image, first)
  assert.not.match(result.stderr, 'the last rollback moved away from')
  // Run again, the interface's rule goes forward to the image just left; the toolkit says so first.
  const second = s.sandbox.state().apps[STAGING[1]].releases.find((r: { Version: number }) => r.Version === 2)!.ImageRef
  const again = await runMake('rollback-staging', { APP: 'public-api' }, { env: s.env })
  assert.is(again.code, 0, again.output)
  assert.match(again.stderr, `${STAGING[1]}: v3 runs ${ref(second)}, the image the last rollback moved away from`)
  assert.is(s.sandbox.state().apps[STAGING[1]].machines[0].image, second)
  await s.sandbox.close()
})

test('a code rollback does not need the database: with it unreachable the app is rolled back (exit 0) and the ledger entry waits for the next run', async () => {
  // The staging database behind flyctl proxy, as on Fly, so that it can become unreachable.
  const port = Number(new URL((await freshDatabases()).staging).port)
  const s = await scenario({ stagingDeployed: true, sandbox: { postgres: { 'microbima-staging-db': { host: '127.0.0.1', port } } } })
  const url = new URL(s.files.staging!['internal-api']!.DATABASE_URL)
  // A port of its own: the spool is per database (host, port, name), and another test may spool too.
  url.host = `microbima-staging-db.flycast:${20000 + (process.pid % 20000)}`
  const env = { ...s.env, ENV_DIR: writeEnvDir({ staging: { ...s.files.staging, 'internal-api': { ...s.files.staging!['internal-api'], DATABASE_URL: url.toString() } }, production: s.files.production }) }
  const first = s.sandbox.state().apps[STAGING[2]].machines[0].image
  assert.is((await runScript('deploy', ['staging', '--app', 'web-admin'], { env })).code, 0)
  s.sandbox.clearCalls()
  s.sandbox.fault({ command: 'proxy', app: 'microbima-staging-db', kind: 'proxy-never-ready', times: 2 })
  const result = await runMake('rollback-staging', { APP: 'web-admin' }, { env: { ...env, PROXY_READY_TIMEOUT: '1' } })
  assert.is(result.code, 0, result.output)
  assert.match(result.stderr, 'the staging database is unreachable')
  assert.equal(argvs(s.sandbox.writes()), [['deploy', '--app', STAGING[2], '--config', 'infra/fly/web-admin-staging/fly.toml', '--image', first, '--skip-release-command', '--deploy-retries', '0']])
  assert.equal(s.sandbox.state().apps[STAGING[2]].machines.map((m) => m.image), [first, first])
  // The next run that reaches the database records the rollback it could not record then.
  const history = await runMake('history-staging', {}, { env })
  assert.is(history.code, 0, history.output)
  assert.match(history.stderr, /ledger: recorded 1 entry made while the staging database was unreachable/)
  const rows = await sql<{ operation: string; app: string; result: string }>(s.dbs.staging, "SELECT operation, app, result FROM microbima_deploy.ledger WHERE operation = 'rollback'")
  assert.equal(rows, [{ operation: 'rollback', app: STAGING[2], result: 'ok' }])
  await s.sandbox.close()
})

test('no earlier image: exit 1 with a clear message; bad VERSION and conflicting flags: exit 2; production needs YES', async () => {
  const s = await scenario({ stagingDeployed: true })
  const none = await runMake('rollback-staging', { APP: 'web-admin' }, { env: s.env })
  assert.match(none.stderr, 'has no earlier complete release with another image than the running one')
  assert.match(none.stderr, 'Error 1')
  assert.is((await runScript('rollback', ['staging', '--app', 'web-admin', '--version', 'latest'], { env: s.env })).code, 2)
  assert.is((await runScript('rollback', ['staging', '--app', 'web-admin', '--version', '1', '--image', 'x'], { env: s.env })).code, 2)
  assert.is((await runScript('rollback', ['staging', '--version', '1'], { env: s.env })).code, 2)
  const prod = await runScript('rollback', ['production', '--app', 'web-admin'], { env: s.env })
  assert.ok(prod.code === 1 || prod.code === 3)
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

const NEW = '20250301000000_add_policy_riders'
const UP = 'CREATE TABLE "PolicyRider" ("id" TEXT NOT NULL, "policyId" TEXT NOT NULL, CONSTRAINT "PolicyRider_pkey" PRIMARY KEY ("id"));\n'
const DOWN = 'DROP TABLE "PolicyRider";\n'

const tables = async (url: string) => (await sql<{ t: string }>(url, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")).map((r) => r.t)

test('a down migration restores the previous schema and the next migrate applies it again', async () => {
  const s = await scenario()
  const project = projectCopy()
  addMigration(project, NEW, UP, DOWN)
  assert.is((await runScript('deploy', ['staging'], { env: s.env, cwd: project })).code, 0)
  assert.ok((await tables(s.dbs.staging)).includes('PolicyRider'))
  const older = await runScript('rollback-migration', ['staging', '--name', '20250201000000_add_premiums'], { env: s.env, cwd: project })
  assert.is(older.code, 3, older.output)
  assert.match(older.stderr, `only the newest applied migration can be rolled back on staging: that is ${NEW}`)
  const result = await runScript('rollback-migration', ['staging', '--name', NEW], { env: s.env, cwd: project })
  assert.is(result.code, 0, result.output)
  assert.not.ok((await tables(s.dbs.staging)).includes('PolicyRider'))
  const rows = await sql<{ finished: boolean; rolled: boolean }>(s.dbs.staging, `SELECT finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled FROM _prisma_migrations WHERE migration_name = '${NEW}'`)
  assert.equal(rows, [{ finished: true, rolled: true }])
  const again = await runScript('migrate', ['staging'], { env: s.env, cwd: project })
  assert.is(again.code, 0, again.output)
  assert.match(again.stderr, `applied on staging: ${NEW}`)
  assert.ok((await tables(s.dbs.staging)).includes('PolicyRider'))
  const after = await sql<{ n: string }>(s.dbs.staging, `SELECT count(*) AS n FROM _prisma_migrations WHERE migration_name = '${NEW}'`)
  assert.is(Number(after[0].n), 2)
  await s.sandbox.close()
})

test('a failed migration blocks later deploys (P3009), migrate-status says so, rollback-migration gets out of it', async () => {
  const s = await scenario()
  const project = projectCopy()
  addMigration(project, NEW, 'CREATE TABLE "PolicyRider" ("id" TEXT PRIMARY KEY);\nINSERT INTO "NoSuchTable" VALUES (1);\n', DOWN)
  const failed = await runScript('deploy', ['staging', '--app', 'internal-api'], { env: s.env, cwd: project })
  assert.is(failed.code, 1, failed.output)
  assert.match(failed.output, 'release command failed - aborting deployment')
  const status = await runMake('migrate-status', {}, { env: s.env, cwd: project })
  void status
  const statusHere = await runScript('migrate-status', [], { env: s.env, cwd: project })
  assert.match(statusHere.stdout, new RegExp(`${NEW}\\s+yes\\s+failed\\s+pending`))
  assert.match(statusHere.stderr, `staging: ${NEW} FAILED (or is still running); Prisma refuses every later deploy (P3009)`, statusHere.output)
  assert.match(statusHere.stderr, `make rollback-migration-staging NAME=${NEW}`)
  assert.match(statusHere.stderr, `prisma migrate resolve --applied ${NEW}`)
  // Fix the migration, then recover: down.sql finds nothing (the failed script was one transaction).
  addMigration(project, NEW, UP, DOWN)
  const recover = await runScript('rollback-migration', ['staging', '--name', NEW], { env: s.env, cwd: project })
  assert.is(recover.code, 0, recover.output)
  assert.match(recover.stderr, 'down.sql found nothing to undo')
  const redeploy = await runScript('deploy', ['staging', '--app', 'internal-api'], { env: s.env, cwd: project })
  assert.is(redeploy.code, 0, redeploy.output)
  const rows = await sql<{ finished: boolean; rolled: boolean }>(s.dbs.staging, `SELECT finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled FROM _prisma_migrations WHERE migration_name = '${NEW}' ORDER BY started_at`)
  assert.equal(rows, [{ finished: false, rolled: true }, { finished: true, rolled: false }])
  await s.sandbox.close()
})

test('migrate-status --json for CI, and an unreachable database is reported, not a crash', async () => {
  const s = await scenario({ stagingDeployed: true })
  const json = JSON.parse((await runMake('migrate-status', { JSON: '1' }, { env: s.env })).stdout)
  assert.equal(json.staging.migrations.map((m: { state: string }) => m.state), ['applied', 'applied', 'applied'])
  assert.equal(json.production.migrations.map((m: { state: string }) => m.state), ['pending', 'pending', 'pending'])
  assert.equal(json.gate, { ok: true, findings: [], decided: true })
  const dir = tempDir()
  const { writeEnvDir } = await import('./support/toolkit.ts')
  writeEnvDir({ staging: s.files.staging, production: { ...s.files.production, 'internal-api': { DATABASE_URL: 'postgres://u:p@127.0.0.1:1/none' } } }, dir)
  const down = await runScript('migrate-status', [], { env: { ...s.env, ENV_DIR: dir, DB_CONNECT_TIMEOUT: '2' } })
  assert.is(down.code, 1)
  assert.match(down.stdout, /20250101000000_init\s+yes\s+applied\s+unreachable/)
  assert.match(down.stderr, 'production: cannot connect to the production database')
  await s.sandbox.close()
})

test('make migration NAME= writes the migration and a down.sql template when the engine is unavailable', async () => {
  const project = projectCopy()
  const env = { PRISMA_SCHEMA_ENGINE_BINARY: join(process.cwd(), 'test/support/schema-engine-stub'), DATABASE_URL: 'postgres://u:p@127.0.0.1:1/x' }
  const result = await runScript('migration', ['--name', 'add_policy_riders'], { env, cwd: project, timeoutMs: 120_000 })
  assert.is(result.code, 0, result.output)
  const created = (await import('node:fs')).readdirSync(join(project, MIGRATIONS)).find((d) => d.endsWith('_add_policy_riders'))!
  assert.match(created, /^\d{14}_add_policy_riders$/)
  assert.match(readFileSync(join(project, MIGRATIONS, created, 'down.sql'), 'utf8'), '-- TODO: write it.')
  assert.ok(existsSync(join(project, MIGRATIONS, created, 'migration.sql')))
  assert.is((await runScript('migration', ['--name', 'add_policy_riders'], { env, cwd: project })).code, 2)
  assert.is((await runScript('migration', ['--name', 'Bad-Name'], { env, cwd: project })).code, 2)
  assert.is((await runScript('migration', [], { env, cwd: project })).code, 2)
})

test('a rollback that stops half-way on 3 machines: exit 1, the summary shows the mixed fleet as it is now, and names the command to finish it', async () => {
  const s = await scenario({ stagingDeployed: true })
  const app = STAGING[1]
  addMachine(s, app)
  const first = s.sandbox.state().apps[app].machines[0].image
  const deployed = await runScript('deploy', ['staging', '--app', 'public-api'], { env: s.env })
  assert.is(deployed.code, 0, deployed.output)
  const second = s.sandbox.state().apps[app].machines[0].image
  s.sandbox.fault({ command: 'deploy', app, kind: 'unhealthy', afterMachines: 1, times: 1 })
  const result = await runMake('rollback-staging', { APP: 'public-api' }, { env: s.env })
  assert.is(Number(/Error (\d+)/.exec(result.stderr)?.[1]), 1, result.output)
  const now = s.sandbox.state().apps[app].machines.map((m) => m.image)
  assert.equal([now.filter((i) => i === first).length, now.filter((i) => i === second).length].sort(), [1, 2])
  const ref = (image: string) => `…:${shownLabel(image)}`
  const flat = result.output.replace(/\s+/g, ' ')
  // Not "3 on" the old image, as before the rollback: what runs now, per image.
  assert.not.match(flat, `3 on ${ref(second)}`)
  assert.match(flat, new RegExp(` public-api failed v1 (1|2) on …:git-\\S+, (1|2) on …:git-\\S+`), result.stdout)
  assert.match(flat, `${app} is left with machines on different images`)
  assert.match(flat, 'run the rollback again (make rollback-staging APP=public-api VERSION=1) or deploy a fixed image')
  await s.sandbox.close()
})

test.run()
