import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { allocate } from '../scripts/sandbox/fly-sim/model/ips.ts'
import { currentSecrets, updateSecrets } from '../scripts/sandbox/fly-sim/model/secrets.ts'
import { argvs, createSandbox, type Call, type Sandbox } from '../scripts/sandbox/sandbox.ts'
import { freshDatabases, sql, type TestDatabases } from './support/pg.ts'
import { LABEL, PRODUCTION, SHOWN_LABEL, STAGING } from './support/scenario.ts'
import { REPO, SECRET, leftovers, run, runMake, runScript, tempDir, writeEnvDir, type EnvFiles } from './support/toolkit.ts'

// The runbook's targets, one by one, as the exact flyctl command lines they run (the interface's
// contract): their dry runs (reads run, writes printed, secrets as ****), and a second run that
// changes nothing. The database apps sit behind `flyctl proxy` / `flyctl mpg proxy`, as on Fly.
// Calls made at the same time (the toolkit overlaps its reads) are compared as a set.

type Arg = string | RegExp
type Argv = Arg[]
type Expected = Argv | { together: Argv[] } | { threads: Argv[][] }

/** Calls the toolkit makes at the same time: any order. */
const together = (...calls: Argv[]): Expected => ({ together: calls })
/** Sequences the toolkit runs at the same time: each in its order, interleaved in any way. */
const threads = (...sequences: Argv[][]): Expected => ({ threads: sequences })
const matches = (actual: string[] | undefined, expected: Argv) =>
  actual !== undefined && actual.length === expected.length && expected.every((e, i) => (typeof e === 'string' ? e === actual[i] : e.test(actual[i])))
const shown = (expected: Argv) => expected.map((e) => (typeof e === 'string' ? e : String(e)))

/** The exact argv sequence, up to the order inside each `together` group. */
function assertCalls(calls: Call[], expected: Expected[], message?: string): void {
  const actual = argvs(calls)
  const want: string[][] = []
  let i = 0
  for (const item of expected) {
    if (!Array.isArray(item) && 'threads' in item) {
      const total = item.threads.reduce((n, t) => n + t.length, 0)
      const window = actual.slice(i, i + total)
      const next = item.threads.map(() => 0)
      const all = window.length === total && window.every((a) => {
        const t = item.threads.findIndex((thread, k) => next[k] < thread.length && matches(a, thread[next[k]]))
        if (t >= 0) next[t]++
        return t >= 0
      })
      want.push(...(all ? window : item.threads.flat().map(shown)))
      i += total
      continue
    }
    const group = Array.isArray(item) ? [item] : item.together
    const window = actual.slice(i, i + group.length)
    const used = new Set<number>()
    const all = group.every((e) => {
      const k = window.findIndex((a, j) => !used.has(j) && matches(a, e))
      if (k >= 0) used.add(k)
      return k >= 0
    })
    want.push(...(all ? window : group.map(shown)))
    i += group.length
  }
  assert.equal(actual, want, message)
}

/** Output with every run of whitespace as one space: table cells wrap to fit 120 columns. */
const flat = (text: string) => text.replace(/\s+/g, ' ')

