import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import { STAGING, scenario, shownLabel, type Scenario } from './support/scenario.ts'
import { projectCopy, runMake, runScript } from './support/toolkit.ts'

// What a real fleet does that a tidy one does not (issue 21): machines an operator stopped, fewer
// machines than min_machines_running, images that crash and restart policies that give up,
// rollbacks that fail because what broke was not the image. One staging scenario, used in turn.

let s: Scenario
const flat = (text: string) => text.replace(/\s+/g, ' ')
const machinesOf = (app: string) => s.sandbox.state().apps[app].machines.filter((m) => m.state !== 'destroyed')
const images = (app: string) => machinesOf(app).map((m) => m.image)
const rollbacks = () => argvs(s.sandbox.writes()).filter((a) => a.includes('--skip-release-command'))
/** The last red line the toolkit printed (after the summary tables, stderr ends with the error,
 * then the next step to take). */
const lastLine = (stderr: string) => stderr.trim().split('\n').filter((line) => !line.startsWith('next: ')).at(-1)!

/** flyd gives up on a crashing machine between commands: polled through flyctl status, with a deadline. */
async function untilStopped(app: string, id: string) {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const status = JSON.parse((await s.sandbox.fly(['status', '--app', app, '--json'])).stdout)
    if (status.Machines.find((m: { id: string }) => m.id === id).state === 'stopped') return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`${id} never stopped`)
}

/** Machines left stopped by a test are started again (as an operator would), so the next starts clean. */
async function startStopped(app: string) {
  for (const m of machinesOf(app).filter((x) => x.state !== 'started')) assert.is((await s.sandbox.fly(['machine', 'start', m.id, '--app', app])).code, 0)
}

test.before(async () => {
  s = await scenario({ stagingDeployed: true })
})
test.after(async () => {
  await s.sandbox.close()
})

test('a machine an operator stopped (auto-stop off) is a warning naming flyctl machine start: health exits 0, a deploy succeeds and rolls nothing back', async () => {
  const app = STAGING[1]
  const [, stopped] = machinesOf(app).map((m) => m.id).sort()
  s.sandbox.update((state) => void (state.apps[app].machines.find((m) => m.id === stopped)!.state = 'stopped'))
  const fix = `${app}: machine ${stopped} is stopped, and auto-stop is off, so Fly Proxy did not stop it and will not start it; fix: flyctl machine start ${stopped} --app ${app}`
  const health = await runMake('health-staging', { APP: 'public-api' }, { env: s.env })
  assert.is(health.code, 0, health.output)
  assert.match(flat(health.stdout), `${app} healthy 2 machines: 1 started, 1 stopped`)
  assert.ok(flat(health.stderr).includes(fix), health.stderr)
  s.sandbox.clearCalls()
  const deploy = await runScript('deploy', ['staging', '--app', 'public-api'], { env: s.env })
  assert.is(deploy.code, 0, deploy.output)
  assert.match(flat(deploy.stdout), new RegExp(`public-api deployed \\S+ \\S+ 2 machines: 1 started, 1 stopped, healthy after \\S+; warning: machine ${stopped} is stopped`), deploy.stdout)
  assert.ok(flat(deploy.stderr).includes(fix), deploy.stderr)
  assert.equal(rollbacks(), [])
  await startStopped(app)
})

