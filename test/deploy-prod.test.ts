import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { argvs } from './support/sandbox.ts'
import { sql } from './support/pg.ts'
import { PRODUCTION, STAGING, scenario } from './support/scenario.ts'
import { addMigration, projectCopy, runMake, runScript } from './support/toolkit.ts'

const KEYS = ['internal-api', 'public-api', 'web-admin']
const productionWrites = (calls: { argv: string[] }[]) => calls.filter((c) => c.argv.some((a) => a.startsWith('microbima-production') || a === 'microbima-prod-db'))

test('deploy-prod promotes the exact images staging runs, applies the migrations, backs up first', async () => {
  const s = await scenario({ stagingDeployed: true })
  const stagingImages = STAGING.map((app) => s.sandbox.state().apps[app].machines[0].image)
  const result = await runMake('deploy-prod', { YES: '1' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.equal(argvs(s.sandbox.writes()), [
    ['volumes', 'snapshots', 'create', s.sandbox.state().apps['microbima-prod-db'].postgres.volumeId, '--app', 'microbima-prod-db'],
    ...PRODUCTION.map((app, i) => ['deploy', '--config', `infra/fly/${KEYS[i]}-prod/fly.toml`, '--app', app, '--image', stagingImages[i]]),
    ['ssh', 'console', '--app', PRODUCTION[0], '--command', "sh -c 'cd /app && npx prisma migrate deploy'"],
  ])
  for (const [i, app] of PRODUCTION.entries()) assert.is(s.sandbox.state().apps[app].machines[0].image, stagingImages[i])
  const rows = await sql<{ n: string }>(s.dbs.production, 'SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL')
  assert.is(Number(rows[0].n), 3)
  const ledger = await sql<{ operation: string; result: string }>(s.dbs.production, 'SELECT operation, result FROM microbima_deploy.ledger ORDER BY id')
  assert.equal(ledger.map((r) => `${r.operation}:${r.result}`), ['backup:ok', 'deploy:ok', 'deploy:ok', 'deploy:ok', 'migrate:ok'])
  // A second run promotes nothing: every production app already runs its staging image.
  s.sandbox.clearCalls()
  const again = await runMake('deploy-prod', { YES: '1' }, { env: s.env })
  assert.is(again.code, 0, again.output)
  assert.equal(argvs(s.sandbox.writes()).filter((a) => a[0] === 'deploy' || a[0] === 'volumes'), [])
  for (const [i, app] of PRODUCTION.entries()) assert.match(again.stdout, new RegExp(`${app}\\s+unchanged\\s+${stagingImages[i].replace(/[.]/g, '\\.')}`))
  await s.sandbox.close()
})

test('gate: a migration not applied on staging refuses production with exit 3 and no production write', async () => {
  const s = await scenario({ stagingDeployed: true })
  const project = projectCopy()
  addMigration(project, '20250301000000_add_claims', 'CREATE TABLE "Claim" ("id" TEXT NOT NULL PRIMARY KEY);\n', 'DROP TABLE "Claim";\n')
  const result = await runScript('deploy', ['production', '--yes'], { env: s.env, cwd: project })
  assert.is(result.code, 3, result.output)
  assert.match(result.stderr, 'refused: migration gate')
  assert.match(result.stderr, '20250301000000_add_claims: not applied on staging')
  assert.equal(productionWrites(s.sandbox.writes()), [])
  await s.sandbox.close()
})

test('gate: failed on staging, checksum differs, failed row and unknown migration on production', async () => {
  const s = await scenario({ stagingDeployed: true })
  await sql(s.dbs.staging, "UPDATE _prisma_migrations SET checksum = repeat('0', 64) WHERE migration_name = '20250115000000_add_customer_beneficiaries'")
  await sql(s.dbs.staging, "UPDATE _prisma_migrations SET finished_at = NULL, logs = 'P3018' WHERE migration_name = '20250201000000_add_premiums'")
  const prismaTable = (await sql<{ ddl: string }>(s.dbs.staging, "SELECT 'x' AS ddl"))
  void prismaTable
  await sql(s.dbs.production, `CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0);
    INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('a', repeat('1', 64), now(), '20240101000000_hotfix', 1);
    INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs) VALUES ('b', repeat('2', 64), NULL, '20250101000000_init', 'P3018')`)
  const result = await runScript('migrate', ['production', '--yes'], { env: s.env })
  assert.is(result.code, 3, result.output)
  for (const line of [
    '20250115000000_add_customer_beneficiaries: checksum differs from staging',
    '20250201000000_add_premiums: failed on staging',
    '20250101000000_init: failed row on production',
    '20240101000000_hotfix: applied on production but missing locally',
  ]) assert.match(result.stderr, line)
  assert.equal(productionWrites(s.sandbox.writes()), [])
  await s.sandbox.close()
})

test('the gate accepts a CRLF checkout of a migration staging applied with LF', async () => {
  const s = await scenario({ stagingDeployed: true })
  const project = projectCopy()
  const { readFileSync, writeFileSync } = await import('node:fs')
  const file = `${project}/prisma/migrations/20250101000000_init/migration.sql`
  writeFileSync(file, readFileSync(file, 'utf8').replace(/\n/g, '\r\n'))
  const result = await runScript('deploy', ['production', '--dry-run'], { env: s.env, cwd: project })
  assert.is(result.code, 0, result.output)
  assert.match(result.stderr, 'migration gate passed')
  await s.sandbox.close()
})

test('production without a terminal and without YES refuses with exit 3 before any change', async () => {
  const s = await scenario({ stagingDeployed: true })
  const result = await runMake('deploy-prod', {}, { env: s.env })
  assert.is(result.code, 2)
  assert.match(result.stderr, 'refused: deploy-production changes production and needs confirmation')
  assert.match(result.stderr, 'Error 3')
  assert.equal(productionWrites(s.sandbox.writes()), [])
  await s.sandbox.close()
})

test('lint refuses a destructive migration for production, lets it through with ALLOW_DESTRUCTIVE', async () => {
  const s = await scenario()
  const project = projectCopy()
  addMigration(project, '20250301000000_drop_dob', 'ALTER TABLE "Customer" DROP COLUMN "dateOfBirth";\n', 'ALTER TABLE "Customer" ADD COLUMN "dateOfBirth" TIMESTAMP(3);\n')
  const staging = await runScript('deploy', ['staging'], { env: s.env, cwd: project })
  assert.is(staging.code, 0, staging.output)
  assert.match(staging.stderr, 'ban-drop-column')
  const refused = await runScript('deploy', ['production', '--yes'], { env: s.env, cwd: project })
  assert.is(refused.code, 3, refused.output)
  assert.match(refused.stderr, 'refused: migration lint: destructive change in 20250301000000_drop_dob')
  assert.equal(productionWrites(s.sandbox.writes().filter((c) => c.argv[0] !== 'deploy' || c.argv.includes('microbima-production-internal-api'))), [])
  const allowed = await runScript('deploy', ['production', '--yes'], { env: { ...s.env, ALLOW_DESTRUCTIVE: '20250301000000_drop_dob' }, cwd: project })
  assert.is(allowed.code, 0, allowed.output)
  const cols = await sql(s.dbs.production, "SELECT column_name FROM information_schema.columns WHERE table_name = 'Customer' AND column_name = 'dateOfBirth'")
  assert.equal(cols, [])
  await s.sandbox.close()
})

test('a failed backup blocks the production migration unless SKIP_BACKUP=1', async () => {
  const s = await scenario({ stagingDeployed: true })
  s.sandbox.fault({ command: 'volumes', app: 'microbima-prod-db', kind: 'transient', times: 3 })
  const blocked = await runScript('migrate', ['production', '--yes'], { env: s.env })
  assert.is(blocked.code, 1, blocked.output)
  assert.match(blocked.stderr, 'the backup before the production migration failed, so nothing was migrated')
  assert.equal(s.sandbox.writes().filter((c) => c.argv[0] === 'ssh' || c.argv[0] === 'deploy'), [])
  s.sandbox.fault({ command: 'volumes', app: 'microbima-prod-db', kind: 'transient', times: 3 })
  const skipped = await runScript('deploy', ['production', '--yes'], { env: { ...s.env, SKIP_BACKUP: '1' } })
  assert.is(skipped.code, 0, skipped.output)
  assert.match(skipped.stderr, 'continuing WITHOUT a backup because SKIP_BACKUP=1')
  await s.sandbox.close()
})

test('two deploys to the same environment never interleave: the second waits, then refuses naming the holder', async () => {
  const s = await scenario({ sandbox: { latencyMs: { deploy: 1500 } } })
  const env = { ...s.env, LOCK_WAIT: '1' }
  const first = runScript('deploy', ['staging'], { env })
  await new Promise((r) => setTimeout(r, 1200))
  const second = await runScript('deploy', ['staging'], { env })
  assert.is(second.code, 3, second.output)
  assert.match(second.stderr, /refused: the staging deploy lock is held by .+ running deploy-staging since/)
  assert.is((await first).code, 0)
  const deploys = s.sandbox.writes().filter((c) => c.argv[0] === 'deploy')
  assert.is(deploys.length, 3)
  // Another environment is not blocked by it.
  await s.sandbox.close()
})

test.run()
