import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { argvs } from '../scripts/sandbox/sandbox.ts'
import { who } from '../scripts/lib/safety/who.ts'
import { sql } from './support/pg.ts'
import { PRODUCTION, SHOWN_LABEL, STAGING, scenario, type Scenario } from './support/scenario.ts'
import { MIGRATIONS, REPO, SECRET, addMigration, leftovers, projectCopy, runMake, runScript, tempDir, type RunResult } from './support/toolkit.ts'
import { signatureValid, startReceiver, type Receiver } from './support/receiver.ts'

// Hooks and notifications of every target that deploys, migrates or rolls back (README, "Hooks
// and notifications"), on one sandbox: the same recording hook under all six names, told by a
// control file what to do (pass, fail, hang), and a local receiver that checks the signatures.

const NEW = '20250301000000_add_policy_riders'
const UP = 'CREATE TABLE "PolicyRider" ("id" TEXT NOT NULL, CONSTRAINT "PolicyRider_pkey" PRIMARY KEY ("id"));\n'
const DOWN = 'DROP TABLE "PolicyRider";\n'
const COMMIT = '0123456789abcdef0123456789abcdef01234567'
const NOTIFY_SECRET = 'whsec-7Hq2-x9Zk-41pV-0aQe'
const TOKEN = 'tok-QUERY-5f2a9c'
const POINTS = ['pre-deploy', 'post-deploy', 'pre-migrate', 'post-migrate', 'pre-rollback', 'post-rollback']

// Records its whole environment, prints a secret's name (and what it sees of its value), then does
// what $HOOK_CTL/<its point> says.
const HOOK = `#!/bin/sh
{ echo "== $MICROBIMA_EVENT"; env | sort; } >> "$HOOK_LOG"
echo "JWT_SECRET is \${JWT_SECRET:-not set here}"
case "$(cat "$HOOK_CTL/$MICROBIMA_EVENT" 2>/dev/null)" in
  fail) echo "looking at the calendar" >&2; echo "change freeze until Monday ($MICROBIMA_EVENT)" >&2; exit 7 ;;
  hang) sleep 1000 & echo "waiting for the status page" >&2; sleep 1000 ;;
  linger) sleep 1000 & echo "left a sleep behind" ;;
esac
exit 0
`

let s: Scenario
let project: string
let rx: Receiver
let env: Record<string, string>
let pending: string[]
const logFile = join(tempDir('mb-hooks-'), 'hooks.log')
const ctl = tempDir('mb-hook-ctl-')

interface HookRun {
  point: string
  vars: Record<string, string>
  /** Every line of its environment. */
  text: string
}

