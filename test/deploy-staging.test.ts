import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import { sql } from './support/pg.ts'
import { LABEL, SHOWN_LABEL, STAGING, addMachine, buildArgv, labelOf, rolloutArgv, scenario } from './support/scenario.ts'
import { SECRET, addMigration, projectCopy, runMake, runScript, tempDir } from './support/toolkit.ts'

// make deploy-staging against the simulator's model of Fly: fleets of machines, rolling updates
// that stop half-way, auto-stopped machines, private networking, secrets versions.

const MIGRATIONS = ['20250101000000_init', '20250115000000_add_customer_beneficiaries', '20250201000000_add_premiums']
const KEYS = ['internal-api', 'public-api', 'web-admin'] as const
const images = (s: Awaited<ReturnType<typeof scenario>>, app: string) => s.sandbox.state().apps[app].machines.map((m) => m.image)

test('make deploy-staging: secrets sync, the three builds together, then the rollouts in order, migrations, health; exact flyctl writes', async () => {
  const s = await scenario()
  const result = await runMake('deploy-staging', {}, { env: s.env })
  assert.is(result.code, 0, result.output)
  const writes = argvs(s.sandbox.writes()).filter((a) => a[0] !== 'secrets' || a[1] !== 'sync')
  const label = labelOf(s.sandbox.calls())
  assert.match(label, new RegExp(`^${LABEL.source}$`))
  // Build first, all three at once (in any order), then roll out in the document's order; the
  // internal API's release command applied the migrations: no ssh session is needed after it.
  assert.equal(writes.slice(0, 3).sort(), KEYS.map((key) => buildArgv('staging', key, label)).sort())
  assert.equal(writes.slice(3), KEYS.map((key, i) => rolloutArgv('staging', key, `registry.fly.io/${STAGING[i]}:${label}`)))
  const builds = s.sandbox.calls().filter((c) => c.argv.includes('--build-only'))
  assert.ok(Math.max(...builds.map((c) => c.t)) < Math.min(...s.sandbox.calls().filter((c) => c.argv.includes('--image')).map((c) => c.t)), 'every build starts before the first rollout')
  assert.match(result.stderr, `the release command applied ${MIGRATIONS.join(', ')} on staging: no ssh session needed`)
  // Each app's latest secrets version is learnt before its deploy, one sync at a time (fly-platform.md §6).
  const calls = argvs(s.sandbox.calls()).map((a) => a.join(' '))
  const syncs = calls.filter((c) => c.startsWith('secrets sync'))
  assert.equal(syncs, STAGING.map((app) => `secrets sync --app ${app}`))
  for (const app of STAGING) assert.ok(calls.indexOf(`secrets sync --app ${app}`) < calls.findIndex((c) => c.startsWith('deploy ') && c.includes(` ${app} `)), app)
  const rows = await sql<{ migration_name: string; finished_at: Date | null; applied_steps_count: number }>(s.dbs.staging, 'SELECT migration_name, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name')
  assert.equal(rows.map((r) => [r.migration_name, r.finished_at !== null, r.applied_steps_count]), MIGRATIONS.map((m) => [m, true, 1]))
  assert.equal(await sql(s.dbs.production, "SELECT to_regclass('_prisma_migrations') AS t"), [{ t: null }])
  // A first deploy of an app with services makes two machines, all on the new image.
  for (const app of STAGING) {
    const machines = s.sandbox.state().apps[app].machines
    assert.is(machines.length, 2, app)
    assert.is(new Set(machines.map((m) => m.image)).size, 1, app)
    assert.match(result.stdout, new RegExp(`^${app.replace(/^microbima-(staging|production)-/, '')}\\s+deployed\\s+no machines\\s+…:${SHOWN_LABEL.source}\\s+2 machines: 2 started`, 'm'))
  }
  // The internal API stays private: a Flycast address only. The public apps got public IPs.
  assert.equal(s.sandbox.state().apps[STAGING[0]].ips.map((ip) => ip.Type), ['private_v6'])
  for (const app of STAGING.slice(1)) assert.ok(s.sandbox.state().apps[app].ips.some((ip) => ip.Type === 'shared_v4'), app)
  // flyctl's progress is streamed under its step, indented.
  assert.match(result.stderr, /^ {2}microbima-staging-internal-api +step \d+\/\d+: /m)
  assert.match(result.stderr, /^ {4}│ Running microbima-staging-internal-api release_command: sh -c 'cd \/app && npx prisma migrate deploy'/m)
  for (const line of result.stdout.split('\n')) assert.ok([...line.replace(/\x1b\[[0-9;]*m/g, '')].length <= 120, `wider than 120 columns: ${line}`)
  await s.sandbox.close()
})

test('in GitHub Actions the summary tables go to the run summary as Markdown, secrets masked', async () => {
  const s = await scenario()
  const summary = join(tempDir('mb-summary-'), 'summary.md')
  const result = await runScript('deploy', ['staging'], { env: { ...s.env, GITHUB_STEP_SUMMARY: summary } })
  assert.is(result.code, 0, result.output)
  const markdown = readFileSync(summary, 'utf8')
  assert.match(markdown, /^#### deploy staging \(/m)
  assert.match(markdown, '| step | result | time | detail |')
  for (const key of KEYS) assert.match(markdown, new RegExp(`^\\| ${key} \\| deployed \\| no machines \\| …:${SHOWN_LABEL.source} \\|`, 'm'))
  assert.not.match(markdown, '\x1b[')
  for (const secret of Object.values(SECRET)) assert.not.match(markdown, secret)
  // The second run finds every migration applied; a deploy changes nothing it should not.
  const second = await runScript('deploy', ['staging'], { env: s.env })
  assert.is(second.code, 0, second.output)
  assert.match(second.stderr, 'no pending migrations on staging')
  const [{ count }] = await sql<{ count: string }>(s.dbs.staging, 'SELECT count(*) FROM _prisma_migrations')
  assert.is(Number(count), 3)
  for (const app of STAGING) assert.is(s.sandbox.state().apps[app].machines.length, 2, 'later deploys keep the machine count')
  await s.sandbox.close()
})

test('a failed deploy of the second app stops the pipeline with exit 1 and says what was deployed', async () => {
  const s = await scenario()
  s.sandbox.fault({ command: 'deploy', app: STAGING[1], kind: 'fail', times: 1 })
  const result = await runMake('deploy-staging', {}, { env: s.env })
  assert.is(result.code, 2)
  assert.match(result.stderr, /make: \*\*\* \[Makefile:\d+: deploy-staging\] Error 1/)
  assert.equal(argvs(s.sandbox.writes()).filter((a) => a[0] === 'deploy' && !a.includes('--build-only')).map((a) => a.slice(0, 5).join(' ')), [
    `deploy --app ${STAGING[0]} --config infra/fly/internal-api-staging/fly.toml`,
    `deploy --app ${STAGING[1]} --config infra/fly/public-api-staging/fly.toml`,
  ])
  assert.match(result.stdout, new RegExp(`^${STAGING[0].replace(/^microbima-(staging|production)-/, '')}\\s+deployed`, 'm'))
  assert.match(result.stdout, new RegExp(`^${STAGING[1].replace(/^microbima-(staging|production)-/, '')}\\s+failed`, 'm'))
  assert.match(result.stdout, new RegExp(`^${STAGING[2].replace(/^microbima-(staging|production)-/, '')}\\s+not deployed`, 'm'))
  await s.sandbox.close()
})

test('health judges the fleet as Fly does: 2 machines with 1 auto-stopped is healthy (exit 0); a deploy over it updates the stopped one in place and rolls nothing back', async () => {
  const s = await scenario({ stagingDeployed: true })
  const app = STAGING[2] // web-admin: auto_stop_machines = "stop", min_machines_running = 1
  s.sandbox.idle()
  assert.equal(s.sandbox.state().apps[app].machines.map((m) => m.state).sort(), ['started', 'stopped'])
  const health = await runMake('health-staging', { APP: 'web-admin' }, { env: s.env })
  assert.is(health.code, 0, health.output)
  assert.match(health.stdout, new RegExp(`${app}\\s+healthy\\s+2 machines: 1 started, 1 auto-stopped`))
  s.sandbox.clearCalls()
  const deploy = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: s.env })
  assert.is(deploy.code, 0, deploy.output)
  const machines = s.sandbox.state().apps[app].machines
  assert.is(new Set(machines.map((m) => m.image)).size, 1, 'the stopped machine got the new image too')
  assert.ok(machines.some((m) => m.state === 'stopped'), 'a deploy does not start stopped machines')
  assert.not.ok(argvs(s.sandbox.writes()).some((a) => a.includes('--skip-release-command')), 'no rollback')
  assert.match(deploy.stdout.replace(/\s+/g, ' '), new RegExp(`web-admin deployed …:${SHOWN_LABEL.source} …:${SHOWN_LABEL.source} 2 machines: 1 started, 1 auto-stopped`), deploy.stdout)
  // Fewer running machines than min_machines_running is a warning naming the machine to start, not
  // a failure (corrected in the third round: Fly never guarantees them); the probe wakes one.
  s.sandbox.update((state) => state.apps[app].machines.forEach((m) => (m.state = 'stopped')))
  const down = await runScript('health', ['staging', '--app', 'web-admin'], { env: { ...s.env, HEALTH_TIMEOUT: '0' } })
  assert.is(down.code, 0, down.output)
  assert.match(down.stderr.replace(/\s+/g, ' '), new RegExp(`${app}: 0 of 2 machines in jnb started, fewer than min_machines_running = 1; fix: flyctl machine start \\w{14} --app ${app}`), down.output)
  assert.match(down.stdout.replace(/\s+/g, ' '), `${app} healthy 2 machines: 0 started, 2 auto-stopped`)
  await s.sandbox.close()
})