const KEYS = ['internal-api', 'public-api', 'web-admin'] as const
const PORT = /^\d+:5432$/
const MIGRATE = "sh -c 'cd /app && npx prisma migrate deploy'"
const MIGRATIONS = ['20250101000000_init', '20250115000000_add_customer_beneficiaries', '20250201000000_add_premiums']
const config = (env: 'staging' | 'prod', key: string) => `infra/fly/${key}-${env}/fly.toml`
const build = (key: string) => {
  const dir = key === 'internal-api' ? 'api' : key
  return ['--build-arg', 'WORKSPACE=examples/microbima', '--build-arg', `APP_DIR=apps/${dir}`, '--build-arg', `APP_PACKAGE=@microbima/${dir}`]
}
const status = (app: string) => ['status', '--app', app, '--json']
const secretsList = (app: string) => ['secrets', 'list', '--app', app, '--json']
const ipsList = (app: string) => ['ips', 'list', '--app', app, '--json']
const ssh = (app: string) => ['ssh', 'console', '--app', app, '--command', MIGRATE]
const proxy = (db: string) => ['proxy', PORT, '--app', db]
const PG_CREATE = (name: string) => ['postgres', 'create', '--name', name, '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10']
const secretValue = (sandbox: Sandbox, app: string, name: string) => currentSecrets(sandbox.state().apps[app]).get(name)?.value
const images = (sandbox: Sandbox, app: string) => sandbox.state().apps[app].machines.map((m) => m.image)
/** Whether a process runs (a zombie, exited and not yet reaped by init, does not). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

// ---- create-apps ------------------------------------------------------------------------------

test('create-apps DB=1 (Fly Postgres): dry run writes nothing; apps, a Flycast-only internal API, the database created and attached; a second run changes nothing', async () => {
  const sandbox = await createSandbox()
  const envDir = tempDir()
  const env = { ...sandbox.env, ENV_DIR: envDir }
  // As the README's first-time path leaves it: the .env.example copied, DATABASE_URL still CHANGE_ME.
  mkdirSync(join(envDir, 'staging'))
  const file = join(envDir, 'staging', 'internal-api.env')
  const example = readFileSync(join(REPO, 'env', 'staging', 'internal-api.env.example'), 'utf8')
  writeFileSync(file, example, { mode: 0o644 })
  const dry = await runMake('create-apps-staging', { DB: '1', DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [['apps', 'list', '--json']])
  assert.match(dry.stdout, [
    ...STAGING.map((app) => `flyctl apps create ${app} --org microbima`),
    `flyctl ips allocate-v6 --private --app ${STAGING[0]}`,
    `flyctl ${PG_CREATE('microbima-staging-db').join(' ')}`,
    `flyctl postgres attach microbima-staging-db --app ${STAGING[0]} --yes`,
  ].join('\n'))
  assert.equal(Object.keys(sandbox.state().apps), [])
  assert.is(readFileSync(file, 'utf8'), example)

  sandbox.clearCalls()
  const first = await runMake('create-apps-staging', { DB: '1' }, { env })
  assert.is(first.code, 0, first.output)
  assertCalls(sandbox.calls(), [
    ['apps', 'list', '--json'],
    ...STAGING.map((app) => ['apps', 'create', app, '--org', 'microbima']),
    ['ips', 'allocate-v6', '--private', '--app', STAGING[0]],
    ipsList(STAGING[0]),
    PG_CREATE('microbima-staging-db'),
    ['postgres', 'attach', 'microbima-staging-db', '--app', STAGING[0], '--yes'],
  ])
  // Private: reached over Flycast only.
  assert.equal(sandbox.state().apps[STAGING[0]].ips.map((ip) => ip.Type), ['private_v6'])
  // The credentials are kept (mode 0600), never printed.
  const operator = sandbox.state().apps['microbima-staging-db'].postgres!.operatorPassword
  const attached = secretValue(sandbox, STAGING[0], 'DATABASE_URL')!
  assert.ok(attached.startsWith('postgres://'), attached)
  assert.not.match(first.output, operator)
  assert.not.match(first.output, new URL(attached).password)
  // The CHANGE_ME placeholder is replaced, the rest of the file kept, the file made 0600.
  assert.is(readFileSync(file, 'utf8'), example.replace(/^DATABASE_URL=.*$/m, `DATABASE_URL='${attached}'`))
  assert.is(statSync(file).mode & 0o777, 0o600)
  const kept = join(envDir, 'staging', 'database.env')
  assert.is(readFileSync(kept, 'utf8'), `OPERATOR_PASSWORD='${operator}'\n`)
  assert.is(statSync(kept).mode & 0o777, 0o600)

  sandbox.clearCalls()
  const again = await runMake('create-apps-staging', { DB: '1' }, { env })
  assert.is(again.code, 0, again.output)
  assertCalls(sandbox.calls(), [['apps', 'list', '--json'], ipsList(STAGING[0]), secretsList(STAGING[0])])
  assert.match(flat(again.stdout), 'already attached (DATABASE_URL is on the app)')

  // Public addresses on the internal API (a first deploy before create-apps gives it some) are released.
  const [v6, v4] = sandbox.update((state) => [allocate(state.apps[STAGING[0]], 'v6').Address, allocate(state.apps[STAGING[0]], 'shared_v4').Address])
  sandbox.clearCalls()
  const mend = await runMake('create-apps-staging', {}, { env })
  assert.is(mend.code, 0, mend.output)
  assertCalls(sandbox.calls(), [['apps', 'list', '--json'], ipsList(STAGING[0]), ['ips', 'release', v6, '--app', STAGING[0]], ['ips', 'release', v4, '--app', STAGING[0]], ipsList(STAGING[0])])
  assert.equal(sandbox.state().apps[STAGING[0]].ips.map((ip) => ip.Type), ['private_v6'])
  sandbox.clearCalls()
  assert.is((await runMake('create-apps-staging', {}, { env })).code, 0)
  assertCalls(sandbox.calls(), [['apps', 'list', '--json'], ipsList(STAGING[0])])

  // Production asks first: without YES=1 (and no terminal) it refuses before any change.
  sandbox.clearCalls()
  const refused = await runMake('create-apps-prod', { DB: '1' }, { env })
  assert.is(refused.code, 2)
  assert.match(refused.stderr, /make: \*\*\* \[Makefile:\d+: create-apps-prod\] Error 3/)
  assert.equal(sandbox.writes(), [])
  const prod = await runMake('create-apps-prod', { DB: '1', YES: '1' }, { env })
  assert.is(prod.code, 0, prod.output)
  assertCalls(sandbox.writes(), [
    ...PRODUCTION.map((app) => ['apps', 'create', app, '--org', 'microbima']),
    ['ips', 'allocate-v6', '--private', '--app', PRODUCTION[0]],
    PG_CREATE('microbima-prod-db'),
    ['postgres', 'attach', 'microbima-prod-db', '--app', PRODUCTION[0], '--yes'],
  ])
  await sandbox.close()
})

test('create-apps DB=1 DB_KIND=mpg: mpg create, attach (pooled DATABASE_URL), DIRECT_DATABASE_URL staged on stdin; idempotent; an unavailable region writes nothing; restore into a new cluster', async () => {
  const dbs = await freshDatabases()
  const port = (url: string) => Number(new URL(url).port)
  const sandbox = await createSandbox({ postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: port(dbs.staging) } } })
  const envDir = tempDir()
  const env = { ...sandbox.env, ENV_DIR: envDir, DB_KIND: 'mpg' }
  const create = ['mpg', 'create', '--name', 'microbima-staging-db', '--org', 'microbima', '--region', 'fra', '--plan', 'basic', '--volume-size', '10']
  const dry = await runMake('create-apps-staging', { DB: '1', DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [['platform', 'regions', '--json'], ['apps', 'list', '--json'], ['mpg', 'list', '--org', 'microbima', '--json']])
  assert.match(dry.stdout, `flyctl ips allocate-v6 --private --app ${STAGING[0]}\nflyctl ${create.join(' ')}`)
  assert.equal(sandbox.writes(), [])

  sandbox.clearCalls()
  const first = await runMake('create-apps-staging', { DB: '1' }, { env })
  assert.is(first.code, 0, first.output)
  const cluster = Object.values(sandbox.state().mpg)[0]
  const pooled = secretValue(sandbox, STAGING[0], 'DATABASE_URL')!
  const direct = secretValue(sandbox, STAGING[0], 'DIRECT_DATABASE_URL')!
  assertCalls(sandbox.calls(), [
    ['platform', 'regions', '--json'],
    ['apps', 'list', '--json'],
    ...STAGING.map((app) => ['apps', 'create', app, '--org', 'microbima']),
    ['ips', 'allocate-v6', '--private', '--app', STAGING[0]],
    ipsList(STAGING[0]),
    ['mpg', 'list', '--org', 'microbima', '--json'],
    create,
    ['mpg', 'list', '--org', 'microbima', '--json'],
    secretsList(STAGING[0]),
    ['mpg', 'attach', cluster.id, '--app', STAGING[0]],
    ['secrets', 'import', '--app', STAGING[0], '--stage'],
    secretsList(STAGING[0]),
  ])
  // The app keeps the pooled URL; migrations get the direct one, on stdin, never in argv.
  assert.match(pooled, `@pgbouncer.${cluster.id}.flympg.net/`)
  assert.match(direct, `@direct.${cluster.id}.flympg.net/`)
  assert.is(sandbox.calls().at(-2)!.stdin, `DIRECT_DATABASE_URL='${direct}'\n`)
  assert.not.match(first.output, cluster.password)
  assert.is(readFileSync(join(envDir, 'staging', 'internal-api.env'), 'utf8'), `DATABASE_URL='${pooled}'\nDIRECT_DATABASE_URL='${direct}'\n`)

  sandbox.clearCalls()
  const again = await runMake('create-apps-staging', { DB: '1' }, { env })
  assert.is(again.code, 0, again.output)
  assertCalls(sandbox.calls(), [['platform', 'regions', '--json'], ['apps', 'list', '--json'], ipsList(STAGING[0]), ['mpg', 'list', '--org', 'microbima', '--json'], secretsList(STAGING[0])])
  assert.match(flat(again.stdout), 'already attached (DATABASE_URL is on the app, and DIRECT_DATABASE_URL)')

  // The toolkit's own connections go through `flyctl mpg proxy` to the direct address.
  sandbox.clearCalls()
  const lock = await runMake('lock-status-staging', {}, { env })
  assert.is(lock.code, 0, lock.output)
  assertCalls(sandbox.calls(), [['mpg', 'proxy', cluster.id, '--local-port', /^\d+$/]])
  assert.match(lock.stdout, 'staging: free')

  // restore-<env>: into a NEW cluster, never over the live one.
  await sandbox.fly(['mpg', 'backup', 'create', cluster.id])
  const backup = sandbox.state().mpg[cluster.id].backups[0].id
  const name = `microbima-staging-db-restore-${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`
  sandbox.clearCalls()
  const dryRestore = await runMake('restore-staging', { DRY_RUN: '1' }, { env: { ...env, BACKUP_ID: backup } })
  assert.is(dryRestore.code, 0, dryRestore.output)
  assertCalls(sandbox.calls(), [['mpg', 'backup', 'list', cluster.id, '--json'], ['mpg', 'list', '--org', 'microbima', '--json']])
  assert.match(dryRestore.stdout, `flyctl mpg restore ${cluster.id} --backup-id ${backup} --name ${name}`)
  sandbox.clearCalls()
  const restore = await runMake('restore-staging', {}, { env: { ...env, BACKUP_ID: backup } })
  assert.is(restore.code, 0, restore.output)
  assertCalls(sandbox.calls(), [['mpg', 'backup', 'list', cluster.id, '--json'], ['mpg', 'list', '--org', 'microbima', '--json'], ['mpg', 'restore', cluster.id, '--backup-id', backup, '--name', name], ['mpg', 'list', '--org', 'microbima', '--json']])
  assert.equal(Object.values(sandbox.state().mpg).map((c) => c.name).sort(), ['microbima-staging-db', name])

  // Managed Postgres has no region the settings name: one line, exit 2, before anything.
  sandbox.settings({ mpgRegions: ['ams', 'lhr'] })
  sandbox.clearCalls()
  const region = await runMake('create-apps-prod', { DB: '1', YES: '1' }, { env })
  assert.is(region.code, 2)
  assert.match(region.stderr, 'error: region fra is not available for Managed Postgres (available: ams, lhr)')
  assert.match(region.stderr, /Error 2$/m)
  assertCalls(sandbox.calls(), [['platform', 'regions', '--json']])
  await sandbox.close()
})

// ---- studio (its own sandbox; before the pipeline, which keeps the shared databases) ----------

test('studio: Prisma Studio on this machine through flyctl proxy, the URL in its environment only, the tunnel closed after; dry run prints it', async () => {
  const dbs = await freshDatabases()
  const port = new URL(dbs.staging).port
  const sandbox = await createSandbox({ postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: Number(port) } } })
  sandbox.seedApps()
  await sandbox.fly(PG_CREATE('microbima-staging-db'))
  const envDir = writeEnvDir({ staging: { 'internal-api': { DATABASE_URL: `postgres://postgres:${SECRET.stagingDbPassword}@microbima-staging-db.flycast:5432/postgres` } } })
  const dir = tempDir()
  const fake = join(dir, 'studio')
  writeFileSync(fake, `#!/bin/sh\necho "$@" > ${dir}/args\nnode -e "const pg=require('${join(REPO, 'node_modules/pg')}');const c=new pg.Client(process.env.DATABASE_URL);c.connect().then(()=>c.query('select 41+1 as n')).then(r=>{console.log('studio saw', r.rows[0].n);return c.end()})"\n`)
  chmodSync(fake, 0o755)
  const env = { ...sandbox.env, ENV_DIR: envDir, PRISMA_STUDIO_CMD: fake }
  sandbox.clearCalls()
  const dry = await runMake('studio-staging', { DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  // The program is shown by its name, as a person would type it.
  assert.match(dry.stdout, /^studio --config prisma\/prisma.config.ts --port 5555 --browser none$/m)
  assert.not.ok(existsSync(join(dir, 'args')))
  sandbox.clearCalls()
  const result = await runMake('studio-staging', {}, { env })
  assert.is(result.code, 0, result.output)
  assert.match(result.stdout, 'studio saw 42')
  assert.is(readFileSync(join(dir, 'args'), 'utf8'), '--config prisma/prisma.config.ts --port 5555 --browser none\n')
  assertCalls(sandbox.calls(), [proxy('microbima-staging-db')])
  const { createConnection } = await import('node:net')
  const local = Number(sandbox.calls()[0].argv[1].split(':')[0])
  const refused = await new Promise((resolve) => createConnection(local, '127.0.0.1').on('connect', () => resolve(false)).on('error', () => resolve(true)))
  assert.ok(refused, 'the tunnel is closed once Studio stops')
  assert.not.match(result.output, SECRET.stagingDbPassword)
  // No production env file: a configuration error (2) before anything starts.
  sandbox.clearCalls()
  assert.is((await runScript('studio', ['production'], { env })).code, 2)
  assert.equal(sandbox.calls(), [])
  await sandbox.close()
})

// ---- the pipeline: one sandbox moved on target by target, as an operator would --------------

interface Pipeline {
  sandbox: Sandbox
  dbs: TestDatabases
  files: EnvFiles
  envDir: string
  env: Record<string, string>
}

/** Env files whose DATABASE_URL names the database apps' Flycast hosts (reached by flyctl proxy). */
function envFiles(dbs: TestDatabases): EnvFiles {
  const flycast = (url: string, db: string, password: string) => {
    const u = new URL(url)
    u.hostname = `${db}.flycast`
    u.port = '5432'
    if (!process.env.TEST_DATABASE_URL) u.password = password
    return u.toString()
  }
  return {
    staging: {
      'internal-api': { DATABASE_URL: flycast(dbs.staging, 'microbima-staging-db', SECRET.stagingDbPassword), JWT_SECRET: SECRET.jwt, MPESA_CONSUMER_SECRET: SECRET.mpesa },
      'public-api': { KONG_PARTNER_API_KEY: SECRET.kong },
      'web-admin': { SESSION_SECRET: SECRET.session, INTERNAL_API_URL: 'http://microbima-staging-internal-api.flycast' },
    },
    production: {
      'internal-api': { DATABASE_URL: flycast(dbs.production, 'microbima-prod-db', SECRET.productionDbPassword), JWT_SECRET: `${SECRET.jwt}P`, MPESA_CONSUMER_SECRET: `${SECRET.mpesa}P` },
      'public-api': { KONG_PARTNER_API_KEY: `${SECRET.kong}P` },
      'web-admin': { SESSION_SECRET: `${SECRET.session}P`, INTERNAL_API_URL: 'http://microbima-production-internal-api.flycast' },
    },
  }
}

