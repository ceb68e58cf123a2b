import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { argvs, createSandbox, type Sandbox } from '../scripts/sandbox/sandbox.ts'
import { freshDatabases, sql, type TestDatabases } from './support/pg.ts'
import { PRODUCTION, STAGING } from './support/scenario.ts'
import { leftovers, run, runMake, tempDir, writeEnvDir } from './support/toolkit.ts'

// Managed Postgres as the database kind of both environments (DB_KIND=mpg): the runbook from
// empty apps, then the ways MPG fails before a production migration. One sandbox for the file,
// built by the real targets, in order.

const port = (url: string) => Number(new URL(url).port)
let dbs: TestDatabases
let sandbox: Sandbox
let env: Record<string, string>
const cluster = (name: string) => Object.values(sandbox.state().mpg).find((c) => c.name === name)!
const productionMigrations = async () => (await sql<{ t: string | null }>(dbs.production, "SELECT to_regclass('_prisma_migrations')::text AS t"))[0].t

test.before(async () => {
  dbs = await freshDatabases()
  sandbox = await createSandbox({ timeScale: 0.005, postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: port(dbs.staging) }, 'microbima-prod-db': { host: '127.0.0.1', port: port(dbs.production) } } })
  // The operator's env files before create-apps: no DATABASE_URL yet (create-apps DB=1 writes it).
  const envDir = writeEnvDir({
    staging: { 'internal-api': { JWT_SECRET: 'mpg-jwt-staging', MPESA_CONSUMER_KEY: 'k', MPESA_CONSUMER_SECRET: 'mpg-mpesa-staging' }, 'public-api': { KONG_PARTNER_API_KEY: 'mpg-partner-staging' }, 'web-admin': { SESSION_SECRET: 'mpg-session-staging', INTERNAL_API_URL: 'http://microbima-staging-internal-api.flycast' } },
    production: { 'internal-api': { JWT_SECRET: 'mpg-jwt-production', MPESA_CONSUMER_KEY: 'k', MPESA_CONSUMER_SECRET: 'mpg-mpesa-production' }, 'public-api': { KONG_PARTNER_API_KEY: 'mpg-partner-production' }, 'web-admin': { SESSION_SECRET: 'mpg-session-production', INTERNAL_API_URL: 'http://microbima-production-internal-api.flycast' } },
  }, tempDir('mb-mpg-env-'))
  env = { ...sandbox.env, ENV_DIR: envDir, DB_KIND: 'mpg', ALLOW_DIRTY: '1', LOCK_WAIT: '2', BACKUP_TIMEOUT: '2' }
  for (const [target, vars] of [['create-apps-staging', { DB: '1' }], ['create-apps-prod', { DB: '1', YES: '1' }], ['set-secrets-staging', {}], ['set-secrets-prod', { YES: '1' }], ['deploy-staging', {}]] as const) {
    const result = await runMake(target, vars, { env })
    if (result.code !== 0) throw new Error(`${target} failed in setup:\n${result.output}`)
  }
})

test.after(() => sandbox.close())

test('staging on Managed Postgres: the release command migrated through the direct URL; the app keeps the pooled one', async () => {
  const staging = cluster('microbima-staging-db')
  const secrets = sandbox.state().apps[STAGING[0]].secretsLog
  const value = (name: string) => secrets.filter((s) => s.name === name).at(-1)?.value
  assert.match(value('DATABASE_URL')!, `@pgbouncer.${staging.id}.flympg.net/`)
  assert.match(value('DIRECT_DATABASE_URL')!, `@direct.${staging.id}.flympg.net/`)
  const rows = await sql<{ migration_name: string; finished_at: Date | null }>(dbs.staging, 'SELECT migration_name, finished_at FROM _prisma_migrations ORDER BY migration_name')
  assert.equal(rows.map((r) => [r.migration_name, r.finished_at !== null]), [['20250101000000_init', true], ['20250115000000_add_customer_beneficiaries', true], ['20250201000000_add_premiums', true]])
  assert.is(await productionMigrations(), null)
})

