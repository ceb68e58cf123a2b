import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { leftovers, run } from './support/toolkit.ts'

// The demo's simulated latencies are there for a person to watch; the tests run without them.
const FAST = { FLY_SIM_LATENCY: 'build=0,deploy=0,ssh=0,status=0,releases=0' }

test('make demo walks the whole runbook in the sandbox, exits 0 and leaves nothing running', async () => {
  const result = await run('make', ['-s', 'demo'], { timeoutMs: 300_000, env: FAST })
  assert.is(result.code, 0, result.output.slice(-3000))
  for (const step of ['create-apps-staging DB=1', 'set-secrets-staging', 'deploy-staging', 'health-staging', 'create-apps-prod DB=1 YES=1', 'migrate-status', 'deploy-prod YES=1', 'diff', 'status-staging', 'releases-staging LIMIT=2', 'console-staging APP=internal-api CMD=printenv NODE_ENV', 'rollback-staging APP=public-api', 'history-prod', 'restore-drill-prod']) {
    assert.match(result.stdout, `make ${step}`)
  }
  // It ends with a restore drill of production: the newest snapshot restored, checked, destroyed.
  assert.match(result.stdout, /restore drill of production\n[\s\S]*backup\s+vs_\w+ \(snapshot of microbima-prod-db\)[\s\S]*scratch copy\s+destroyed\nresult\s+verified/)
  // The fleet with an auto-stopped machine is healthy; builds, a streamed rollout; a rolling deploy stopped
  // half-way put back on one image; a failed health check with its evidence and the rollback.
  assert.match(result.stdout, /microbima-staging-web-admin\s+healthy\s+2 machines: 1 started, 1 auto-stopped/)
  // The builds as one line per app and phase, then a rollout streamed under its step.
  assert.match(result.stdout, /^ {2}microbima-staging-internal-api +pushed$/m)
  assert.match(result.stdout, /^ {4}│ Searching for image 'registry\.fly\.io\/microbima-staging-internal-api:git-[0-9a-f]{12}/m)
  assert.match(result.stdout, /microbima-staging-public-api\s+rolled back/)
  assert.match(result.stdout, /│ probe: GET http:\/\/127\.0\.0\.1:\d+\/microbima-staging-web-admin\/health: 503/)
  assert.match(result.stdout, /microbima-staging-web-admin\s+rolled back/)
  assert.match(result.stdout, 'migration gate passed')
  // The everyday verbs: the fleet, the releases with their commits, a command on a machine.
  assert.match(result.stdout, /^internal-api\s+\w+\s+jnb\s+started\s/m)
  assert.match(result.stdout, /^web-admin\s+v\d+\s+complete\s+git-[0-9a-f]{12}/m)
  assert.match(result.stdout, /^staging$/m)
  for (const line of result.stdout.split('\n')) assert.ok([...line.replace(/\x1b\[[0-9;]*m/g, '')].length <= 120, `wider than 120 columns: ${line}`)
  assert.match(result.stdout, 'the whole runbook ran as expected in the sandbox')
  assert.equal(leftovers(result.marker), [])
})

test('DB_KIND=mpg make demo runs the same runbook on Managed Postgres: create and attach, direct URL for migrations, a backup before production', async () => {
  const result = await run('make', ['-s', 'demo', 'DB_KIND=mpg'], { timeoutMs: 300_000, env: FAST })
  assert.is(result.code, 0, result.output.slice(-3000))
  assert.match(result.stdout, 'database: Managed Postgres')
  assert.match(result.stdout, /microbima-staging-db \(Managed Postgres \w+\)\s+created in fra/)
  assert.match(result.stdout, /microbima-prod-db → microbima-production-internal-api\s+attached:\s+pooled\s+DATABASE_URL\s+for\s+the\s+app,\s+DIRECT_DATABASE_URL/)
  assert.match(result.stdout, /✔ Managed Postgres backup bk_\w+ of cluster \w+ completed/)
  assert.match(result.stdout, /backup\s+bk_\w+ \(Managed Postgres, cluster \w+\)[\s\S]*scratch copy\s+destroyed\nresult\s+verified/)
  assert.match(result.stdout, /microbima-staging-public-api\s+rolled back/)
  for (const line of result.stdout.split('\n')) assert.ok([...line.replace(/\x1b\[[0-9;]*m/g, '')].length <= 120, `wider than 120 columns: ${line}`)
  assert.match(result.stdout, 'the whole runbook ran as expected in the sandbox')
  assert.equal(leftovers(result.marker), [])
})

test.run()
