import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import type { SimMachine, SimState } from '../scripts/sandbox/fly-sim/state.ts'
import { judgeFleet } from '../scripts/lib/fleet/health.ts'
import { pickConsoleMachine } from '../scripts/lib/fleet/machines.ts'
import { readFlyToml } from '../scripts/lib/fly/flytoml.ts'
import type { FlyMachine, FlyStatus } from '../scripts/lib/fly/types.ts'
import { PRODUCTION, STAGING, scenario, type Scenario } from './support/scenario.ts'
import { SECRET, leftovers, runMake, runScript } from './support/toolkit.ts'

// The everyday verbs: make console-<env>, make releases-<env>, make status-<env>. One staging
// deployed for the whole file; each test puts back what it changed.

let s: Scenario
test.before(async () => {
  s = await scenario({ stagingDeployed: true })
})
test.after(async () => {
  await s?.sandbox.close()
})
test.before.each(() => s?.sandbox.clearCalls())

const [INTERNAL, , ADMIN] = STAGING
/** An app's machines, highest id first (the order flyctl status lists them in). */
const machines = (app: string): SimMachine[] => [...s.sandbox.state().apps[app].machines].sort((a, b) => (a.id < b.id ? 1 : -1))
/** Changes machines for the length of fn, then puts them back. */
async function withMachines(app: string, change: (ms: SimMachine[]) => void, fn: () => Promise<void>): Promise<void> {
  const saved = structuredClone(s.sandbox.state().apps[app].machines)
  s.sandbox.update((state: SimState) => change([...state.apps[app].machines].sort((a, b) => (a.id < b.id ? 1 : -1))))
  try {
    await fn()
  } finally {
    s.sandbox.update((state: SimState) => void (state.apps[app].machines = saved))
  }
}
const statusCall = (app: string) => ['status', '--app', app, '--json']
const sshCall = (app: string, machine: string, command?: string) => ['ssh', 'console', '--app', app, '--machine', machine, ...(command === undefined ? [] : ['--command', command])]
const sorted = (calls: string[][]) => calls.map((c) => c.join(' ')).sort()

// ---- console ------------------------------------------------------------------------------------

test('the console machine: started, passing its checks if one does, the newest release; none started or none at all names the fix', () => {
  const m = (id: string, state: string, release: number, passing: boolean, updated = '2026-11-01T10:00:00Z'): FlyMachine => ({ id, state, region: 'jnb', config: { metadata: { fly_release_version: String(release) } }, checks: [{ name: 'servicecheck-00-http-8080', status: passing ? 'passing' : 'critical' }], updated_at: updated })
  const status = (list: FlyMachine[]): FlyStatus => ({ Name: 'app-x', Hostname: 'app-x.fly.dev', Deployed: true, Version: 4, Machines: list })
  const fix = { deploy: 'make deploy-staging APP=web-admin' }
  // The newest release wins among passing machines; a failing or stopped newer one is passed over.
  assert.is(pickConsoleMachine(status([m('a1', 'started', 3, true), m('b2', 'started', 4, true), m('c3', 'started', 5, false), m('d4', 'stopped', 6, true)]), fix).machine?.id, 'b2')
  // Same release: the most recently updated.
  assert.is(pickConsoleMachine(status([m('a1', 'started', 4, true, '2026-11-01T11:00:00Z'), m('b2', 'started', 4, true)]), fix).machine?.id, 'a1')
  // None passes: the newest started one, with a warning that says so.
  const failing = pickConsoleMachine(status([m('a1', 'started', 3, false), m('b2', 'started', 4, false)]), fix)
  assert.is(failing.machine?.id, 'b2')
  assert.match((failing as { warning: string }).warning, 'no started machine of app-x passes its checks; using b2 (servicecheck-00-http-8080 critical)')
  assert.equal(pickConsoleMachine(status([m('a1', 'stopped', 3, true), m('b2', 'suspended', 4, true)]), fix), { problem: 'app-x has no started machine (2 stopped, suspended): start one with flyctl machine start b2 --app app-x, then run this again' })
  assert.equal(pickConsoleMachine(status([]), fix), { problem: 'app-x has no machines: deploy it first (make deploy-staging APP=web-admin)' })
})

