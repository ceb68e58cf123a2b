// `make demo`: the whole runbook, rehearsed for real against the sandbox — the Fly simulator
// (test/fly-sim) and two embedded PostgreSQL databases (one PGlite instance per environment,
// reached through `flyctl proxy` exactly as on Fly). Every step is a real `make` target.
import chalk from 'chalk'
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { startRehearsal } from '../test/support/rehearsal.ts'
import { REPO, tempDir, writeEnvDir } from '../test/support/toolkit.ts'
import { formatDuration, table } from './lib/log.js'

interface Step {
  title: string
  target: string
  vars?: Record<string, string>
  expect?: number
  before?: () => void
}

const started = performance.now()
const say = (line: string) => process.stdout.write(`${line}\n`)
const elapsed = () => chalk.dim(`+${formatDuration(performance.now() - started)}`)

function make(target: string, vars: Record<string, string>, env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('make', ['-s', target, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const indent = (chunk: Buffer) => chunk.toString().replace(/\n(?!$)/g, '\n    ')
    child.stdout.on('data', (c: Buffer) => process.stdout.write(`    ${indent(c)}`))
    child.stderr.on('data', (c: Buffer) => process.stdout.write(`    ${indent(c)}`))
    child.on('close', (code) => resolve(code ?? 1))
  })
}

say(chalk.bold('MicroBima deploy toolkit: sandbox rehearsal of the whole runbook'))
say('starting the sandbox: Fly simulator, staging and production PostgreSQL (PGlite)…')
const rehearsal = await startRehearsal({ latencyMs: { deploy: 400, ssh: 200, status: 50, releases: 50 } })
const { sandbox } = rehearsal
const url = (db: string, password: string) => `postgres://postgres:${password}@${db}.flycast:5432/postgres?sslmode=disable`
const envDir = writeEnvDir({
  staging: {
    'internal-api': { DATABASE_URL: url('microbima-staging-db', 'demo-staging-pw'), JWT_SECRET: 'demo-jwt-staging', MPESA_CONSUMER_KEY: 'demo-key', MPESA_CONSUMER_SECRET: 'demo-mpesa-staging' },
    'public-api': { KONG_PARTNER_API_KEY: 'demo-partner-key-staging' },
    'web-admin': { SESSION_SECRET: 'demo-session-staging', INTERNAL_API_URL: 'http://microbima-staging-internal-api.flycast:3000' },
  },
  production: {
    'internal-api': { DATABASE_URL: url('microbima-prod-db', 'demo-prod-pw'), JWT_SECRET: 'demo-jwt-prod', MPESA_CONSUMER_KEY: 'demo-key-prod', MPESA_CONSUMER_SECRET: 'demo-mpesa-prod' },
    'public-api': { KONG_PARTNER_API_KEY: 'demo-partner-key-prod' },
    'web-admin': { SESSION_SECRET: 'demo-session-prod', INTERNAL_API_URL: 'http://microbima-production-internal-api.flycast:3000' },
  },
}, tempDir('mb-demo-env-'))
const env = { ...sandbox.env, ENV_DIR: envDir, HEALTH_TIMEOUT: '3', LOCK_WAIT: '5' }

const steps: Step[] = [
  { title: 'create the staging apps and database (section 6.1)', target: 'create-apps-staging', vars: { DB: '1' } },
  { title: 'push the staging secrets, staged (section 6.3)', target: 'set-secrets-staging' },
  { title: 'deploy staging: three apps, migrations, health (section 5.1)', target: 'deploy-staging' },
  { title: 'check staging health (section 7.1)', target: 'health-staging' },
  { title: 'create the production apps and database (section 6.2)', target: 'create-apps-prod', vars: { DB: '1' } },
  { title: 'push the production secrets', target: 'set-secrets-prod', vars: { YES: '1' } },
  { title: 'migration status: staging applied, production pending', target: 'migrate-status' },
  { title: 'deploy production through the migration gate: promote the staging images (section 5.2)', target: 'deploy-prod', vars: { YES: '1' } },
  {
    title: 'a deploy whose health check fails is rolled back automatically (expected to fail)',
    target: 'deploy-staging',
    vars: { APP: 'web-admin' },
    expect: 2,
    before: () => sandbox.fault({ command: 'deploy', app: 'microbima-staging-web-admin', kind: 'http-5xx', times: 1 }),
  },
  { title: 'ship a new public API to staging', target: 'deploy-staging', vars: { APP: 'public-api' } },
  { title: 'roll it back by hand to the previous release (section 8.1)', target: 'rollback-staging', vars: { APP: 'public-api' } },
  { title: 'the production ledger', target: 'history-prod' },
]

const results: string[][] = []
let ok = true
try {
  for (const [index, step] of steps.entries()) {
    say(`\n${chalk.bold.cyan(`▶ ${index + 1}/${steps.length}`)} ${chalk.bold(step.title)} ${elapsed()}`)
    say(chalk.dim(`  $ make ${step.target}${Object.entries(step.vars ?? {}).map(([k, v]) => ` ${k}=${v}`).join('')}`))
    step.before?.()
    const t = performance.now()
    const code = await make(step.target, step.vars ?? {}, env)
    const expected = step.expect ?? 0
    const good = code === expected
    ok &&= good
    results.push([`${index + 1}`, `make ${step.target}${Object.entries(step.vars ?? {}).map(([k, v]) => ` ${k}=${v}`).join('')}`, good ? chalk.green(expected ? `exit ${code}, as expected` : 'ok') : chalk.red(`exit ${code}, expected ${expected}`), formatDuration(performance.now() - t)])
    if (!good) break
  }
} finally {
  await rehearsal.stop()
  rmSync(envDir, { recursive: true, force: true })
}
say(`\n${chalk.bold('demo summary')} ${elapsed()}\n${table(['#', 'step', 'result', 'time'], results)}`)
say(ok ? chalk.green.bold('\nthe whole runbook ran as expected in the sandbox') : chalk.red.bold('\nthe demo did not go as expected'))
process.exitCode = ok ? 0 : 1
