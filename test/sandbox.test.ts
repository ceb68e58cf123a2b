import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createSandbox } from '../scripts/sandbox/sandbox.ts'
import { run, runMake, tempDir } from './support/toolkit.ts'

// `make sandbox`: a sandbox that stays up between commands, the exports that point every target at
// it, faults a newcomer can practise with, and `make sandbox-stop` that leaves nothing behind.

const home = join(tempDir('mb-sandbox-test-'), 'sandbox')
// A failed assertion must not leave the sandbox's process running.
test.after(async () => {
  if (existsSync(home)) await runMake('sandbox-stop', {}, { env: { SANDBOX_DIR: home } })
})
const exportsOf = (stdout: string) => Object.fromEntries([...stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]))
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

test('make sandbox starts it once and prints only export lines; every target then works against it; FLY_SIM_FAULT injects a failure; make sandbox-stop ends it', async () => {
  const started = await runMake('sandbox', {}, { env: { SANDBOX_DIR: home }, timeoutMs: 90_000 })
  assert.is(started.code, 0, started.output)
  assert.ok(started.stdout.trim().split('\n').every((line) => /^export \w+='[^']*'$/.test(line)), `stdout is not only exports:\n${started.stdout}`)
  const env = exportsOf(started.stdout)
  for (const name of ['FLY_BIN', 'FLY_SIM_STATE', 'FLY_API_TOKEN', 'HEALTH_URL_TEMPLATE', 'ENV_DIR']) assert.ok(env[name], `no export of ${name}`)
  assert.match(started.stderr, 'eval "$(make -s sandbox)"')

  const again = await runMake('sandbox', {}, { env: { SANDBOX_DIR: home } })
  assert.is(again.code, 0)
  assert.equal(exportsOf(again.stdout), env, 'a second make sandbox points at the same sandbox')
  assert.match(again.stderr, 'the sandbox is running')

  const created = await runMake('create-apps-staging', { DB: '1' }, { env })
  assert.is(created.code, 0, created.output)
  const apps = await run(env.FLY_BIN, ['apps', 'list', '--json'], { env })
  assert.equal(JSON.parse(apps.stdout).map((a: { Name: string }) => a.Name).sort(), ['microbima-staging-db', 'microbima-staging-internal-api', 'microbima-staging-public-api', 'microbima-staging-web-admin'])
  assert.is((await runMake('set-secrets-staging', {}, { env })).code, 0)
  // LOGS_TIMEOUT: the machines that never came up logged nothing, and flyctl logs --no-tail waits on
  // an empty buffer as long as it is let (the toolkit stops it after LOGS_TIMEOUT, 10 s by default).
  const broken = await runMake('deploy-staging', { APP: 'public-api' }, { env: { ...env, FLY_SIM_FAULT: 'unhealthy:public-api', LOGS_TIMEOUT: '1' } })
  assert.match(broken.stderr, /deploy-staging\] Error 1/, broken.output)
  assert.match(broken.output, /failed its health checks/)
  // The fault broke that build's image: a fixed image is a new build (REBUILD=1 in a clean checkout).
  const healthy = await runMake('deploy-staging', { APP: 'public-api', REBUILD: '1' }, { env })
  assert.is(healthy.code, 0, healthy.output)

  const pid = Number(/pid (\d+)/.exec(again.stderr)![1])
  const stopped = await runMake('sandbox-stop', {}, { env: { SANDBOX_DIR: home } })
  assert.is(stopped.code, 0, stopped.output)
  assert.not.ok(alive(pid), 'the sandbox process outlived make sandbox-stop')
  assert.not.ok(existsSync(home), 'make sandbox-stop left its folder')
  const gone = await run(env.FLY_BIN, ['apps', 'list'], { env })
  assert.equal([gone.code, gone.stderr.trim()], [1, `Error: the Fly simulator is not running for FLY_SIM_STATE=${env.FLY_SIM_STATE} (start one with make sandbox)`])
})

test('a sandbox in a temporary folder removes it when closed (make demo leaves no mb-sim-* behind)', async () => {
  const sandbox = await createSandbox()
  assert.ok(existsSync(sandbox.stateDir))
  await sandbox.close()
  assert.not.ok(existsSync(sandbox.stateDir))
})

test.run()
