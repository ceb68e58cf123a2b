import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { argvs, createSandbox } from './support/sandbox.ts'
import { sql } from './support/pg.ts'
import { STAGING, scenario } from './support/scenario.ts'
import { SECRET, run, runMake, runScript, tempDir, writeEnvDir } from './support/toolkit.ts'

// Faults: each leaves the right exit code, a summary that says what changed, and a ledger entry.

const ledger = async (url: string) =>
  (await sql<{ operation: string; app: string | null; result: string }>(url, 'SELECT operation, app, result FROM microbima_deploy.ledger ORDER BY id')).map((r) => `${r.operation}:${r.app ?? '-'}:${r.result}`)

test('deploy fails on the second app of three: exit 1, summary, ledger', async () => {
  const s = await scenario()
  s.sandbox.fault({ command: 'deploy', app: STAGING[1], kind: 'fail', times: 1 })
  const result = await runScript('deploy', ['staging'], { env: s.env })
  assert.is(result.code, 1)
  assert.match(result.stdout, /microbima-staging-public-api\s+failed\s+-\s+-\s+Error: failed to update machine/)
  assert.equal(await ledger(s.dbs.staging), [`deploy:${STAGING[0]}:ok`, `deploy:${STAGING[1]}:failed`])
  await s.sandbox.close()
})

test('the release command (migration) fails during deploy: machines untouched, exit 1, ledger', async () => {
  const s = await scenario()
  s.sandbox.fault({ command: 'deploy', app: STAGING[0], kind: 'release-command-fail', times: 1 })
  const result = await runScript('deploy', ['staging'], { env: s.env })
  assert.is(result.code, 1)
  assert.match(result.stderr, 'release command failed - aborting deployment')
  assert.equal(s.sandbox.state().apps[STAGING[0]].machines, [])
  assert.equal(await ledger(s.dbs.staging), [`deploy:${STAGING[0]}:failed`])
  await s.sandbox.close()
})

test('ssh fails before the migration runs: exit 1 naming it; a deploy that leaves machines unhealthy is rolled back', async () => {
  // timeScale: flyctl's 5m wait for health checks passes in 1.5s.
  const s = await scenario({ stagingDeployed: true, sandbox: { timeScale: 0.005 } })
  s.sandbox.fault({ command: 'ssh', app: STAGING[0], kind: 'ssh-connect-fail', times: 1 })
  const ssh = await runScript('migrate', ['staging'], { env: s.env })
  assert.is(ssh.code, 1)
  assert.match(ssh.stderr, 'could not run prisma migrate deploy on microbima-staging-internal-api (flyctl ssh console failed before the command ran)')
  assert.match(ssh.stderr, 'ssh: handshake failed: EOF')
  const before = s.sandbox.state().apps[STAGING[2]].machines[0].image
  s.sandbox.fault({ command: 'deploy', app: STAGING[2], kind: 'unhealthy', times: 1 })
  const unhealthy = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: { ...s.env } })
  assert.is(unhealthy.code, 1, unhealthy.output)
  assert.match(unhealthy.stdout, /microbima-staging-web-admin\s+rolled back/)
  assert.is(s.sandbox.state().apps[STAGING[2]].machines[0].image, before)
  assert.equal((await ledger(s.dbs.staging)).slice(-3), ['migrate:microbima-staging-internal-api:failed', `deploy:${STAGING[2]}:failed`, `rollback:${STAGING[2]}:rolled back`])
  await s.sandbox.close()
})

test('flyctl hangs: every call has a timeout', async () => {
  const s = await scenario({ stagingDeployed: true })
  s.sandbox.fault({ command: 'status', kind: 'hang' })
  const started = Date.now()
  const result = await runScript('health', ['staging', '--app', 'web-admin'], { env: { ...s.env, FLY_READ_TIMEOUT: '1' } })
  assert.is(result.code, 1)
  assert.match(result.stderr, 'timed out after 1s and was stopped')
  assert.ok(Date.now() - started < 15_000)
  await s.sandbox.close()
})

test('the database is unreachable, or flyctl proxy never becomes ready: exit 1, nothing deployed', async () => {
  const s = await scenario()
  const down = writeEnvDir({ ...s.files, staging: { ...s.files.staging, 'internal-api': { DATABASE_URL: 'postgres://u:pw-unreachable@127.0.0.1:1/db' } } })
  const unreachable = await runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: down, DB_CONNECT_TIMEOUT: '2' } })
  assert.is(unreachable.code, 1)
  assert.match(unreachable.stderr, 'cannot connect to the staging database at 127.0.0.1:1/db')
  assert.equal(s.sandbox.writes(), [])
  const sandbox = await createSandbox({ postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: 1 } } })
  sandbox.seedApps()
  await sandbox.fly(['postgres', 'create', '--name', 'microbima-staging-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '1'])
  sandbox.fault({ command: 'proxy', kind: 'proxy-never-ready' })
  sandbox.clearCalls()
  const proxied = writeEnvDir({ staging: { 'internal-api': { DATABASE_URL: 'postgres://u:p@microbima-staging-db.flycast:5432/db' } } })
  const never = await runScript('migrate', ['staging'], { env: { ...sandbox.env, ENV_DIR: proxied, PROXY_READY_TIMEOUT: '1' } })
  assert.is(never.code, 1)
  assert.match(never.stderr, 'flyctl proxy to microbima-staging-db did not become ready within 1s')
  assert.equal(sandbox.writes(), [])
  const left = await run('sh', ['-c', `ps -eo args | grep 'fly-sim.mjs proxy' | grep -v grep | grep -c microbima-staging-db || true`])
  assert.is(left.stdout.trim(), '0')
  await s.sandbox.close()
  await sandbox.close()
})

