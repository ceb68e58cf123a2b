import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { argvs, type Call } from '../scripts/sandbox/sandbox.ts'
import { sql } from './support/pg.ts'
import { LABEL, PRODUCTION, SHOWN_LABEL, STAGING, rolledOut, scenario } from './support/scenario.ts'
import { MIGRATIONS, addMigration, projectCopy, runMake, runScript, tempDir } from './support/toolkit.ts'

// make deploy-prod: the migration gate (local migrations and the ones the promoted images carry,
// against staging), confirmation, git, plan and lock rules, the backup, and the promotion of the
// images staging runs, unchanged.

const KEYS = ['internal-api', 'public-api', 'web-admin']
const touchesProduction = (calls: Call[]) => calls.filter((c) => c.argv.some((a) => a.startsWith('microbima-production') || a === 'microbima-prod-db'))
const images = (s: Awaited<ReturnType<typeof scenario>>, app: string) => s.sandbox.state().apps[app].machines.map((m) => m.image)
const NEW = '20250301000000_add_claims'

test('deploy-prod promotes the exact images staging runs (interface argv), backs up first, migrates (release command); a second run changes nothing', async () => {
  const s = await scenario({ stagingDeployed: true })
  const staged = STAGING.map((app) => images(s, app)[0])
  const result = await runMake('deploy-prod', { YES: '1' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  const volume = Object.values(s.sandbox.state().volumes).find((v) => v.app === 'microbima-prod-db')!.id
  assert.equal(argvs(s.sandbox.writes()), [
    ['volumes', 'snapshots', 'create', volume, '--app', 'microbima-prod-db'],
    ...PRODUCTION.map((app, i) => ['deploy', '--app', app, '--config', `infra/fly/${KEYS[i]}-prod/fly.toml`, '--image', staged[i], '--deploy-retries', '0']),
  ])
  // The release command of the promoted internal API image applied the migrations.
  assert.match(result.stderr, 'on production: no ssh session needed')
  // Byte for byte: every production machine runs the staging app's image reference.
  for (const [i, app] of PRODUCTION.entries()) assert.equal(images(s, app), [staged[i], staged[i]], app)
  for (const [i, ref] of staged.entries()) assert.match(ref, new RegExp(`^registry\\.fly\\.io/${STAGING[i]}:${LABEL.source}$`))
  const rows = await sql<{ n: string }>(s.dbs.production, 'SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL')
  assert.is(Number(rows[0].n), 3)
  const ledger = await sql<{ operation: string; result: string }>(s.dbs.production, 'SELECT operation, result FROM microbima_deploy.ledger ORDER BY id')
  assert.equal(ledger.map((r) => `${r.operation}:${r.result}`), ['backup:ok', 'deploy:ok', 'deploy:ok', 'deploy:ok', 'migrate:ok'])

  s.sandbox.clearCalls()
  const again = await runMake('deploy-prod', { YES: '1' }, { env: s.env })
  assert.is(again.code, 0, again.output)
  assert.equal(argvs(s.sandbox.writes()), [])
  for (const app of PRODUCTION) assert.match(again.stdout, new RegExp(`^${app.replace(/^microbima-(staging|production)-/, '')}\\s+unchanged`, 'm'))
  assert.match(again.stderr, 'no pending migrations on production')
  await s.sandbox.close()
})

test('gate: a migration not applied on staging refuses production with exit 3 and no production call that writes', async () => {
  const s = await scenario({ stagingDeployed: true })
  const project = projectCopy()
  addMigration(project, NEW, 'CREATE TABLE "Claim" ("id" TEXT NOT NULL PRIMARY KEY);\n', 'DROP TABLE "Claim";\n')
  const result = await runScript('deploy', ['production', '--yes'], { env: s.env, cwd: project })
  assert.is(result.code, 3, result.output)
  assert.match(result.stderr, 'refused: migration gate')
  assert.match(result.stderr, `${NEW}: not applied on staging`)
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('gate: failed on staging, checksum differs, failed row and unknown migration on production, each named', async () => {
  const s = await scenario({ stagingDeployed: true })
  await sql(s.dbs.staging, "UPDATE _prisma_migrations SET checksum = repeat('0', 64) WHERE migration_name = '20250115000000_add_customer_beneficiaries'")
  await sql(s.dbs.staging, "UPDATE _prisma_migrations SET finished_at = NULL, logs = 'P3018' WHERE migration_name = '20250201000000_add_premiums'")
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
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('the gate follows the images: staging rolled back to an image that does not carry a migration it applied refuses (exit 3)', async () => {
  const s = await scenario({ stagingDeployed: true })
  const project = projectCopy()
  addMigration(project, NEW, 'CREATE TABLE "Claim" ("id" TEXT NOT NULL PRIMARY KEY);\n', 'DROP TABLE "Claim";\n')
  const older = images(s, STAGING[0])[0]
  assert.is((await runScript('deploy', ['staging', '--app', 'internal-api'], { env: s.env, cwd: project })).code, 0)
  const back = await runScript('rollback', ['staging', '--app', 'internal-api'], { env: s.env, cwd: project })
  assert.is(back.code, 0, back.output)
  assert.equal(images(s, STAGING[0]), [older, older])
  s.sandbox.clearCalls()
  // Staging's database has the migration; the image production would receive does not carry it.
  const result = await runScript('deploy', ['production', '--yes'], { env: s.env, cwd: project })
  assert.is(result.code, 3, result.output)
  assert.match(result.stderr, new RegExp(`${NEW}: applied on staging, but staging's running image …:${SHOWN_LABEL.source} does not carry it`))
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('the gate accepts a CRLF checkout of a migration staging applied with LF', async () => {
  const s = await scenario({ stagingDeployed: true })
  const project = projectCopy()
  const file = join(project, MIGRATIONS, '20250101000000_init', 'migration.sql')
  writeFileSync(file, readFileSync(file, 'utf8').replace(/\n/g, '\r\n'))
  const result = await runScript('deploy', ['production', '--dry-run'], { env: s.env, cwd: project })
  assert.is(result.code, 0, result.output)
  assert.match(result.stderr, 'migration gate passed')
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('confirmation: no terminal and no YES refuses (exit 3); a YES exported in the shell does not count; only the command line does', async () => {
  const s = await scenario({ stagingDeployed: true })
  const refused = await runMake('deploy-prod', {}, { env: s.env })
  assert.is(refused.code, 2)
  assert.match(refused.stderr, 'refused: make deploy-prod changes production and needs confirmation')
  assert.match(refused.stderr, /Error 3$/m)
  const exported = await runMake('deploy-prod', {}, { env: { ...s.env, YES: '1' } })
  assert.match(exported.stderr, /Error 3$/m, exported.output)
  assert.equal(touchesProduction(s.sandbox.writes()), [])
  await s.sandbox.close()
})

test('git: production refuses another branch or a dirty tree (exit 3, after configuration errors, exit 2); ALLOW_DIRTY=1 lets it through', async () => {
  const s = await scenario({ stagingDeployed: true })
  const project = projectCopy()
  const git = (...args: string[]) => execFileSync('git', args, { cwd: project, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } })
  git('init', '-q', '-b', 'feature')
  git('add', '-A')
  git('commit', '-q', '-m', 'sample')
  const env = { ...s.env, ALLOW_DIRTY: undefined }
  const branch = await runScript('deploy', ['production', '--yes'], { env, cwd: project })
  assert.is(branch.code, 3, branch.output)
  assert.match(branch.stderr, 'refused: production deploys a clean main branch: this is branch feature, not main')
  git('checkout', '-q', '-b', 'main')
  writeFileSync(join(project, 'infra/fly/web-admin-prod/fly.toml'), readFileSync(join(project, 'infra/fly/web-admin-prod/fly.toml'), 'utf8') + '\n# edited\n')
  const dirty = await runScript('deploy', ['production', '--yes'], { env, cwd: project })
  assert.is(dirty.code, 3, dirty.output)
  assert.match(dirty.stderr, 'the working tree has 1 uncommitted or untracked file (infra/fly/web-admin-prod/fly.toml)')
  // An untracked file (not ignored) makes the tree dirty too: a build would take it.
  git('checkout', '-q', '--', 'infra/fly/web-admin-prod/fly.toml')
  writeFileSync(join(project, 'notes.txt'), 'a stray file\n')
  writeFileSync(join(project, 'debug.patch'), 'a stray patch\n')
  const untracked = await runScript('deploy', ['production', '--yes'], { env, cwd: project })
  assert.is(untracked.code, 3, untracked.output)
  assert.match(untracked.stderr, 'the working tree has 2 uncommitted or untracked files (debug.patch, notes.txt)')
  rmSync(join(project, 'notes.txt'))
  rmSync(join(project, 'debug.patch'))
  writeFileSync(join(project, 'infra/fly/web-admin-prod/fly.toml'), readFileSync(join(project, 'infra/fly/web-admin-prod/fly.toml'), 'utf8') + '\n# edited\n')
  // A configuration error is reported first, with its own exit code.
  const bad = await runScript('deploy', ['production', '--yes'], { env: { ...env, ENV_DIR: tempDir('mb-empty-') }, cwd: project })
  assert.is(bad.code, 2, bad.output)
  assert.equal(s.sandbox.writes(), [])
  const allowed = await runScript('deploy', ['production', '--dry-run'], { env: { ...env, ALLOW_DIRTY: '1' }, cwd: project })
  assert.is(allowed.code, 0, allowed.output)
  assert.match(allowed.stderr, 'a deploy would go on anyway (ALLOW_DIRTY=1)')
  await s.sandbox.close()
})

test('PLAN_OUT writes the plan of a dry run; PLAN= deploys only what was approved and refuses (exit 3) once staging moved', async () => {
  const s = await scenario({ stagingDeployed: true })
  const plan = join(tempDir('mb-plan-'), 'plan.json')
  const misuse = await runMake('deploy-prod', { YES: '1', PLAN_OUT: plan }, { env: s.env })
  assert.match(misuse.stderr, 'error: PLAN_OUT= writes the plan of a dry run: add DRY_RUN=1')
  assert.match(misuse.stderr, /Error 2$/m)
  const dry = await runMake('deploy-prod', { DRY_RUN: '1', PLAN_OUT: plan }, { env: s.env })
  assert.is(dry.code, 0, dry.output)
  const written = JSON.parse(readFileSync(plan, 'utf8'))
  assert.equal(Object.keys(written.images), KEYS)
  for (const [i, key] of KEYS.entries()) assert.equal(written.images[key], { running: null, deploy: images(s, STAGING[i])[0] })
  assert.equal(written.migrations.map((m: { name: string }) => m.name), ['20250101000000_init', '20250115000000_add_customer_beneficiaries', '20250201000000_add_premiums'])
  assert.equal(s.sandbox.writes(), [])
  // Staging gets a new web admin after the approval: the plan no longer holds.
  assert.is((await runScript('deploy', ['staging', '--app', 'web-admin'], { env: s.env })).code, 0)
  s.sandbox.clearCalls()
  const moved = await runMake('deploy-prod', { YES: '1', PLAN: plan }, { env: s.env })
  assert.match(moved.stderr, 'refused: what this deploy would do differs from the approved plan: nothing was changed')
  assert.match(moved.stderr, new RegExp(`web-admin: approved registry\\.fly\\.io/microbima-staging-web-admin:${LABEL.source}, would now deploy registry\\.fly\\.io/microbima-staging-web-admin:${LABEL.source}`))
  assert.match(moved.stderr, /Error 3$/m)
  assert.equal(s.sandbox.writes(), [])
  const fresh = await runMake('deploy-prod', { DRY_RUN: '1', PLAN_OUT: plan }, { env: s.env })
  assert.is(fresh.code, 0, fresh.output)
  const approved = await runMake('deploy-prod', { YES: '1', PLAN: plan }, { env: s.env })
  assert.is(approved.code, 0, approved.output)
  await s.sandbox.close()
})

test('lock-prod REASON= holds production: deploy-prod refuses (exit 3) naming who and why until unlock-prod', async () => {
  const s = await scenario({ stagingDeployed: true })
  const lock = await runMake('lock-prod', { REASON: 'incident 42: payments failing', YES: '1' }, { env: s.env })
  assert.is(lock.code, 0, lock.output)
  const refused = await runMake('deploy-prod', { YES: '1' }, { env: s.env })
  assert.match(refused.stderr, /refused: the production deploy lock is held by .+, holding it since .+: incident 42: payments failing/)
  assert.match(refused.stderr, /Error 3$/m)
  assert.equal(touchesProduction(s.sandbox.writes()), [])
  const status = await runMake('lock-status-prod', {}, { env: s.env })
  assert.match(status.stdout, 'incident 42: payments failing')
  assert.is((await runMake('unlock-prod', { YES: '1' }, { env: s.env })).code, 0)
  const deployed = await runMake('deploy-prod', { YES: '1' }, { env: s.env })
  assert.is(deployed.code, 0, deployed.output)
  await s.sandbox.close()
})

test('IMAGE= that no release used is bad usage (exit 2) before the backup or any deploy', async () => {
  const s = await scenario({ stagingDeployed: true })
  const result = await runMake('deploy-prod', { YES: '1', APP: 'web-admin', IMAGE: 'registry.fly.io/microbima-staging-web-admin:deployment-NOPE' }, { env: s.env })
  assert.match(result.stderr, 'error: IMAGE=registry.fly.io/microbima-staging-web-admin:deployment-NOPE is not the image of any release of microbima-production-web-admin or microbima-staging-web-admin')
  assert.match(result.stderr, /Error 2$/m)
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('lint refuses a destructive migration for production, lets it through with ALLOW_DESTRUCTIVE', async () => {
  const s = await scenario()
  const project = projectCopy()
  addMigration(project, '20250301000000_drop_dob', 'ALTER TABLE "Customer" DROP COLUMN "dateOfBirth";\n', 'ALTER TABLE "Customer" ADD COLUMN "dateOfBirth" TIMESTAMP(3);\n')
  const staging = await runScript('deploy', ['staging'], { env: s.env, cwd: project })
  assert.is(staging.code, 0, staging.output)
  assert.match(staging.stderr, 'ban-drop-column')
  s.sandbox.clearCalls()
  const refused = await runScript('deploy', ['production', '--yes'], { env: s.env, cwd: project })
  assert.is(refused.code, 3, refused.output)
  assert.match(refused.stderr, 'refused: migration lint: destructive change in 20250301000000_drop_dob')
  assert.equal(s.sandbox.writes(), [])
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
  const [entry] = await sql<{ operation: string; result: string }>(s.dbs.production, 'SELECT operation, result FROM microbima_deploy.ledger ORDER BY id DESC LIMIT 1')
  assert.equal(entry, { operation: 'backup', result: 'failed' })
  s.sandbox.fault({ command: 'volumes', app: 'microbima-prod-db', kind: 'transient', times: 3 })
  const skipped = await runScript('deploy', ['production', '--yes'], { env: { ...s.env, SKIP_BACKUP: '1' } })
  assert.is(skipped.code, 0, skipped.output)
  assert.match(skipped.stderr, 'continuing WITHOUT a backup because SKIP_BACKUP=1')
  await s.sandbox.close()
})

test('a snapshot counts once it is created: deploy-prod waits for it with progress lines; one that fails, or never completes within BACKUP_TIMEOUT, stops the run before any deploy or migration', async () => {
  // New snapshots stay pending 1.5 s here (300 s before the scenario's timeScale).
  const s = await scenario({ stagingDeployed: true, sandbox: { snapshotMs: 300_000 } })
  const volume = Object.values(s.sandbox.state().volumes).find((v) => v.app === 'microbima-prod-db')!.id
  const productionMigrations = async () => (await sql<{ t: string | null }>(s.dbs.production, "SELECT to_regclass('_prisma_migrations')::text AS t"))[0].t
  const blocked = 'the backup before the production migration failed, so nothing was migrated: '

  s.sandbox.fault({ command: 'volumes snapshots create', kind: 'snapshot-stuck', times: 1 })
  const stuck = await runScript('deploy', ['production', '--yes'], { env: { ...s.env, BACKUP_TIMEOUT: '2' } })
  assert.is(stuck.code, 1, stuck.output)
  assert.match(stuck.stderr, `${blocked}the snapshot of ${volume} did not complete within 2s (last seen: running)`)
  assert.match(stuck.stderr, 'raise BACKUP_TIMEOUT')
  assert.equal(argvs(s.sandbox.writes()), [['volumes', 'snapshots', 'create', volume, '--app', 'microbima-prod-db']])
  assert.is(await productionMigrations(), null)

  s.sandbox.clearCalls()
  s.sandbox.fault({ command: 'volumes snapshots create', kind: 'snapshot-fail', times: 1 })
  const failed = await runScript('deploy', ['production', '--yes'], { env: s.env })
  assert.is(failed.code, 1, failed.output)
  assert.match(failed.stderr, `${blocked}the snapshot of ${volume} failed: flyctl volumes snapshots list ${volume} shows it failed`)
  assert.equal(argvs(s.sandbox.writes()), [['volumes', 'snapshots', 'create', volume, '--app', 'microbima-prod-db']])
  assert.is(await productionMigrations(), null)
  const ledger = await sql<{ result: string }>(s.dbs.production, "SELECT result FROM microbima_deploy.ledger WHERE operation = 'backup' ORDER BY id")
  assert.equal(ledger.map((r) => r.result), ['failed', 'failed'])

  s.sandbox.clearCalls()
  const result = await runScript('deploy', ['production', '--yes'], { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.match(result.stderr, new RegExp(`waiting for snapshot of ${volume}: (waiting|running)(, (waiting|running))? \\(\\d+ s of 900 s\\)`))
  const snapshot = s.sandbox.state().volumes[volume].snapshots.at(-1)!
  assert.is(snapshot.status, 'created')
  assert.match(result.stderr, `volume snapshot of microbima-prod-db created: ${snapshot.id} of ${volume}`)
  // Nothing was deployed (so nothing migrated) before the snapshot was created.
  const firstDeploy = s.sandbox.calls().find((c) => c.argv[0] === 'deploy')!
  assert.ok(snapshot.readyAt <= firstDeploy.t, `snapshot created at ${snapshot.readyAt}, first deploy at ${firstDeploy.t}`)
  const [entry] = await sql<{ result: string; detail: string }>(s.dbs.production, "SELECT result, detail FROM microbima_deploy.ledger WHERE operation = 'backup' ORDER BY id DESC LIMIT 1")
  assert.is(entry.result, 'ok')
  assert.match(entry.detail, snapshot.id)
  await s.sandbox.close()
})

test('two deploys to the same environment never interleave: the second waits, then refuses naming the holder', async () => {
  const s = await scenario({ sandbox: { latencyMs: { deploy: 1500 } } })
  const env = { ...s.env, LOCK_WAIT: '1' }
  const first = runScript('deploy', ['staging'], { env })
  // Wait for the first to hold the lock (not for a fixed time: a loaded machine is slower).
  const held = async () => (await sql<{ n: string }>(s.dbs.staging, "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'microbima_deploy' AND table_name = 'deploy_lock'"))[0].n !== '0' && (await sql<{ n: string }>(s.dbs.staging, 'SELECT count(*) AS n FROM microbima_deploy.deploy_lock WHERE expires_at > now()'))[0].n !== '0'
  for (let i = 0; i < 300 && !(await held()); i++) await new Promise((r) => setTimeout(r, 100))
  const second = await runScript('deploy', ['staging'], { env })
  assert.is(second.code, 3, second.output)
  assert.match(second.stderr, /refused: the staging deploy lock is held by .+ running deploy-staging since/)
  const firstResult = await first
  assert.is(firstResult.code, 0, firstResult.output)
  assert.is(rolledOut(s.sandbox.writes()).length, 3)
  await s.sandbox.close()
})

test.run()
