// `make demo`: the whole runbook, rehearsed for real against the sandbox — the Fly simulator
// (scripts/sandbox/fly-sim) and two embedded PostgreSQL databases (one PGlite instance per environment,
// reached through `flyctl proxy` exactly as on Fly). Every step is a real `make` target.
import chalk from 'chalk'
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { startRehearsal } from './sandbox/rehearsal.ts'
import { PLACEHOLDER_DATABASE_URLS, REPO, sandboxEnvFiles, sandboxProcessEnv, tempDir, writeEnvDir } from './sandbox/files.ts'
import { formatDuration, table, WIDTH, wrapLine } from './lib/core/log.js'

interface Step {
  title: string
  target: string
  vars?: Record<string, string>
  expect?: number
  before?: () => void | Promise<void>
}

const started = performance.now()
const say = (line: string) => process.stdout.write(`${line}\n`)
const elapsed = () => chalk.dim(`+${formatDuration(performance.now() - started)}`)

function make(target: string, vars: Record<string, string>, env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('make', ['-s', target, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], { cwd: REPO, env: sandboxProcessEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    // Not indented: the targets' tables already fill the 120 columns a terminal gives them. Their
    // prose is one line per message when piped, as here, so the rehearsal wraps it for reading.
    const relay = (stream: NodeJS.ReadableStream) => createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => say(wrapLine(line, WIDTH, 2).join('\n')))
    relay(child.stdout)
    relay(child.stderr)
    child.on('close', (code) => resolve(code ?? 1))
  })
}

const kind = process.env.DB_KIND === 'mpg' ? 'mpg' : 'flypg'
say(chalk.bold(`MicroBima deploy toolkit: sandbox rehearsal of the whole runbook (database: ${kind === 'mpg' ? 'Managed Postgres' : 'Fly Postgres'})`))
say('starting the sandbox: Fly simulator, Fly Proxy, staging and production PostgreSQL (PGlite)…')
// timeScale: flyctl's 5-minute wait for health checks passes in 1.5 s.
const rehearsal = await startRehearsal({ latencyMs: { build: 400, deploy: 250, ssh: 150, status: 50, releases: 50 }, timeScale: 0.005 })
const { sandbox } = rehearsal
// As an operator starts: DATABASE_URL is the .env.example's placeholder; create-apps DB=1 fills it in.
const envDir = writeEnvDir(sandboxEnvFiles(PLACEHOLDER_DATABASE_URLS, 'demo'), tempDir('mb-demo-env-'))
// ALLOW_DIRTY: the rehearsal deploys whatever checkout it runs in.
// REBUILD: every staging deploy of the rehearsal builds new images, clean checkout or not.
const env = { ...sandbox.env, ENV_DIR: envDir, HEALTH_TIMEOUT: '2', LOCK_WAIT: '5', ALLOW_DIRTY: '1', REBUILD: '1', DB_KIND: kind }

const steps: Step[] = [
  { title: 'create the staging apps and database (section 6.1); the internal API is private (Flycast only)', target: 'create-apps-staging', vars: { DB: '1' } },
  { title: 'push the staging secrets, staged (section 6.3)', target: 'set-secrets-staging' },
  { title: 'deploy staging: the three images built at once, then rolled out in order; migrations, health (section 5.1)', target: 'deploy-staging' },
  {
    title: 'Fly Proxy stops the idle web admin machine; the fleet stays healthy (1 started, 1 auto-stopped)',
    target: 'health-staging',
    before: () => sandbox.idle(),
  },
  { title: 'create the production apps and database (section 6.2)', target: 'create-apps-prod', vars: { DB: '1', YES: '1' } },
  { title: 'push the production secrets', target: 'set-secrets-prod', vars: { YES: '1' } },
  { title: 'migration status: staging applied, production pending', target: 'migrate-status' },
  { title: 'deploy production through the migration gate, promoting the images staging runs (section 5.2)', target: 'deploy-prod', vars: { YES: '1' } },
  { title: 'what staging runs that production does not (nothing, now)', target: 'diff' },
  { title: 'the staging fleet now: machines, states, checks, images (make status, read-only)', target: 'status-staging' },
  { title: 'each app\'s last releases, with the commit its image was built from', target: 'releases-staging', vars: { LIMIT: '2' } },
  { title: 'one command on a machine of the internal API (flyctl ssh console)', target: 'console-staging', vars: { APP: 'internal-api', CMD: 'printenv NODE_ENV' } },
  {
    title: 'a rolling deploy stops half-way (machine 2 fails its checks): back on one image (expected to fail)',
    target: 'deploy-staging',
    vars: { APP: 'public-api' },
    expect: 2,
    before: () => sandbox.fault({ command: 'deploy', app: 'microbima-staging-public-api', kind: 'unhealthy', afterMachines: 1, times: 1 }),
  },
  {
    title: 'a deploy whose health probe fails: the evidence, then the automatic rollback (expected to fail)',
    target: 'deploy-staging',
    vars: { APP: 'web-admin' },
    expect: 2,
    before: () => sandbox.fault({ command: 'deploy', app: 'microbima-staging-web-admin', kind: 'http-5xx', times: 1 }),
  },
  { title: 'ship a new public API to staging', target: 'deploy-staging', vars: { APP: 'public-api' } },
  { title: 'roll it back by hand to the previous release (section 8.1)', target: 'rollback-staging', vars: { APP: 'public-api' } },
  { title: 'the production ledger', target: 'history-prod' },
  {
    title: `a restore drill: Fly's ${kind === 'mpg' ? 'scheduled backup' : 'daily snapshot'} of production, restored into a scratch copy, checked, destroyed`,
    target: 'restore-drill-prod',
    before: () => platformBackup(),
  },
]

/** What Fly does on its own schedule (a daily volume snapshot, MPG's backups), done now and waited
 * for: the newest backup then holds the migrated production database the drill restores. */
async function platformBackup(): Promise<void> {
  const state = sandbox.state()
  const cluster = Object.values(state.mpg).find((c) => c.name === 'microbima-prod-db')
  const volume = Object.values(state.volumes).find((v) => v.app === 'microbima-prod-db')
  if (kind === 'mpg' && cluster) await sandbox.direct(['mpg', 'backup', 'create', cluster.id])
  else if (volume) await sandbox.direct(['volumes', 'snapshots', 'create', volume.id, '--app', 'microbima-prod-db'])
  const deadline = Date.now() + 30_000
  for (;;) {
    const list = kind === 'mpg' && cluster ? await sandbox.direct(['mpg', 'backup', 'list', cluster.id, '--json']) : volume ? await sandbox.direct(['volumes', 'snapshots', 'list', volume.id, '--app', 'microbima-prod-db', '--json']) : undefined
    const items = list && list.stdout.startsWith('[') ? (JSON.parse(list.stdout) as { status: string }[]) : []
    if (!items.some((i) => !['completed', 'created', 'failed'].includes(i.status)) || Date.now() > deadline) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const results: string[][] = []
let ok = true
try {
  for (const [index, step] of steps.entries()) {
    say(`\n${chalk.bold.cyan(`▶ ${index + 1}/${steps.length}`)} ${chalk.bold(step.title)} ${elapsed()}`)
    say(chalk.dim(`  $ make ${step.target}${Object.entries(step.vars ?? {}).map(([k, v]) => ` ${k}=${v}`).join('')}`))
    await step.before?.()
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