test('a rolling deploy that fails half-way on 3 machines leaves a mixed fleet; the toolkit puts all 3 back on the old image (exit 1)', async () => {
  const s = await scenario({ stagingDeployed: true })
  const app = STAGING[1]
  addMachine(s, app)
  const old = images(s, app)[0]
  s.sandbox.clearCalls()
  s.sandbox.fault({ command: 'deploy', app, kind: 'unhealthy', afterMachines: 1, times: 1 })
  // VERBOSE=1: the summary's full values, one line each.
  const result = await runScript('deploy', ['staging', '--app', 'public-api'], { env: { ...s.env, MB_VERBOSE: '1' } })
  assert.is(result.code, 1, result.output)
  // flyctl stopped at the machine that failed its checks and rolled nothing back…
  assert.match(result.stderr, /timeout reached waiting for health checks to pass for machine \w+/)
  // …and the toolkit put every machine back on the image they all ran before.
  const deploys = argvs(s.sandbox.writes()).filter((a) => a[0] === 'deploy')
  assert.equal(deploys.at(-1), ['deploy', '--app', app, '--config', 'infra/fly/public-api-staging/fly.toml', '--image', old, '--skip-release-command', '--deploy-retries', '0'])
  assert.equal(images(s, app), [old, old, old])
  assert.match(result.stdout, new RegExp(`^${app.replace(/^microbima-(staging|production)-/, '')}\\s+rolled back`, 'm'))
  // The summary says how many machines were on which image, and what runs now.
  const tag = `(registry\\.fly\\.io/${app}:\\S+?)`
  const was = new RegExp(`was (\\d) on ${tag}, (\\d) on ${tag}; now 3 on ${tag}, healthy`).exec(result.stdout.replace(/\s+/g, ' '))
  assert.ok(was, result.stdout)
  assert.equal([was![1], was![3]].sort(), ['1', '2'])
  assert.is(was![was![1] === '1' ? 2 : 4], was![5], 'one machine had kept the old image, and all three run it now')
  assert.match(result.stdout.replace(/\s+/g, ' '), new RegExp(`deploy ${app} failed \\S+ machine \\w+ failed its health checks; flyctl stopped the rolling deploy there`), result.stdout)
  await s.sandbox.close()
})

