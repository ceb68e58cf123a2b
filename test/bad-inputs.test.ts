import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { scenario, type Scenario } from './support/scenario.ts'
import { SECRET, projectCopy, runScript, tempDir, writeEnvDir, type RunResult } from './support/toolkit.ts'

// Every bad input: a one-line error naming the problem and the fix, exit 2, no write in the
// simulator's call log, no JavaScript stack trace, no secret echoed.

let shared: Scenario | undefined
const ready = async () => (shared ??= await scenario({ stagingDeployed: true }))

function expectUsageError(result: RunResult, message: string | RegExp, s: Scenario) {
  assert.is(result.code, 2, result.output)
  const errors = result.stderr.split('\n').filter((l) => l.startsWith('error: '))
  assert.is(errors.length, 1, result.stderr)
  assert.match(errors[0], message)
  assert.not.match(result.output, /\n\s+at .+:\d+:\d+/)
  for (const value of Object.values(SECRET)) assert.not.ok(result.output.includes(value), `secret ${value} echoed`)
  assert.equal(s.sandbox.writes(), [])
}

/** An env folder like the scenario's, changed by `edit`. */
function editedEnv(s: Scenario, edit: (dir: string) => void): string {
  const dir = writeEnvDir(s.files, tempDir())
  edit(dir)
  return dir
}
const put = (dir: string, env: string, app: string, text: string, mode = 0o600) => {
  const path = join(dir, env, `${app}.env`)
  rmSync(path, { recursive: true, force: true })
  writeFileSync(path, text, { mode })
  chmodSync(path, mode)
}
const stagingUrl = (s: Scenario) => s.files.staging!['internal-api']!.DATABASE_URL

