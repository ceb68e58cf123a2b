import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO, run } from './support/toolkit.ts'

// The README's runbook is generated from the targets' dry-run output; this fails when a target's
// commands change and the README was not regenerated (`make runbook`).

test('the README runbook matches what the targets print in a dry run', async () => {
  const result = await run('node', ['dist/runbook.mjs', '--check'], { timeoutMs: 480_000 })
  assert.is(result.code, 0, result.output.slice(-4000))
  assert.match(result.stdout, 'README runbook matches the dry-run output')
})

test('the runbook has a section per manual section of the document, the new targets, and the §5.3 checklist', () => {
  const whole = readFileSync(join(REPO, 'README.md'), 'utf8')
  const readme = whole.slice(whole.indexOf('<!-- runbook:begin'), whole.indexOf('<!-- runbook:end -->'))
  const sections = [
    'Checklist (document §5.3)', 'Set up the apps', 'Secrets', 'Migrate staging', 'Deploy staging', 'Verify', 'Look at the data', 'Deploy production',
    'Roll back', 'Monitor', 'During an incident', 'After the incident', 'With Managed Postgres', 'Deploy production with Managed Postgres', 'Restore a database',
  ]
  for (const section of sections) assert.match(readme, `### ${section}`)
  for (const target of ['create-apps-staging DB=1', 'set-secrets-prod', 'deploy-prod', 'migrate-status', 'diff', 'studio-staging', 'rollback-migration-staging', 'logs-staging', 'lock-staging REASON=', 'lock-status-staging', 'unlock-staging YES=1', 'history-staging', 'restore-prod BACKUP_ID=']) {
    assert.match(readme, `\nmake ${target}`)
  }
  // The commands an operator pastes are the contract's, not the document's broken ones.
  assert.match(readme, `flyctl ssh console --app microbima-staging-internal-api --command "sh -c 'cd /app && npx prisma migrate deploy'"`)
  assert.match(readme, 'flyctl ips allocate-v6 --private --app microbima-staging-internal-api')
  assert.match(readme, 'flyctl secrets sync --app microbima-staging-internal-api')
  assert.match(readme, '--build-arg WORKSPACE=examples/microbima --build-arg APP_DIR=apps/api --build-arg APP_PACKAGE=@microbima/api')
  assert.match(readme, /flyctl deploy --app microbima-production-internal-api --config infra\/fly\/internal-api-prod\/fly\.toml --image registry\.fly\.io\/microbima-staging-internal-api:git-<commit> --deploy-retries 0\n/)
  assert.match(readme, '--skip-release-command')
  assert.match(readme, 'flyctl mpg create --name microbima-staging-db --org microbima --region fra')
  assert.match(readme, 'flyctl mpg backup create <microbima-prod-db-id>')
  assert.match(readme, 'flyctl mpg restore <microbima-prod-db-id> --backup-id <backup-id> --name microbima-prod-db-restore-<yyyymmdd>')
  // --image-label names a build (the document's rollback with it would rebuild the current code).
  for (const line of readme.split('\n').filter((l) => /^\(?flyctl .*--image-label/.test(l))) assert.match(line, /^\(flyctl deploy --build-only --push /, line)
  // A dry run never shows a secret value: every line of a here-document is NAME=****.
  for (const [, body] of readme.matchAll(/<<'EOF'\n([\s\S]*?)\nEOF/g)) for (const line of body.split('\n')) assert.match(line, /^[A-Z_]+=\*\*\*\*$/)
})

test.run()