test('an app unhealthy after its deploy shows the evidence (failing probe, its body, the app\'s last logs) and is rolled back on every machine', async () => {
  const s = await scenario({ stagingDeployed: true })
  const app = STAGING[2]
  const old = images(s, app)[0]
  s.sandbox.clearCalls()
  s.sandbox.fault({ command: 'deploy', app, kind: 'http-5xx', times: 1 })
  const result = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: { ...s.env, HEALTH_TIMEOUT: '2' } })
  assert.is(result.code, 1, result.output)
  assert.match(result.stderr, /│ probe: GET http:\/\/127\.0\.0\.1:\d+\/microbima-staging-web-admin\/health: 503 in \d+ms: \{"status":"unavailable"\}/)
  assert.match(result.stderr, /│ log: .*listening on 0\.0\.0\.0:3000/)
  assert.equal(argvs(s.sandbox.writes()).at(-1), ['deploy', '--app', app, '--config', 'infra/fly/web-admin-staging/fly.toml', '--image', old, '--skip-release-command', '--deploy-retries', '0'])
  assert.equal(images(s, app), [old, old])
  assert.match(result.stdout, new RegExp(`health ${app}\\s+unhealthy`))
  assert.match(result.stdout, new RegExp(`^${app.replace(/^microbima-(staging|production)-/, '')}\\s+rolled back`, 'm'))
  await s.sandbox.close()
})