const cases: Array<[string, (s: Scenario) => Promise<RunResult>, string | RegExp]> = [
  ['unknown environment', (s) => runScript('deploy', ['qa'], { env: s.env }), 'unknown environment "qa": use staging or production (prod)'],
  ['no environment', (s) => runScript('health', [], { env: s.env }), 'no environment given'],
  ['unknown app', (s) => runScript('deploy', ['staging', '--app', 'api'], { env: s.env }), 'unknown app "api": use one of internal-api, public-api, web-admin'],
  ['unknown flag', (s) => runScript('deploy', ['staging', '--dryrun'], { env: s.env }), "Unknown option '--dryrun'"],
  ['missing env folder', (s) => runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: '/nonexistent/env' } }), '/nonexistent/env/staging/internal-api.env not found: copy'],
  ['missing env file', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => rmSync(join(d, 'staging', 'web-admin.env'))) } }), /web-admin\.env not found: copy .*web-admin\.env\.example/],
  ['malformed dotenv line', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'public-api', 'KONG_API_KEY=x\nnot a pair\n')) } }), 'line 2 is not NAME=VALUE'],
  ['duplicate key', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'public-api', 'A=1\nA=2\n')) } }), 'line 2 sets A again (first on line 1): keep one'],
  ['missing DATABASE_URL', (s) => runScript('migrate', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'JWT_SECRET=x\n')) } }), 'has no DATABASE_URL'],
  ['non-postgres URL', (s) => runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=mysql://u:p@h:3306/db\n')) } }), 'uses mysql:// but must be a postgres:// or postgresql:// URL'],
  ['DATABASE_URL not a URL', (s) => runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=localhost:5432\n')) } }), /DATABASE_URL (is not a URL|uses localhost:)/],
  ['same database in both environments', (s) => runScript('deploy', ['production', '--yes'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'production', 'internal-api', `DATABASE_URL=${stagingUrl(s)}\n`)) } }), 'staging and production name the same database'],
  ['staging URL names the production database app', (s) => runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=postgres://u:p@microbima-prod-db.flycast:5432/x\n')) } }), 'points at microbima-prod-db, the production database'],
  ['production URL names the staging database app', (s) => runScript('migrate', ['production', '--yes'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'production', 'internal-api', 'DATABASE_URL=postgres://u:p@microbima-staging-db.flycast:5432/x\n')) } }), 'points at microbima-staging-db, the staging database'],
  ['NODE_ENV contradicting the environment', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'NODE_ENV=production\n')) } }), 'sets NODE_ENV=production in the staging environment'],
  ['secret name Fly rejects', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION-SECRET=x\n')) } }), 'SESSION-SECRET is not a name Fly accepts'],
  ['empty value', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET=\n')) } }), 'SESSION_SECRET is empty: give it a value or remove the line'],
  ['placeholder value left from the .env.example', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET=CHANGE_ME\n')) } }), 'SESSION_SECRET still holds the CHANGE_ME placeholder of the .env.example: fill in its value'],
  ['a value flyctl cannot carry on stdin', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', `SESSION_SECRET='""x'\n`)) } }), 'the value of SESSION_SECRET starts with two double quotes'],
  ['unreadable env file', (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => { rmSync(join(d, 'staging', 'web-admin.env')); mkdirSync(join(d, 'staging', 'web-admin.env')) }) } }), /cannot read .*web-admin\.env \(EISDIR\)/],
  ['world-readable production env file', (s) => runScript('set-secrets', ['production', '--yes'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'production', 'web-admin', 'SESSION_SECRET=x\n', 0o644)) } }), 'is readable by every user (mode 644): run chmod 600'],
  ['migration folder without migration.sql', (s) => { const p = projectCopy(); mkdirSync(join(p, 'prisma/migrations/20250301000000_empty')); return runScript('deploy', ['staging'], { env: s.env, cwd: p }) }, '20250301000000_empty has no migration.sql: add it or remove the folder'],
  ['FLY_BIN missing', (s) => runScript('health', ['staging'], { env: { ...s.env, FLY_BIN: '/nonexistent/flyctl' } }), 'FLY_BIN=/nonexistent/flyctl does not exist'],
  ['FLY_BIN not executable', (s) => { const f = join(tempDir(), 'flyctl'); writeFileSync(f, '#!/bin/sh\n', { mode: 0o644 }); return runScript('health', ['staging'], { env: { ...s.env, FLY_BIN: f } }) }, 'is not an executable file'],
  ['flyctl not authenticated', (s) => runScript('deploy', ['staging'], { env: { ...s.env, FLY_API_TOKEN: '' } }), "flyctl is not logged in: run 'flyctl auth login' or set FLY_API_TOKEN"],
  ['IMAGE= that no release has', (s) => runScript('rollback', ['staging', '--app', 'web-admin', '--image', 'registry.fly.io/microbima-staging-web-admin:nope'], { env: s.env }), 'is not the image of any complete release'],
  ['VERSION= not a number', (s) => runScript('rollback', ['staging', '--app', 'web-admin', '--version', 'v3'], { env: s.env }), 'VERSION=v3 is not a release number'],
  ['VERSION= and IMAGE= together', (s) => runScript('rollback', ['staging', '--app', 'web-admin', '--version', '1', '--image', 'x'], { env: s.env }), 'IMAGE= and VERSION= both choose the target: give only one'],
  ['IMAGE= and BUILD=1 together', (s) => runScript('deploy', ['production', '--app', 'web-admin', '--image', 'registry.fly.io/a:b', '--build'], { env: s.env }), 'IMAGE= and BUILD=1 contradict each other'],
  ['IMAGE= without APP=', (s) => runScript('deploy', ['production', '--image', 'registry.fly.io/a:b'], { env: s.env }), "IMAGE= is one app's image: name the app with APP="],
  ['NAME= of a migration that does not exist', (s) => runScript('rollback-migration', ['staging', '--name', '20990101000000_nope'], { env: s.env }), 'no migration 20990101000000_nope in prisma/migrations'],
  ['NAME= missing', (s) => runScript('rollback-migration', ['staging'], { env: s.env }), 'which migration? give NAME='],
  ['NAME= not a valid migration name', (s) => runScript('migration', ['--name', 'Add Riders'], { env: s.env, cwd: projectCopy() }), 'NAME=Add Riders: use lowercase letters'],
  ['history --limit not a number', (s) => runScript('history', ['staging', '--limit', 'many'], { env: s.env }), '--limit many is not a positive number'],
]

for (const [name, invoke, message] of cases) {
  test(`bad input: ${name}`, async () => {
    const s = await ready()
    s.sandbox.clearCalls()
    expectUsageError(await invoke(s), message, s)
  })
}

test('at least 25 bad inputs are covered', () => {
  assert.ok(cases.length >= 25, String(cases.length))
})

test.run()