test('console: no APP, an empty CMD or a CMD of two lines is exit 2 naming the choices, before any flyctl call', async () => {
  const noApp = await runMake('console-staging', {}, { env: s.env })
  assert.match(noApp.stderr, 'error: a console is on one app: give APP=<internal-api|public-api|web-admin> (--app)')
  assert.match(noApp.stderr, /make: \*\*\* \[Makefile:\d+: console-staging\] Error 2/)
  const empty = await runMake('console-staging', { APP: 'web-admin', CMD: '' }, { env: s.env })
  assert.match(empty.stderr, 'error: CMD= is empty: give it the command to run on the machine, or leave it out for an interactive shell')
  assert.match(empty.stderr, 'Error 2')
  const twoLines = await runScript('console', ['staging', '--app', 'web-admin', '--cmd', 'ls\nrm -rf /app'], { env: s.env })
  assert.is(twoLines.code, 2, twoLines.output)
  assert.match(twoLines.stderr, 'CMD="ls\\nrm -rf /app" has more than one line')
  const blank = await runScript('console', ['staging', '--app', 'web-admin', '--cmd', '   '], { env: s.env })
  assert.is(blank.code, 2, blank.output)
  assert.equal(s.sandbox.calls(), [])
})

test('console CMD= runs through sh -c on a started machine that passes its checks: exact flyctl argv, output, exit 0', async () => {
  const [first, second] = machines(INTERNAL)
  // flyctl would take the first one listed; its checks fail, so the console must land on the other.
  await withMachines(INTERNAL, ([m]) => void (m.healthyAt = -1), async () => {
    const result = await runMake('console-staging', { APP: 'internal-api', CMD: `cd /app && echo "it's here"` }, { env: s.env })
    assert.is(result.code, 0, result.output)
    const remote = `sh -c 'cd /app && echo "it'\\''s here"'`
    assert.equal(argvs(s.sandbox.calls()), [statusCall(INTERNAL), sshCall(INTERNAL, second.id, remote)])
    assert.is(result.stdout, "it's here\n")
    // The exact command is shown before it runs.
    assert.match(result.stderr, `$ flyctl ssh console --app ${INTERNAL} --machine ${second.id} --command `)
    assert.match(result.stderr, 'the command exited 0')
    assert.not.match(result.output, first.id)
  })
})