let shared: Promise<Pipeline> | undefined
/** The six apps exist (the internal APIs private), their secrets staged, both database apps
 * created, nothing deployed yet. */
function pipeline(): Promise<Pipeline> {
  shared ??= (async () => {
    const dbs = await freshDatabases()
    const port = (url: string) => Number(new URL(url).port)
    // timeScale: flyctl's 5-minute health waits pass in 1.5 s.
    const sandbox = await createSandbox({
      timeScale: 0.005,
      postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: port(dbs.staging) }, 'microbima-prod-db': { host: '127.0.0.1', port: port(dbs.production) } },
    })
    sandbox.seedApps()
    const files = envFiles(dbs)
    const envDir = writeEnvDir(files)
    // As an earlier `flyctl secrets import --stage` by hand would have left them (set in the model directly: faster).
    sandbox.update((state) => {
      for (const env of ['staging', 'production'] as const) {
        for (const [key, values] of Object.entries(files[env]!)) updateSecrets(state.apps[`microbima-${env}-${key}`], { NODE_ENV: env, ...values }, [])
      }
    })
    for (const db of ['microbima-staging-db', 'microbima-prod-db']) await sandbox.direct(PG_CREATE(db))
    sandbox.clearCalls()
    // ALLOW_DIRTY: the tests run in whatever checkout they find; the git rule has tests of its own.
    return { sandbox, dbs, files, envDir, env: { ...sandbox.env, ENV_DIR: envDir, LOCK_WAIT: '2', ALLOW_DIRTY: '1', REBUILD: '1', LOGS_TIMEOUT: '2' } }
  })()
  return shared
}

