import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createSandbox, type Sandbox } from '../scripts/sandbox/sandbox.ts'
import { deliver, newEvent, requestBody, slackText, type NotificationEvent, type Receiver as Target } from '../scripts/lib/events/notify.ts'
import { displayUrl, receiverProblem } from '../scripts/lib/events/url.ts'
import { projectCopy, runMake, runScript, type RunResult } from './support/toolkit.ts'
import { signatureValid, startReceiver } from './support/receiver.ts'

// Notifications (README, "Hooks and notifications"): the receiver URL's rules, the signature, the
// retries, the 10 s bound whatever the receiver does, the spool and make notify-retry.

const SECRET = 'whsec-3Jd8-Lq0v-92Rt-xE5m'
const TOKEN = 'tok-QUERY-88e1d0'
const SLACK_PATH = '/services/T0SECRET1/B0SECRET2/xoxSECRETpathPART'

const event = (fields: Partial<NotificationEvent> = {}): NotificationEvent =>
  newEvent({ event: 'deploy.failed', operation: 'deploy', environment: 'production', apps: ['internal-api', 'web-admin'], images: { 'web-admin': 'registry.fly.io/microbima-staging-web-admin:0123456789ab' }, migrations: [], commit: '0123456789abcdef0123456789abcdef01234567', performer: 'alice', result: 'failed', duration_s: 41.2, reason: 'microbima-production-web-admin is unhealthy after its deploy', ...fields })

test('the receiver URL: https, or http to a loopback address; anything else is refused without showing its path or query', () => {
  assert.is(receiverProblem('https://hooks.example.com/x', 'NOTIFY_URL'), undefined)
  for (const ok of ['http://127.0.0.1:8080/x', 'http://localhost/x', 'http://[::1]:9/x']) assert.is(receiverProblem(ok, 'NOTIFY_URL'), undefined, ok)
  assert.is(receiverProblem(`http://hooks.slack.com${SLACK_PATH}?token=${TOKEN}`, 'NOTIFY_URL'), 'NOTIFY_URL=http://hooks.slack.com/… uses http to another machine: use https (http only to a loopback address such as 127.0.0.1)')
  assert.is(receiverProblem('ftp://example.com/drop', 'NOTIFY_URL'), 'NOTIFY_URL=ftp://example.com/… is not an http(s) URL: use https://…')
  assert.match(receiverProblem('hooks.example.com/x', 'NOTIFY_URL')!, 'is not a URL')
  assert.is(displayUrl(`https://hooks.slack.com${SLACK_PATH}`), 'https://hooks.slack.com/…')
  assert.is(displayUrl('https://relay.example.com:8443/'), 'https://relay.example.com:8443/')
})

test('deliver: signed JSON, 2xx delivered at once; a 4xx is not retried; a 5xx and a closed port are tried three times with backoff', async () => {
  const rx = await receiver(202)
  const to: Target = { url: `${rx.base}/in?token=${TOKEN}`, secret: SECRET, format: 'json', shown: displayUrl(rx.base) }
  const e = event()
  assert.is(await deliver(to, e, Date.now() + 10_000, new AbortController().signal), undefined)
  assert.is(rx.requests.length, 1)
  const [r] = rx.requests.splice(0)
  assert.is(r.body, JSON.stringify(e))
  assert.ok(signatureValid(SECRET, r.headers['x-microbima-signature'], r.body))
  assert.not.ok(signatureValid(SECRET, r.headers['x-microbima-signature'], r.body.replace('alice', 'mallory')), 'the signature covers the body')
  assert.is(r.headers['x-microbima-event'], 'deploy.failed')
  assert.is(r.headers['x-microbima-delivery'], e.id)

  rx.answer = 404
  assert.is(await deliver(to, e, Date.now() + 10_000, new AbortController().signal), 'HTTP 404 (not retried: the receiver refused it)')
  assert.is(rx.requests.splice(0).length, 1)

  rx.answer = 503
  const started = Date.now()
  assert.is(await deliver(to, e, Date.now() + 10_000, new AbortController().signal), 'HTTP 503 after 3 attempts')
  const tries = rx.requests.splice(0)
  assert.is(tries.length, 3)
  assert.ok(tries[1].at - tries[0].at >= 450 && tries[2].at - tries[1].at >= 950, 'backoff 0.5 s, then 1 s')
  assert.ok(Date.now() - started < 4000)
  await rx.close()
  assert.match((await deliver(to, e, Date.now() + 10_000, new AbortController().signal))!, /^ECONNREFUSED after 3 attempts$/)
})

