import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createSandbox } from './support/sandbox.ts'
import { run, tempDir } from './support/toolkit.ts'
import { FLY_BIN } from './support/sandbox.ts'

// Pins the simulator to shared/reference/flyctl.md: JSON key sets and casing, 4-space indent
// with a trailing newline, error texts and exit codes. A simulator easier than flyctl makes every
// other test a lie, so each row names the section of the reference it copies.

const keys = (o: object) => Object.keys(o).sort()

async function deployed() {
  const sandbox = await createSandbox()
  sandbox.seedApps()
  const app = 'microbima-staging-web-admin'
  const out = await sandbox.fly(['deploy', '--config', 'infra/fly/web-admin-staging/fly.toml', '--app', app, '--remote-only'])
  assert.is(out.code, 0, out.output)
  return { sandbox, app }
}

test('§0.2: JSON is rendered with a 4-space indent and a trailing newline, on stdout only', async () => {
  const { sandbox, app } = await deployed()
  const out = await sandbox.fly(['releases', '--app', app, '--json'])
  assert.is(out.stdout, JSON.stringify(JSON.parse(out.stdout), null, 4) + '\n')
  assert.is(out.stderr, '')
  await sandbox.close()
})

test('§3.3: releases --json has the capitalised fly.Release keys', async () => {
  const { sandbox, app } = await deployed()
  const [release] = JSON.parse((await sandbox.fly(['releases', '--app', app, '--json'])).stdout)
  assert.equal(keys(release), ['CreatedAt', 'DeploymentStrategy', 'Description', 'EvaluationID', 'ID', 'ImageRef', 'InProgress', 'Metadata', 'Reason', 'Stable', 'Status', 'User', 'Version'])
  assert.equal(keys(release.User), ['Email', 'EnablePaidHobby', 'ID', 'Name'])
  assert.is(release.Status, 'complete')
  assert.match(release.ImageRef, new RegExp(`^registry\\.fly\\.io/${app}:deployment-[0-9A-Z]{26}$`))
  await sandbox.close()
})

test('§5.1: status --json mixes capitalised top-level keys with snake_case machines', async () => {
  const { sandbox, app } = await deployed()
  const status = JSON.parse((await sandbox.fly(['status', '--app', app, '--json'])).stdout)
  assert.equal(keys(status), ['AppURL', 'Deployed', 'Hostname', 'ID', 'Machines', 'Name', 'Organization', 'PlatformVersion', 'Status', 'Version'])
  assert.equal(keys(status.Organization), ['ID', 'InternalNumericID', 'Name', 'PaidPlan', 'RawSlug', 'Slug'])
  const [machine] = status.Machines
  for (const key of ['id', 'name', 'state', 'region', 'image_ref', 'instance_id', 'private_ip', 'created_at', 'updated_at', 'config', 'checks', 'events', 'host_status', 'cordoned']) assert.ok(key in machine, key)
  assert.equal(keys(machine.image_ref), ['digest', 'labels', 'registry', 'repository', 'tag'])
  assert.is(typeof machine.config.metadata.fly_release_version, 'string')
  assert.equal(keys(machine.checks[0]), ['name', 'output', 'status', 'updated_at'])
  assert.match(machine.checks[0].name, /^servicecheck-/)
  await sandbox.close()
})

test('§1.2, §2.3, §5.2, §8.4: apps list, secrets list, checks list and volumes list shapes', async () => {
  const { sandbox, app } = await deployed()
  const [listed] = JSON.parse((await sandbox.fly(['apps', 'list', '--json'])).stdout)
  for (const key of ['ID', 'Name', 'Deployed', 'Hostname', 'PlatformVersion', 'Organization', 'CurrentRelease', 'Status']) assert.ok(key in listed, key)
  await sandbox.fly(['secrets', 'import', '--app', app, '--stage'], 'A=1\n')
  assert.equal(keys(JSON.parse((await sandbox.fly(['secrets', 'list', '--app', app, '--json'])).stdout)[0]), ['digest', 'name', 'status'])
  const checks = JSON.parse((await sandbox.fly(['checks', 'list', '--app', app, '--json'])).stdout)
  assert.equal(keys(Object.values(checks)[0] as object[]), ['0'])
  await sandbox.fly(['postgres', 'create', '--name', 'microbima-staging-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10'])
  const [volume] = JSON.parse((await sandbox.fly(['volumes', 'list', '--app', 'microbima-staging-db', '--json'])).stdout)
  assert.equal(keys(volume), ['attached_alloc_id', 'attached_machine_id', 'auto_backup_enabled', 'created_at', 'encrypted', 'host_dedication_id', 'id', 'name', 'region', 'size_gb', 'snapshot_retention', 'state', 'zone'])
  const snap = await sandbox.fly(['volumes', 'snapshots', 'create', volume.id, '--app', 'microbima-staging-db'])
  assert.is(snap.stdout, `Scheduled to snapshot volume ${volume.id}\n`)
  await sandbox.close()
})

