import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { join } from 'node:path'
import { argvs, createSandbox, type Sandbox } from '../scripts/sandbox/sandbox.ts'
import { freshDatabases, sql, type TestDatabases } from './support/pg.ts'
import { PRODUCTION, STAGING } from './support/scenario.ts'
import { leftovers, run, runMake, tempDir, writeEnvDir } from './support/toolkit.ts'

// Managed Postgres as the database kind of both environments (DB_KIND=mpg): the runbook from
// empty apps, then the ways MPG fails before a production migration, and how the toolkit's own
// connections reach it. One sandbox for those, built by the real targets, in order; create-apps
// runs that stopped half-way get a light sandbox of their own at the end.

const port = (url: string) => Number(new URL(url).port)
let dbs: TestDatabases
let sandbox: Sandbox
let env: Record<string, string>
let envDir: string
let backends: Record<string, { host: string; port: number }>
const cluster = (name: string) => Object.values(sandbox.state().mpg).find((c) => c.name === name)!
const productionMigrations = async () => (await sql<{ t: string | null }>(dbs.production, "SELECT to_regclass('_prisma_migrations')::text AS t"))[0].t

test.before(async () => {
  dbs = await freshDatabases()
  backends = { 'microbima-staging-db': { host: '127.0.0.1', port: port(dbs.staging) }, 'microbima-prod-db': { host: '127.0.0.1', port: port(dbs.production) } }
  sandbox = await createSandbox({ timeScale: 0.005, postgres: backends })
  // The operator's env files before create-apps: no DATABASE_URL yet (create-apps DB=1 writes it).
  envDir = writeEnvDir({
    staging: { 'internal-api': { JWT_SECRET: 'mpg-jwt-staging', MPESA_CONSUMER_KEY: 'k', MPESA_CONSUMER_SECRET: 'mpg-mpesa-staging' }, 'public-api': { KONG_PARTNER_API_KEY: 'mpg-partner-staging' }, 'web-admin': { SESSION_SECRET: 'mpg-session-staging', INTERNAL_API_URL: 'http://microbima-staging-internal-api.flycast' } },
    production: { 'internal-api': { JWT_SECRET: 'mpg-jwt-production', MPESA_CONSUMER_KEY: 'k', MPESA_CONSUMER_SECRET: 'mpg-mpesa-production' }, 'public-api': { KONG_PARTNER_API_KEY: 'mpg-partner-production' }, 'web-admin': { SESSION_SECRET: 'mpg-session-production', INTERNAL_API_URL: 'http://microbima-production-internal-api.flycast' } },
  }, tempDir('mb-mpg-env-'))
  env = { ...sandbox.env, ENV_DIR: envDir, DB_KIND: 'mpg', ALLOW_DIRTY: '1', REBUILD: '1', LOCK_WAIT: '2', BACKUP_TIMEOUT: '2' }
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
  assert.match(result.stderr, /Error 1$/m, result.output)
  assert.match(result.stderr, 'the backup before the production migration failed, so nothing was migrated', result.output)
  const production = cluster('microbima-prod-db')
  assert.equal(argvs(sandbox.writes()).filter((a) => a[0] === 'mpg'), [['mpg', 'backup', 'create', production.id]])
  assert.not.ok(argvs(sandbox.writes()).some((a) => a[0] === 'ssh' || (a[0] === 'deploy' && a.includes(PRODUCTION[0]))), 'no migration, no deploy')
  assert.is(await productionMigrations(), null)
  const [entry] = await sql<{ operation: string; result: string }>(dbs.production, 'SELECT operation, result FROM microbima_deploy.ledger ORDER BY id DESC LIMIT 1')
  assert.equal(entry, { operation: 'backup', result: 'failed' })
})