test('Slack format: one line with the environment, apps, commit, result, duration and reason', () => {
  const text = slackText(event({ reason: 'health\nfailed' }))
  assert.is(text, 'deploy.failed on production: internal-api, web-admin · commit 0123456789ab · result failed · 41.2s · by alice · reason: health failed')
  assert.equal(JSON.parse(requestBody({ url: 'https://x', format: 'slack', shown: '' }, event())), { text: slackText(event()) })
})

let sandbox: Sandbox
/** Closed at the end whatever happened: a receiver holding a connection would keep the test alive. */
const receivers: Array<{ close(): Promise<void> }> = []
const receiver = async (answer: number | 'never') => {
  const rx = await startReceiver(answer)
  receivers.push(rx)
  return rx
}

test.before(async () => {
  sandbox = await createSandbox({ timeScale: 0.005 })
  sandbox.seedApps()
})

test.after(async () => {
  await Promise.all(receivers.map((rx) => rx.close()))
  await sandbox.close()
})

/** make rollback-staging APP=web-admin where there is nothing to roll back to: exit 1 before any
 * change, and its rollback.failed goes out as the run ends. */
const rollback = (cwd: string, extra: Record<string, string>) => runScript('rollback', ['staging', '--app', 'web-admin'], { env: { ...sandbox.env, GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567', ...extra }, cwd })

const spool = (dir: string) => join(dir, '.deploy-state/pending-notifications.jsonl')

test('bad notification settings are exit 2 before anything runs, and never show the URL\'s path or query, nor the secret', async () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ NOTIFY_URL: `http://hooks.example.com${SLACK_PATH}?token=${TOKEN}` }, 'NOTIFY_URL=http://hooks.example.com/… uses http to another machine'],
    [{ NOTIFY_URL: '' }, 'NOTIFY_URL is empty'],
    [{ NOTIFY_URL: 'https://example.com/x', NOTIFY_FORMAT: 'xml' }, 'NOTIFY_FORMAT=xml is not a format: use json (the default) or slack'],
    [{ NOTIFY_URL: 'https://example.com/x', NOTIFY_SECRET: 'short-one' }, 'NOTIFY_SECRET is shorter than 16 characters'],
    [{ NOTIFY_URL: 'https://example.com/x', NOTIFY_SECRET: 'averyplainsecretword' }, 'NOTIFY_SECRET is a plain word'],
    [{ HOOK_TIMEOUT: 'soon' }, 'HOOK_TIMEOUT=soon is not a number of seconds'],
    [{ HOOKS_DIR: '' }, 'HOOKS_DIR= is empty'],
    [{ HOOKS_DIR: '/nonexistent/hooks' }, 'HOOKS_DIR=/nonexistent/hooks is not a folder'],
  ]
  const project = projectCopy()
  const results = await Promise.all(cases.map(([env]) => rollback(project, env)))
  for (const [i, [env, message]] of cases.entries()) {
    const result = results[i]
    assert.is(result.code, 2, `${JSON.stringify(env)}: ${result.output}`)
    assert.match(result.stderr, message)
    for (const secret of [TOKEN, 'T0SECRET1', 'short-one', 'averyplainsecretword']) assert.not.match(result.output, secret)
  }
  assert.equal(sandbox.calls(), [], 'nothing ran')
  // notify.url in the settings is checked the same way, even by a target that reads no other setting.
  const settingsPath = join(project, 'infra/fly/settings.json')
  const settings = JSON.parse(readFileSync(settingsPath, 'utf8'))
  writeFileSync(settingsPath, JSON.stringify({ ...settings, notify: { url: `http://hooks.example.com${SLACK_PATH}` } }))
  const fromSettings = await rollback(project, {})
  assert.is(fromSettings.code, 2, fromSettings.output)
  assert.match(fromSettings.stderr, 'infra/fly/settings.json: notify.url=http://hooks.example.com/… uses http to another machine')
  assert.not.match(fromSettings.output, 'T0SECRET1')
  // A hook file that cannot run is a configuration error, not a check silently skipped.
  const hooks = join(project, 'hooks')
  writeFileSync(settingsPath, JSON.stringify(settings))
  await import('node:fs').then((fs) => (fs.mkdirSync(hooks), fs.writeFileSync(join(hooks, 'pre-rollback'), '#!/bin/sh\nexit 0\n', { mode: 0o644 })))
  const notExecutable = await rollback(project, { HOOKS_DIR: 'hooks' })
  assert.is(notExecutable.code, 2, notExecutable.output)
  assert.match(notExecutable.stderr, 'hooks/pre-rollback is not executable: chmod +x hooks/pre-rollback')
})

