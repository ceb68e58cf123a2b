import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { deployTimeout } from '../scripts/lib/core/knobs.ts'
import { CommandError } from '../scripts/lib/core/errors.ts'
import { MARGIN_S, deployWaits, flyctlDeployWorstCase, goDurationS, tomlDurationS } from '../scripts/lib/fly/deploy-time.ts'
import { flyctlError, releaseCommandTimedOut, translate } from '../scripts/lib/fly/errors.ts'
import { readFlyToml } from '../scripts/lib/fly/flytoml.ts'
import { REPO, tempDir } from './support/toolkit.ts'

// How long the toolkit lets one flyctl deploy run (flyctl's own worst case, from the app's
// fly.toml), and which line of flyctl's stderr is flyctl's own error.

test('flyctl\'s worst case: the release command (wait_timeout twice, then release_command_timeout), then each machine in turn (wait_timeout, 10 s smoke checks, wait_timeout), plus the margin', () => {
  assert.is(flyctlDeployWorstCase({ waitS: 300, releaseCommandS: 600, machines: 2 }), 300 + 300 + 600 + 2 * (300 + 10 + 300) + MARGIN_S)
  assert.is(flyctlDeployWorstCase({ waitS: 300, machines: 3 }), 3 * 610 + MARGIN_S)
  // A first deploy (no machine yet) creates two, one after the other.
  assert.is(flyctlDeployWorstCase({ waitS: 60, machines: 0 }), flyctlDeployWorstCase({ waitS: 60, machines: 2 }))
  assert.is(flyctlDeployWorstCase({ waitS: 300, releaseCommandS: Infinity, machines: 1 }), Infinity)
})

test('the production internal API: flyctl may wait about 50 minutes, more than the 1800 s the toolkit used to allow', () => {
  const config = readFlyToml(join(REPO, 'infra/fly/internal-api-prod/fly.toml'))
  const waits = deployWaits(config, 2, true)
  assert.equal(waits, { waitS: 300, releaseCommandS: 600, machines: 2 })
  assert.is(flyctlDeployWorstCase(waits), 3020)
  assert.ok(flyctlDeployWorstCase(waits) > 1800)
  // A rollback skips the release command; an app without one never counts it.
  assert.is(deployWaits(config, 2, false).releaseCommandS, undefined)
  assert.is(deployWaits(readFlyToml(join(REPO, 'infra/fly/web-admin-prod/fly.toml')), 2, true).releaseCommandS, undefined)
  // flyctl's defaults (5m each) when fly.toml says nothing; 0 means no limit (WithAllowInfinite).
  assert.equal(deployWaits({ deploy: { release_command: 'x' } }, 1, true), { waitS: 300, releaseCommandS: 300, machines: 1 })
  assert.is(deployWaits({ deploy: { release_command: 'x', release_command_timeout: '0s' } }, 1, true).releaseCommandS, Infinity)
})

test('durations as flyctl reads them: Go durations in strings, nanoseconds in bare numbers', () => {
  assert.equal(['10m', '1h30m', '90s', '500ms', '1.5h', '0', '2m3.5s', '+5m'].map(goDurationS), [600, 5400, 90, 0.5, 5400, 0, 123.5, 300])
  assert.equal(['', '10', '5 minutes', 'none', '1d', 'm'].map(goDurationS), [undefined, undefined, undefined, undefined, undefined, undefined])
  assert.is(tomlDurationS(300), 300e-9)
  assert.is(tomlDurationS(undefined), undefined)
  // readFlyToml refuses what flyctl would misread or reject, before anything runs.
  const dir = tempDir('mb-deploy-time-')
  writeFileSync(join(dir, 'fly.toml'), 'app = "a"\n[deploy]\n  wait_timeout = 300\n  release_command_timeout = "ten minutes"\n')
  assert.throws(() => readFlyToml(join(dir, 'fly.toml')), (e: Error) => e.message.includes('deploy.wait_timeout = 300 is 300 nanoseconds to flyctl: write a duration such as "300s" or "10m"') && e.message.includes('deploy.release_command_timeout must be a duration such as "5m" or "90s", not the string "ten minutes"'))
})

