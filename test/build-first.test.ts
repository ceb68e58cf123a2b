import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import { STAGING, labelOf, scenario } from './support/scenario.ts'
import { projectCopy, runScript } from './support/toolkit.ts'

// Build first, then roll out: a failed build changes no app, and a commit is built once.

const images = (s: Awaited<ReturnType<typeof scenario>>) => STAGING.map((app) => s.sandbox.state().apps[app].machines.map((m) => m.image))
const builds = (s: Awaited<ReturnType<typeof scenario>>) => argvs(s.sandbox.calls()).filter((a) => a[0] === 'deploy' && a.includes('--build-only'))
const rollouts = (s: Awaited<ReturnType<typeof scenario>>) => argvs(s.sandbox.calls()).filter((a) => a[0] === 'deploy' && a.includes('--image'))

test('a failed build: exit 1, the other builds stopped, no app changed, the summary names the app, its build step and its last lines', async () => {
  const s = await scenario({ stagingDeployed: true, sandbox: { latencyMs: { build: 1500 } } })
  const running = images(s)
  const releases = STAGING.map((app) => s.sandbox.state().apps[app].releases.length)
  s.sandbox.fault({ command: 'build', app: STAGING[2], kind: 'build-fail', times: 1 })
  const result = await runScript('deploy', ['staging'], { env: s.env })
  assert.is(result.code, 1, result.output)
  assert.is(builds(s).length, 3, 'the three builds started together')
  assert.equal(rollouts(s), [], 'no rollout after a failed build')
  assert.equal(images(s), running)
  assert.equal(STAGING.map((app) => s.sandbox.state().apps[app].releases.length), releases)
  // The others were stopped: none of their images reached the registry.
  const label = labelOf(s.sandbox.calls())
  assert.equal(Object.keys(s.sandbox.state().images).filter((ref) => ref.endsWith(`:${label}`)), [])
  assert.match(result.stderr, /^ {2}microbima-staging-(internal-api|public-api) +stopped$/m)
  assert.match(result.stderr, /^ {2}microbima-staging-web-admin +FAILED at step \d+\/\d+: RUN /m)
  // The error: the app, the step, no change; then the build's last lines, BuildKit's error among them.
  assert.match(result.stderr, /failed: the build of microbima-staging-web-admin failed at step \d+\/\d+: RUN [^\n]+: no app was changed\n/, result.stderr)
  assert.match(result.stderr, /did not complete successfully: exit code: 1\n[^]*Error: failed to fetch an image or build from source: error building/)
  await s.sandbox.close()
})

test('a clean commit is built once: a second deploy builds nothing and leaves every app alone; REBUILD=1 builds it anew', async () => {
  const s = await scenario()
  const project = projectCopy()
  const git = (...args: string[]) => execFileSync('git', args, { cwd: project, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } }).toString().trim()
  git('init', '-q', '-b', 'main')
  git('add', '-A')
  git('commit', '-q', '-m', 'sample')
  const commit = git('rev-parse', 'HEAD')
  const env = { ...s.env, REBUILD: undefined, ALLOW_DIRTY: undefined }
  const first = await runScript('deploy', ['staging'], { env, cwd: project })
  assert.is(first.code, 0, first.output)
  assert.is(labelOf(s.sandbox.calls()), `git-${commit.slice(0, 12)}`)
  assert.equal(images(s), STAGING.map((app) => [`registry.fly.io/${app}:git-${commit.slice(0, 12)}`, `registry.fly.io/${app}:git-${commit.slice(0, 12)}`]))
  s.sandbox.clearCalls()
  const second = await runScript('deploy', ['staging'], { env, cwd: project })
  assert.is(second.code, 0, second.output)
  assert.equal([builds(s), rollouts(s)], [[], []])
  for (const key of ['internal-api', 'public-api', 'web-admin']) assert.match(second.stdout, new RegExp(`^${key}\\s+unchanged\\s`, 'm'))
  // The ledger and the plan name the commit of every image.
  const history = await runScript('history', ['staging', '--json'], { env, cwd: project })
  const deploys = history.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.operation === 'deploy' && r.result === 'ok')
  assert.equal(deploys.map((r) => r.images.after), STAGING.map((app) => `registry.fly.io/${app}:git-${commit.slice(0, 12)}`), history.stdout)
  const plan = await runScript('deploy', ['production', '--dry-run'], { env: { ...env, ALLOW_DIRTY: '1' }, cwd: project })
  assert.is(plan.code, 0, plan.output)
  for (const key of ['internal-api', 'public-api', 'web-admin']) assert.match(plan.stdout, new RegExp(`^${key}\\s+dry run\\s+no machines\\s+…:git-${commit.slice(0, 12)}\\s+would deploy commit ${commit.slice(0, 12)}$`, 'm'), plan.stdout)
  s.sandbox.clearCalls()
  const rebuilt = await runScript('deploy', ['staging'], { env: { ...env, REBUILD: '1' }, cwd: project })
  assert.is(rebuilt.code, 0, rebuilt.output)
  assert.match(labelOf(s.sandbox.calls()), new RegExp(`^git-${commit.slice(0, 12)}-rebuild-\\d{8}t\\d{9}z$`))
  assert.is(builds(s).length, 3)
  assert.is(rollouts(s).length, 3)
  await s.sandbox.close()
})

test.run()