test('a Managed Postgres backup whose status word nobody documented reads as still running: progress lines, then the timeout (BACKUP_TIMEOUT) names the word, and nothing is migrated', async () => {
  sandbox.clearCalls()
  sandbox.fault({ command: 'mpg backup create', kind: 'backup-stuck', detail: 'in_progress', times: 1 })
  const result = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(result.code, 2, result.output)
  const production = cluster('microbima-prod-db')
  const stuck = production.backups.at(-1)!
  assert.match(result.stderr, new RegExp(`waiting for Managed Postgres backup of cluster ${production.id}: ${stuck.id} is "in_progress" \\([01] s of 2 s\\)`))
  assert.match(result.stderr, `the Managed Postgres backup of cluster ${production.id} did not complete within 2s (last seen: ${stuck.id} is "in_progress")`, result.output)
  assert.not.ok(argvs(sandbox.writes()).some((a) => a[0] === 'ssh' || (a[0] === 'deploy' && a.includes(PRODUCTION[0]))), 'no migration, no deploy')
  assert.is(await productionMigrations(), null)
})

test('deploy-prod counts only its own Managed Postgres backup: a scheduled one that slipped in beside it, already completed, is not it', async () => {
  sandbox.clearCalls()
  // The scheduled backup started a second before this run's, which stays pending past BACKUP_TIMEOUT.
  sandbox.fault({ command: 'mpg backup create', kind: 'scheduled-backup', ms: 600_000, times: 1 })
  const result = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(result.code, 2, result.output)
  const production = cluster('microbima-prod-db')
  const scheduled = production.backups.find((b) => b.scheduled)!
  const mine = production.backups.at(-1)!
  assert.equal([scheduled.status, mine.status, Boolean(mine.scheduled)], ['completed', 'pending', false])
  assert.match(result.stderr, `backup ${scheduled.id} (full, started ${scheduled.start}) began before this run's: not counted as its backup`, result.output)
  assert.match(result.stderr, `did not complete within 2s (last seen: ${mine.id} is "pending")`, result.output)
  assert.not.ok(argvs(sandbox.writes()).some((a) => a[0] === 'ssh' || (a[0] === 'deploy' && a.includes(PRODUCTION[0]))), 'no migration, no deploy')
  assert.is(await productionMigrations(), null)
})

test('flyctl mpg backup list printing neither JSON nor "No backups found" is an error at once: no backup is asked for, nothing is migrated', async () => {
  sandbox.clearCalls()
  sandbox.fault({ command: 'mpg backup list', kind: 'stdout', detail: 'Something went wrong, try again later\n', times: 1 })
  const result = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(result.code, 2, result.output)
  assert.match(result.stderr, `flyctl mpg backup list ${cluster('microbima-prod-db').id} --json printed neither JSON nor "No backups found"`, result.output)
  assert.equal(argvs(sandbox.writes()).filter((a) => a[0] !== 'secrets'), [])
  assert.is(await productionMigrations(), null)
})

test('a WireGuard tunnel slower than PROXY_READY_TIMEOUT gets a second try; one that never comes up is named as such, in bounded time, and leaves no tunnel behind', async () => {
  const staging = cluster('microbima-staging-db')
  sandbox.fault({ command: 'mpg proxy', app: staging.id, kind: 'proxy-never-ready', times: 1 })
  const retried = await run('make', ['-s', 'migrate-status'], { env: { ...env, PROXY_READY_TIMEOUT: '1' }, timeoutMs: 60_000 })
  assert.is(retried.code, 0, retried.output)
  assert.match(retried.stderr, `flyctl mpg proxy to ${staging.id}: the WireGuard tunnel did not come up within 1 s (no Proxying line); trying once more`)
  assert.match(retried.stdout, /20250101000000_init\s+yes\s+applied\s+pending/)
  assert.equal(leftovers(retried.marker), [])

  sandbox.fault({ command: 'mpg proxy', app: staging.id, kind: 'proxy-never-ready', times: 2 })
  const result = await run('make', ['-s', 'migrate-status'], { env: { ...env, PROXY_READY_TIMEOUT: '1' }, timeoutMs: 60_000 })
  assert.is(result.code, 2, result.output)
  assert.match(result.stderr, /Error 1$/m, result.output)
  assert.match(result.output, `staging: flyctl mpg proxy to ${staging.id}: the WireGuard tunnel did not come up (flyctl mpg proxy printed no Proxying line within 1 s, twice), and was stopped`)
  assert.not.match(result.output, 'is the database')
  assert.match(result.stdout, /20250101000000_init\s+yes\s+unreachable\s+pending/)
  assert.equal(leftovers(result.marker), [])
})

