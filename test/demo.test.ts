import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { run } from './support/toolkit.ts'

test('make demo walks the whole runbook in the sandbox, exits 0 and leaves nothing running', async () => {
  const result = await run('make', ['-s', 'demo'], { timeoutMs: 300_000 })
  assert.is(result.code, 0, result.output.slice(-3000))
  for (const step of ['create-apps-staging DB=1', 'set-secrets-staging', 'deploy-staging', 'health-staging', 'migrate-status', 'deploy-prod YES=1', 'rollback-staging APP=public-api', 'history-prod']) {
    assert.match(result.stdout, `make ${step}`)
  }
  assert.match(result.stdout, /microbima-staging-web-admin\s+rolled back/)
  assert.match(result.stdout, 'migration gate passed')
  assert.match(result.stdout, 'the whole runbook ran as expected in the sandbox')
  const leftovers = await run('sh', ['-c', "ps -eo args | grep 'dist/demo.mjs' | grep -v grep || true"])
  assert.is(leftovers.stdout.trim(), '')
})

test.run()