const STG_DB = 'microbima-staging-db'
const PRD_DB = 'microbima-prod-db'

test('set-secrets dry run: the printed import pasted into a shell stores exactly the file\'s values plus NODE_ENV; a value flyctl would read otherwise is named, with the quoting that fixes it', async () => {
  const { sandbox, env, files, envDir } = await pipeline()
  const dir = writeEnvDir({ staging: { ...files.staging, 'web-admin': { ...files.staging!['web-admin'], SESSION_SECRET: "'session#value-long-enough'" } } })
  const dry = await runMake('set-secrets-staging', { DRY_RUN: '1', APP: 'web-admin' }, { env: { ...env, ENV_DIR: dir } })
  assert.is(dry.code, 0, dry.output)
  assert.match(dry.stdout, `# flyctl would read SESSION_SECRET in ${dir}/staging/web-admin.env otherwise than it is meant (a different value): write it as SESSION_SECRET=\"\"\"…\"\"\" before pasting`)
  const paste = `{ cat ${join(envDir, 'staging/web-admin.env')}; echo NODE_ENV=staging; } | flyctl secrets import --app ${STAGING[2]} --stage`
  const plain = await runMake('set-secrets-staging', { DRY_RUN: '1', APP: 'web-admin' }, { env: { ...env, ENV_DIR: envDir } })
  assert.ok(plain.stdout.split('\n').includes(paste), plain.stdout)
  assert.not.match(plain.stdout, '# flyctl would read')
  // Pasted into a shell with flyctl on PATH, against a sandbox of its own.
  const other = await createSandbox()
  other.seedApps()
  const bin = tempDir('mb-paste-')
  symlinkSync(other.env.FLY_BIN, join(bin, 'flyctl'))
  const pasted = await run('bash', ['-c', paste], { env: { ...other.env, PATH: `${bin}:${process.env.PATH}` } })
  assert.is(pasted.code, 0, pasted.output)
  const stored = other.state().apps[STAGING[2]].secretsLog.filter((e) => e.value !== null)
  assert.equal(Object.fromEntries(stored.map((e) => [e.name, e.value])), { ...files.staging!['web-admin'], NODE_ENV: 'staging' })
  await other.close()
  sandbox.clearCalls()
})