test('a machine whose restart policy gave up on a crash is not auto-stopped and healthy: health exits 1 naming it, its exit code and its log', async () => {
  const app = STAGING[2] // web-admin: auto_stop_machines = "stop", min_machines_running = 1
  s.sandbox.idle()
  const stopped = machinesOf(app).find((m) => m.state === 'stopped')!
  // The image crashes on its next start (a secret it reads at start is now wrong, say).
  s.sandbox.update((state) => void (state.images[stopped.image].crash = { exitCode: 1, runMs: 5, lines: ['Error: SESSION_SECRET must be at least 32 characters'] }))
  assert.is((await s.sandbox.fly(['machine', 'start', stopped.id, '--app', app])).code, 0)
  await untilStopped(app, stopped.id)
  const health = await runScript('health', ['staging', '--app', 'web-admin'], { env: { ...s.env, HEALTH_TIMEOUT: '0' } })
  assert.is(health.code, 1, health.output)
  assert.match(flat(health.stdout), `${app} UNHEALTHY 2 machines: 1 started, 1 crashed`)
  assert.ok(flat(health.output).includes(`machine ${stopped.id} crashed and is left stopped: it exited with code 1; restarted 10 times, then its restart policy gave up`), health.output)
  assert.match(health.stderr, /│ log: .*app\[\w+\].*Error: SESSION_SECRET must be at least 32 characters/)
  s.sandbox.update((state) => void delete state.images[stopped.image].crash)
  await startStopped(app)
})

test('a production-like app with fewer machines than min_machines_running deploys (exit 0) with a warning naming flyctl scale count, and is not rolled back', async () => {
  const app = STAGING[2]
  const project = projectCopy()
  const toml = join(project, 'infra/fly/web-admin-staging/fly.toml')
  writeFileSync(toml, readFileSync(toml, 'utf8').replace('min_machines_running = 1', 'min_machines_running = 2'))
  // One machine left (a failed first deploy, a destroyed machine, a scale count 1).
  s.sandbox.update((state) => void (state.apps[app].machines = state.apps[app].machines.slice(0, 1)))
  s.sandbox.clearCalls()
  const deploy = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: s.env, cwd: project })
  assert.is(deploy.code, 0, deploy.output)
  assert.match(flat(deploy.stdout), 'web-admin deployed')
  assert.ok(flat(deploy.stderr).includes(`${app}: 1 machine in jnb, fewer than min_machines_running = 2, and a deploy never adds machines; fix: flyctl scale count 2 --app ${app}`), deploy.stderr)
  assert.equal(rollbacks(), [])
})

test('a crash-looping image: flyctl\'s smoke checks fail at once; the toolkit names the crash with flyctl\'s log lines, and rolls back every machine', async () => {
  const app = STAGING[1]
  const old = images(app)[0]
  const [spearhead] = machinesOf(app).map((m) => m.id).sort()
  s.sandbox.fault({ command: 'deploy', app, kind: 'crash', detail: 'Error: connect ECONNREFUSED 10.0.0.1:5432\n    at TCPConnectWrap.afterConnect [as oncomplete]', times: 1 })
  s.sandbox.clearCalls()
  const started = Date.now()
  const result = await runScript('deploy', ['staging', '--app', 'public-api'], { env: s.env })
  assert.is(result.code, 1, result.output)
  assert.ok(flat(result.stderr).includes(`${app}: the image crashes on start: machine ${spearhead} kept restarting (flyctl's smoke checks); it logged: Error: connect ECONNREFUSED 10.0.0.1:5432`), result.stderr)
  assert.match(result.stderr, /│ log: Error: connect ECONNREFUSED 10\.0\.0\.1:5432\n/)
  assert.match(flat(result.stdout), `deploy ${app} failed`)
  assert.match(flat(result.stdout), /public-api rolled back .*the image crashes on start/)
  assert.equal(rollbacks(), [['deploy', '--app', app, '--config', 'infra/fly/public-api-staging/fly.toml', '--image', old, '--skip-release-command', '--deploy-retries', '0']])
  assert.equal(images(app), [old, old])
  // Well inside the 5-minute wait timeout (1.5 s at this time scale): the smoke checks caught it.
  assert.ok(Date.now() - started < 30_000)
  await startStopped(app)
})