test('a Managed Postgres backup that fails stops deploy-prod before any migration (exit 1)', async () => {
  sandbox.clearCalls()
  sandbox.fault({ command: 'mpg backup create', kind: 'backup-fail', times: 1 })
  const result = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(result.code, 2, result.output)
  assert.match(result.stderr, /Error 1$/m)
  assert.match(result.stderr, 'the backup before the production migration failed, so nothing was migrated')
  const production = cluster('microbima-prod-db')
  assert.equal(argvs(sandbox.writes()).filter((a) => a[0] === 'mpg'), [['mpg', 'backup', 'create', production.id]])
  assert.not.ok(argvs(sandbox.writes()).some((a) => a[0] === 'ssh' || (a[0] === 'deploy' && a.includes(PRODUCTION[0]))), 'no migration, no deploy')
  assert.is(await productionMigrations(), null)
  const [entry] = await sql<{ operation: string; result: string }>(dbs.production, 'SELECT operation, result FROM microbima_deploy.ledger ORDER BY id DESC LIMIT 1')
  assert.equal(entry, { operation: 'backup', result: 'failed' })
})

test('a Managed Postgres backup that never completes times out (BACKUP_TIMEOUT) and nothing is migrated', async () => {
  sandbox.clearCalls()
  sandbox.fault({ command: 'mpg backup create', kind: 'backup-stuck', times: 1 })
  const result = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(result.code, 2, result.output)
  assert.match(result.stderr, `the Managed Postgres backup of cluster ${cluster('microbima-prod-db').id} did not complete within 2s`)
  assert.not.ok(argvs(sandbox.writes()).some((a) => a[0] === 'ssh' || (a[0] === 'deploy' && a.includes(PRODUCTION[0]))), 'no migration, no deploy')
  assert.is(await productionMigrations(), null)
})

test('a flyctl mpg proxy that never becomes ready fails the read in bounded time and leaves no tunnel behind', async () => {
  sandbox.fault({ command: 'mpg proxy', kind: 'proxy-never-ready', times: 1 })
  const result = await run('make', ['-s', 'migrate-status'], { env: { ...env, PROXY_READY_TIMEOUT: '2' }, timeoutMs: 60_000 })
  assert.is(result.code, 2, result.output)
  assert.match(result.stderr, /Error 1$/m)
  // Both environments are read at once: the fault hits whichever tunnel starts first.
  const stuck = /(staging|production): flyctl mpg proxy to (\w+) did not become ready within 2s, and was stopped/.exec(result.output)
  assert.ok(stuck, result.output)
  assert.is(stuck![2], cluster(stuck![1] === 'staging' ? 'microbima-staging-db' : 'microbima-prod-db').id)
  assert.match(result.stdout, stuck![1] === 'staging' ? /20250101000000_init\s+yes\s+unreachable\s+pending/ : /20250101000000_init\s+yes\s+applied\s+unreachable/)
  assert.equal(leftovers(result.marker), [])
})

test('then deploy-prod backs up (completed, in the ledger), migrates through the direct URL and promotes staging\'s images', async () => {
  sandbox.clearCalls()
  const result = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(result.code, 0, result.output)
  const production = cluster('microbima-prod-db')
  const backup = production.backups.at(-1)!
  assert.is(backup.status, 'completed')
  const ledger = await sql<{ operation: string; result: string; detail: string }>(dbs.production, "SELECT operation, result, detail FROM microbima_deploy.ledger WHERE operation = 'backup' ORDER BY id DESC LIMIT 1")
  assert.equal([ledger[0].operation, ledger[0].result], ['backup', 'ok'])
  assert.match(ledger[0].detail, backup.id)
  const writes = argvs(sandbox.writes()).map((a) => a.join(' '))
  assert.ok(writes.indexOf(`mpg backup create ${production.id}`) >= 0 && writes.indexOf(`mpg backup create ${production.id}`) < writes.findIndex((w) => w.startsWith('deploy ')), writes.join('\n'))
  for (const [i, app] of PRODUCTION.entries()) {
    assert.equal(new Set(sandbox.state().apps[app].machines.map((m) => m.image)), new Set([sandbox.state().apps[STAGING[i]].machines[0].image]), app)
  }
  const rows = await sql<{ n: string }>(dbs.production, 'SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL')
  assert.is(Number(rows[0].n), 3)
  // The release command migrated through the direct URL: its output is in the app's logs.
  const logs = await sandbox.fly(['logs', '--app', PRODUCTION[0], '--no-tail'])
  assert.match(logs.stdout, `at "direct.${production.id}.flympg.net:5432"`)
})

test.run()