test('the toolkit\'s connections through flyctl mpg proxy ask for TLS first (MPG has it on by default) and go plain only because the server refuses it; sslmode=require in the URL never goes plain', async () => {
  // A relay between the tunnel and the staging database records how each connection begins.
  const firstBytes: Buffer[] = []
  const relay = createServer((socket) => {
    const upstream = createConnection(backends['microbima-staging-db'].port, '127.0.0.1')
    socket.once('data', (chunk) => firstBytes.push(Buffer.from(chunk)))
    socket.pipe(upstream).pipe(socket)
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  sandbox.settings({ postgres: { ...backends, 'microbima-staging-db': { host: '127.0.0.1', port: (relay.address() as { port: number }).port } } })
  const SSL_REQUEST = '0000000804d2162f' // length 8, code 80877103
  const STARTUP_V3 = '00030000' // a StartupMessage: length, then protocol 3.0
  try {
    const plain = await runMake('lock-status-staging', {}, { env })
    assert.is(plain.code, 0, plain.output)
    assert.equal(firstBytes.map((b) => b.toString('hex').slice(0, 16)).map((h, i) => (i === 0 ? h : h.slice(8, 16))), [SSL_REQUEST, STARTUP_V3])

    firstBytes.length = 0
    const strictDir = tempDir('mb-mpg-strict-')
    cpSync(envDir, strictDir, { recursive: true })
    // The toolkit connects with DIRECT_DATABASE_URL when the file has one: both URLs insist.
    const file = join(strictDir, 'staging', 'internal-api.env')
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^((?:DIRECT_)?DATABASE_URL='[^']*)'/gm, "$1?sslmode=require'"), { mode: 0o600 })
    const strict = await runMake('lock-status-staging', {}, { env: { ...env, ENV_DIR: strictDir } })
    assert.is(strict.code, 2, strict.output)
    assert.match(strict.stderr, /cannot connect to the staging database at .+: the server refused TLS, and the URL's sslmode=require forbids a connection without it/)
    assert.equal(firstBytes.map((b) => b.toString('hex')), [SSL_REQUEST])
  } finally {
    sandbox.settings({ postgres: backends })
    relay.close()
  }
})

test('then deploy-prod backs up (completed, in the ledger), migrates through the direct URL and promotes staging\'s images', async () => {
  sandbox.clearCalls()
  // Every earlier backup is two days old: `mpg backup list --json` prints a sentence, not JSON.
  const old = new Date(Date.now() - 2 * 86400_000).toISOString().replace(/\.\d+Z$/, 'Z')
  sandbox.update((state) => void Object.values(state.mpg).forEach((c) => c.backups.forEach((b) => (b.start = old))))
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

// ---- create-apps DB=1 after a run that stopped half-way ------------------------------------------

let light: Sandbox | undefined
let lightEnv: Record<string, string>
const API = { staging: STAGING[0], production: PRODUCTION[0] }
const lightSecret = (app: string, name: string) => light!.state().apps[app]?.secretsLog.filter((e) => e.name === name).at(-1)?.value ?? undefined
const lightCluster = (name: string) => Object.values(light!.state().mpg).find((c) => c.name === name)!
const envFileOf = (env: 'staging' | 'production') => join(lightEnv.ENV_DIR, env, 'internal-api.env')
const createApps = (env: 'staging' | 'production') => runMake(`create-apps-${env === 'staging' ? 'staging' : 'prod'}`, { DB: '1', ...(env === 'production' ? { YES: '1' } : {}) }, { env: lightEnv })
const writesOf = (sb: Sandbox) => argvs(sb.writes())

async function lightSandbox(): Promise<Sandbox> {
  if (!light) {
    light = await createSandbox({ timeScale: 0.005 })
    lightEnv = { ...light.env, ENV_DIR: tempDir('mb-mpg-half-'), DB_KIND: 'mpg', ALLOW_DIRTY: '1' }
  }
  return light
}
test.after(() => light?.close())

test('create-apps DB=1 after a run that created the cluster but stopped before attaching it: attaches, stages DIRECT_DATABASE_URL, writes the env file', async () => {
  const sb = await lightSandbox()
  sb.fault({ command: 'mpg attach', kind: 'transient', times: 1 })
  const stopped = await createApps('staging')
  assert.is(stopped.code, 2, stopped.output)
  const staging = lightCluster('microbima-staging-db')
  assert.ok(staging, 'the cluster was created')
  assert.is(lightSecret(API.staging, 'DATABASE_URL'), undefined)

  sb.clearCalls()
  const again = await createApps('staging')
  assert.is(again.code, 0, again.output)
  assert.equal(writesOf(sb), [['mpg', 'attach', staging.id, '--app', API.staging], ['secrets', 'import', '--app', API.staging, '--stage']])
  const pooled = lightSecret(API.staging, 'DATABASE_URL')!
  const direct = lightSecret(API.staging, 'DIRECT_DATABASE_URL')!
  assert.match(direct, `@direct.${staging.id}.flympg.net/`)
  assert.is(readFileSync(envFileOf('staging'), 'utf8'), `DATABASE_URL='${pooled}'\nDIRECT_DATABASE_URL='${direct}'\n`)
})

test('create-apps DB=1 after a run that attached but stopped before DIRECT_DATABASE_URL: stages it (no second attach) and writes both URLs to the env file', async () => {
  const sb = await lightSandbox()
  sb.fault({ command: 'secrets import', app: API.production, kind: 'transient', times: 1 })
  const stopped = await createApps('production')
  assert.is(stopped.code, 2, stopped.output)
  const production = lightCluster('microbima-prod-db')
  const pooled = lightSecret(API.production, 'DATABASE_URL')!
  assert.match(pooled, `@pgbouncer.${production.id}.flympg.net/`)
  assert.is(lightSecret(API.production, 'DIRECT_DATABASE_URL'), undefined)

  sb.clearCalls()
  const again = await createApps('production')
  assert.is(again.code, 0, again.output)
  assert.equal(writesOf(sb), [['secrets', 'import', '--app', API.production, '--stage']])
  const direct = lightSecret(API.production, 'DIRECT_DATABASE_URL')!
  assert.is(direct, pooled.replace('@pgbouncer.', '@direct.'))
  assert.match(again.stdout, /DIRECT_DATABASE_URL\s+staged\s+now/)
  assert.is(readFileSync(envFileOf('production'), 'utf8'), `DATABASE_URL='${pooled}'\nDIRECT_DATABASE_URL='${direct}'\n`)
  assert.not.match(again.output, production.password)
})

test('create-apps DB=1 after a run that attached and staged everything but never wrote the env file: writes it, changes nothing on Fly', async () => {
  const sb = await lightSandbox()
  const staging = lightCluster('microbima-staging-db')
  writeFileSync(envFileOf('staging'), "JWT_SECRET='kept-as-it-is'\nDATABASE_URL=CHANGE_ME\n", { mode: 0o600 })
  sb.clearCalls()
  const again = await createApps('staging')
  assert.is(again.code, 0, again.output)
  assert.equal(writesOf(sb), [])
  // The URL attach wrote, rebuilt from the cluster's credentials (mpg status), as attach builds it.
  assert.ok(sb.calls().some((c) => c.argv.join(' ') === `mpg status ${staging.id} --json`))
  const pooled = lightSecret(API.staging, 'DATABASE_URL')!
  const direct = lightSecret(API.staging, 'DIRECT_DATABASE_URL')!
  assert.is(readFileSync(envFileOf('staging'), 'utf8'), `JWT_SECRET='kept-as-it-is'\nDATABASE_URL='${pooled}'\nDIRECT_DATABASE_URL='${direct}'\n`)
  assert.not.match(again.output, staging.password)
})

test('create-apps DB=1 whose flyctl secrets list fails: an error naming it, never read as "not attached" (no second attach)', async () => {
  const sb = await lightSandbox()
  sb.fault({ command: 'secrets list', app: API.staging, kind: 'transient', times: 3 })
  sb.clearCalls()
  const result = await createApps('staging')
  assert.is(result.code, 2, result.output)
  assert.match(result.stderr, `cannot tell whether ${API.staging} already has its database: flyctl secrets list --app ${API.staging} failed`, result.output)
  assert.equal(writesOf(sb), [])
})

test.run()