test('set-secrets: a diff by name, NODE_ENV plus every key staged on stdin, verified; dry run NAME=****; a second run pushes nothing; one changed value goes alone', async () => {
  const { sandbox, env, files, envDir } = await pipeline()
  const dry = await runMake('set-secrets-staging', { DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), ...STAGING.map(secretsList))])
  // The printed import reads the env file itself: no value in the paste, and the values it stores are the file's.
  const pastes = STAGING.map((app, i) => `{ cat ${envDir}/staging/${['internal-api', 'public-api', 'web-admin'][i]}.env; echo NODE_ENV=staging; } | flyctl secrets import --app ${app} --stage`)
  for (const paste of pastes) assert.ok(dry.stdout.split('\n').includes(paste), `no line\n${paste}\nin\n${dry.stdout}`)
  assert.equal(sandbox.writes(), [])
  for (const value of Object.values(SECRET)) assert.not.match(dry.output, value)

  sandbox.clearCalls()
  const first = await runMake('set-secrets-staging', {}, { env })
  assert.is(first.code, 0, first.output)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), ...STAGING.map(secretsList)), ...STAGING.flatMap((app) => [['secrets', 'import', '--app', app, '--stage'], secretsList(app)])])
  const imports = sandbox.writes()
  const staging = files.staging!
  assert.equal(imports.map((c) => c.stdin), [
    `NODE_ENV='staging'\nDATABASE_URL='${staging['internal-api']!.DATABASE_URL}'\nJWT_SECRET='${SECRET.jwt}'\nMPESA_CONSUMER_SECRET='${SECRET.mpesa}'\n`,
    `NODE_ENV='staging'\nKONG_PARTNER_API_KEY='${SECRET.kong}'\n`,
    `NODE_ENV='staging'\nSESSION_SECRET='${SECRET.session}'\nINTERNAL_API_URL='http://microbima-staging-internal-api.flycast'\n`,
  ])
  assert.match(first.stdout, /JWT_SECRET\s+on Fly, not pushed by the toolkit before: re-staged/)
  // Already Staged on Fly with these values, by someone else: Fly's digests cannot move, so the
  // run says it cannot verify them (a run after the next deploy can), instead of "verified".
  assert.match(flat(first.stderr), `${STAGING[0]}: NODE_ENV, DATABASE_URL, JWT_SECRET, MPESA_CONSUMER_SECRET imported, but Fly's digest did not change and they were already Staged: Fly held these values already, or did not store them; the first run after the next deploy pushes them once more to tell`)
  assert.not.match(first.stderr, 'verified in flyctl secrets list')
  for (const value of Object.values(SECRET)) assert.not.match(first.output, value)
  for (const call of sandbox.calls()) for (const value of Object.values(SECRET)) assert.not.ok(call.argv.join(' ').includes(value))

  sandbox.clearCalls()
  const again = await runMake('set-secrets-staging', {}, { env })
  assert.is(again.code, 0, again.output)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), ...STAGING.map(secretsList))])
  assert.match(again.stdout, /JWT_SECRET\s+unchanged/)
  assert.match(again.stderr, 'the secrets of staging already match the env files: nothing to push')

  // A value rotated in the file, one changed by hand on Fly, one only on Fly: each said, only those pushed.
  const rotated: EnvFiles = { ...files, staging: { ...staging, 'internal-api': { ...staging['internal-api']!, JWT_SECRET: 'jwt-rotated-0042' } } }
  writeEnvDir(rotated, envDir)
  await sandbox.fly(['secrets', 'set', 'SESSION_SECRET=set-by-hand-on-fly', 'OLD_KEY=x', '--app', STAGING[2], '--stage'])
  sandbox.clearCalls()
  const changed = await runMake('set-secrets-staging', {}, { env })
  assert.is(changed.code, 0, changed.output)
  assert.match(changed.stdout, /JWT_SECRET\s+changed/)
  assert.match(changed.stdout, /SESSION_SECRET\s+changed on Fly since the last push: re-staged/)
  assert.match(changed.stdout, /OLD_KEY\s+only on Fly \(kept; --prune removes it\)/)
  assert.equal(sandbox.writes().map((c) => [c.argv, c.stdin]), [
    [['secrets', 'import', '--app', STAGING[0], '--stage'], "JWT_SECRET='jwt-rotated-0042'\n"],
    [['secrets', 'import', '--app', STAGING[2], '--stage'], `SESSION_SECRET='${SECRET.session}'\n`],
  ])
  assert.is(secretValue(sandbox, STAGING[2], 'SESSION_SECRET'), SECRET.session)
  sandbox.clearCalls()
  const pruned = await runMake('set-secrets-staging', { APP: 'web-admin', PRUNE: '1' }, { env })
  assert.is(pruned.code, 0, pruned.output)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), secretsList(STAGING[2])), ['secrets', 'unset', 'OLD_KEY', '--app', STAGING[2], '--stage'], secretsList(STAGING[2])])
  writeEnvDir(files, envDir)

  // Production: no YES=1, no terminal: refused before any change. With it, staged.
  sandbox.clearCalls()
  const refused = await runMake('set-secrets-prod', {}, { env })
  assert.is(refused.code, 2)
  assert.match(refused.stderr, /Error 3$/m)
  assert.equal(sandbox.writes(), [])
  const prod = await runMake('set-secrets-prod', { YES: '1' }, { env })
  assert.is(prod.code, 0, prod.output)
  assertCalls(sandbox.writes(), PRODUCTION.map((app) => ['secrets', 'import', '--app', app, '--stage']))
})

test('deploy-staging: dry run reads and prints; then secrets sync, the Flycast check, the three remote builds from the monorepo together, the rollouts in order with their health, and the migration', async () => {
  const { sandbox, env, dbs } = await pipeline()
  sandbox.clearCalls()
  const dry = await runMake('deploy-staging', { DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), ...STAGING.map(status), ipsList(STAGING[0]))])
  const shownLabel = LABEL.exec(dry.stdout)?.[0] ?? '<no label>'
  assert.match(dry.stdout, [
    ...STAGING.map((app) => `flyctl secrets sync --app ${app}`),
    '# the 3 builds run together; the rollouts start once every build succeeded',
    ...KEYS.map((key, i) => `(flyctl deploy --build-only --push --app ${STAGING[i]} --config ${config('staging', key)} --remote-only --image-label ${shownLabel} ${build(key).join(' ')}) &`),
    'wait',
    ...KEYS.map((key, i) => `flyctl deploy --app ${STAGING[i]} --config ${config('staging', key)} --image registry.fly.io/${STAGING[i]}:${shownLabel} --deploy-retries 0`),
    `flyctl ssh console --app ${STAGING[0]} --command "${MIGRATE}"`,
  ].join('\n'))
  assert.equal(sandbox.writes(), [])

  sandbox.clearCalls()
  const result = await runMake('deploy-staging', {}, { env })
  assert.is(result.code, 0, result.output)
  const label = new RegExp(`^${LABEL.source}$`)
  const rollout = (key: (typeof KEYS)[number], i: number) => ['deploy', '--app', STAGING[i], '--config', config('staging', key), '--image', new RegExp(`^registry\\.fly\\.io/${STAGING[i]}:${LABEL.source}$`), '--deploy-retries', '0']
  assertCalls(sandbox.calls(), [
    // The reads, and meanwhile the secrets syncs, one after the other; the three builds together
    // (once the first app knows its secrets version).
    threads(
      [proxy(STG_DB)], ...STAGING.map((app) => [status(app)]), [ipsList(STAGING[0])], STAGING.map((app) => ['secrets', 'sync', '--app', app]),
      ...KEYS.map((key, i) => [['deploy', '--build-only', '--push', '--app', STAGING[i], '--config', config('staging', key), '--remote-only', '--image-label', label, ...build(key)]]),
    ),
    // Only then the rollouts, in order. Every machine on the new image; the private API probed
    // through the gateway (not deployed yet), whose status is read at the same time.
    rollout('internal-api', 0),
    together(status(STAGING[0]), status(STAGING[1])),
    rollout('public-api', 1),
    status(STAGING[1]),
    rollout('web-admin', 2),
    status(STAGING[2]),
    // No ssh: the internal API's release command applied every migration (read back from the database).
  ])
  const rows = await sql<{ migration_name: string; finished_at: Date | null }>(dbs.staging, 'SELECT migration_name, finished_at FROM _prisma_migrations ORDER BY migration_name')
  assert.equal(rows.map((r) => [r.migration_name, r.finished_at !== null]), MIGRATIONS.map((m) => [m, true]))
  for (const app of STAGING) {
    assert.is(images(sandbox, app).length, 2, `${app}: a first deploy makes two machines`)
    assert.is(new Set(images(sandbox, app)).size, 1, `${app}: every machine on one image`)
  }
  assert.equal(sandbox.state().apps[STAGING[0]].ips.map((ip) => ip.Type), ['private_v6'])
  for (const value of Object.values(SECRET)) assert.not.match(result.output, value)
})

