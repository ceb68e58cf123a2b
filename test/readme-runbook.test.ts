import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO, run } from './support/toolkit.ts'

// The README's runbook is generated from the targets' dry-run output; this fails when a target's
// commands change and the README was not regenerated (`make runbook`).

test('the README runbook matches what the targets print in a dry run', async () => {
  const result = await run('node', ['--import', 'tsx', 'scripts/runbook.ts', '--check'], { timeoutMs: 240_000 })
  assert.is(result.code, 0, result.output.slice(-4000))
  assert.match(result.stdout, 'README runbook matches the dry-run output')
})

test('the runbook has a section per manual section of the document and the §5.3 checklist', () => {
  const whole = readFileSync(join(REPO, 'README.md'), 'utf8')
  const readme = whole.slice(whole.indexOf('<!-- runbook:begin'), whole.indexOf('<!-- runbook:end -->'))
  for (const section of ['Set up the apps', 'Secrets', 'Deploy staging', 'Migrate staging', 'Verify', 'Deploy production', 'Roll back', 'Monitor', 'Checklist (document §5.3)']) {
    assert.match(readme, `### ${section}`)
  }
  // The commands an operator pastes are the contract's, not the document's broken ones.
  assert.match(readme, `flyctl ssh console --app microbima-staging-internal-api --command "sh -c 'cd /app && npx prisma migrate deploy'"`)
  assert.match(readme, '--image registry.fly.io/microbima-staging-internal-api:deployment-<id>')
  assert.match(readme, '--skip-release-command')
  assert.not.match(readme, '--image-label')
})

test.run()