test('SIGTERM in the middle of a pipeline: children stopped, lock released, one interrupted entry', async () => {
  const s = await scenario({ sandbox: { latencyMs: { deploy: 4000 } } })
  let child!: import('node:child_process').ChildProcess
  const pending = runScript('deploy', ['staging'], { env: s.env, onSpawn: (c) => (child = c) })
  await new Promise((r) => setTimeout(r, 2500))
  child.kill('SIGTERM')
  const result = await pending
  assert.is(result.code, 143, result.output)
  assert.match(result.stderr, 'interrupted by SIGTERM: stopping children and releasing locks')
  assert.equal(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.deploy_lock'), [])
  const entries = await ledger(s.dbs.staging)
  assert.ok(entries.includes('deploy-staging:-:interrupted'), entries.join(','))
  const left = await run('sh', ['-c', `ps -eo args | grep 'fly-sim.mjs deploy' | grep -v grep | grep -c ${STAGING[0]} || true`])
  assert.is(left.stdout.trim(), '0')
  // The interrupted deploy changed nothing: flyctl was stopped before it updated a machine.
  assert.equal(s.sandbox.state().apps[STAGING[0]].machines, [])
  await s.sandbox.close()
})

test('secrets: every target, dry runs and failure paths included, shows no secret value anywhere', async () => {
  const s = await scenario()
  const outputs: string[] = []
  const runs: Array<[string, Record<string, string>]> = [
    ['set-secrets-staging', {}], ['set-secrets-staging', { DRY_RUN: '1' }], ['set-secrets-prod', { YES: '1', VERBOSE: '1' }],
    ['deploy-staging', { VERBOSE: '1' }], ['deploy-staging', { DRY_RUN: '1' }], ['deploy-prod', { YES: '1' }], ['deploy-prod', { DRY_RUN: '1' }],
    ['migrate-staging', {}], ['migrate-prod', { YES: '1' }], ['migrate-status', {}], ['health-staging', {}], ['logs-staging', {}],
    ['history-staging', {}], ['history-prod', {}], ['lock-status-prod', {}], ['rollback-staging', { APP: 'web-admin' }], ['create-apps-prod', { DRY_RUN: '1' }],
    ['set-secrets-staging', { APPLY: '1', VERBOSE: '1' }], ['rollback-migration-staging', { NAME: '20250201000000_add_premiums', DRY_RUN: '1' }], ['health-prod', { VERBOSE: '1' }],
  ]
  const summary = join(tempDir('mb-summary-'), 'summary.md')
  for (const [target, vars] of runs) {
    const result = await runMake(target, vars, { env: { ...s.env, LOGS_TIMEOUT: '1', HEALTH_TIMEOUT: '1', GITHUB_STEP_SUMMARY: summary } })
    outputs.push(result.output)
  }
  s.sandbox.fault({ command: 'deploy', app: STAGING[0], kind: 'release-command-fail', times: 1 })
  outputs.push((await runMake('deploy-staging', { VERBOSE: '1' }, { env: s.env })).output)
  outputs.push((await runMake('migrate-prod', {}, { env: s.env })).output)
  const values = Object.values(SECRET).flatMap((v) => [v, `${v}P`])
  for (const value of values) {
    for (const output of outputs) assert.not.ok(output.includes(value), `${value} in output:\n${output.slice(0, 400)}`)
    for (const call of s.sandbox.calls()) assert.not.ok(call.argv.join(' ').includes(value), `${value} in argv ${call.argv.join(' ')}`)
  }
  // What the toolkit itself writes: the ledger, and any backup or env file it created.
  const rows = JSON.stringify([...(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.ledger')), ...(await sql(s.dbs.production, 'SELECT * FROM microbima_deploy.ledger'))])
  for (const value of values) assert.not.ok(rows.includes(value), `${value} in the ledger`)
  const markdown = readFileSync(summary, 'utf8')
  assert.match(markdown, '#### deploy staging')
  for (const value of values) assert.not.ok(markdown.includes(value), `${value} in the GitHub step summary`)
  // Secrets reach flyctl on stdin only.
  const imports = s.sandbox.calls().filter((c) => c.argv[1] === 'import')
  assert.ok(imports.some((c) => c.stdin?.includes(SECRET.jwt)))
  await s.sandbox.close()
})

test('env files written by the toolkit are mode 0600', async () => {
  const sandbox = await createSandbox()
  const dir = tempDir()
  assert.is((await runMake('create-apps-prod', { DB: '1' }, { env: { ...sandbox.env, ENV_DIR: dir } })).code, 0)
  for (const file of readdirSync(join(dir, 'production'))) assert.is(statSync(join(dir, 'production', file)).mode & 0o777, 0o600)
  assert.match(readFileSync(join(dir, 'production', 'internal-api.env'), 'utf8'), /^DATABASE_URL=postgres:\/\/microbima_production_internal_api:/)
  void argvs
  await sandbox.close()
})

test.run()
