import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { describeCrash, smokeFailure } from '../scripts/lib/fleet/crash.ts'
import { blameText } from '../scripts/lib/fleet/drift.ts'
import { judgeFleet, lastCrash } from '../scripts/lib/fleet/health.ts'
import type { FlyMachine, FlyMachineEvent, FlyStatus } from '../scripts/lib/fly/types.ts'
import type { FlyToml } from '../scripts/lib/fly/flytoml.ts'

// The fleet rule (scripts/lib/fleet/health.ts) over `flyctl status --json` shapes (flyctl.md §5.1,
// flyctl-facts 13): what fails a deploy, and what is only a warning with the command that fixes it.

const APP = 'microbima-production-web-admin'
const IMAGE = `registry.fly.io/${APP}:v2`
const passing = [{ name: 'servicecheck-00-http-3000', status: 'passing' }]

function machine(id: string, state: string, o: { autostop?: boolean | 'suspend'; min?: number; region?: string; group?: string; events?: FlyMachineEvent[]; checks?: FlyMachine['checks'] } = {}): FlyMachine {
  return {
    id,
    state,
    region: o.region ?? 'jnb',
    config: {
      image: IMAGE,
      env: { PRIMARY_REGION: 'jnb' },
      metadata: { fly_process_group: o.group ?? 'app', fly_platform_version: 'v2' },
      services: [{ internal_port: 3000, autostop: o.autostop ?? true, autostart: true, min_machines_running: o.min ?? 2 }],
    },
    ...(state === 'started' ? { checks: o.checks ?? passing } : {}),
    events: o.events ?? [{ type: 'launch', status: 'created', source: 'user', timestamp: 1 }],
  }
}
const fleet = (...machines: FlyMachine[]): FlyStatus => ({ Name: APP, Hostname: `${APP}.fly.dev`, Deployed: true, Version: 3, Machines: machines })
const toml: FlyToml = { app: APP, primary_region: 'jnb', http_service: { auto_stop_machines: 'stop', min_machines_running: 2 } }
const exit = (code: number, o: { restarting?: boolean; restarts?: number; requested?: boolean } = {}): FlyMachineEvent => ({
  type: 'exit', status: 'stopped', source: 'flyd', timestamp: 5,
  request: { exit_event: { ...(code ? { exit_code: code } : {}), ...(o.requested ? { requested_stop: true } : {}), ...(o.restarting ? { restarting: true } : {}), exited_at: '2026-08-20T09:00:01.123Z' }, ...(o.restarts ? { restart_count: o.restarts } : {}) },
})

test('fewer machines than min_machines_running (a production app left with one) is a warning naming flyctl scale count, never a failure', () => {
  const one = judgeFleet(fleet(machine('m1', 'started')), toml, IMAGE)
  assert.equal(one.problems, [])
  assert.equal(one.warnings, [{ text: '1 machine in jnb, fewer than min_machines_running = 2, and a deploy never adds machines', fix: `flyctl scale count 2 --app ${APP}` }])
  // Machines elsewhere do not count: Fly Proxy keeps min_machines_running in the primary region only.
  const elsewhere = judgeFleet(fleet(machine('m1', 'started'), machine('m2', 'started', { region: 'ams' })), toml, IMAGE)
  assert.equal(elsewhere.warnings.map((w) => w.fix), [`flyctl scale count 2 --region jnb --app ${APP}`])
  // Enough machines, some stopped: start them.
  const stopped = judgeFleet(fleet(machine('m1', 'started'), machine('m2', 'stopped'), machine('m3', 'stopped')), toml, IMAGE)
  assert.equal([stopped.problems, stopped.warnings.map((w) => w.fix), stopped.summary], [[], [`flyctl machine start m2 --app ${APP}`], '3 machines: 1 started, 2 auto-stopped'])
  // Without auto-stop the key means nothing; per process group.
  assert.equal(judgeFleet(fleet(machine('m1', 'started', { autostop: false, min: 5 })), toml, IMAGE).warnings, [])
  const worker = judgeFleet(fleet(machine('m1', 'started'), machine('m2', 'started'), machine('w1', 'started', { group: 'worker', min: 3 })), toml, IMAGE)
  assert.equal(worker.warnings.map((w) => w.fix), [`flyctl scale count 3 --process-group worker --app ${APP}`])
})

