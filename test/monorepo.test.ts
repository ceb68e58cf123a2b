import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { rejects } from 'node:assert/strict'
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import { uploadedPaths } from '../scripts/sandbox/fly-sim/model/build.ts'
import { PRODUCTION, STAGING, labelOf, scenario } from './support/scenario.ts'
import { REPO, SECRET, run, tempDir } from './support/toolkit.ts'

// Issue 12's proof: the toolkit vendored into a pnpm monorepo laid out as the strategy document
// describes (apps/api with prisma/, apps/public-api, apps/web-admin), at tools/deploy as the
// README recommends, deploys staging from the monorepo's own sources and then promotes the very
// same images to production, whose gateway routes to production's internal API with production's key.

/** The sample monorepo with the toolkit copied into tools/deploy and pointed at it. */
function vendored(): { root: string; toolkit: string } {
  const root = tempDir('mb-monorepo-')
  cpSync(join(REPO, 'examples/microbima'), root, { recursive: true, filter: (src) => !src.includes('node_modules') })
  const toolkit = join(root, 'tools', 'deploy')
  mkdirSync(toolkit, { recursive: true })
  for (const part of ['Makefile', 'package.json', 'dist', 'infra', 'prisma', 'env']) cpSync(join(REPO, part), join(toolkit, part), { recursive: true })
  symlinkSync(join(REPO, 'node_modules'), join(toolkit, 'node_modules'))
  // README, "Add the toolkit to a monorepo": the build context's .dockerignore, and the settings.
  cpSync(join(REPO, '.dockerignore'), join(root, '.dockerignore'))
  const settings = JSON.parse(readFileSync(join(toolkit, 'infra/fly/settings.json'), 'utf8'))
  writeFileSync(join(toolkit, 'infra/fly/settings.json'), JSON.stringify({ ...settings, root: '../..', workspace: '.' }, null, 2))
  // Secrets lying around the monorepo, as on a developer's machine: none may reach the builder.
  writeFileSync(join(root, 'apps/api/.env'), `DATABASE_URL=postgres://dev:${SECRET.jwt}@localhost/dev\n`)
  mkdirSync(join(toolkit, 'backups'))
  writeFileSync(join(toolkit, 'backups/production.sql'), `-- ${SECRET.mpesa}\n`)
  return { root, toolkit }
}

test('vendored at tools/deploy: deploy-staging builds from the monorepo, deploy-prod promotes the same images, the gateway routes per environment', async () => {
  const s = await scenario()
  const { root, toolkit } = vendored()
  // The env files where a vendored toolkit keeps them: tools/deploy/env (inside the build context).
  cpSync(s.envDir, join(toolkit, 'env'), { recursive: true })
  const env = { ...s.env, ENV_DIR: '' }
  delete (env as Record<string, string>).ENV_DIR
  const staging = await run(process.execPath, [join(toolkit, 'dist/deploy.cjs'), 'staging'], { cwd: toolkit, env })
  assert.is(staging.code, 0, staging.output)
  assert.not.match(staging.output, "still points at the toolkit's sample app")
  // The builds run from the monorepo's root (the build context), the fly.toml by its path from there;
  // the rollouts (an image, no context) from the toolkit. Outside git the label names the time of the build.
  const label = labelOf(s.sandbox.calls())
  assert.match(label, /^local-\d{8}t\d{9}z$/)
  const deploys = s.sandbox.calls().filter((c) => c.argv[0] === 'deploy')
  for (const [i, key] of (['internal-api', 'public-api', 'web-admin'] as const).entries()) {
    const source = key === 'internal-api' ? 'api' : key
    const build = deploys.find((c) => c.argv.includes('--build-only') && c.argv.includes(STAGING[i]))!
    assert.equal(build.argv, ['deploy', '--build-only', '--push', '--app', STAGING[i], '--config', `tools/deploy/infra/fly/${key}-staging/fly.toml`, '--remote-only', '--image-label', label, '--build-arg', 'WORKSPACE=.', '--build-arg', `APP_DIR=apps/${source}`, '--build-arg', `APP_PACKAGE=@microbima/${source}`])
    assert.is(build.cwd, root)
    const rollout = deploys.find((c) => c.argv.includes('--image') && c.argv.includes(STAGING[i]))!
    assert.equal(rollout.argv, ['deploy', '--app', STAGING[i], '--config', `infra/fly/${key}-staging/fly.toml`, '--image', `registry.fly.io/${STAGING[i]}:${label}`, '--deploy-retries', '0'])
    assert.is(rollout.cwd, toolkit)
  }
  const state = s.sandbox.state()
  for (const image of Object.values(state.images)) {
    const uploaded = uploadedPaths(image)
    assert.ok(uploaded.includes('pnpm-lock.yaml'), 'the workspace lockfile is in the context')
    for (const path of uploaded) assert.not.match(path, /(^|\/)(\.env(\.|$)|[\w-]+\.env$|backups\/|node_modules\/|\.git\/)/, `${path} was sent to the builder`)
  }
  const api = state.images[state.apps[STAGING[0]].machines[0].image]
  assert.ok(readFileSync(join(api.fsDir, 'app/prisma/migrations/20250101000000_init/migration.sql'), 'utf8').includes('CREATE TABLE'), 'the internal API image carries its migrations at the release command\'s path')

  const prod = await run(process.execPath, [join(toolkit, 'dist/deploy.cjs'), 'production', '--yes'], { cwd: toolkit, env })
  assert.is(prod.code, 0, prod.output)
  const after = s.sandbox.state()
  for (const [i, app] of PRODUCTION.entries()) {
    const promoted = new Set(after.apps[app].machines.map((m) => m.image))
    assert.equal([...promoted], [after.apps[STAGING[i]].machines[0].image], `${app} runs the staging image, byte for byte`)
  }
  assert.equal(argvs(s.sandbox.calls()).filter((a) => a[0] === 'deploy' && a.includes('--image') && PRODUCTION.includes(a[2])).map((a) => a.slice(0, 5)), PRODUCTION.map((app, i) => ['deploy', '--app', app, '--config', `infra/fly/${['internal-api', 'public-api', 'web-admin'][i]}-prod/fly.toml`]))

  // One image, two environments: each gateway renders its own configuration at start.
  const get = (app: string, path: string, key?: string) => fetch(`http://127.0.0.1:${s.sandbox.proxy.port}/${app}${path}`, { headers: key ? { 'x-api-key': key } : {} })
  const prodKey = s.files.production!['public-api']!.KONG_PARTNER_API_KEY
  const stagingKey = s.files.staging!['public-api']!.KONG_PARTNER_API_KEY
  const ok = await get(PRODUCTION[1], '/v1/whoami', prodKey)
  assert.is(ok.status, 200)
  assert.equal(await ok.json(), { app: PRODUCTION[0], environment: 'production' })
  assert.is((await get(PRODUCTION[1], '/v1/whoami', stagingKey)).status, 401, "staging's key is refused by production's gateway")
  assert.is((await get(PRODUCTION[1], '/v1/whoami')).status, 401, 'no key, no entry')
  const viaStaging = await get(STAGING[1], '/v1/whoami', stagingKey)
  assert.equal([viaStaging.status, await viaStaging.json()], [200, { app: STAGING[0], environment: 'staging' }])
  // The internal API itself is private: no public address answers for it.
  await rejects(get(PRODUCTION[0], '/health'))
  await s.sandbox.close()
})

