import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import { scenario } from './support/scenario.ts'
import { projectCopy, runScript } from './support/toolkit.ts'

// An adopter's own app names: one pattern in the settings, overridable per app; a fly.toml that
// names another app is refused rather than overridden with --app.

const SETTINGS = 'infra/fly/settings.json'
const KEYS = ['internal-api', 'public-api', 'web-admin'] as const

/** A project copy whose settings name the apps `names` (and each fly.toml says so). */
function renamed(names: Record<string, unknown>, perApp: Partial<Record<(typeof KEYS)[number], string>> = {}, appName?: (dir: string) => string): string {
  const project = projectCopy()
  const settings = JSON.parse(readFileSync(join(project, SETTINGS), 'utf8'))
  settings.names = names
  for (const [key, name] of Object.entries(perApp)) settings.apps[key].name = name
  writeFileSync(join(project, SETTINGS), JSON.stringify(settings, null, 2))
  if (appName) {
    for (const dir of readdirSync(join(project, 'infra/fly')).filter((d) => d.endsWith('-staging') || d.endsWith('-prod'))) {
      const toml = join(project, 'infra/fly', dir, 'fly.toml')
      writeFileSync(toml, readFileSync(toml, 'utf8').replace(/^app = ".*"$/m, `app = "${appName(dir)}"`))
    }
  }
  return project
}

test('the app names come from the settings: one pattern, one app overridden; every flyctl call uses them', async () => {
  const s = await scenario()
  // {short} is staging or prod; the web admin keeps a name of its own, with {env}.
  const project = renamed({ app: 'acme-{short}-{app}' }, { 'web-admin': 'acme-admin-{env}' }, (dir) => {
    const [key, short] = [dir.replace(/-(staging|prod)$/, ''), dir.endsWith('-prod') ? 'prod' : 'staging']
    return key === 'web-admin' ? `acme-admin-${short === 'prod' ? 'production' : 'staging'}` : `acme-${short}-${key}`
  })
  const names = { 'internal-api': 'acme-staging-internal-api', 'public-api': 'acme-staging-public-api', 'web-admin': 'acme-admin-staging' }
  for (const name of Object.values(names)) await s.sandbox.direct(['apps', 'create', name, '--org', 'microbima'])
  s.sandbox.clearCalls()
  const dry = await runScript('deploy', ['staging', '--dry-run'], { env: s.env, cwd: project })
  assert.is(dry.code, 0, dry.output)
  const apps = new Set(argvs(s.sandbox.calls()).map((a) => a[a.indexOf('--app') + 1]).filter(Boolean))
  assert.equal([...apps].sort(), Object.values(names).sort())
  for (const key of KEYS) {
    assert.match(dry.stdout, `(flyctl deploy --build-only --push --app ${names[key]} --config infra/fly/${key}-staging/fly.toml --remote-only`)
    assert.match(dry.stdout, `flyctl deploy --app ${names[key]} --config infra/fly/${key}-staging/fly.toml --image registry.fly.io/${names[key]}:`)
  }
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test('a fly.toml naming another app than the settings is refused (exit 2), nothing called; bad names are one line each (exit 2)', async () => {
  const s = await scenario()
  // Settings renamed, the fly.toml files left as they were.
  const mismatch = await runScript('deploy', ['staging', '--dry-run'], { env: s.env, cwd: renamed({ app: 'acme-{env}-{app}' }) })
  assert.is(mismatch.code, 2, mismatch.output)
  assert.match(mismatch.stderr, 'infra/fly/web-admin-staging/fly.toml says app = "microbima-staging-web-admin", but the toolkit deploys it to acme-staging-web-admin: make them agree')
  const rollback = await runScript('rollback', ['staging', '--app', 'public-api'], { env: s.env, cwd: renamed({ app: 'acme-{env}-{app}' }) })
  assert.is(rollback.code, 2, rollback.output)
  assert.match(rollback.stderr, 'infra/fly/public-api-staging/fly.toml says app = "microbima-staging-public-api", but the toolkit deploys it to acme-staging-public-api')
  const cases: [Record<string, unknown>, Partial<Record<(typeof KEYS)[number], string>>, string][] = [
    [{ app: 'acme-{app}' }, {}, `${SETTINGS}: "names.app" is "acme-{app}": it needs {env} or {short}, or staging and production would share the app`],
    [{ app: 'acme-{stage}-{app}' }, {}, `${SETTINGS}: "names.app" has {stage}: the placeholders are {env}, {short} and {app}`],
    [{ app: 'Acme_{env}-{app}' }, {}, 'the staging internal-api app would be named "Acme_staging-internal-api": Fly app names are 3 to 63 lowercase letters, digits and dashes'],
    [{}, { 'web-admin': 'microbima-{env}-public-api' }, 'the staging web-admin app and the staging public-api app would both be named microbima-staging-public-api: give each its own name'],
  ]
  for (const [names, perApp, message] of cases) {
    const result = await runScript('history', ['staging'], { env: s.env, cwd: renamed(names, perApp) })
    assert.is(result.code, 2, result.output)
    assert.match(result.stderr, message)
  }
  assert.equal(s.sandbox.writes(), [])
  await s.sandbox.close()
})

test.run()