/** The hook runs since the last call, in order. */
function hookRuns(): HookRun[] {
  if (!existsSync(logFile)) return []
  const text = readFileSync(logFile, 'utf8')
  rmSync(logFile)
  return text.split(/^== /m).filter(Boolean).map((section) => {
    const [point, ...lines] = section.split('\n')
    const vars = Object.fromEntries(lines.filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    return { point, vars, text: section }
  })
}

function control(point: string, mode?: 'fail' | 'hang' | 'linger'): void {
  const path = join(ctl, point)
  if (mode) writeFileSync(path, mode)
  else rmSync(path, { force: true })
}

/** The events received since the last call, each checked against its signature. */
function received(): Array<Record<string, unknown>> {
  const requests = rx.requests.splice(0)
  for (const r of requests) {
    assert.ok(signatureValid(NOTIFY_SECRET, r.headers['x-microbima-signature'], r.body), `bad signature on ${r.body}`)
    assert.is(r.headers['content-type'], 'application/json')
    assert.is(r.path, `/mb/events?token=${TOKEN}`)
  }
  return requests.map((r) => JSON.parse(r.body) as Record<string, unknown>)
}

/** Nothing secret in what a run printed or what a hook saw. */
function noSecrets(what: string, text: string): void {
  for (const value of [...Object.values(SECRET), NOTIFY_SECRET, TOKEN]) assert.not.ok(text.includes(value), `${what} shows ${value}`)
}

const images = (app: string) => s.sandbox.state().apps[app].machines.map((m) => m.image)
const ledger = (url: string, operation: string) => sql<{ result: string; detail: string }>(url, `SELECT result, detail FROM microbima_deploy.ledger WHERE operation = '${operation}' ORDER BY id`)

const run = (script: string, args: string[], extra: Record<string, string> = {}): Promise<RunResult> => runScript(script, args, { env: { ...env, ...extra }, cwd: project })

test.before(async () => {
  // Staging deploys for the first time in the first test: every migration is pending there.
  s = await scenario()
  project = projectCopy()
  addMigration(project, NEW, UP, DOWN)
  pending = readdirSync(join(project, MIGRATIONS)).filter((name) => /^\d+_/.test(name)).sort()
  mkdirSync(join(project, 'hooks'))
  for (const point of POINTS) {
    writeFileSync(join(project, 'hooks', point), HOOK)
    chmodSync(join(project, 'hooks', point), 0o755)
  }
  rx = await startReceiver()
  // As an operator's shell or a CI job may have it: a secret value exported beside the toolkit.
  env = { ...s.env, HOOKS_DIR: 'hooks', HOOK_LOG: logFile, HOOK_CTL: ctl, NOTIFY_URL: `${rx.base}/mb/events?token=${TOKEN}`, NOTIFY_SECRET, GITHUB_SHA: COMMIT, JWT_SECRET: SECRET.jwt }
})

test.after(async () => {
  await rx.close()
  await s.sandbox.close()
})

test('deploy-staging: pre-deploy, pre-migrate, post-migrate, post-deploy with the interface variables; deploy.started, migrate.succeeded, deploy.succeeded signed; no hook sees a secret value', async () => {
  const result = await run('deploy', ['staging'])
  assert.is(result.code, 0, result.output)
  const runs = hookRuns()
  assert.equal(runs.map((r) => r.point), ['pre-deploy', 'pre-migrate', 'post-migrate', 'post-deploy'])
  const deployed = Object.fromEntries(['internal-api', 'public-api', 'web-admin'].map((key, i) => [key, images(STAGING[i])[0]]))
  const [pre, preMigrate, postMigrate, post] = runs.map((r) => r.vars)
  for (const vars of [pre, preMigrate, postMigrate, post]) {
    assert.is(vars.MICROBIMA_ENVIRONMENT, 'staging')
    assert.is(vars.MICROBIMA_COMMIT, COMMIT)
    assert.is(vars.MICROBIMA_PERFORMER, who())
  }
  assert.is(pre.MICROBIMA_EVENT, 'pre-deploy')
  assert.is(pre.MICROBIMA_APPS, 'internal-api public-api web-admin')
  assert.is(preMigrate.MICROBIMA_MIGRATIONS, pending.join(' '))
  assert.is(pending.at(-1), NEW)
  assert.not.ok('MICROBIMA_RESULT' in pre, 'a pre-* hook has no result')
  assert.is(postMigrate.MICROBIMA_RESULT, 'succeeded')
  assert.is(post.MICROBIMA_RESULT, 'succeeded')
  assert.match(post.MICROBIMA_DURATION_S, /^\d+$/)
  assert.is(post.MICROBIMA_IMAGES, Object.entries(deployed).map(([k, v]) => `${k}=${v}`).join(' '))
  // The toolkit's own environment reaches the hook; a value from an env file does not, under any name.
  assert.is(pre.HOOK_CTL, ctl)
  assert.not.ok('JWT_SECRET' in pre)
  assert.not.ok('NOTIFY_SECRET' in pre || 'NOTIFY_URL' in pre, 'the receiver and its secret are not the hook\'s')
  for (const r of runs) noSecrets(`the ${r.point} hook's environment`, r.text)
  assert.match(result.stderr, '│ JWT_SECRET is not set here')
  noSecrets('the output', result.output)

  const events = received()
  assert.is(events[0].event, 'deploy.started', 'started goes first, before the deploy')
  assert.equal(events.map((e) => e.event).sort(), ['deploy.started', 'deploy.succeeded', 'migrate.succeeded'])
  const done = events.find((e) => e.event === 'deploy.succeeded')!
  assert.equal(Object.keys(done).sort(), ['apps', 'at', 'commit', 'duration_s', 'environment', 'event', 'id', 'images', 'migrations', 'operation', 'performer', 'reason', 'result'])
  assert.equal({ ...done, at: undefined, id: undefined, duration_s: undefined }, { event: 'deploy.succeeded', operation: 'deploy', environment: 'staging', apps: ['internal-api', 'public-api', 'web-admin'], images: deployed, migrations: pending, commit: COMMIT, performer: who(), result: 'succeeded', reason: null, at: undefined, id: undefined, duration_s: undefined })
  assert.ok(typeof done.duration_s === 'number' && done.duration_s > 0)
  assert.ok(Math.abs(Date.parse(done.at as string) - Date.now()) < 60_000)
  const migrated = events.find((e) => e.event === 'migrate.succeeded')!
  assert.equal([migrated.operation, migrated.result, migrated.migrations], ['migrate', 'succeeded', pending])
})

test('a failing pre-deploy hook refuses with exit 3 before any change, naming the hook, its status and its last stderr line; no post hook; deploy.failed; the ledger says so', async () => {
  control('pre-deploy', 'fail')
  s.sandbox.clearCalls()
  const result = await run('deploy', ['staging', '--app', 'web-admin'])
  control('pre-deploy')
  assert.is(result.code, 3, result.output)
  assert.match(result.stderr, 'refused: the pre-deploy hook hooks/pre-deploy exited with status 7: change freeze until Monday (pre-deploy); the deploy was not started, nothing was changed')
  assert.equal(s.sandbox.writes(), [])
  assert.equal(hookRuns().map((r) => r.point), ['pre-deploy'])
  const events = received()
  assert.equal(events.map((e) => [e.event, e.result]), [['deploy.failed', 'failed']])
  assert.match(String(events[0].reason), 'refused: the pre-deploy hook hooks/pre-deploy exited with status 7: change freeze until Monday')
  const [row] = await ledger(s.dbs.staging, 'pre-deploy hook')
  assert.equal(row, { result: 'refused', detail: 'hooks/pre-deploy exited with status 7: change freeze until Monday (pre-deploy)' })
})

test('a hook that hangs is stopped at HOOK_TIMEOUT with its whole process group; migrate-staging is refused (exit 3), migrate.failed', async () => {
  control('pre-migrate', 'hang')
  s.sandbox.clearCalls()
  const started = Date.now()
  const result = await run('migrate', ['staging'], { HOOK_TIMEOUT: '1' })
  control('pre-migrate')
  assert.is(result.code, 3, result.output)
  assert.ok(Date.now() - started < 15_000, 'stopped at the timeout, not left to run')
  assert.match(result.stderr, 'refused: the pre-migrate hook hooks/pre-migrate timed out after 1s (HOOK_TIMEOUT) and was stopped with its process group: waiting for the status page')
  // The hook's own sleep and the one it left in the background are both gone.
  assert.equal(leftovers(result.marker), [])
  assert.not.ok(argvs(s.sandbox.writes()).some((a) => a[0] === 'ssh'), 'no migration ran')
  assert.equal(hookRuns().map((r) => r.point), ['pre-migrate'])
  assert.equal(received().map((e) => [e.event, e.operation]), [['migrate.failed', 'migrate']])
})

test('migrate-staging: pre-migrate and post-migrate around prisma migrate deploy; migrate.succeeded, and migrate.failed when the remote migrate fails', async () => {
  const ok = await run('migrate', ['staging'])
  assert.is(ok.code, 0, ok.output)
  const runs = hookRuns()
  assert.equal(runs.map((r) => [r.point, r.vars.MICROBIMA_OPERATION, r.vars.MICROBIMA_APPS, r.vars.MICROBIMA_RESULT]), [['pre-migrate', 'migrate', 'internal-api', undefined], ['post-migrate', 'migrate', 'internal-api', 'succeeded']])
  assert.equal(received().map((e) => [e.event, e.result]), [['migrate.succeeded', 'succeeded']])
  s.sandbox.fault({ command: 'ssh', app: STAGING[0], kind: 'remote-fail', times: 1 })
  const failed = await run('migrate', ['staging'])
  assert.is(failed.code, 1, failed.output)
  assert.equal(hookRuns().map((r) => [r.point, r.vars.MICROBIMA_RESULT]), [['pre-migrate', undefined], ['post-migrate', 'failed']])
  const [event] = received()
  assert.equal([event.event, event.result], ['migrate.failed', 'failed'])
  assert.match(String(event.reason), `prisma migrate deploy failed on ${STAGING[0]} with status 1`)
})

test('automatic rollback: pre-rollback and post-rollback around it (MICROBIMA_TRIGGER=automatic); post-deploy says rolled-back; deploy.rolled_back; a failing post hook only warns', async () => {
  const old = images(STAGING[2])[0]
  s.sandbox.fault({ command: 'deploy', app: STAGING[2], kind: 'http-5xx', times: 1 })
  control('post-deploy', 'fail')
  const result = await run('deploy', ['staging', '--app', 'web-admin'], { HEALTH_TIMEOUT: '2' })
  control('post-deploy')
  assert.is(result.code, 1, result.output)
  assert.equal(images(STAGING[2]), [old, old])
  const runs = hookRuns()
  assert.equal(runs.map((r) => r.point), ['pre-deploy', 'pre-rollback', 'post-rollback', 'post-deploy'])
  const [, preRollback, postRollback, post] = runs.map((r) => r.vars)
  assert.equal([preRollback.MICROBIMA_TRIGGER, preRollback.MICROBIMA_APPS, preRollback.MICROBIMA_IMAGES, preRollback.MICROBIMA_OPERATION], ['automatic', 'web-admin', `web-admin=${old}`, 'rollback'])
  assert.is(postRollback.MICROBIMA_RESULT, 'succeeded')
  assert.is(post.MICROBIMA_RESULT, 'rolled-back')
  assert.match(post.MICROBIMA_REASON, `${STAGING[2]} is unhealthy after its deploy`)
  assert.match(result.stderr, 'the post-deploy hook hooks/post-deploy exited with status 7: change freeze until Monday (post-deploy) (a warning')
  const [row] = await ledger(s.dbs.staging, 'post-deploy hook')
  assert.is(row.result, 'failed')
  const events = received()
  assert.equal(events.map((e) => e.event), ['deploy.started', 'deploy.rolled_back'])
  assert.equal([events[1].result, events[1].images], ['rolled-back', { 'web-admin': old }])
  assert.match(String(events[1].reason), `${STAGING[2]} is unhealthy after its deploy`)
})

let beforeVeto = ''

test('a pre-rollback hook that fails vetoes the automatic rollback: the app stays on the new image, the summary says why (exit 1, deploy.failed)', async () => {
  beforeVeto = images(STAGING[2])[0]
  s.sandbox.fault({ command: 'deploy', app: STAGING[2], kind: 'http-5xx', times: 1 })
  control('pre-rollback', 'fail')
  s.sandbox.clearCalls()
  const result = await run('deploy', ['staging', '--app', 'web-admin'], { HEALTH_TIMEOUT: '1' })
  control('pre-rollback')
  assert.is(result.code, 1, result.output)
  assert.not.ok(argvs(s.sandbox.writes()).some((a) => a.includes('--skip-release-command')), 'no rollback deploy')
  assert.is.not(images(STAGING[2])[0], beforeVeto)
  assert.match(result.stdout.replace(/\s+/g, ' '), 'automatic rollback FAILED: the pre-rollback hook hooks/pre-rollback exited with status 7')
  assert.equal(hookRuns().map((r) => r.point), ['pre-deploy', 'pre-rollback', 'post-deploy'])
  assert.equal(received().map((e) => e.event), ['deploy.started', 'deploy.failed'])
})

test('rollback-staging: the rollback hooks see the apps and the images they go back to; rollback.succeeded, rollback.failed; a failing post-rollback hook leaves exit 0', async () => {
  // web-admin runs the image the vetoed rollback left: roll it back by hand, to the one before.
  const target = beforeVeto
  const left = images(STAGING[2])[0]
  control('post-rollback', 'fail')
  const ok = await run('rollback', ['staging', '--app', 'web-admin'])
  control('post-rollback')
  assert.is(ok.code, 0, ok.output)
  assert.match(ok.stderr, 'the post-rollback hook hooks/post-rollback exited with status 7')
  const runs = hookRuns()
  assert.equal(runs.map((r) => [r.point, r.vars.MICROBIMA_APPS, r.vars.MICROBIMA_IMAGES, r.vars.MICROBIMA_RESULT, r.vars.MICROBIMA_TRIGGER]), [
    ['pre-rollback', 'web-admin', `web-admin=${target}`, undefined, undefined],
    ['post-rollback', 'web-admin', `web-admin=${target}`, 'succeeded', undefined],
  ])
  assert.equal(received().map((e) => [e.event, e.images]), [['rollback.succeeded', { 'web-admin': target }]])
  // Every earlier image failed its health checks here: no target of its own (exit 1, no hook ran).
  const none = await run('rollback', ['staging', '--app', 'web-admin'])
  assert.is(none.code, 1, none.output)
  assert.match(none.stderr, 'every earlier image failed its health checks here')
  assert.equal(hookRuns(), [])
  assert.equal(received().map((e) => e.event), ['rollback.failed'])
  // Back the other way by hand (IMAGE=), and the deploy of the rollback fails.
  s.sandbox.fault({ command: 'deploy', app: STAGING[2], kind: 'fail', times: 1 })
  const failed = await run('rollback', ['staging', '--app', 'web-admin', '--image', left])
  assert.is(failed.code, 1, failed.output)
  assert.equal(hookRuns().map((r) => [r.point, r.vars.MICROBIMA_RESULT]), [['pre-rollback', undefined], ['post-rollback', 'failed']])
  assert.equal(received().map((e) => [e.event, e.result]), [['rollback.failed', 'failed']])
})

test('deploy-prod: the change-freeze sample refuses (exit 3, deploy.failed); then the promotion runs the hooks with the staging images', async () => {
  // The sample change freeze, enabled as its header says, with a FREEZE file.
  const frozen = tempDir('mb-freeze-')
  mkdirSync(join(project, 'infra/hooks'), { recursive: true })
  copyFileSync(join(REPO, 'infra/hooks/pre-deploy.sample'), join(frozen, 'pre-deploy'))
  chmodSync(join(frozen, 'pre-deploy'), 0o755)
  writeFileSync(join(project, 'infra/hooks/FREEZE'), 'year-end closing, until 2 January\n')
  const freeze = await run('deploy', ['production', '--yes'], { HOOKS_DIR: frozen })
  rmSync(join(project, 'infra/hooks/FREEZE'))
  assert.is(freeze.code, 3, freeze.output)
  assert.match(freeze.stderr, `refused: the pre-deploy hook ${frozen}/pre-deploy exited with status 1: change freeze: year-end closing, until 2 January (infra/hooks/FREEZE)`)
  const [refused] = received()
  assert.equal([refused.event, refused.environment], ['deploy.failed', 'production'])
  assert.match(String(refused.reason), 'change freeze: year-end closing')

  s.sandbox.clearCalls()
  const staged = STAGING.map((app) => images(app)[0])
  const result = await run('deploy', ['production', '--yes'])
  assert.is(result.code, 0, result.output)
  const runs = hookRuns()
  assert.equal(runs.map((r) => r.point), ['pre-deploy', 'pre-migrate', 'post-migrate', 'post-deploy'])
  const promoted = ['internal-api', 'public-api', 'web-admin'].map((key, i) => `${key}=${staged[i]}`).join(' ')
  assert.is(runs[0].vars.MICROBIMA_IMAGES, promoted, 'pre-deploy knows the images it will promote')
  assert.is(runs[0].vars.MICROBIMA_ENVIRONMENT, 'production')
  assert.is(runs[3].vars.MICROBIMA_IMAGES, promoted)
  for (const r of runs) noSecrets(`the ${r.point} hook's environment`, r.text)
  const events = received()
  assert.equal(events.map((e) => e.event).sort(), ['deploy.started', 'deploy.succeeded', 'migrate.succeeded'])
  assert.ok(PRODUCTION.every((app, i) => images(app)[0] === staged[i]))
})

test('rollback-migration-staging is a migrate operation: the migrate hooks (MICROBIMA_OPERATION=rollback-migration) and migrate.succeeded; what a hook leaves running is stopped', async () => {
  control('post-migrate', 'linger')
  const result = await run('rollback-migration', ['staging', '--name', NEW])
  control('post-migrate')
  assert.is(result.code, 0, result.output)
  assert.equal(leftovers(result.marker), [], 'the sleep the hook left behind did not outlive it')
  assert.equal(hookRuns().map((r) => [r.point, r.vars.MICROBIMA_OPERATION, r.vars.MICROBIMA_MIGRATIONS, r.vars.MICROBIMA_RESULT]), [
    ['pre-migrate', 'rollback-migration', NEW, undefined],
    ['post-migrate', 'rollback-migration', NEW, 'succeeded'],
  ])
  assert.equal(received().map((e) => [e.event, e.operation, e.migrations]), [['migrate.succeeded', 'rollback-migration', [NEW]]])
})

test('DRY_RUN=1 lists the hooks as commands it would run, runs none and sends nothing (make HOOKS_DIR=…)', async () => {
  const { HOOKS_DIR: _, ...outside } = env
  const result = await runMake('deploy-staging', { DRY_RUN: '1', APP: 'web-admin', HOOKS_DIR: join(project, 'hooks') }, { env: outside })
  assert.is(result.code, 0, result.output)
  assert.equal(hookRuns(), [])
  assert.equal(rx.requests, [])
  const hooks = join(project, 'hooks')
  assert.match(result.stdout, new RegExp(`^MICROBIMA_EVENT=pre-deploy MICROBIMA_OPERATION=deploy MICROBIMA_ENVIRONMENT=staging MICROBIMA_APPS=web-admin .*MICROBIMA_COMMIT=${COMMIT} .* ${hooks}/pre-deploy$`, 'm'), result.stdout)
  assert.match(result.stdout, new RegExp(`^MICROBIMA_EVENT=post-deploy .*MICROBIMA_RESULT=succeeded .* ${hooks}/post-deploy$`, 'm'))
  assert.match(result.stderr, `would notify ${rx.base}/…: deploy.started`)
  noSecrets('the dry run', result.output)
})

test('make history-staging JSON=1: one JSON object per line, oldest first, with the fields of the schema; the table fits 120 columns', async () => {
  const result = await runScript('history', ['staging'], { env: { ...env, JSON: '1' }, cwd: project })
  assert.is(result.code, 0, result.output)
  const lines = result.stdout.trim().split('\n')
  const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  const text = (v: unknown) => typeof v === 'string' && v.length > 0
  const textOrNull = (v: unknown) => v === null || typeof v === 'string'
  const SCHEMA: Record<string, (v: unknown) => boolean> = {
    operation: text,
    result: (v) => ['ok', 'failed', 'refused', 'interrupted', 'rolled back', 'started', 'unknown'].includes(v as string),
    at: (v) => typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(v),
    performer: text,
    apps: (v) => Array.isArray(v) && v.every((a) => ['internal-api', 'public-api', 'web-admin'].includes(a)),
    images: (v) => typeof v === 'object' && v !== null && Object.keys(v).join() === 'before,after' && Object.values(v).every(textOrNull),
    commit: (v) => v === null || (typeof v === 'string' && /^[0-9a-f]{40}$/.test(v)),
    duration_s: (v) => v === null || (typeof v === 'number' && v >= 0),
    reason: textOrNull,
    migrations: (v) => Array.isArray(v) && v.every(text),
    environment: (v) => v === 'staging',
    host: text,
    id: (v) => Number.isInteger(v),
  }
  for (const record of records) {
    assert.equal(Object.keys(record), Object.keys(SCHEMA), JSON.stringify(record))
    for (const [field, valid] of Object.entries(SCHEMA)) assert.ok(valid(record[field]), `${field} = ${JSON.stringify(record[field])}`)
  }
  const ids = records.map((r) => r.id as number)
  assert.equal(ids, [...ids].sort((a, b) => a - b), 'oldest first')
  assert.ok(records.some((r) => r.operation === 'pre-deploy hook' && r.result === 'refused' && (r.apps as string[]).length === 0))
  assert.ok(records.some((r) => r.operation === 'deploy' && (r.apps as string[])[0] === 'web-admin' && (r.images as { after: string }).after.startsWith('registry.fly.io/')))
  noSecrets('the history', result.stdout)

  const table = await runMake('history-staging', {}, { env: { ...env, ENV_DIR: env.ENV_DIR } })
  assert.is(table.code, 0, table.output)
  for (const line of table.stdout.split('\n')) assert.ok([...line].length <= 120, `${[...line].length} columns: ${line}`)
  // Images by their labels, whole on each side of the arrow.
  assert.match(table.stdout, new RegExp(`${SHOWN_LABEL.source} → (${SHOWN_LABEL.source}|…\\w{6})`))
})

test.run()