test('a machine an operator stopped where auto-stop is off is a warning naming flyctl machine start, never a failure', () => {
  const judged = judgeFleet(fleet(machine('m1', 'started', { autostop: false }), machine('m2', 'stopped', { autostop: false, events: [exit(0, { requested: true })] })), toml, IMAGE)
  assert.equal(judged.problems, [])
  assert.equal(judged.warnings.map((w) => w.fix), [`flyctl machine start m2 --app ${APP}`])
  assert.is(judged.summary, '2 machines: 1 started, 1 stopped')
})

test('a machine whose restart policy gave up on a crash is a failure naming its exit code, not an auto-stopped machine', () => {
  const gaveUp = machine('m2', 'stopped', { events: [exit(1, { restarts: 10 }), { type: 'start', status: 'started', source: 'flyd', timestamp: 4 }, exit(1, { restarting: true, restarts: 9 })] })
  const judged = judgeFleet(fleet(machine('m1', 'started'), gaveUp), toml, IMAGE)
  assert.equal(judged.problems, ['machine m2 crashed and is left stopped: it exited with code 1; restarted 10 times, then its restart policy gave up'])
  assert.is(judged.summary, '2 machines: 1 started, 1 crashed')
  assert.equal(judged.crashes, [{ id: 'm2', exitCode: 1, restarts: 10, restarting: false, oom: false }])
  // Crash-looping while started; the monitor's exit code wins (MachineRequest.GetExitCode).
  const looping = machine('m1', 'started', { checks: [{ name: 'servicecheck-00-http-3000', status: 'critical' }], events: [{ ...exit(0, { restarting: true, restarts: 3 }), request: { exit_event: { restarting: true }, MonitorEvent: { exit_event: { exit_code: 137 } }, restart_count: 3 } }] })
  assert.equal(judgeFleet(fleet(looping), toml, IMAGE).problems, ['machine m1 keeps crashing: it exited with code 137, restarted 3 times so far'])
  // A stop someone asked for, or a crash of the image before the machine's last update, is no crash.
  assert.is(lastCrash(machine('m3', 'stopped', { events: [exit(143, { requested: true })] })), undefined)
  assert.is(lastCrash(machine('m4', 'stopped', { events: [{ type: 'update', status: 'stopped', source: 'user', timestamp: 9 }, exit(1, { restarts: 10 })] })), undefined)
})

test('flyctl\'s smoke-check failure (flyctl-facts 4) is read as a crash with its log lines; a deploy token\'s refusal as no lines, said so', () => {
  const id = '3d8d9e5c1e2f48'
  const tail = `Error: smoke checks for ${id} failed: the app appears to be crashing\nSmoke checks for ${id} failed: the app appears to be crashing\nCheck its logs: here's the last lines below, or run 'fly logs -i ${id}':\n`
  const crash = smokeFailure(`image: registry.fly.io/x:v2\n${tail}Error: DATABASE_URL is not set\n    at main (/app/dist/main.js:3:9)\n\n\n`)!
  assert.equal(crash, { machine: id, lines: ['Error: DATABASE_URL is not set', '    at main (/app/dist/main.js:3:9)'] })
  assert.is(describeCrash(crash), `the image crashes on start: machine ${id} kept restarting (flyctl's smoke checks); it logged: Error: DATABASE_URL is not set`)
  const refused = smokeFailure(`Warn: not authorized to retrieve app logs (this can happen when using deploy tokens), so we can't show you what failed. Use \`fly logs -i ${id}\` or open the monitoring dashboard to see them: https://fly.io/apps/x/monitoring?region=&instance=${id}\n${tail}<not authorized to retrieve logs>\n\n`)!
  assert.equal(refused, { machine: id, lines: [], noLogs: 'flyctl may not read logs with this token (a deploy token cannot)' })
  assert.is(smokeFailure('Error: timeout reached waiting for health checks to pass for machine x'), undefined)
})

test('a rollback that fails too is blamed on what the deploy applied besides the image, when anything', () => {
  assert.is(blameText([], false, 'infra/fly/a/fly.toml'), undefined)
  assert.is(blameText(['A', 'B'], true, 'infra/fly/a/fly.toml'), 'the old image fails too: the cause is likely the secrets staged since the last release (A, B) or the change to infra/fly/a/fly.toml since the last release (flyctl config show differs from it), not the image')
})

test.run()