test('set-secrets APPLY=1: the machines restart with the staged secrets (secrets deploy), verified; a failed restart says the secrets are stored, exit 1, ledger', async () => {
  const { sandbox, env, files, envDir, dbs } = await pipeline()
  const web = (session: string): EnvFiles => ({ ...files, staging: { ...files.staging, 'web-admin': { ...files.staging!['web-admin']!, SESSION_SECRET: session } } })
  writeEnvDir(web('rotated-session-1'), envDir)
  sandbox.clearCalls()
  const ok = await runMake('set-secrets-staging', { APP: 'web-admin', APPLY: '1' }, { env })
  assert.is(ok.code, 0, ok.output)
  const restart = [['secrets', 'import', '--app', STAGING[2], '--stage'], secretsList(STAGING[2]), status(STAGING[2]), ['secrets', 'deploy', '--app', STAGING[2]], secretsList(STAGING[2])]
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), secretsList(STAGING[2])), ...restart])
  const listed = JSON.parse((await sandbox.fly(secretsList(STAGING[2]))).stdout) as { name: string; status: string }[]
  assert.equal([...new Set(listed.map((x) => x.status))], ['Deployed'])

  sandbox.fault({ command: 'secrets deploy', app: STAGING[2], kind: 'restart-fail', times: 1 })
  writeEnvDir(web('rotated-session-2'), envDir)
  sandbox.clearCalls()
  const failed = await runMake('set-secrets-staging', { APP: 'web-admin', APPLY: '1' }, { env })
  assert.is(failed.code, 2)
  assert.match(failed.stderr, /Error 1$/m)
  assert.match(flat(failed.stderr), `${STAGING[2]}: the secrets are stored on Fly, but restarting its machines failed; they take effect at the next deploy, or retry with flyctl secrets deploy --app ${STAGING[2]}`)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), secretsList(STAGING[2])), ...restart.slice(0, 4)])
  assert.is(secretValue(sandbox, STAGING[2], 'SESSION_SECRET'), 'rotated-session-2')
  const [last] = await sql<{ operation: string; app: string; result: string }>(dbs.staging, 'SELECT operation, app, result FROM microbima_deploy.ledger ORDER BY id DESC LIMIT 1')
  assert.equal(last, { operation: 'set-secrets', app: STAGING[2], result: 'failed' })
  writeEnvDir(files, envDir)
})

test('deploy-prod: the gate reads staging; dry run prints; then secrets sync, a verified snapshot, the staging images promoted unchanged, health, migrations; a second run changes nothing', async () => {
  const { sandbox, env, dbs } = await pipeline()
  const reads = together(proxy(PRD_DB), proxy(STG_DB), ...PRODUCTION.map(status), ...STAGING.map(status), status(STAGING[1]), ipsList(PRODUCTION[0]))
  const staged = STAGING.map((app) => images(sandbox, app)[0])
  sandbox.clearCalls()
  const dry = await runMake('deploy-prod', { DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [reads, ['volumes', 'list', '--app', PRD_DB, '--json']])
  const volume = Object.values(sandbox.state().volumes).find((v) => v.app === PRD_DB)!.id
  assert.match(dry.stdout, [
    ...PRODUCTION.map((app) => `flyctl secrets sync --app ${app}`),
    `flyctl volumes snapshots create ${volume} --app ${PRD_DB}`,
    ...KEYS.map((key, i) => `flyctl deploy --app ${PRODUCTION[i]} --config ${config('prod', key)} --image ${staged[i]} --deploy-retries 0`),
    `flyctl ssh console --app ${PRODUCTION[0]} --command "${MIGRATE}"`,
  ].join('\n'))
  assert.equal(sandbox.writes(), [])

  sandbox.clearCalls()
  const result = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(result.code, 0, result.output)
  const snapshots = ['volumes', 'snapshots', 'list', volume, '--app', PRD_DB, '--json']
  assertCalls(sandbox.calls(), [
    reads,
    // After the confirmation: the backup, and meanwhile the secrets syncs, one after the other
    // (each flyctl writes back the whole minvers map it read at start).
    threads(
      PRODUCTION.map((app) => ['secrets', 'sync', '--app', app]),
      [['volumes', 'list', '--app', PRD_DB, '--json'], snapshots, ['volumes', 'snapshots', 'create', volume, '--app', PRD_DB], snapshots, ['deploy', '--app', PRODUCTION[0], '--config', config('prod', 'internal-api'), '--image', staged[0], '--deploy-retries', '0']],
    ),
    together(status(PRODUCTION[0]), status(PRODUCTION[1])),
    ['deploy', '--app', PRODUCTION[1], '--config', config('prod', 'public-api'), '--image', staged[1], '--deploy-retries', '0'],
    status(PRODUCTION[1]),
    ['deploy', '--app', PRODUCTION[2], '--config', config('prod', 'web-admin'), '--image', staged[2], '--deploy-retries', '0'],
    status(PRODUCTION[2]),
  ])
  // Build once: production runs the staging images, byte for byte, on every machine.
  PRODUCTION.forEach((app, i) => assert.equal([...new Set(images(sandbox, app))], [staged[i]], app))
  assert.is(Object.values(sandbox.state().volumes).find((v) => v.app === PRD_DB)!.snapshots.length, 1)
  const rows = await sql<{ n: string }>(dbs.production, 'SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL')
  assert.is(Number(rows[0].n), MIGRATIONS.length)
  for (const value of Object.values(SECRET)) assert.not.match(result.output, value)

  // Again: nothing to promote, nothing pending, so no ssh session either.
  const releases = PRODUCTION.map((app) => sandbox.state().apps[app].releases.length)
  sandbox.clearCalls()
  const again = await runMake('deploy-prod', { YES: '1' }, { env })
  assert.is(again.code, 0, again.output)
  // Whether each app needs a deploy at all: its staged secrets and deployed config (read beside the
  // syncs), then its fly.toml as flyctl reads it, compared before its turn.
  assertCalls(sandbox.calls(), [
    reads,
    threads(
      ...PRODUCTION.flatMap((app) => [[secretsList(app)], [['config', 'show', '--app', app]]]),
      PRODUCTION.map((app) => ['secrets', 'sync', '--app', app]),
      KEYS.map((key, i) => ['config', 'show', '--local', '--config', config('prod', key), '--app', PRODUCTION[i]]),
    ),
  ])
  assert.equal(PRODUCTION.map((app) => sandbox.state().apps[app].releases.length), releases)
  for (const app of PRODUCTION) assert.match(again.stdout, new RegExp(`^${app.replace(/^microbima-(staging|production)-/, '')}\\s+unchanged`, 'm'))
  assert.is(Object.values(sandbox.state().volumes).find((v) => v.app === PRD_DB)!.snapshots.length, 1, 'no backup when nothing is pending')
  assert.match(again.stderr, 'no pending migrations on production')
})

test('migrate-*: the database read through the proxy, then prisma migrate deploy over ssh with sh -c; production asks; dry run prints', async () => {
  const { sandbox, env } = await pipeline()
  sandbox.clearCalls()
  const staging = await runMake('migrate-staging', {}, { env })
  assert.is(staging.code, 0, staging.output)
  assertCalls(sandbox.calls(), [proxy(STG_DB), ssh(STAGING[0])])
  assert.match(staging.stderr, 'staging was already up to date')
  sandbox.clearCalls()
  const dry = await runMake('migrate-prod', { DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [together(proxy(PRD_DB), proxy(STG_DB))])
  assert.match(dry.stdout, `flyctl ssh console --app ${PRODUCTION[0]} --command "${MIGRATE}"`)
  sandbox.clearCalls()
  const refused = await runMake('migrate-prod', {}, { env })
  assert.is(refused.code, 2)
  assert.match(refused.stderr, /Error 3$/m)
  assert.equal(sandbox.writes(), [])
  sandbox.clearCalls()
  const prod = await runMake('migrate-prod', { YES: '1' }, { env })
  assert.is(prod.code, 0, prod.output)
  assertCalls(sandbox.calls(), [together(proxy(PRD_DB), proxy(STG_DB)), ssh(PRODUCTION[0])])
  sandbox.clearCalls()
  const table = await runMake('migrate-status', {}, { env })
  assert.is(table.code, 0, table.output)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), proxy(PRD_DB))])
  for (const name of MIGRATIONS) assert.match(table.stdout, new RegExp(`${name}\\s+yes\\s+applied\\s+applied`))
  assert.match(table.stdout, 'production gate: would pass')
})

