import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { statSync, readFileSync, chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { argvs, createSandbox } from './support/sandbox.ts'
import { freshDatabases, sql } from './support/pg.ts'
import { PRODUCTION, STAGING, scenario } from './support/scenario.ts'
import { REPO, SECRET, defaultEnvFiles, runMake, runScript, tempDir, writeEnvDir } from './support/toolkit.ts'

test('create-apps lists first, creates only the missing apps with the org; a second run creates nothing', async () => {
  const dbs = await freshDatabases()
  const sandbox = await createSandbox()
  const env = { ...sandbox.env, ENV_DIR: writeEnvDir(defaultEnvFiles(dbs)) }
  await sandbox.fly(['apps', 'create', STAGING[1], '--org', 'microbima'])
  sandbox.clearCalls()
  const first = await runMake('create-apps-staging', {}, { env })
  assert.is(first.code, 0, first.output)
  assert.equal(argvs(sandbox.calls()), [
    ['apps', 'list', '--json'],
    ['apps', 'create', STAGING[0], '--org', 'microbima'],
    ['apps', 'create', STAGING[2], '--org', 'microbima'],
  ])
  sandbox.clearCalls()
  const second = await runMake('create-apps-staging', {}, { env })
  assert.is(second.code, 0)
  assert.equal(argvs(sandbox.calls()), [['apps', 'list', '--json']])
  const withOrg = await runScript('create-apps', ['production', '--dry-run'], { env: { ...env, FLY_ORG: 'acme' } })
  assert.match(withOrg.stdout, `flyctl apps create ${PRODUCTION[0]} --org acme`)
  await sandbox.close()
})

test('create-apps DB=1 creates the database without prompts, attaches it, never shows the password', async () => {
  const sandbox = await createSandbox()
  const envDir = tempDir()
  const result = await runMake('create-apps-staging', { DB: '1' }, { env: { ...sandbox.env, ENV_DIR: envDir } })
  assert.is(result.code, 0, result.output)
  const calls = argvs(sandbox.writes())
  assert.equal(calls.slice(-2), [
    ['postgres', 'create', '--name', 'microbima-staging-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10'],
    ['postgres', 'attach', 'microbima-staging-db', '--app', STAGING[0], '--yes'],
  ])
  const password = sandbox.state().apps['microbima-staging-db'].postgres.password
  const attached = sandbox.state().apps[STAGING[0]].secrets.DATABASE_URL.value
  assert.not.match(result.output, password)
  assert.not.match(result.output, new URL(attached).password)
  const file = join(envDir, 'staging', 'internal-api.env')
  assert.is(readFileSync(file, 'utf8'), `DATABASE_URL=${attached}\n`)
  assert.is(statSync(file).mode & 0o777, 0o600)
  // A second run changes nothing.
  sandbox.clearCalls()
  const again = await runMake('create-apps-staging', { DB: '1' }, { env: { ...sandbox.env, ENV_DIR: envDir } })
  assert.is(again.code, 0, again.output)
  assert.equal(sandbox.writes(), [])
  assert.match(again.stdout, 'already attached (DATABASE_URL is on the app)')
  await sandbox.close()
})

test('create-apps DB=1 replaces the CHANGE_ME DATABASE_URL copied from the .env.example, keeps the rest, mode 0600', async () => {
  const sandbox = await createSandbox()
  const envDir = tempDir()
  mkdirSync(join(envDir, 'staging'))
  const file = join(envDir, 'staging', 'internal-api.env')
  copyFileSync(join(REPO, 'env', 'staging', 'internal-api.env.example'), file)
  chmodSync(file, 0o644)
  const result = await runMake('create-apps-staging', { DB: '1' }, { env: { ...sandbox.env, ENV_DIR: envDir } })
  assert.is(result.code, 0, result.output)
  const attached = sandbox.state().apps[STAGING[0]].secrets.DATABASE_URL.value
  const text = readFileSync(file, 'utf8')
  assert.ok(text.includes(`\nDATABASE_URL=${attached}\n`), text)
  assert.match(text, 'JWT_SECRET=CHANGE_ME')
  assert.is(statSync(file).mode & 0o777, 0o600)
  assert.match(result.stdout, 'DATABASE_URL placeholder replaced')
  await sandbox.close()
})

test('create-apps DB=1 after a run that created the database but never attached it: attaches only', async () => {
  const sandbox = await createSandbox()
  sandbox.seedApps()
  await sandbox.fly(['postgres', 'create', '--name', 'microbima-staging-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10'])
  sandbox.clearCalls()
  const result = await runMake('create-apps-staging', { DB: '1' }, { env: { ...sandbox.env, ENV_DIR: tempDir() } })
  assert.is(result.code, 0, result.output)
  assert.equal(argvs(sandbox.writes()), [['postgres', 'attach', 'microbima-staging-db', '--app', STAGING[0], '--yes']])
  await sandbox.close()
})

test('set-secrets stages NODE_ENV plus every key on stdin, shows a diff by name, never a value', async () => {
  const s = await scenario()
  await s.sandbox.fly(['secrets', 'set', 'OLD_KEY=x', '--app', STAGING[2], '--stage'])
  s.sandbox.clearCalls()
  const result = await runMake('set-secrets-staging', {}, { env: s.env })
  assert.is(result.code, 0, result.output)
  const imports = s.sandbox.calls().filter((c) => c.argv[1] === 'import')
  assert.equal(imports.map((c) => c.argv), STAGING.map((app) => ['secrets', 'import', '--app', app, '--stage']))
  const staging = s.files.staging!
  assert.is(imports[0].stdin, `NODE_ENV="staging"\nDATABASE_URL=${JSON.stringify(staging['internal-api']!.DATABASE_URL)}\nJWT_SECRET="${SECRET.jwt}"\nMPESA_CONSUMER_SECRET="${SECRET.mpesa}"\n`)
  assert.is(s.sandbox.state().apps[STAGING[0]].secrets.JWT_SECRET.value, SECRET.jwt)
  assert.match(result.stdout, /OLD_KEY\s+only on Fly \(kept; --prune removes it\)/)
  assert.match(result.stdout, /SESSION_SECRET\s+added/)
  for (const value of Object.values(SECRET)) assert.not.match(result.output, value)
  for (const call of s.sandbox.calls()) for (const value of Object.values(SECRET)) assert.not.ok(call.argv.join(' ').includes(value))
  s.sandbox.clearCalls()
  const pruned = await runScript('set-secrets', ['staging', '--app', 'web-admin', '--prune'], { env: s.env })
  assert.is(pruned.code, 0, pruned.output)
  // Nothing changed locally, so only the removal is a write.
  assert.equal(argvs(s.sandbox.writes()), [['secrets', 'unset', 'OLD_KEY', '--app', STAGING[2], '--stage']])
  await s.sandbox.close()
})

test('set-secrets twice changes nothing; a changed value is pushed alone; a change made on Fly is noticed', async () => {
  const s = await scenario()
  assert.is((await runMake('set-secrets-staging', {}, { env: s.env })).code, 0)
  s.sandbox.clearCalls()
  const again = await runMake('set-secrets-staging', {}, { env: s.env })
  assert.is(again.code, 0, again.output)
  assert.equal(s.sandbox.writes(), [])
  assert.match(again.stdout, /JWT_SECRET\s+unchanged/)
  assert.match(again.stderr, 'the secrets of staging already match the env files: nothing to push')

  const files = defaultEnvFiles(s.dbs)
  files.staging!['internal-api']!.JWT_SECRET = 'jwt-rotated-0042'
  writeEnvDir(files, s.envDir)
  await s.sandbox.fly(['secrets', 'set', 'SESSION_SECRET=set-by-hand-on-fly', '--app', STAGING[2], '--stage'])
  s.sandbox.clearCalls()
  const changed = await runMake('set-secrets-staging', {}, { env: s.env })
  assert.is(changed.code, 0, changed.output)
  assert.match(changed.stdout, /JWT_SECRET\s+changed/)
  assert.match(changed.stdout, /SESSION_SECRET\s+changed on Fly since the last push: re-staged/)
  const imports = s.sandbox.writes()
  assert.equal(imports.map((c) => [c.argv, c.stdin]), [
    [['secrets', 'import', '--app', STAGING[0], '--stage'], 'JWT_SECRET="jwt-rotated-0042"\n'],
    [['secrets', 'import', '--app', STAGING[2], '--stage'], `SESSION_SECRET="${SECRET.session}"\n`],
  ])
  assert.is(s.sandbox.state().apps[STAGING[2]].secrets.SESSION_SECRET.value, SECRET.session)
  // The fingerprints keep no value: neither the values nor anything that contains them.
  const stored = JSON.stringify(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.secret_fingerprints'))
  for (const value of [...Object.values(SECRET), 'jwt-rotated-0042']) assert.not.ok(stored.includes(value))
  s.sandbox.clearCalls()
  assert.is((await runMake('set-secrets-staging', {}, { env: s.env })).code, 0)
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('set-secrets dry run prints NAME=**** and writes nothing; a bad file anywhere stops everything', async () => {
  const s = await scenario()
  const dry = await runMake('set-secrets-staging', { DRY_RUN: '1' }, { env: s.env })
  assert.is(dry.code, 0, dry.output)
  assert.match(dry.stdout, `flyctl secrets import --app ${STAGING[0]} --stage <<'EOF'\nNODE_ENV=****\nDATABASE_URL=****\nJWT_SECRET=****\nMPESA_CONSUMER_SECRET=****\nEOF`)
  assert.equal(s.sandbox.writes(), [])
  writeFileSync(join(s.envDir, 'staging', 'web-admin.env'), 'SESSION_SECRET=a\nBROKEN LINE\n', { mode: 0o600 })
  const bad = await runMake('set-secrets-staging', {}, { env: s.env })
  assert.match(bad.stderr, /error: .*web-admin\.env line 2 is not NAME=VALUE/)
  assert.match(bad.stderr, 'Error 2')
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('APPLY=1 restarts the machines with secrets deploy; a failed restart says the secrets are stored, exit 1, ledger', async () => {
  const s = await scenario({ stagingDeployed: true })
  const ok = await runMake('set-secrets-staging', { APPLY: '1' }, { env: s.env })
  assert.is(ok.code, 0, ok.output)
  assert.equal(argvs(s.sandbox.writes()), [
    ...STAGING.map((app) => ['secrets', 'import', '--app', app, '--stage']),
    ...STAGING.map((app) => ['secrets', 'deploy', '--app', app]),
  ])
  for (const app of STAGING) assert.is(s.sandbox.state().apps[app].secrets.NODE_ENV.staged, false)

  s.sandbox.clearCalls()
  const unchanged = await runMake('set-secrets-staging', { APPLY: '1' }, { env: s.env })
  assert.is(unchanged.code, 0, unchanged.output)
  assert.equal(s.sandbox.writes(), [])

  s.sandbox.fault({ command: 'secrets deploy', app: STAGING[1], kind: 'restart-fail', times: 1 })
  const files = defaultEnvFiles(s.dbs)
  files.staging!['public-api']!.KONG_API_KEY = 'rotated-kong-key-1'
  files.staging!['web-admin']!.SESSION_SECRET = 'rotated-session-1'
  writeEnvDir(files, s.envDir)
  const failed = await runMake('set-secrets-staging', { APPLY: '1' }, { env: s.env })
  assert.is(failed.code, 2)
  assert.match(failed.stderr, 'Error 1')
  assert.match(failed.stderr, `${STAGING[1]}: the secrets are stored on Fly, but restarting its machines failed`)
  assert.match(failed.stderr, `flyctl secrets deploy --app ${STAGING[1]}`)
  // Stored, not running; the third app was not restarted after the failure.
  const kong = s.sandbox.state().apps[STAGING[1]].secrets.KONG_API_KEY
  assert.equal([kong.value, kong.staged], ['rotated-kong-key-1', true])
  assert.equal(argvs(s.sandbox.writes()), [
    ['secrets', 'import', '--app', STAGING[1], '--stage'],
    ['secrets', 'import', '--app', STAGING[2], '--stage'],
    ['secrets', 'deploy', '--app', STAGING[1]],
  ])
  const ledger = await sql<{ operation: string; app: string; result: string }>(s.dbs.staging, "SELECT operation, app, result FROM microbima_deploy.ledger WHERE app = $1 ORDER BY id", [STAGING[1]])
  assert.equal(ledger.at(-1), { operation: 'set-secrets', app: STAGING[1], result: 'failed' })
  for (const secret of Object.values(SECRET)) assert.not.match(failed.output, secret)
  await s.sandbox.close()
})

test('values with quotes, backslashes, " #" and several lines reach Fly exactly', async () => {
  const s = await scenario()
  // Written as an operator would: single quotes keep a value literal, double quotes expand \n.
  const tricky = { QUOTED: 'pa"ss\\word $HOME', HASHED: 'left #right', PEM: '-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----' }
  writeFileSync(join(s.envDir, 'staging', 'web-admin.env'), `SESSION_SECRET=${SECRET.session}\nQUOTED='pa"ss\\word $HOME'\nHASHED='left #right'\nPEM="-----BEGIN KEY-----\\nAAAA\\nBBBB\\n-----END KEY-----"\n`, { mode: 0o600 })
  const result = await runScript('set-secrets', ['staging', '--app', 'web-admin'], { env: s.env })
  assert.is(result.code, 0, result.output)
  const stored = s.sandbox.state().apps[STAGING[2]].secrets
  for (const [name, value] of Object.entries(tricky)) assert.is(stored[name].value, value, name)
  await s.sandbox.close()
})

test('health: a table of the three apps; exit 1 when one is unhealthy', async () => {
  const s = await scenario({ stagingDeployed: true })
  const ok = await runMake('health-staging', {}, { env: s.env })
  assert.is(ok.code, 0, ok.output)
  for (const app of STAGING) assert.match(ok.stdout, new RegExp(`${app}\\s+healthy\\s+1/1 started\\s+1/1 passing\\s+http://127\\.0\\.0\\.1:\\d+/${app}/health 200`))
  const state = JSON.parse(readFileSync(join(s.sandbox.stateDir, 'state.json'), 'utf8'))
  state.apps[STAGING[1]].brokenImages.push(state.apps[STAGING[1]].machines[0].image)
  writeFileSync(join(s.sandbox.stateDir, 'state.json'), JSON.stringify(state))
  const sick = await runScript('health', ['staging'], { env: { ...s.env, HEALTH_TIMEOUT: '1' } })
  assert.is(sick.code, 1)
  assert.match(sick.stdout, new RegExp(`${STAGING[1]}\\s+UNHEALTHY.+ 503 in`))
  await s.sandbox.close()
})

test('logs: flyctl logs --no-tail per app, bounded when the buffer is empty', async () => {
  const s = await scenario({ stagingDeployed: true })
  const result = await runScript('logs', ['staging'], { env: { ...s.env, LOGS_TIMEOUT: '1' } })
  assert.is(result.code, 0, result.output)
  assert.equal(argvs(s.sandbox.calls()), STAGING.map((app) => ['logs', '--app', app, '--no-tail']))
  assert.match(result.stdout, 'listening on :8080')
  const empty = await runScript('logs', ['production', '--app', 'web-admin'], { env: { ...s.env, LOGS_TIMEOUT: '1' } })
  assert.is(empty.code, 0, empty.output)
  assert.match(empty.stdout, '(no logs within 1s: the log buffer is probably empty)')
  await s.sandbox.close()
})

test('studio runs against the database through the tunnel, passes the URL by environment, closes the tunnel', async () => {
  const dbs = await freshDatabases()
  const port = new URL(dbs.staging).port
  const sandbox = await createSandbox({ postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: Number(port) } } })
  sandbox.seedApps()
  await sandbox.fly(['postgres', 'create', '--name', 'microbima-staging-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10'])
  const envDir = writeEnvDir({ staging: { 'internal-api': { DATABASE_URL: `postgres://postgres:${SECRET.stagingDbPassword}@microbima-staging-db.flycast:5432/postgres` } } })
  sandbox.clearCalls()
  const dir = tempDir()
  const fake = join(dir, 'studio')
  writeFileSync(fake, `#!/bin/sh\necho "$@" > ${dir}/args\nnode -e "const pg=require('${join(process.cwd(), 'node_modules/pg')}');const c=new pg.Client(process.env.DATABASE_URL);c.connect().then(()=>c.query('select 41+1 as n')).then(r=>{console.log('studio saw', r.rows[0].n);return c.end()})"\n`)
  chmodSync(fake, 0o755)
  const result = await runMake('studio-staging', {}, { env: { ...sandbox.env, ENV_DIR: envDir, PRISMA_STUDIO_CMD: fake } })
  assert.is(result.code, 0, result.output)
  assert.match(result.stdout, 'studio saw 42')
  assert.is(readFileSync(join(dir, 'args'), 'utf8'), '--port 5555 --browser none\n')
  const calls = argvs(sandbox.calls())
  assert.is(calls.length, 1)
  assert.match(calls[0][1], /^\d+:5432$/)
  assert.equal([calls[0][0], ...calls[0].slice(2)], ['proxy', '--app', 'microbima-staging-db'])
  // The tunnel is closed once Studio stops.
  const { createConnection } = await import('node:net')
  const refused = await new Promise((resolve) => createConnection(Number(calls[0][1].split(':')[0]), '127.0.0.1').on('connect', () => resolve(false)).on('error', () => resolve(true)))
  assert.ok(refused)
  assert.not.match(result.output, SECRET.stagingDbPassword)
  const prod = await runScript('studio', ['production'], { env: { ...sandbox.env, ENV_DIR: envDir } })
  assert.is(prod.code, 2)
  await sandbox.close()
})

test('history shows the ledger; lock-status and unlock manage the deploy lock', async () => {
  const s = await scenario({ stagingDeployed: true })
  const history = await runMake('history-staging', {}, { env: s.env })
  assert.is(history.code, 0, history.output)
  assert.match(history.stdout, /deploy\s+microbima-staging-internal-api\s+- → registry\.fly\.io\/microbima-staging-internal-api:deployment-\w+\s+ok/)
  const json = JSON.parse((await runScript('history', ['staging', '--json'], { env: s.env })).stdout)
  assert.equal(json.map((r: { operation: string }) => r.operation).reverse(), ['deploy', 'deploy', 'deploy', 'migrate'])
  assert.equal(json[0].migrations, ['20250101000000_init', '20250115000000_add_customer_beneficiaries', '20250201000000_add_premiums'])
  assert.match((await runMake('lock-status-staging', {}, { env: s.env })).stdout, 'staging: free')
  await sql(s.dbs.staging, "INSERT INTO microbima_deploy.deploy_lock VALUES ('staging', 't', 'ci-bot', 'runner-7', 'deploy-staging', now(), now() + interval '1 hour')")
  assert.match((await runMake('lock-status-staging', {}, { env: s.env })).stdout, 'staging: locked by ci-bot on runner-7, running deploy-staging since')
  const refused = await runScript('unlock', ['staging'], { env: s.env })
  assert.is(refused.code, 3)
  const broken = await runMake('unlock-staging', { YES: '1' }, { env: s.env })
  assert.is(broken.code, 0, broken.output)
  assert.match((await runMake('lock-status-staging', {}, { env: s.env })).stdout, 'staging: free')
  const [last] = await sql<{ operation: string; detail: string }>(s.dbs.staging, 'SELECT operation, detail FROM microbima_deploy.ledger ORDER BY id DESC LIMIT 1')
  assert.equal(last, { operation: 'unlock', detail: 'broke the lock of ci-bot on runner-7, running deploy-staging since ' + last.detail.split('since ')[1] })
  await s.sandbox.close()
})

test('an expired lock is taken over; a lock on staging does not block production', async () => {
  const s = await scenario({ stagingDeployed: true })
  await sql(s.dbs.staging, "INSERT INTO microbima_deploy.deploy_lock VALUES ('staging', 't', 'crashed', 'laptop', 'deploy-staging', now() - interval '1 hour', now() - interval '1 minute')")
  const result = await runScript('migrate', ['staging'], { env: s.env })
  assert.is(result.code, 0, result.output)
  await sql(s.dbs.staging, "INSERT INTO microbima_deploy.deploy_lock VALUES ('staging', 't2', 'someone', 'laptop', 'deploy-staging', now(), now() + interval '1 hour')")
  const prod = await runScript('set-secrets', ['production', '--yes', '--app', 'web-admin'], { env: s.env })
  assert.is(prod.code, 0, prod.output)
  await s.sandbox.close()
})

test.run()