test('FLY_DEPLOY_TIMEOUT: unset, the derived limit; set, a cap, with a warning when below flyctl\'s own worst case', () => {
  const saved = process.env.FLY_DEPLOY_TIMEOUT
  try {
    delete process.env.FLY_DEPLOY_TIMEOUT
    assert.equal(deployTimeout(3020, 'api'), { ms: 3_020_000 })
    assert.equal(deployTimeout(Infinity, 'api'), { ms: 7 * 24 * 3600 * 1000 })
    process.env.FLY_DEPLOY_TIMEOUT = '4000'
    assert.equal(deployTimeout(3020, 'api'), { ms: 4_000_000 })
    process.env.FLY_DEPLOY_TIMEOUT = '1800'
    const low = deployTimeout(3020, 'api')
    assert.is(low.ms, 1_800_000)
    assert.match(low.warning ?? '', 'FLY_DEPLOY_TIMEOUT=1800 is shorter than flyctl may itself wait for api (up to 3020 s')
  } finally {
    if (saved === undefined) delete process.env.FLY_DEPLOY_TIMEOUT
    else process.env.FLY_DEPLOY_TIMEOUT = saved
  }
})

const faint = (line: string) => `\x1b[2m2026-01-01T00:00:00Z\x1b[0m ${line}`

test('flyctl\'s own error line: after a release command\'s logs and a remote command\'s stderr, before a crashing machine\'s logs', () => {
  const release = ['Running app release_command: npx prisma migrate deploy', 'Starting machine', 'Error release_command failed running on machine 1 with exit code 1.', 'Checking logs: fetching the last 100 lines below:', faint('Error: P3018'), faint('ERROR: permission denied for table "Customer"'), 'Error: release command failed - aborting deployment. machine 1 exited with non-zero status of 1', ''].join('\n')
  assert.is(flyctlError(release), 'Error: release command failed - aborting deployment. machine 1 exited with non-zero status of 1')
  const ssh = 'Connecting to fdaa::2...\nError: P3018\npermission denied for table "Customer"\nError: ssh shell: Process exited with status 1\n'
  assert.is(flyctlError(ssh), 'Error: ssh shell: Process exited with status 1')
  const smoke = "Error: smoke checks for 1 failed: the app appears to be crashing\nSmoke checks for 1 failed: the app appears to be crashing\nCheck its logs: here's the last lines below, or run 'fly logs -i 1':\nError: permission denied for table \"Customer\"\n\n\n"
  assert.is(flyctlError(smoke), 'Error: smoke checks for 1 failed: the app appears to be crashing')
  assert.is(flyctlError('image: registry.fly.io/a:b\n'), '')
  const timeout = 'Error: release command failed - aborting deployment. error waiting for release_command machine 3d8d9 to finish running: timeout reached waiting for machine\'s state to change\nYour machine never reached the state "destroyed".\n\nYou can try increasing the timeout with the --release-command-timeout flag\n\n'
  assert.is(releaseCommandTimedOut(timeout), '3d8d9')
  assert.is(releaseCommandTimedOut(release), undefined)
})

test('the token is blamed only when flyctl\'s own error says so', () => {
  const next = (stderr: string) => (translate(new CommandError('flyctl deploy', 1, stderr), ['deploy', '--app', 'microbima-staging-internal-api']) as CommandError).next
  assert.is(next(`${faint('ERROR: permission denied for table "Customer"')}\nError: release command failed - aborting deployment. machine 1 exited with non-zero status of 1\n`), undefined)
  assert.is(next('Warn: not authorized to retrieve app logs (this can happen when using deploy tokens). Use `fly logs -i 1`\nError: release command failed - aborting deployment. machine 1 exited with non-zero status of 1\n'), undefined)
  assert.match(next('Error: unauthorized (Request ID: 01AB-jnb)\n') ?? '', 'the token cannot do this (microbima-staging-internal-api)')
})

test.run()