test('health-*: each fleet and its probe (the private API through the gateway), one table; an auto-stopped machine where fly.toml allows it is healthy', async () => {
  const { sandbox, env } = await pipeline()
  sandbox.clearCalls()
  const prod = await runMake('health-prod', {}, { env })
  assert.is(prod.code, 0, prod.output)
  assertCalls(sandbox.calls(), [together(...PRODUCTION.map(status), status(PRODUCTION[1]))])
  assert.match(flat(prod.stdout), new RegExp(`${PRODUCTION[0]} healthy 2 machines: 2 started GET /internal-health 200 in \\d+ms \\(through public-api\\)`))
  for (const app of PRODUCTION.slice(1)) assert.match(flat(prod.stdout), new RegExp(`${app} healthy 2 machines: 2 started GET /health 200 in`))
  // Fly Proxy stops the idle web admin machine (auto_stop_machines = "stop", min_machines_running = 1).
  sandbox.idle()
  sandbox.clearCalls()
  const staging = await runMake('health-staging', {}, { env })
  assert.is(staging.code, 0, staging.output)
  assertCalls(sandbox.calls(), [together(...STAGING.map(status), status(STAGING[1]))])
  assert.match(flat(staging.stdout), `${STAGING[2]} healthy 2 machines: 1 started, 1 auto-stopped`)
  for (const line of [...prod.stdout.split('\n'), ...staging.stdout.split('\n')]) assert.ok([...line].length <= 120, `wider than 120 columns: ${line}`)
})

test('diff: what staging runs that production does not (images, migrations, secret names), read-only', async () => {
  const { sandbox, env } = await pipeline()
  await sandbox.fly(['secrets', 'set', 'NEW_FLAG=1', '--app', STAGING[2], '--stage'])
  sandbox.clearCalls()
  const result = await runMake('diff', {}, { env })
  assert.is(result.code, 0, result.output)
  assertCalls(sandbox.calls(), [together(proxy(STG_DB), proxy(PRD_DB), ...STAGING.flatMap((app) => [status(app), secretsList(app)]), ...PRODUCTION.flatMap((app) => [status(app), secretsList(app)]))])
  for (const key of KEYS) assert.match(result.stdout, new RegExp(`${key}\\s+…:${SHOWN_LABEL.source}\\s+…:${SHOWN_LABEL.source}\\s+same`))
  assert.match(result.stdout, /web-admin\s+NEW_FLAG\s+set\s+missing/)
  assert.equal(sandbox.writes(), [])
  await sandbox.fly(['secrets', 'unset', 'NEW_FLAG', '--app', STAGING[2], '--stage'])
})

test('logs-*: flyctl logs --no-tail per app, bounded, secrets masked; FOLLOW=1 streams until a signal stops it and its flyctl children', async () => {
  const { sandbox, env } = await pipeline()
  sandbox.appLog(STAGING[0], `connected with token ${SECRET.jwt}`)
  sandbox.clearCalls()
  const result = await runMake('logs-staging', {}, { env })
  assert.is(result.code, 0, result.output)
  assertCalls(sandbox.calls(), STAGING.map((app) => ['logs', '--app', app, '--no-tail']))
  assert.match(result.stdout, 'connected with token ****')
  assert.not.match(result.output, SECRET.jwt)

  sandbox.clearCalls()
  let child: import('node:child_process').ChildProcess | undefined
  const following = runScript('logs', ['staging'], { env: { ...env, FOLLOW: '1' }, onSpawn: (c) => (child = c), timeoutMs: 30_000 })
  let seen = ''
  child!.stdout!.on('data', (chunk) => (seen += chunk))
  const until = async (text: string) => {
    for (let i = 0; i < 100 && !seen.includes(text); i++) await new Promise((r) => setTimeout(r, 100))
    assert.ok(seen.includes(text), `never streamed: ${text}\n${seen}`)
  }
  await until('connected with token ****')
  sandbox.appLog(STAGING[2], `later line ${SECRET.session}`)
  await until('later line ****')
  // Every app's follower has started (under load the third may still be starting).
  for (let i = 0; i < 100 && sandbox.calls().length < STAGING.length; i++) await new Promise((r) => setTimeout(r, 100))
  child!.kill('SIGINT')
  const stopped = await following
  assert.is(stopped.code, 130, stopped.output)
  assertCalls(sandbox.calls(), [together(...STAGING.map((app) => ['logs', '--app', app]))])
  assert.not.match(stopped.output, SECRET.session)
  // Its flyctl children end with it (a zombie waiting for init to reap it is gone already).
  for (let i = 0; i < 20 && leftovers(stopped.marker).length; i++) await new Promise((r) => setTimeout(r, 100))
  assert.equal(leftovers(stopped.marker), [], 'flyctl logs outlived the toolkit')
  for (const call of sandbox.calls()) assert.not.ok(alive(call.pid), `flyctl ${call.argv.join(' ')} (pid ${call.pid}) outlived the toolkit`)
})