test('console CMD= output is masked: a secret the machine prints shows as ****', async () => {
  const result = await runMake('console-staging', { APP: 'web-admin', CMD: 'printenv SESSION_SECRET NODE_ENV' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.is(result.stdout, '****\nstaging\n')
  assert.not.match(result.output, SECRET.session)
})

test('console: a remote failure exits 1 naming the remote status; a missing command is 127 from the machine', async () => {
  const failed = await runScript('console', ['staging', '--app', 'internal-api', '--cmd', 'exit 3'], { env: s.env })
  assert.is(failed.code, 1, failed.output)
  assert.match(failed.stderr, /failed: the command exited with status 3 on machine \w+ of microbima-staging-internal-api/)
  const missing = await runMake('console-staging', { APP: 'web-admin', CMD: 'rake db:seed' }, { env: s.env })
  assert.match(missing.stderr, 'sh: 1: rake: not found')
  assert.match(missing.stderr, /the command exited with status 127 on machine \w+ of microbima-staging-web-admin/)
  assert.match(missing.stderr, 'Error 1')
})

/** The machine the console would choose, by the rule the first test pins. */
async function chosen(app: string): Promise<string> {
  const status = JSON.parse((await s.sandbox.fly(statusCall(app))).stdout) as FlyStatus
  return pickConsoleMachine(status, { deploy: '' }).machine!.id
}

test('console without CMD hands over stdin and stdout: a login shell that runs each line, ends with its status', async () => {
  const machine = { id: await chosen(INTERNAL) }
  s.sandbox.clearCalls()
  const prompt = (dir: string) => `root@${machine.id}:${dir}# `
  const ok = await runMake('console-staging', { APP: 'internal-api' }, { env: s.env, input: 'echo one\n' })
  assert.is(ok.code, 0, ok.output)
  assert.is(ok.stdout, `${prompt('~')}one\r\n${prompt('~')}logout\r\n`)
  assert.equal(argvs(s.sandbox.calls()), [statusCall(INTERNAL), sshCall(INTERNAL, machine.id)])
  const failed = await runMake('console-staging', { APP: 'internal-api' }, { env: s.env, input: 'cd /app\nexit 5\n' })
  assert.is(failed.stdout, `${prompt('~')}${prompt('/app')}logout\r\n`)
  assert.match(failed.stderr, `failed: the shell on machine ${machine.id} of ${INTERNAL} ended with status 5`)
  assert.match(failed.stderr, 'Error 1')
})

test('console DRY_RUN=1 prints the ssh command (reads still run); a CMD exported in the shell is not a command', async () => {
  const machine = { id: await chosen(ADMIN) }
  s.sandbox.clearCalls()
  const dry = await runMake('console-staging', { APP: 'web-admin', CMD: 'ls -la /app', DRY_RUN: '1' }, { env: s.env })
  assert.is(dry.code, 0, dry.output)
  assert.is(dry.stdout, `flyctl ssh console --app ${ADMIN} --machine ${machine.id} --command "sh -c 'ls -la /app'"\n`)
  assert.equal(argvs(s.sandbox.calls()), [statusCall(ADMIN)])
  const exported = await runMake('console-staging', { APP: 'web-admin', DRY_RUN: '1' }, { env: { ...s.env, CMD: 'rm -rf /data' } })
  assert.is(exported.stdout, `flyctl ssh console --app ${ADMIN} --machine ${machine.id}\n`)
})

test('console-prod asks first: without YES=1 and no terminal it refuses (exit 3) and runs nothing; with YES=1, no machines names the deploy', async () => {
  const refused = await runMake('console-prod', { APP: 'web-admin', CMD: 'true' }, { env: s.env })
  assert.match(refused.stderr, 'refused: make console-prod APP=web-admin changes production and needs confirmation')
  assert.match(refused.stderr, /make: \*\*\* \[Makefile:\d+: console-prod\] Error 3/)
  assert.equal(s.sandbox.calls(), [])
  const yes = await runScript('console', ['prod', '--app', 'web-admin', '--cmd', 'true', '--yes'], { env: s.env })
  assert.is(yes.code, 1, yes.output)
  assert.match(yes.stderr, `failed: ${PRODUCTION[2]} has no machines: deploy it first (make deploy-prod APP=web-admin)`)
  assert.equal(argvs(s.sandbox.calls()), [statusCall(PRODUCTION[2])])
})

test('console on an app whose machines are all stopped: exit 1, one line with the machine start command, no ssh', async () => {
  // Stopped at the same moment (same release): the tie goes to the highest id, as flyctl lists them.
  await withMachines(ADMIN, (ms) => ms.forEach((m) => Object.assign(m, { state: 'stopped', updatedAt: '2026-12-01T00:00:00Z' })), async () => {
    const result = await runScript('console', ['staging', '--app', 'web-admin', '--cmd', 'true'], { env: s.env })
    assert.is(result.code, 1, result.output)
    assert.match(result.stderr, `failed: ${ADMIN} has no started machine (2 stopped): start one with flyctl machine start ${machines(ADMIN)[0].id} --app ${ADMIN}, then run this again`)
    assert.equal(argvs(s.sandbox.calls()), [statusCall(ADMIN)])
  })
})

// ---- status -------------------------------------------------------------------------------------

test('status: each app read once, a stopped machine shown as stopped with no checks, the verdict judgeFleet gives; JSON=1 one line per app', async () => {
  const [stopped, running] = machines(ADMIN)
  await withMachines(ADMIN, ([m]) => void (m.state = 'stopped'), async () => {
    const result = await runMake('status-staging', {}, { env: s.env })
    assert.is(result.code, 0, result.output)
    assert.equal(sorted(argvs(s.sandbox.calls())), sorted(STAGING.map(statusCall)))
    const release = `v${stopped.releaseVersion}`
    assert.match(result.stdout, new RegExp(`^web-admin\\s+${stopped.id}\\s+jnb\\s+stopped\\s+-\\s+${release}\\s+\\S+\\s+\\S+ ago$`, 'm'))
    assert.match(result.stdout, new RegExp(`^web-admin\\s+${running.id}\\s+jnb\\s+started\\s+1/1\\s+${release}\\s+\\S+\\s+\\S+ ago$`, 'm'))
    // The fleet line is the fleet rule's own verdict on what flyctl returned.
    const status = JSON.parse((await s.sandbox.fly(statusCall(ADMIN))).stdout) as FlyStatus
    const fleet = judgeFleet(status, readFlyToml('infra/fly/web-admin-staging/fly.toml'))
    const verdict = fleet.problems.length ? 'unhealthy' : 'healthy'
    assert.match(result.stdout, new RegExp(`^web-admin\\s+${verdict}\\s+${fleet.summary}`, 'm'))
    assert.match(result.stdout, /^internal-api\s+healthy\s+2 machines: 2 started/m)
    for (const line of result.stdout.split('\n')) assert.ok(line.length <= 120, line)

    const json = await runMake('status-staging', { APP: 'web-admin', JSON: '1' }, { env: s.env })
    assert.is(json.code, 0, json.output)
    const [app] = json.stdout.trim().split('\n').map((l) => JSON.parse(l))
    assert.equal([app.app, app.healthy, app.problems], [ADMIN, fleet.problems.length === 0, fleet.problems])
    assert.equal(app.machines.map((m: { id: string; state: string; checks: object }) => [m.id, m.state]), [[stopped.id, 'stopped'], [running.id, 'started']])
  })
})

test('status WATCH=1: a block at once, then stops on SIGINT with exit 0 and no child left; WATCH with JSON is exit 2', async () => {
  let child!: import('node:child_process').ChildProcess
  const pending = runScript('status', ['staging', '--app', 'public-api'], { env: { ...s.env, WATCH: '1' }, onSpawn: (c) => (child = c) })
  let seen = ''
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no block within 10 s: ${seen}`)), 10_000)
    child.stdout!.on('data', (d) => {
      seen += d
      if (/public-api\s+\w+\s+jnb\s+started/.test(seen)) (clearTimeout(deadline), resolve())
    })
  })
  child.kill('SIGINT')
  const result = await pending
  assert.is(result.code, 0, result.output)
  assert.is(result.stdout.match(/== status of staging at/g)?.length, 1)
  assert.match(result.stderr, 'stopped watching')
  assert.equal(leftovers(result.marker), [])
  const both = await runScript('status', ['staging'], { env: { ...s.env, WATCH: '1', JSON: '1' } })
  assert.is(both.code, 2, both.output)
})

// ---- releases -----------------------------------------------------------------------------------

test('releases: newest first, the commit read from the image label, who and when; LIMIT= per app; JSON=1 one release per line', async () => {
  const saved = structuredClone(s.sandbox.state().apps[ADMIN].releases)
  const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString().replace(/\.\d+Z$/, 'Z')
  const next = Math.max(...saved.map((r) => r.Version))
  s.sandbox.update((state: SimState) => {
    const add = (Version: number, Status: 'complete' | 'failed', tag: string, UserName: string, minutes: number) =>
      state.apps[ADMIN].releases.push({ ID: `rel_t${Version}`, Version, Status, Description: 'Release', ImageRef: `registry.fly.io/${ADMIN}:${tag}`, CreatedAt: at(minutes), UserName })
    add(next + 1, 'complete', 'deployment-01K7ABCDEFGHJKMNPQRSTVWXYZ', '', 80)
    add(next + 2, 'complete', 'git-0123456789ab', 'Jane Ops', 30)
    add(next + 3, 'failed', 'git-fedcba987654-dirty-20261101t120000000z', 'CI', 5)
  })
  try {
    const result = await runMake('releases-staging', { APP: 'web-admin', LIMIT: '3' }, { env: s.env })
    assert.is(result.code, 0, result.output)
    assert.equal(argvs(s.sandbox.calls()), [['releases', '--app', ADMIN, '--json']])
    const rows = result.stdout.split('\n').filter((l) => l.startsWith('web-admin'))
    assert.equal(rows.map((r) => r.replace(/\s+/g, ' ')), [
      `web-admin v${next + 3} failed git-fedcba987654-dirty…00000z fedcba987654-dirty CI 5m ago`,
      `web-admin v${next + 2} complete git-0123456789ab 0123456789ab Jane Ops 30m ago`,
      // A tag the toolkit did not make names no commit; a user without a name shows the email.
      `web-admin v${next + 1} complete deployment-01K7…WXYZ - ci@microbima.example 80m ago`,
    ])
    for (const line of result.stdout.split('\n')) assert.ok(line.length <= 120, line)

    const all = await runMake('releases-staging', { JSON: '1' }, { env: s.env })
    assert.is(all.code, 0, all.output)
    assert.equal(sorted(argvs(s.sandbox.calls()).slice(1)), sorted(STAGING.map((app) => ['releases', '--app', app, '--json'])))
    const lines = all.stdout.trim().split('\n').map((l) => JSON.parse(l))
    const ours = lines.filter((l) => l.app === ADMIN).slice(0, 3).map((l) => [l.version, l.status, l.label, l.commit, l.dirty, l.user])
    assert.equal(ours, [
      [next + 3, 'failed', 'git-fedcba987654-dirty-20261101t120000000z', 'fedcba987654', true, 'CI'],
      [next + 2, 'complete', 'git-0123456789ab', '0123456789ab', false, 'Jane Ops'],
      [next + 1, 'complete', 'deployment-01K7ABCDEFGHJKMNPQRSTVWXYZ', null, false, 'ci@microbima.example'],
    ])
    assert.ok(lines.some((l) => l.app === INTERNAL) && lines.some((l) => l.app === STAGING[1]))

    const bad = await runMake('releases-staging', { LIMIT: '0' }, { env: s.env })
    assert.match(bad.stderr, 'LIMIT=0 is not a count')
    assert.match(bad.stderr, 'Error 2')
  } finally {
    s.sandbox.update((state: SimState) => void (state.apps[ADMIN].releases = saved))
  }
})

test.run()
