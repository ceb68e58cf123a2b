import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { argvs, createSandbox } from './support/sandbox.ts'
import { freshDatabases, sql } from './support/pg.ts'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SECRET, defaultEnvFiles, runMake, runScript, tempDir, writeEnvDir } from './support/toolkit.ts'

const MIGRATIONS = ['20250101000000_init', '20250115000000_add_customer_beneficiaries', '20250201000000_add_premiums']
const APPS = ['internal-api', 'public-api', 'web-admin'].map((a) => `microbima-staging-${a}`)

/** A sandbox whose staging apps exist and hold their DATABASE_URL secret, as after set-secrets. */
async function ready() {
  const dbs = await freshDatabases()
  const sandbox = await createSandbox()
  sandbox.seedApps()
  const files = defaultEnvFiles(dbs)
  const envDir = writeEnvDir(files)
  await sandbox.fly(['secrets', 'import', '--app', APPS[0], '--stage'], `DATABASE_URL=${files.staging!['internal-api']!.DATABASE_URL}\n`)
  sandbox.clearCalls()
  return { dbs, sandbox, envDir, env: { ...sandbox.env, ENV_DIR: envDir } }
}

test('make deploy-staging deploys in order, migrates, checks health; exact flyctl argv sequence', async () => {
  const { dbs, sandbox, env } = await ready()
  const result = await runMake('deploy-staging', {}, { env })
  assert.is(result.code, 0, result.output)
  const deploys = argvs(sandbox.writes())
  assert.equal(deploys, [
    ...APPS.map((app, i) => ['deploy', '--config', `infra/fly/${['internal-api', 'public-api', 'web-admin'][i]}-staging/fly.toml`, '--app', app, '--remote-only']),
    ['ssh', 'console', '--app', APPS[0], '--command', "sh -c 'cd /app && npx prisma migrate deploy'"],
  ])
  const rows = await sql<{ migration_name: string; finished_at: Date | null; applied_steps_count: number }>(dbs.staging, 'SELECT migration_name, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name')
  assert.equal(rows.map((r) => [r.migration_name, r.finished_at !== null, r.applied_steps_count]), MIGRATIONS.map((m) => [m, true, 1]))
  // Production's database is untouched.
  assert.equal(await sql(dbs.production, "SELECT to_regclass('_prisma_migrations') AS t"), [{ t: null }])
  // The summary names each app's new image.
  for (const app of APPS) assert.match(result.stdout, new RegExp(`${app}\\s+deployed\\s+-\\s+registry\\.fly\\.io/${app}:deployment-`))
  await sandbox.close()
})

test('in GitHub Actions the summary tables go to the run summary as Markdown, secrets masked', async () => {
  const { sandbox, env } = await ready()
  const summary = join(tempDir('mb-summary-'), 'summary.md')
  const result = await runScript('deploy', ['staging'], { env: { ...env, GITHUB_STEP_SUMMARY: summary } })
  assert.is(result.code, 0, result.output)
  const markdown = readFileSync(summary, 'utf8')
  assert.match(markdown, /^#### deploy staging \(/m)
  assert.match(markdown, '| step | result | time | detail |')
  for (const app of APPS) assert.match(markdown, new RegExp(`^\\| ${app} \\| deployed \\| - \\| registry\\.fly\\.io/${app}:deployment-\\w+ \\|`, 'm'))
  assert.not.match(markdown, '\x1b[')
  for (const secret of Object.values(SECRET)) assert.not.match(markdown, secret)
  await sandbox.close()
})

test('a second deploy applies no migration twice and the migrate step reports nothing pending', async () => {
  const { dbs, sandbox, env } = await ready()
  assert.is((await runScript('deploy', ['staging'], { env })).code, 0)
  const second = await runScript('deploy', ['staging'], { env })
  assert.is(second.code, 0, second.output)
  assert.match(second.stderr, 'no pending migrations on staging')
  const [{ count }] = await sql<{ count: string }>(dbs.staging, 'SELECT count(*) FROM _prisma_migrations')
  assert.is(Number(count), 3)
  await sandbox.close()
})

test('a failed deploy of the second app stops the pipeline with exit 1 and says what was deployed', async () => {
  const { sandbox, env } = await ready()
  sandbox.fault({ command: 'deploy', app: APPS[1], kind: 'fail', times: 1 })
  const result = await runMake('deploy-staging', {}, { env })
  assert.is(result.code, 2)
  assert.match(result.stderr, 'make: *** [Makefile')
  assert.match(result.stderr, 'Error 1')
  assert.equal(argvs(sandbox.writes()).map((a) => a.slice(0, 6).join(' ')), [
    `deploy --config infra/fly/internal-api-staging/fly.toml --app ${APPS[0]} --remote-only`,
    `deploy --config infra/fly/public-api-staging/fly.toml --app ${APPS[1]} --remote-only`,
  ])
  assert.match(result.stdout, new RegExp(`${APPS[0]}\\s+deployed`))
  assert.match(result.stdout, new RegExp(`${APPS[1]}\\s+failed`))
  assert.match(result.stdout, new RegExp(`${APPS[2]}\\s+not deployed`))
  await sandbox.close()
})

test('a remote migration failure fails the step with the real status', async () => {
  const { sandbox, env } = await ready()
  assert.is((await runScript('deploy', ['staging', '--app', 'internal-api'], { env })).code, 0)
  sandbox.fault({ command: 'ssh', app: APPS[0], kind: 'remote-fail', times: 1 })
  const result = await runScript('migrate', ['staging'], { env })
  assert.is(result.code, 1, result.output)
  assert.match(result.stderr, `prisma migrate deploy failed on ${APPS[0]} with status 1`)
  await sandbox.close()
})

test('an app unhealthy after its deploy is rolled back to its previous image; exit 1', async () => {
  const { sandbox, env } = await ready()
  assert.is((await runScript('deploy', ['staging'], { env })).code, 0)
  const before = sandbox.state().apps[APPS[2]].machines[0].image
  sandbox.clearCalls()
  sandbox.fault({ command: 'deploy', app: APPS[2], kind: 'http-5xx', times: 1 })
  const result = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: { ...env, HEALTH_TIMEOUT: '2' } })
  assert.is(result.code, 1, result.output)
  const writes = argvs(sandbox.writes())
  assert.equal(writes.at(-1), ['deploy', '--app', APPS[2], '--config', 'infra/fly/web-admin-staging/fly.toml', '--image', before, '--skip-release-command'])
  assert.is(sandbox.state().apps[APPS[2]].machines[0].image, before)
  assert.match(result.stdout, new RegExp(`${APPS[2]}\\s+rolled back`))
  await sandbox.close()
})

test('dry run issues no write and prints the runbook', async () => {
  const { dbs, sandbox, env } = await ready()
  const result = await runMake('deploy-staging', { DRY_RUN: '1' }, { env })
  assert.is(result.code, 0, result.output)
  assert.equal(sandbox.writes(), [])
  assert.match(result.stdout, 'flyctl deploy --config infra/fly/internal-api-staging/fly.toml --app microbima-staging-internal-api --remote-only')
  assert.match(result.stdout, `flyctl ssh console --app microbima-staging-internal-api --command "sh -c 'cd /app && npx prisma migrate deploy'"`)
  assert.equal(await sql(dbs.staging, "SELECT to_regclass('_prisma_migrations') AS t"), [{ t: null }])
  await sandbox.close()
})

test.run()