test('every automatic rollback fails: the summary shows which machines run which image, and the last red line names the failed rollback', async () => {
  const app = STAGING[2]
  s.sandbox.update((state) => {
    const [first] = state.apps[app].machines
    for (const suffix of ['f1', 'f2']) state.apps[app].machines.push({ ...structuredClone(first), id: `${first.id.slice(0, 12)}${suffix}`, state: 'started' })
  })
  const old = images(app)[0]
  // The second machine of the deploy fails its checks; then the rollback's flyctl deploy fails outright.
  s.sandbox.fault({ command: 'deploy', app, kind: 'unhealthy', afterMachines: 1, times: 1 })
  s.sandbox.fault({ command: 'deploy', app, kind: 'fail', times: 1 })
  const result = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: { ...s.env, HEALTH_TIMEOUT: '1' } })
  assert.is(result.code, 1, result.output)
  const fresh = images(app).find((i) => i !== old)!
  assert.equal(images(app).filter((i) => i === fresh).length, 2)
  const tag = shownLabel
  const short = (ref: string) => `…:${tag(ref)}`
  // The image column shows the fleet as it is, not "-"; the detail says it in full.
  assert.match(flat(result.stdout), `web-admin failed ${short(old)} 2×${tag(fresh)}, 1×${tag(old)}`, result.stdout)
  assert.match(flat(result.stdout), new RegExp(`machines now: (2 on ${short(fresh)}, 1 on ${short(old)}|1 on ${short(old)}, 2 on ${short(fresh)})`))
  assert.ok(flat(result.stderr).includes(`${app}: the deploy failed, and its automatic rollback failed too`), result.stderr)
  assert.match(lastLine(result.stderr), new RegExp(`rollback: to ${short(old).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*non-2xx status, 500`))
  s.sandbox.update((state) => void (state.apps[app].machines = state.apps[app].machines.slice(0, 2)))
})

test('the old image fails too after a rollback: the summary blames the secrets staged since the last release, then the fly.toml change, not the image', async () => {
  const app = STAGING[1] // the Kong gateway: it renders its configuration from its secrets at start
  const key = s.files.staging!['public-api']!.KONG_PARTNER_API_KEY
  // A second key that repeats the first: the entrypoint refuses to render and exits 1, whatever the image.
  assert.is((await s.sandbox.fly(['secrets', 'import', '--app', app, '--stage'], `KONG_PARTNER_KEYS=${key}\n`)).code, 0)
  const env = { ...s.env, HEALTH_TIMEOUT: '2' }
  const secrets = await runScript('deploy', ['staging', '--app', 'public-api'], { env })
  assert.is(secrets.code, 1, secrets.output)
  assert.match(secrets.stderr, /│ log: docker-entrypoint\.sh: a partner key is listed twice/)
  const blame = 'the old image fails too: the cause is likely the secrets staged since the last release (KONG_PARTNER_KEYS), not the image'
  assert.ok(flat(lastLine(secrets.stderr)).includes(blame), secrets.stderr)
  assert.not.match(secrets.output, 'STILL UNHEALTHY')
  assert.not.ok(secrets.output.includes(key), 'no secret value in the output')

  // The key is unset again; now the fly.toml names an upstream the entrypoint refuses.
  assert.is((await s.sandbox.fly(['secrets', 'unset', 'KONG_PARTNER_KEYS', '--app', app, '--stage'])).code, 0)
  const project = projectCopy()
  const toml = join(project, 'infra/fly/public-api-staging/fly.toml')
  writeFileSync(toml, readFileSync(toml, 'utf8').replace(/KONG_UPSTREAM_URL = "[^"]*"/, 'KONG_UPSTREAM_URL = "microbima-staging-internal-api.flycast"'))
  const config = await runScript('deploy', ['staging', '--app', 'public-api'], { env, cwd: project })
  assert.is(config.code, 1, config.output)
  assert.ok(flat(lastLine(config.stderr)).includes('the old image fails too: the cause is likely the change to infra/fly/public-api-staging/fly.toml since the last release (flyctl config show differs from it), not the image'), config.stderr)
})

test.run()