test('§0.1, §1.1, §2.2, §3.1, §6, §9: error texts and exit codes', async () => {
  const { sandbox, app } = await deployed()
  const cases: [string[], string, number, string?][] = [
    [['deploy', '--json'], 'Error: unknown flag: --json\n', 1],
    [['deploy', '--region', 'jnb'], 'Error: unknown flag: --region\n', 1],
    [['rollback'], 'Error: unknown command "rollback" for "flyctl"\n', 1],
    [['apps', 'create', app, '--org', 'microbima'], 'Error: Validation failed: Name has already been taken (Request ID: ', 1],
    [['apps', 'create', 'x', '--org', 'nope'], 'Error: organization nope not found\n', 1],
    [['status', '--app', 'nope', '--json'], 'Error: failed to get app: Could not find App "nope"\n', 1],
    [['deploy', '--config', 'infra/fly/web-admin-staging/fly.toml', '--app', app, '--image', 'registry.fly.io/x:missing'], 'Error: failed to fetch an image or build from source: Could not find image "registry.fly.io/x:missing"\n', 1],
    [['ssh', 'console', '--app', app, '--command', 'cd /app && npx prisma migrate deploy'], 'Error: ssh shell: Process exited with status 127\n', 1],
    [['ssh', 'console', '--app', 'microbima-production-web-admin', '--command', 'ls'], 'Error: app microbima-production-web-admin has no started VMs.', 1],
    [['postgres', 'create', '--name', 'x'], 'Error: prompt: non interactive\n', 1],
    [['secrets', 'deploy', '--app', 'microbima-production-web-admin'], 'Error: no machines available to deploy\n', 1],
  ]
  for (const [args, stderr, code] of cases) {
    const out = await sandbox.fly(args)
    assert.is(out.code, code, args.join(' '))
    assert.ok(out.stderr.includes(stderr.trimEnd()), `${args.join(' ')}: ${out.stderr}`)
  }
  // §2.1: flyctl's parser drops one pair of surrounding double quotes and has no escapes.
  await sandbox.fly(['secrets', 'import', '--app', app, '--stage'], 'RAW="a\\"b"\nMULTI=\"\"\"one\ntwo\"\"\"\n')
  const stored = sandbox.state().apps[app].secrets
  assert.equal([stored.RAW.value, stored.MULTI.value], ['a\\"b', 'one\ntwo'])
  const badImport = await sandbox.fly(['secrets', 'import', '--app', app], 'NOPE\n')
  assert.is(badImport.stderr, 'Error: Failed to parse secrets from stdin: Secrets must be provided as NAME=VALUE pairs (NOPE is invalid)\n')
  const empty = await sandbox.fly(['secrets', 'import', '--app', app], '# nothing\n')
  assert.is(empty.stderr, 'Error: requires at least one SECRET=VALUE pair\n')
  const unauthenticated = await run(FLY_BIN, ['apps', 'list', '--json'], { env: { ...sandbox.env, FLY_API_TOKEN: '' } })
  assert.is(unauthenticated.stderr, "Error: no access token available. Please login with 'flyctl auth login'\n")
  assert.is(unauthenticated.code, 1)
  const usage = await sandbox.fly(['nope'])
  assert.is(usage.stdout, "Run 'flyctl --help' for usage.\n")
  await sandbox.close()
})