test('a receiver that never answers holds the run 10 s at most, one that answers 500 much less; the exit code stays; each undelivered event is one warning and waits in the spool for make notify-retry', async () => {
  const silent = await receiver('never')
  const failing = await receiver(500)
  const [quiet, slack] = [projectCopy(), projectCopy()]
  // Slack's URL from the settings file, as a team would commit it (it names no secret in git in
  // real life: here it is the test's own receiver).
  const settingsPath = join(slack, 'infra/fly/settings.json')
  writeFileSync(settingsPath, JSON.stringify({ ...JSON.parse(readFileSync(settingsPath, 'utf8')), notify: { url: `${failing.base}${SLACK_PATH}` } }))
  const ended: Record<string, number> = {}
  const timed = (name: string, p: Promise<RunResult>) => p.then((r) => ((ended[name] = Date.now()), r))
  const [a, b] = await Promise.all([
    timed('a', rollback(quiet, { NOTIFY_URL: `${silent.base}/in?token=${TOKEN}`, NOTIFY_SECRET: SECRET })),
    timed('b', rollback(slack, { NOTIFY_FORMAT: 'slack' })),
  ])
  for (const result of [a, b]) {
    assert.is(result.code, 1, result.output)
    assert.match(result.stderr, 'has no earlier complete release')
    for (const secret of [TOKEN, 'T0SECRET1', SECRET]) assert.not.match(result.output, secret)
  }
  // Never answered: three attempts, and the run ended within 10 s of the first.
  assert.is(silent.requests.length, 3)
  const held = ended.a - silent.requests[0].at
  assert.ok(held <= 10_500, `held ${held}ms`)
  assert.ok(silent.requests.every((r) => signatureValid(SECRET, r.headers['x-microbima-signature'], r.body)))
  const warnings = a.stderr.split('\n').filter((line) => line.includes('notification'))
  assert.equal(warnings.length, 1, a.stderr)
  assert.match(warnings[0], `notification rollback.failed not delivered to ${silent.base}/… (no answer within`)
  assert.match(warnings[0], 'kept in .deploy-state/pending-notifications.jsonl; make notify-retry sends it')
  // 500: three attempts with backoff, then on its way.
  assert.is(failing.requests.length, 3)
  assert.ok(ended.b - failing.requests[0].at < 4000)
  assert.match(b.stderr, `notification rollback.failed not delivered to ${failing.base}/… (HTTP 500 after 3 attempts)`)
  const { text } = JSON.parse(failing.requests[0].body) as { text: string }
  assert.match(text, /^rollback\.failed on staging: web-admin · commit 0123456789ab · result failed · [\d.]+s · by \S+ · reason: microbima-staging-web-admin has no earlier complete release/)
  assert.not.match(text, '\n')

  // The spool holds the event, not the URL's secret parts nor the signing secret.
  const kept = readFileSync(spool(quiet), 'utf8')
  assert.not.match(kept, TOKEN)
  assert.not.match(kept, SECRET)
  const [entry] = kept.trim().split('\n').map((line) => JSON.parse(line))
  assert.is(entry.event.event, 'rollback.failed')
  assert.is(entry.to, `${silent.base}/…`)
  await silent.close()

  // make notify-retry: to a receiver that fails, it stays (exit 1); to one that answers, it goes, signed anew.
  const again = await runScript('notify-retry', [], { env: { ...sandbox.env, NOTIFY_FORMAT: 'slack' }, cwd: slack })
  assert.is(again.code, 1, again.output)
  assert.match(again.stderr, '1 of 1 notification(s) not delivered')
  assert.ok(existsSync(spool(slack)))
  await failing.close()
  const good = await receiver(204)
  const sent = await runScript('notify-retry', [], { env: { ...sandbox.env, NOTIFY_URL: `${good.base}/in?token=${TOKEN}`, NOTIFY_SECRET: SECRET }, cwd: quiet })
  assert.is(sent.code, 0, sent.output)
  assert.match(sent.stdout, /rollback\.failed\s+staging\s+delivered/)
  assert.is(good.requests.length, 1)
  assert.ok(signatureValid(SECRET, good.requests[0].headers['x-microbima-signature'], good.requests[0].body))
  assert.equal(JSON.parse(good.requests[0].body), entry.event)
  assert.not.ok(existsSync(spool(quiet)))
  const nothing = await runScript('notify-retry', [], { env: { ...sandbox.env, NOTIFY_URL: `${good.base}/in` }, cwd: quiet })
  assert.is(nothing.code, 0, nothing.output)
  assert.match(nothing.stderr, 'no notification waits')
  await good.close()
  // The make target exists, and says what it needs.
  const make = await runMake('notify-retry', {}, { env: { NOTIFY_URL: undefined } })
  assert.is(make.code, 2, make.output)
  assert.match(make.stderr, 'no receiver to send to: set NOTIFY_URL')
})

test.run()