test('rollback-*: the previous release redeployed with --skip-release-command, every machine checked; dry run prints it', async () => {
  const { sandbox, env } = await pipeline()
  const before = images(sandbox, STAGING[1])[0]
  assert.is((await runMake('deploy-staging', { APP: 'public-api' }, { env })).code, 0)
  const after = images(sandbox, STAGING[1])[0]
  assert.is.not(after, before)
  const rollback = ['deploy', '--app', STAGING[1], '--config', config('staging', 'public-api'), '--image', before, '--skip-release-command', '--deploy-retries', '0']
  sandbox.clearCalls()
  const dry = await runMake('rollback-staging', { APP: 'public-api', DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [together(['releases', '--app', STAGING[1], '--json'], status(STAGING[1]), proxy(STG_DB))])
  assert.match(dry.stdout, `flyctl ${rollback.join(' ')}`)
  assert.equal(sandbox.writes(), [])
  sandbox.clearCalls()
  const result = await runMake('rollback-staging', { APP: 'public-api' }, { env })
  assert.is(result.code, 0, result.output)
  assertCalls(sandbox.calls(), [together(['releases', '--app', STAGING[1], '--json'], status(STAGING[1]), proxy(STG_DB)), rollback, status(STAGING[1]), status(STAGING[1])])
  assert.equal([...new Set(images(sandbox, STAGING[1]))], [before])
  assert.match(result.stdout, new RegExp(`^public-api\\s+rolled back, healthy`, 'm'))
  // Production: asks first.
  sandbox.clearCalls()
  const refused = await runMake('rollback-prod', { APP: 'public-api' }, { env })
  assert.is(refused.code, 2)
  assert.equal(sandbox.writes(), [])
})

test('rollback-migration-*: down.sql and the bookkeeping in one transaction through the proxy; dry run prints psql; the next migrate applies it again', async () => {
  const { sandbox, env, dbs } = await pipeline()
  const name = MIGRATIONS[2]
  sandbox.clearCalls()
  const dry = await runMake('rollback-migration-staging', { NAME: name, DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assertCalls(sandbox.calls(), [proxy(STG_DB)])
  assert.match(dry.stdout, `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 --single-transaction -f examples/microbima/apps/api/prisma/migrations/${name}/down.sql -c "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '${name}' AND finished_at IS NOT NULL AND rolled_back_at IS NULL"`)
  assert.equal(await sql(dbs.staging, 'SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL'), [])
  sandbox.clearCalls()
  const result = await runMake('rollback-migration-staging', { NAME: name }, { env })
  assert.is(result.code, 0, result.output)
  assertCalls(sandbox.calls(), [proxy(STG_DB)])
  assert.equal(await sql(dbs.staging, 'SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL'), [{ migration_name: name }])
  assert.equal(await sql(dbs.staging, `SELECT to_regclass('"Premium"') IS NULL AS gone`), [{ gone: true }])
  sandbox.clearCalls()
  const again = await runMake('migrate-staging', {}, { env })
  assert.is(again.code, 0, again.output)
  assertCalls(sandbox.calls(), [proxy(STG_DB), ssh(STAGING[0])])
  assert.equal(await sql(dbs.staging, `SELECT to_regclass('"Premium"') IS NULL AS gone`), [{ gone: false }])
})

test('lock-<env> REASON= holds the environment: deploys refuse (exit 3) naming it; lock-status shows it; unlock needs YES=1; dry runs change nothing', async () => {
  const { sandbox, env, dbs } = await pipeline()
  const held = () => sql(dbs.staging, "SELECT operation FROM microbima_deploy.deploy_lock WHERE environment = 'staging'")
  sandbox.clearCalls()
  const dry = await runMake('lock-staging', { REASON: 'incident 42', DRY_RUN: '1' }, { env })
  assert.is(dry.code, 0, dry.output)
  assert.match(dry.stdout, 'would hold the staging environment: incident 42')
  assert.equal(await held(), [])
  const lock = await runMake('lock-staging', { REASON: 'incident 42' }, { env })
  assert.is(lock.code, 0, lock.output)
  assertCalls(sandbox.calls(), [proxy(STG_DB), proxy(STG_DB)])
  const status = await runMake('lock-status-staging', {}, { env })
  assert.match(status.stdout, /^staging: held by .+: incident 42 \(until make unlock\)$/m)
  sandbox.clearCalls()
  const refused = await runMake('deploy-staging', {}, { env })
  assert.is(refused.code, 2)
  assert.match(refused.stderr, /refused: the staging deploy lock is held by .+: incident 42/)
  assert.match(refused.stderr, /Error 3$/m)
  assert.equal(sandbox.writes(), [])
  assert.is((await runScript('unlock', ['staging'], { env })).code, 3)
  const dryUnlock = await runMake('unlock-staging', { YES: '1', DRY_RUN: '1' }, { env })
  assert.is(dryUnlock.code, 0, dryUnlock.output)
  assert.match(dryUnlock.stdout, `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "DELETE FROM microbima_deploy.deploy_lock WHERE environment = 'staging'"`)
  assert.equal(await held(), [{ operation: 'hold: incident 42' }])
  const unlock = await runMake('unlock-staging', { YES: '1' }, { env })
  assert.is(unlock.code, 0, unlock.output)
  assert.equal(await held(), [])
  const [last] = await sql<{ operation: string; detail: string }>(dbs.staging, 'SELECT operation, detail FROM microbima_deploy.ledger ORDER BY id DESC LIMIT 1')
  assert.is(last.operation, 'unlock')
  assert.match(last.detail, /^broke the lock of .+ incident 42$/)
})

test('history-*: the ledger of every operation above, in 120 columns; JSON=1 for the full values', async () => {
  const { sandbox, env } = await pipeline()
  sandbox.clearCalls()
  const history = await runMake('history-staging', {}, { env })
  assert.is(history.code, 0, history.output)
  assertCalls(sandbox.calls(), [proxy(STG_DB)])
  assert.match(history.stdout, new RegExp(`deploy\\s+internal-api\\s+- → ${SHOWN_LABEL.source}\\s+ok`), history.stdout)
  for (const line of history.stdout.split('\n')) assert.ok([...line].length <= 120, `wider than 120 columns: ${line}`)
  const json = (await runMake('history-staging', { JSON: '1' }, { env })).stdout.trim().split('\n').map((line) => JSON.parse(line)) as { operation: string; apps: string[]; migrations: string[] }[]
  const operations = json.map((r) => r.operation).reverse()
  for (const op of ['set-secrets', 'deploy', 'migrate', 'rollback', 'rollback-migration', 'lock', 'unlock']) assert.ok(operations.includes(op), `${op} in ${operations.join(', ')}`)
  assert.equal(json.find((r) => r.operation === 'rollback-migration')!.migrations, [MIGRATIONS[2]])
  const { sandbox: s } = await pipeline()
  await s.close()
})

test.run()