test('§2.2: secrets import parses like flyctl (quotes, comments, export, multi-line) and never prints values', async () => {
  const { sandbox, app } = await deployed()
  const out = await sandbox.fly(['secrets', 'import', '--app', app, '--stage'], 'A="quoted value"\nB=plain # comment\nexport C=1\nD=\'single\'\nE="""line1\nline2"""\n')
  assert.is(out.code, 0)
  assert.is(out.stdout, 'Secrets have been staged, but not set on VMs. Deploy or update machines in this app for the secrets to take effect.\n')
  const secrets = sandbox.state().apps[app].secrets
  assert.equal(Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, (v as { value: string }).value])), { A: 'quoted value', B: 'plain', 'export C': '1', D: 'single', E: 'line1\nline2' })
  assert.equal(sandbox.calls().at(-1)!.stdin?.startsWith('A="quoted value"'), true)
  await sandbox.close()
})

test('§3.1, §4.1: deploy captures the image on stderr, runs the release command first and aborts on failure', async () => {
  const { sandbox, app } = await deployed()
  const label = await sandbox.fly(['deploy', '--config', 'infra/fly/web-admin-staging/fly.toml', '--app', app, '--image-label', 'v1.0.0'])
  assert.match(label.stderr, `image: registry.fly.io/${app}:v1.0.0`)
  const withJson = await run(FLY_BIN, ['deploy', '--config', 'infra/fly/web-admin-staging/fly.toml', '--app', app], { env: { ...sandbox.env, FLY_EMIT_RELEASE_JSON: '1' } })
  const line = JSON.parse(withJson.stdout.trim().split('\n').at(-1)!)
  assert.equal(keys(line), ['id', 'image_ref', 'version'])
  // internal-api's release command runs migrations; without DATABASE_URL it fails and machines stay untouched.
  const api = 'microbima-staging-internal-api'
  const failed = await sandbox.fly(['deploy', '--config', 'infra/fly/internal-api-staging/fly.toml', '--app', api, '--remote-only'])
  assert.is(failed.code, 1)
  assert.match(failed.stderr, /Error release_command failed running on machine \w+ with exit code 1\.\nChecking logs: fetching the last 100 lines below:/)
  assert.match(failed.stderr, 'Error: release command failed - aborting deployment. machine ')
  assert.equal(sandbox.state().apps[api].machines, [])
  assert.is(sandbox.state().apps[api].releases[0].Status, 'failed')
  await sandbox.close()
})

test('§8.3: proxy forwards real bytes, prints the readiness line, exits 0 on SIGTERM', async () => {
  const net = await import('node:net')
  const echo = net.createServer((s) => s.pipe(s))
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
  const port = (echo.address() as { port: number }).port
  const sandbox = await createSandbox({ postgres: { 'microbima-staging-db': { host: '127.0.0.1', port } } })
  await sandbox.fly(['postgres', 'create', '--name', 'microbima-staging-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '1'])
  let child!: import('node:child_process').ChildProcess
  const done = run(FLY_BIN, ['proxy', '0:5432', '--app', 'microbima-staging-db'], { env: sandbox.env, onSpawn: (c) => (child = c) })
  const ready = await new Promise<string>((resolve) => child.stdout!.on('data', (d) => resolve(String(d))))
  const local = Number(/Proxying localhost:(\d+) to remote \[microbima-staging-db\.internal\]:5432/.exec(ready)![1])
  const reply = await new Promise<string>((resolve) => {
    const c = net.createConnection(local, '127.0.0.1', () => c.write('ping'))
    c.on('data', (d) => (resolve(String(d)), c.end()))
  })
  assert.is(reply, 'ping')
  child.kill('SIGTERM')
  assert.is((await done).code, 0)
  echo.close()
  await sandbox.close()
})

test('state lives in FLY_SIM_STATE; without it the simulator refuses', async () => {
  const out = await run(FLY_BIN, ['apps', 'list', '--json'], { env: { FLY_SIM_STATE: '', FLY_API_TOKEN: 'x' } })
  assert.is(out.code, 1)
  assert.is(out.stderr, 'Error: FLY_SIM_STATE is not set (fly simulator)\n')
  void tempDir
})

test.run()