test('a deploy whose migration ran but whose app failed is rolled back, and the summary says the migration stayed applied', async () => {
  const s = await scenario({ stagingDeployed: true })
  const project = projectCopy()
  const NEW = '20250301000000_add_claims'
  addMigration(project, NEW, 'CREATE TABLE "Claim" ("id" TEXT NOT NULL PRIMARY KEY);\n', 'DROP TABLE "Claim";\n')
  const old = images(s, STAGING[0])[0]
  // The release command applies the migration; then the first new machine fails its checks.
  s.sandbox.fault({ command: 'deploy', app: STAGING[0], kind: 'unhealthy', afterMachines: 0, times: 1 })
  const result = await runScript('deploy', ['staging', '--app', 'internal-api'], { env: s.env, cwd: project })
  assert.is(result.code, 1, result.output)
  assert.equal(images(s, STAGING[0]), [old, old])
  const [row] = await sql<{ finished: boolean }>(s.dbs.staging, `SELECT finished_at IS NOT NULL AS finished FROM _prisma_migrations WHERE migration_name = '${NEW}'`)
  assert.equal(row, { finished: true })
  assert.match(result.stdout.replace(/\s+/g, ' '), `migration ${NEW} stayed applied (make rollback-migration-staging NAME=… undoes one)`)
  await s.sandbox.close()
})

test('flyctl exiting 0 without changing the machines is not reported as deployed', async () => {
  const s = await scenario({ stagingDeployed: true })
  const app = STAGING[2]
  s.sandbox.fault({ command: 'deploy', app, kind: 'no-op', times: 1 })
  const result = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: { ...s.env, HEALTH_TIMEOUT: '1' } })
  assert.is(result.code, 1, result.output)
  assert.not.match(result.stdout, new RegExp(`^${app.replace(/^microbima-(staging|production)-/, '')}\\s+deployed`, 'm'))
  assert.match(result.output, new RegExp(`2 machines run …:${SHOWN_LABEL.source}, not …:${SHOWN_LABEL.source}`))
  await s.sandbox.close()
})