test('a wrong path in the settings is one line naming the path and the setting, before any change', async () => {
  const s = await scenario()
  const { toolkit } = vendored()
  const settings = JSON.parse(readFileSync(join(toolkit, 'infra/fly/settings.json'), 'utf8'))
  writeFileSync(join(toolkit, 'infra/fly/settings.json'), JSON.stringify({ ...settings, apps: { ...settings.apps, 'web-admin': { source: 'apps/admin', package: '@microbima/web-admin' } } }))
  const result = await run(process.execPath, [join(toolkit, 'dist/deploy.cjs'), 'staging'], { cwd: toolkit, env: s.env })
  assert.is(result.code, 2, result.output)
  assert.match(result.stderr, /^error: \.\.\/\.\.\/apps\/admin is not a directory: fix "apps\.web-admin\.source" in infra\/fly\/settings\.json$/m)
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('the toolkit copied into a monorepo with its sample settings says so', async () => {
  const s = await scenario()
  const { toolkit } = vendored()
  cpSync(join(REPO, 'infra/fly/settings.json'), join(toolkit, 'infra/fly/settings.json'))
  cpSync(join(REPO, '.dockerignore'), join(toolkit, '.dockerignore'))
  cpSync(join(REPO, 'examples'), join(toolkit, 'examples'), { recursive: true, filter: (src) => !src.includes('node_modules') })
  const result = await run(process.execPath, [join(toolkit, 'dist/deploy.cjs'), 'staging', '--dry-run'], { cwd: toolkit, env: s.env })
  assert.is(result.code, 0, result.output)
  assert.match(result.stderr, "infra/fly/settings.json still points at the toolkit's sample app (examples/microbima)")
  await s.sandbox.close()
})

test('nothing in the repository refers to the workplace shared folder or to a path of this machine', () => {
  // git grep exits 1 when nothing matches: that is the answer wanted. The machine's path is
  // joined at run time, or this line would match itself.
  const machinePath = ['', 'work', ''].join('/')
  const grep = spawnSync('git', ['grep', '-n', '-I', '-e', '\\.\\./shared', '-e', machinePath, '--', '.', ':!node_modules'], { cwd: REPO, encoding: 'utf8' })
  assert.is(grep.stdout.trim(), '')
  assert.is(grep.status, 1, grep.stderr)
})

test.run()