test('the internal API is made private before its deploy: public IPs released, a Flycast address allocated', async () => {
  const s = await scenario()
  s.sandbox.update((state) => {
    state.apps[STAGING[0]].ips = []
  })
  // A first deploy without a Flycast address would have given the app public IPs: it gets none.
  const result = await runScript('deploy', ['staging', '--app', 'internal-api'], { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.equal(argvs(s.sandbox.writes()).filter((a) => a[0] === 'ips'), [['ips', 'allocate-v6', '--private', '--app', STAGING[0]]])
  assert.equal(s.sandbox.state().apps[STAGING[0]].ips.map((ip) => ip.Type), ['private_v6'])
  await s.sandbox.close()
})

test('secrets set on a laptop reach machines deployed from a fresh CI runner (flyctl secrets sync)', async () => {
  const s = await scenario({ stagingDeployed: true })
  const app = STAGING[2]
  const laptop = { FLY_CONFIG_DIR: tempDir('mb-laptop-') }
  const set = await s.sandbox.fly(['secrets', 'import', '--app', app, '--stage'], "SESSION_SECRET='rotated-on-the-laptop-1'\n", laptop)
  assert.is(set.code, 0, set.output)
  const version = s.sandbox.state().apps[app].secretsVersion
  const ci = { ...s.env, FLY_CONFIG_DIR: tempDir('mb-runner-') }
  const result = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: ci })
  assert.is(result.code, 0, result.output)
  for (const m of s.sandbox.state().apps[app].machines) assert.ok(m.secretsVersion >= version, `machine ${m.id} runs secrets version ${m.secretsVersion}, older than ${version}`)
  await s.sandbox.close()
})

test('a remote migration failure fails the step with the real status; a dropped session is unknown, never "failed"', async () => {
  const s = await scenario({ stagingDeployed: true })
  s.sandbox.fault({ command: 'ssh', app: STAGING[0], kind: 'remote-fail', times: 1 })
  const failed = await runScript('migrate', ['staging'], { env: s.env })
  assert.is(failed.code, 1, failed.output)
  assert.match(failed.stderr, `prisma migrate deploy failed on ${STAGING[0]} with status 1`)
  s.sandbox.fault({ command: 'ssh', app: STAGING[0], kind: 'ssh-dropped', times: 1 })
  const dropped = await runScript('migrate', ['staging'], { env: s.env })
  assert.is(dropped.code, 1, dropped.output)
  assert.match(dropped.stderr, 'the ssh session ended without an exit status')
  assert.match(dropped.stderr, 'the outcome is unknown and it may still be running')
  assert.not.match(dropped.output, /rollback-migration/)
  const [entry] = await sql<{ result: string }>(s.dbs.staging, "SELECT result FROM microbima_deploy.ledger WHERE operation = 'migrate' ORDER BY id DESC LIMIT 1")
  assert.is(entry.result, 'unknown')
  await s.sandbox.close()
})

test('dry run issues no write and prints the commands it would run', async () => {
  const s = await scenario()
  const result = await runMake('deploy-staging', { DRY_RUN: '1' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.equal(s.sandbox.writes(), [])
  // The builds, marked as run together, then the rollouts: commands a person can paste.
  const label = new RegExp(LABEL.source).exec(result.stdout)?.[0] ?? ''
  const lines = result.stdout.split('\n')
  const first = lines.indexOf('# the 3 builds run together; the rollouts start once every build succeeded')
  assert.ok(first >= 0, result.stdout)
  assert.equal(lines.slice(first + 1, first + 5), [...KEYS.map((key) => `(${buildArgv('staging', key, label).map((a) => (a.startsWith('--build-arg') || !a.includes('=') ? a : a)).join(' ').replace(/^deploy/, 'flyctl deploy')}) &`), 'wait'])
  for (const [i, key] of KEYS.entries()) assert.ok(lines.includes(['flyctl', ...rolloutArgv('staging', key, `registry.fly.io/${STAGING[i]}:${label}`)].join(' ')), `no rollout of ${key} in\n${result.stdout}`)
  assert.match(result.stdout, `flyctl ssh console --app microbima-staging-internal-api --command "sh -c 'cd /app && npx prisma migrate deploy'"`)
  assert.match(result.stdout, /secrets sync\s+dry run/)
  assert.not.match(result.stdout, /\bok\b.*scheduled/)
  assert.equal(await sql(s.dbs.staging, "SELECT to_regclass('_prisma_migrations') AS t"), [{ t: null }])
  await s.sandbox.close()
})

test.run()
