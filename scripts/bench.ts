// `make bench`: what the toolkit costs against the strategy document's own runbook, and how fast
// it notices trouble, against the Fly simulator with fixed latencies per flyctl command.
//
// The overhead figure compares `make deploy-staging` with section 5.1 of the document as a bash
// script: three building `fly deploy` one after the other (the same builds the toolkit makes: same
// --config, --app, build arguments and working directory, so the simulator builds the same thing),
// one `fly ssh console` running `prisma migrate deploy`, and the `fly status` of the three apps
// (7.1). Nothing else: no database reads, no proxy, no health probe. The toolkit builds the three
// images together (`deploy --build-only --push`), then rolls each out (`deploy --image`). The
// latency model charges what Fly takes: a build 4 s, a rollout 2 s (so a building deploy 6 s), ssh
// 1.5 s, any other call 0.2 s. Each run starts from its own fresh sandbox in the same state; runbook
// and toolkit runs alternate, so a busy machine slows both. Ratios per round, their median and
// spread; the table goes to bench/results.md.
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
// @ts-expect-error plain ESM module shared with the test runner
import { startEnvironmentDatabases } from './sandbox/postgres.mjs'
import { createSandbox, FLY_BIN, type Call, type Sandbox } from './sandbox/sandbox.ts'
import { REPO, sandboxEnvFiles, tempDir, writeEnvDir } from './sandbox/files.ts'
import { table } from './lib/core/log.js'
import { buildConfigPath, DEPLOY_ORDER, flyAppName } from './lib/core/names.js'
import { loadSettings } from './lib/core/settings.js'

/** Milliseconds Fly takes to answer, per flyctl command (the simulator's latencyMs): a remote build
 * (`build`), a rollout (`deploy`: the part of a deploy after its image), ssh, and `*` for every
 * other call. A building deploy pays build + deploy; a --build-only one the build; an --image one
 * the rollout. */
const LATENCY = { build: 4000, deploy: 2000, ssh: 1500, '*': 200 }
/** flyctl's own waits (the 10 s of smoke checks per machine, wait timeouts) × this: the rollout is
 * its `deploy` latency, on both sides. Small enough for the smoke checks to vanish (50 ms), large
 * enough for a release command's 5-minute timeout (1.5 s) to cover a migration. */
const TIME_SCALE = 0.005
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 7)
const BUDGET = { startupMs: 300, ratio: 0.65, healthyMs: 1000, rollbackMs: 2000 }
/** The toolkit builds anew in every measured run, as for a new commit: a clean commit it has built
 * once is not built again. */
const NEW_COMMIT = { REBUILD: '1' }
/** Sandbox settings that speed up tests: the bench runs the toolkit's defaults instead, and its
 * flyctl calls as processes of their own, as on a real machine and as the runbook's are
 * (FLY_SIM_DIRECT would serve them in the toolkit's process). */
const TEST_ONLY = ['HEALTH_INTERVAL', 'HEALTH_TIMEOUT', 'FLY_RETRY_BASE_MS', 'FLY_SIM_DIRECT']
/** The database as env/staging/internal-api.env.example has it: over Flycast, so through flyctl proxy. */
const FLYCAST = { staging: 'postgres://postgres:pw@microbima-staging-db.flycast:5432/postgres', production: 'postgres://postgres:pw@microbima-prod-db.flycast:5432/postgres' }

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`
const say = (line: string) => process.stdout.write(`${line}\n`)

// ---- running things ------------------------------------------------------------------------

const running = new Set<number>()

const LIMIT_S = 90
/** make as an operator runs it, except that dist/ is not rebuilt mid-bench when a source changes
 * (it is built once at the start): a rebuild would land in one run's time. */
const MAKE = ['-s', '-o', 'dist/.built']

/** Runs one command in its own process group. A deploy that takes over LIMIT_S seconds is a broken
 * run, not a slow one (a machine that never turns healthy keeps flyctl waiting for wait_timeout):
 * it is stopped, and fails. */
function sh(command: string, args: string[], env: Record<string, string>): Promise<{ code: number; ms: number; t0: number; output: string }> {
  // t0 on the wall clock, the one of the shim's date +%s%N and of calls.jsonl (performance.timeOrigin
  // is fixed when the bench starts, so a clock adjustment during the bench would offset it);
  // durations on the monotonic clock.
  const t0 = Date.now()
  const p0 = performance.now()
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO, env: { ...process.env, FORCE_COLOR: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    running.add(child.pid!)
    let output = ''
    let late = false
    const limit = setTimeout(() => {
      late = true
      kill(child.pid!)
    }, LIMIT_S * 1000)
    child.stdout.on('data', (c) => (output += c))
    child.stderr.on('data', (c) => (output += c))
    child.on('close', (code) => {
      clearTimeout(limit)
      running.delete(child.pid!)
      resolve({ code: late ? -1 : (code ?? 1), ms: performance.now() - p0, t0, output: late ? `${output}\n${TIMED_OUT}\n` : output })
    })
  })
}

const TIMED_OUT = `did not finish in ${LIMIT_S} s: stopped`

function kill(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

// ---- the flyctl shim: start and end of every call -------------------------------------------

interface TimedCall {
  start: number
  end?: number
  argv: string[]
}

/** A FLY_BIN that timestamps each call before the simulator's client starts and after it ends (a few ms per call). */
function shim(log: string): string {
  const path = join(tempDir('mb-bench-'), 'flyctl')
  // Arguments are logged separated by US (\037), so arguments with spaces survive the round trip.
  // One write per line: calls made at the same time append to the log at the same time.
  const record = (kind: string) => `line="${kind} $(date +%s%N)"; for a in "$@"; do line="$line$(printf '\\037')$a"; done; printf '%s\\n' "$line" >> ${log}`
  writeFileSync(path, `#!/bin/sh\n${record('start')}\n${FLY_BIN} "$@"\nrc=$?\n${record('end')}\nexit $rc\n`)
  chmodSync(path, 0o755)
  return path
}

function readCalls(log: string): TimedCall[] {
  if (!existsSync(log)) return []
  const calls: TimedCall[] = []
  for (const line of readFileSync(log, 'utf8').trim().split('\n').filter(Boolean)) {
    const [head, ...argv] = line.split('\x1f')
    const [kind, ns] = head.split(' ')
    const ms = Number(BigInt(ns) / 1000n) / 1000
    if (kind === 'start') calls.push({ start: ms, argv })
    else {
      const open = [...calls].reverse().find((c) => c.end === undefined && c.argv.join(' ') === argv.join(' '))
      if (open) open.end = ms
    }
  }
  return calls
}

// ---- sandboxes -----------------------------------------------------------------------------

interface Stage {
  sandbox: Sandbox
  env: Record<string, string>
}

/** The staging and production databases (PGlite), started once and emptied for each stage. */
let databases: { staging: { port: number }; production: { port: number }; reset(): Promise<unknown>; stop(): Promise<void> } | undefined

/** A fresh sandbox as `make create-apps-staging` and `make set-secrets-staging` leave it: the six
 * apps and both database apps exist, every staging secret is staged, the databases are empty.
 * `deployed`: staging then runs the current code (deployed once by the toolkit, without latencies). */
async function freshStage(deployed: boolean): Promise<Stage> {
  databases ??= await startEnvironmentDatabases()
  const dbs = databases!
  await dbs.reset()
  // Set up without latencies; the measured run gets them.
  const sandbox = await createSandbox({ timeScale: TIME_SCALE, postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: dbs.staging.port }, 'microbima-prod-db': { host: '127.0.0.1', port: dbs.production.port } } })
  sandbox.seedApps()
  const files = sandboxEnvFiles(FLYCAST)
  const envDir = writeEnvDir(files)
  for (const db of ['microbima-staging-db', 'microbima-prod-db']) {
    await must(sandbox.fly(['postgres', 'create', '--name', db, '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10']))
  }
  for (const key of DEPLOY_ORDER) {
    const lines = [`NODE_ENV='staging'`, ...Object.entries(files.staging![key]!).map(([k, v]) => `${k}='${v}'`)]
    await must(sandbox.fly(['secrets', 'import', '--app', flyAppName('staging', key), '--stage'], `${lines.join('\n')}\n`))
  }
  const env: Record<string, string> = { ...sandbox.env, ENV_DIR: envDir }
  for (const name of TEST_ONLY) delete env[name]
  if (deployed) {
    const first = await sh('make', [...MAKE, 'deploy-staging'], env)
    if (first.code !== 0) {
      await sandbox.close()
      throw new SetupFailure(why(first.output), first.output)
    }
  }
  sandbox.settings({ latencyMs: LATENCY })
  sandbox.clearCalls()
  return { sandbox, env }
}

class SetupFailure extends Error {
  constructor(
    readonly why: string,
    readonly output: string,
  ) {
    super(`setting up: deploy-staging failed: ${why}`)
  }
}

/** A fresh stage; a failed set-up deploy is reported and made again in another fresh sandbox. */
async function stage(deployed: boolean): Promise<Stage> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await freshStage(deployed)
    } catch (error) {
      if (!(error instanceof SetupFailure) || attempt === 3) throw error
      failures.push({ side: 'set-up deploy (toolkit)', state: 'staging deployed', why: error.why })
      say(`    the set-up deploy failed (${error.why}); setting up again in a fresh sandbox`)
    }
  }
}

async function must(result: Promise<{ code: number | null; output: string }>): Promise<void> {
  const r = await result
  if (r.code !== 0) throw new Error(`setting up the sandbox failed:\n${r.output}`)
}

// ---- the document's runbook, section 5.1 ---------------------------------------------------

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)

/** Section 5.1 as a script: 2.–4. deploy the three apps (the toolkit's build deploys, argument
 * for argument, in the same directory), 5. migrate over ssh, then check them (7.1: fly status). */
function runbookScript(): string {
  const settings = loadSettings(REPO)
  const fly = (args: string[]) => `"$FLY_BIN" ${args.map(quote).join(' ')}`
  const lines = ['# The strategy document, section 5.1 (and the fly status of 7.1), for the Fly simulator.', 'set -eu', `cd ${quote(settings.root)}`]
  for (const key of DEPLOY_ORDER) {
    const app = settings.apps[key]
    lines.push(fly(['deploy', '--config', buildConfigPath(settings.toolkitFromRoot, 'staging', key), '--app', flyAppName('staging', key), '--remote-only', '--build-arg', `WORKSPACE=${settings.workspace}`, '--build-arg', `APP_DIR=${app.source}`, '--build-arg', `APP_PACKAGE=${app.package}`, '--deploy-retries', '0']))
  }
  lines.push(fly(['ssh', 'console', '--app', flyAppName('staging', 'internal-api'), '--command', "sh -c 'cd /app && npx prisma migrate deploy'"]))
  for (const key of DEPLOY_ORDER) lines.push(fly(['status', '--app', flyAppName('staging', key), '--json']))
  const path = join(tempDir('mb-bench-'), 'runbook.sh')
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}

type Side = 'runbook' | 'toolkit'

interface Measured {
  side: Side
  ms: number
  calls: Call[]
  t0: number
  timed?: TimedCall[]
}

/** Runs that failed and were repeated in a fresh sandbox: they are reported, never counted. */
const failures: { side: string; state: string; why: string }[] = []

/** Why a run failed, in one line: flyctl's last error, else the last line. */
function why(output: string): string {
  if (output.trimEnd().endsWith(TIMED_OUT)) return `${TIMED_OUT}, after: ${why(output.trimEnd().slice(0, -TIMED_OUT.length))}`
  const lines = output.split('\n').map((l) => l.replace(/^\s*│\s?/, '').trim()).filter((l) => l && !l.startsWith('make: ***'))
  return ([...lines].reverse().find((l) => /^Error\b|^✖|failed/.test(l)) ?? lines.at(-1) ?? '(no output)').slice(0, 200)
}

async function measure(side: Side, deployed: boolean, script: string, profile = false): Promise<Measured> {
  for (let attempt = 1; ; attempt++) {
    const fresh = await stage(deployed)
    try {
      const log = join(tempDir('mb-bench-log-'), 'calls')
      const env = profile ? { ...fresh.env, FLY_BIN: shim(log) } : fresh.env
      const r = side === 'runbook' ? await sh('bash', [script], env) : await sh('make', [...MAKE, 'deploy-staging'], { ...env, ...NEW_COMMIT })
      if (r.code === 0) return { side, ms: r.ms, t0: r.t0, calls: fresh.sandbox.calls(), timed: profile ? readCalls(log) : undefined }
      failures.push({ side, state: deployed ? 'staging deployed' : 'first deploy', why: why(r.output) })
      say(`    ${side} failed (${failures.at(-1)!.why}); repeating it in a fresh sandbox`)
      if (attempt === 3) throw new Error(`${side} failed three times:\n${r.output.slice(-3000)}`)
    } finally {
      await fresh.sandbox.close()
    }
  }
}

/** The machine's 1-minute load average after each measured run. */
const loads: number[] = []

interface Overhead {
  runbook: number[]
  toolkit: number[]
  /** toolkit ÷ runbook of each round (the two runs of a round are neighbours in time). */
  ratios: number[]
  profile: { runbook: Measured; toolkit: Measured }
}

async function overhead(deployed: boolean, script: string): Promise<Overhead> {
  const runbook: number[] = []
  const toolkit: number[] = []
  for (let i = 0; i < RUNS; i++) {
    // Alternate which side goes first, so a drift in the machine's load favours neither.
    const order: Side[] = i % 2 ? ['toolkit', 'runbook'] : ['runbook', 'toolkit']
    for (const side of order) {
      const m = await measure(side, deployed, script)
      ;(side === 'runbook' ? runbook : toolkit).push(m.ms)
      loads.push(loadavg()[0])
      say(`    ${side.padEnd(7)} ${s(m.ms)} (${m.calls.length} flyctl calls; load ${loads.at(-1)!.toFixed(2)})`)
    }
  }
  // One more pair through the timestamping shim, for the timeline (not in the medians).
  const profile = { runbook: await measure('runbook', deployed, script, true), toolkit: await measure('toolkit', deployed, script, true) }
  return { runbook, toolkit, ratios: toolkit.map((t, i) => t / runbook[i]), profile }
}

// ---- the timeline of one run ---------------------------------------------------------------

/** What a flyctl call is, for the phases: a deploy that builds and rolls out (the runbook's), a
 * build only, or a rollout of an existing image (the toolkit's). */
type Kind = 'building deploy' | 'build-only deploy' | 'image deploy' | 'other'
const kindOf = (argv: string[]): Kind =>
  argv[0] !== 'deploy' ? 'other' : argv.includes('--build-only') ? 'build-only deploy' : argv.includes('--image') ? 'image deploy' : 'building deploy'

const label = (argv: string[]) => {
  const app = argv[argv.indexOf('--app') + 1]?.replace(/^microbima-staging-/, '')
  const kind = kindOf(argv)
  const head = kind !== 'other' ? kind : argv[0] === 'status' ? argv[0] : argv.slice(0, 2).join(' ')
  return argv.includes('--app') ? `${head} ${app}` : head
}

const finished = (m: Measured) => (m.timed ?? []).filter((c) => c.argv[0] !== 'proxy' && c.end !== undefined)
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** One row of the phase table: a value per side, or undefined where the phase is not that side's. */
type PhaseRow = [string, number | undefined, number | undefined]

/** Where the time of a run goes. Each side's phases follow one another and add up to its total;
 * indented rows say what a phase is made of. */
function phases(runbook: Measured, toolkit: Measured): PhaseRow[] {
  const r = finished(runbook)
  const t = finished(toolkit)
  const rExit = runbook.t0 + runbook.ms
  const tExit = toolkit.t0 + toolkit.ms
  const rDeploys = r.filter((c) => kindOf(c.argv) === 'building deploy')
  const ssh = r.find((c) => c.argv[0] === 'ssh')
  const builds = t.filter((c) => kindOf(c.argv) === 'build-only deploy')
  // The rollouts of the run (a rollback would be an image deploy too: a measured run has none).
  const rollouts = t.filter((c) => kindOf(c.argv) === 'image deploy')
  const buildsStart = Math.min(...builds.map((c) => c.start))
  const buildsEnd = Math.max(...builds.map((c) => c.end!))
  const rLast = rDeploys.at(-1)!.end!
  const tLast = rollouts.at(-1)!.end!
  return [
    ['start-up, to the first flyctl call', r[0].start - runbook.t0, t[0].start - toolkit.t0],
    ['to the first deploy call (toolkit: preflight: status, ips list, secrets syncs, database reads; with staging deployed, what each app would change: secrets list, config show)', rDeploys[0].start - r[0].start, buildsStart - t[0].start],
    ['runbook: 3 building deploys, one after the other (each a build, then a rollout)', rLast - rDeploys[0].start, undefined],
    ['toolkit: 3 build-only deploys together, wall time of the build phase', undefined, buildsEnd - buildsStart],
    ['toolkit: the last build done → the first rollout (the image\'s migrations into the ledger)', undefined, rollouts[0].start - buildsEnd],
    ['toolkit: 3 rollouts in order, the first one\'s start → the last one\'s end', undefined, tLast - rollouts[0].start],
    ['&nbsp;&nbsp;of which the 3 image deploys', undefined, sum(rollouts.map((c) => c.end! - c.start))],
    ['&nbsp;&nbsp;of which between them: health checks, ledger', undefined, sum(rollouts.slice(1).map((c, i) => c.start - rollouts[i].end!))],
    ['after the last deploy call, to the exit (runbook: ssh, 3 × status; toolkit: the last health check, ledger, migrations check, summary)', rExit - rLast, tExit - tLast],
    ['&nbsp;&nbsp;runbook: of which flyctl ssh console (prisma migrate deploy)', ssh ? ssh.end! - ssh.start : 0, undefined],
  ]
}

/** Time during which no flyctl call (but `flyctl proxy`) was running: the caller's own work. */
function ownTime(m: Measured): number {
  const spans = finished(m).map((c) => [c.start, c.end!]).sort((a, b) => a[0] - b[0])
  let busy = 0
  let until = m.t0
  for (const [a, b] of spans) {
    if (b > until) busy += b - Math.max(a, until)
    until = Math.max(until, b)
  }
  return m.ms - busy
}

/** Each shim-timed call with its calls.jsonl entry (pid, and `t`: when the simulator's server took it). */
function matched(m: Measured): { call: TimedCall; logged?: Call }[] {
  const pool = [...m.calls]
  return (m.timed ?? []).map((call) => {
    const i = pool.findIndex((p) => p.argv.join(' ') === call.argv.join(' '))
    return { call, logged: i < 0 ? undefined : pool.splice(i, 1)[0] }
  })
}

/** How long a call takes to reach the simulator, in the run itself: the shim's start to the moment
 * the server logs the call in calls.jsonl (the bash client's start and its connection). */
function toSimulator(m: Measured): number[] {
  return matched(m).flatMap(({ call, logged }) => (logged ? [logged.t - call.start] : []))
}

function timeline(m: Measured): string[] {
  return [
    `| call | pid | starts | ends | takes | reaches the simulator after |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...matched(m).map(({ call: c, logged }) => `| ${label(c.argv)} | ${logged?.pid ?? '-'} | ${s(c.start - m.t0)} | ${c.end ? s(c.end - m.t0) : '(stopped)'} | ${c.end ? s(c.end - c.start) : '-'} | ${logged ? s(logged.t - c.start) : '-'} |`),
    `| (exit) | | | ${s(m.ms)} | | |`,
  ]
}

// ---- start-up and detection ----------------------------------------------------------------

async function startup(warm: Stage, target: string, vars: string[]): Promise<number> {
  const samples: number[] = []
  const log = join(tempDir('mb-bench-log-'), 'calls')
  for (let i = 0; i < STARTUP_RUNS; i++) {
    writeFileSync(log, '')
    const r = await sh('make', [...MAKE, target, ...vars], { ...warm.env, FLY_BIN: shim(log) })
    if (r.code !== 0) throw new Error(`${target} failed:\n${r.output.slice(-3000)}`)
    samples.push(readCalls(log)[0].start - r.t0)
  }
  return median(samples)
}

/** What one flyctl call costs on its own, the simulator idle: `flyctl version` (the bash client,
 * its connection to the server, the answer; no latency). */
async function simulatorCost(env: Record<string, string>): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < STARTUP_RUNS; i++) samples.push((await sh(FLY_BIN, ['version'], env)).ms)
  return median(samples)
}

async function detection(warm: Stage) {
  const toHealthy: number[] = []
  const toRollback: number[] = []
  const timeout = 3
  const log = join(tempDir('mb-bench-log-'), 'calls')
  // A new build every time, so that every app is deployed (an app that already runs its image,
  // with nothing staged, is left alone).
  const env = { ...warm.env, ...NEW_COMMIT, FLY_BIN: shim(log) }
  let repeated = 0
  for (let i = 0; i < RUNS; i++) {
    // (a) the gateway answers 503 for 1.5 s after its rollout, then 200: how soon does the next rollout start?
    warm.sandbox.fault({ command: 'deploy', app: flyAppName('staging', 'public-api'), kind: 'http-5xx', ms: 1500, times: 1 })
    writeFileSync(log, '')
    const ok = await sh('make', [...MAKE, 'deploy-staging'], env)
    if (ok.code !== 0) {
      if (++repeated > 2) throw new Error(`deploy-staging failed:\n${ok.output.slice(-3000)}`)
      failures.push({ side: 'toolkit', state: 'detection', why: why(ok.output) })
      say(`    deploy-staging failed (${failures.at(-1)!.why}); measuring again`)
      i--
      continue
    }
    const images = Object.values(warm.sandbox.state().images).filter((image) => image.app === flyAppName('staging', 'public-api') && image.http5xxUntil)
    const healthyAt = Math.max(...images.map((image) => image.http5xxUntil!))
    const next = readCalls(log).find((c) => kindOf(c.argv) === 'image deploy' && c.argv.includes(flyAppName('staging', 'web-admin')))!
    toHealthy.push(next.start - healthyAt)
    // (b) web-admin never recovers: from the end of its rollout to the start of the automatic rollback.
    warm.sandbox.fault({ command: 'deploy', app: flyAppName('staging', 'web-admin'), kind: 'http-5xx', times: 1 })
    writeFileSync(log, '')
    const bad = await sh('make', [...MAKE, 'deploy-staging', 'APP=web-admin'], { ...env, HEALTH_TIMEOUT: String(timeout) })
    if (bad.code === 0) throw new Error('the unhealthy deploy did not fail')
    // Its rollout, then the rollback (both image deploys; its build came before).
    const deploys = readCalls(log).filter((c) => kindOf(c.argv) === 'image deploy')
    if (deploys.length < 2) throw new Error(`no automatic rollback after the unhealthy deploy:\n${bad.output.slice(-3000)}`)
    toRollback.push(deploys[1].start - deploys[0].end! - timeout * 1000)
  }
  return { toHealthy: median(toHealthy), toRollback: median(toRollback), timeout }
}

// ---- the run -------------------------------------------------------------------------------

let stopping = false
async function cleanUp(): Promise<void> {
  for (const pid of running) kill(pid)
  await databases?.stop().catch(() => undefined)
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    say(`\n${signal}: stopping the runs under way`)
    void cleanUp().finally(() => process.exit(130))
  })
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}`

// ---- the test suite ------------------------------------------------------------------------

const TESTS_BEGIN = '<!-- tests:begin (the last full make test on this machine, written by make bench) -->'
const TESTS_END = '<!-- tests:end -->'

/** The last full `make test` on this machine (test/run.mjs keeps it), per file, slowest first: the
 * next slowdown shows here. */
function testSuiteSection(): string[] {
  const path = join(REPO, 'node_modules/.cache/microbima-test-run.json')
  const head = [TESTS_BEGIN, '## The test suite', '']
  if (!existsSync(path)) return [...head, 'No full `make test` has run on this machine yet: run it, then `BENCH_TESTS_ONLY=1 make bench` to record it here.', '', TESTS_END]
  const run = JSON.parse(readFileSync(path, 'utf8')) as { at: string; wallMs: number; workers: number; cpus: number; node: string; passed: number; failed: number; files: Record<string, number> }
  const files = Object.entries(run.files).sort(([, a], [, b]) => b - a)
  const sum = files.reduce((n, [, ms]) => n + ms, 0)
  return [
    ...head,
    `\`make test\` on ${run.at.slice(0, 16).replace('T', ' ')} UTC: ${run.passed} passed, ${run.failed} failed, **${s(run.wallMs)}** wall time with ${run.workers} files at a time on ${run.cpus} cores (Node ${run.node}); the files took ${s(sum)} together. Budget: 180 s.`,
    '',
    '| file | seconds |',
    '| --- | --- |',
    ...files.map(([file, ms]) => `| ${file.replace(/^test\//, '')} | ${(ms / 1000).toFixed(1)} |`),
    '',
    TESTS_END,
  ]
}

if (process.env.BENCH_TESTS_ONLY === '1') {
  // Only the test suite's section of bench/results.md, from the last make test.
  const path = join(REPO, 'bench', 'results.md')
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmark results\n'
  const section = testSuiteSection().join('\n')
  const [start, end] = [current.indexOf(TESTS_BEGIN), current.indexOf(TESTS_END)]
  writeFileSync(path, start >= 0 && end > start ? `${current.slice(0, start)}${section}${current.slice(end + TESTS_END.length)}` : `${current.trimEnd()}\n\n${section}\n`)
  say('the test suite\'s timings written to bench/results.md')
  process.exit(0)
}
const loadBefore = loadavg()
say(`benchmarks on ${machine}`)
say(`simulator latencies (ms) ${JSON.stringify(LATENCY)}; ${RUNS} runs of each side (start-up: ${STARTUP_RUNS})`)
const started = performance.now()
try {
  say('warming up (build of dist/)…')
  const built = await sh('make', ['-s', 'build'], {})
  if (built.code !== 0) throw new Error(built.output)
  const script = runbookScript()

  say('overhead against the document\'s runbook (§5.1), first deploy of the apps…')
  const first = await overhead(false, script)
  say('overhead against the document\'s runbook (§5.1), staging already deployed…')
  const again = await overhead(true, script)

  say('start-up and detection, on a deployed staging…')
  const warm = await stage(true)
  let simMs: number, health: number, dry: number, status: number, detect: Awaited<ReturnType<typeof detection>>
  try {
    simMs = await simulatorCost(warm.env)
    say('  health-staging')
    health = await startup(warm, 'health-staging', [])
    say('  deploy-staging DRY_RUN=1')
    dry = await startup(warm, 'deploy-staging', ['DRY_RUN=1'])
    say('  migrate-status')
    status = await startup(warm, 'migrate-status', [])
    say('  detection')
    detect = await detection(warm)
  } finally {
    await warm.sandbox.close()
  }

  const spread = (xs: number[]) => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}`
  const ratioRow = (what: string, o: Overhead): [string, string, string, boolean] => [
    `overhead, ${what}: deploy-staging ${s(median(o.toolkit))} / runbook ${s(median(o.runbook))}`,
    `${median(o.ratios).toFixed(3)} (${spread(o.ratios)})`,
    `≤ ${BUDGET.ratio.toFixed(2)}`,
    median(o.ratios) <= BUDGET.ratio,
  ]
  const rows: [string, string, string, boolean][] = [
    ['start-up: make health-staging → first flyctl call', s(health), `≤ ${s(BUDGET.startupMs)}`, health <= BUDGET.startupMs],
    ['start-up: make deploy-staging DRY_RUN=1 → first flyctl call', s(dry), `≤ ${s(BUDGET.startupMs)}`, dry <= BUDGET.startupMs],
    ['start-up: make migrate-status → first flyctl call', s(status), `≤ ${s(BUDGET.startupMs)}`, status <= BUDGET.startupMs],
    ratioRow('first deploy', first),
    ratioRow('staging deployed', again),
    ['detection: app healthy → next rollout starts', s(detect.toHealthy), `≤ ${s(BUDGET.healthyMs)}`, detect.toHealthy <= BUDGET.healthyMs],
    [`detection: failing health → rollback starts, beyond HEALTH_TIMEOUT=${detect.timeout}s`, s(detect.toRollback), `≤ ${s(BUDGET.rollbackMs)}`, detect.toRollback <= BUDGET.rollbackMs],
  ]
  const loadAfter = loadavg()
  const minutes = ((performance.now() - started) / 60_000).toFixed(1)
  say(`\n${table(['measure (median; overhead: of the per-round ratios, min–max)', 'value', 'budget', 'met'], rows.map(([a, b, c, ok]) => [a, b, c, ok ? 'yes' : 'NO']))}`)
  const inRun = (side: Side) => median([first, again].flatMap((o) => toSimulator(o.profile[side])))
  say(`\na flyctl call on its own: ${s(simMs)} (flyctl version, the simulator idle); inside the profiled runs it reaches the simulator after ${s(inRun('runbook'))} (runbook), ${s(inRun('toolkit'))} (toolkit), medians`)

  const cell = (ms: number | undefined) => (ms === undefined ? '—' : s(ms))
  const phaseTable = (o: Overhead) => {
    const { runbook, toolkit } = o.profile
    return [
      '| phase | runbook | toolkit |',
      '| --- | --- | --- |',
      ...phases(runbook, toolkit).map(([what, a, b]) => `| ${what} | ${cell(a)} | ${cell(b)} |`),
      `| **total** | **${s(runbook.ms)}** | **${s(toolkit.ms)}** |`,
      `| no flyctl call running (own work, start-up included) | ${s(ownTime(runbook))} | ${s(ownTime(toolkit))} |`,
      `| a call reaches the simulator after (median) | ${s(median(toSimulator(runbook)))} | ${s(median(toSimulator(toolkit)))} |`,
      `| flyctl calls | ${runbook.calls.length} | ${toolkit.calls.length} |`,
      `| ratio of this pair | | ${(toolkit.ms / runbook.ms).toFixed(3)} |`,
    ]
  }
  const runs = (o: Overhead) =>
    `runbook ${o.runbook.map(s).join(', ')}; toolkit ${o.toolkit.map(s).join(', ')}; ratio per round ${o.ratios.map((r) => r.toFixed(3)).join(', ')}: median ${median(o.ratios).toFixed(3)}, ${spread(o.ratios)}; ratio of the medians ${(median(o.toolkit) / median(o.runbook)).toFixed(3)}`
  const latencies = Object.entries(LATENCY).map(([k, v]) => `${k === '*' ? 'any other call' : k} ${(v / 1000).toFixed(1)} s`).join(', ')
  const md = [
    '# Benchmark results',
    '',
    `Written by \`make bench\` on ${new Date().toISOString()} in ${minutes} minutes.`,
    '',
    `Machine: ${machine}. One-minute load average ${loadBefore[0].toFixed(2)} at the start, ${loadAfter[0].toFixed(2)} at the end, ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} (median ${median(loads).toFixed(2)}) after the measured deploys: other work shared the machine; runbook and toolkit runs alternate, so it slows both, though not alike.`,
    '',
    `Simulator latencies, what Fly takes to answer, the same for both sides: ${latencies}. A deploy that builds (the runbook's) pays the build and the rollout, 6 s; a \`--build-only\` deploy the build, 4 s; an \`--image\` deploy the rollout, 2 s. flyctl's own waits (the smoke checks' 10 s per machine, wait timeouts) pass ${1 / TIME_SCALE} times faster, so that a rollout is its 2 s. On top of the latencies a call costs little: flyctl here is a bash client of the simulator, a server in the benchmark's own process; one \`flyctl version\` takes ${s(simMs)}, the simulator idle, and inside the profiled runs a call reaches the simulator a median ${s(inRun('runbook'))} (runbook) and ${s(inRun('toolkit'))} (toolkit) after it starts. Medians of ${RUNS} runs per side (start-up: ${STARTUP_RUNS}). The toolkit runs with its default settings (HEALTH_INTERVAL 0.5 s, HEALTH_TIMEOUT 60 s), with REBUILD=1, so that it builds its three images in every measured run as it would for a new commit, and reaches the database as env/staging/internal-api.env.example says, over Flycast through \`flyctl proxy\`.`,
    '',
    '| measure (median; overhead: median of the per-round ratios, and their min–max) | value | budget | met |',
    '| --- | --- | --- | --- |',
    ...rows.map(([a, b, c, ok]) => `| ${a} | ${b} | ${c} | ${ok ? 'yes' : 'NO'} |`),
    '',
    ...(failures.length
      ? [`Runs that failed and were repeated in a fresh sandbox (not in the figures): ${failures.map((f) => `${f.side}, ${f.state}: ${f.why.replace(/\|/g, '\\|')}`).join('; ')}.`, '']
      : ['No run failed.', '']),
    '',
    '## Overhead against the document\'s runbook',
    '',
    'The baseline is section 5.1 of the strategy document as a bash script, against the same simulator with the same latencies: three building `flyctl deploy`, one after the other (the builds the toolkit makes, argument for argument: `--config`, `--app`, `--remote-only`, the three `--build-arg`, plus `--deploy-retries 0`, in the build context), one `flyctl ssh console --app microbima-staging-internal-api --command "sh -c \'cd /app && npx prisma migrate deploy\'"`, and `flyctl status --app … --json` of the three apps (section 7.1). No database reads, no proxy, no health probe, no ledger. The toolkit side is `make deploy-staging REBUILD=1`: its preflight and migration gate, the secrets sync, the three builds together (`flyctl deploy --build-only --push … --image-label <label>`), then the three rollouts in order (`flyctl deploy --image registry.fly.io/<app>:<label>`), each checked healthy on every machine and recorded in the ledger. Every run, on either side, starts from a fresh sandbox in the same state: the apps created (the internal API with its Flycast address), both database apps, every staging secret staged, empty databases; for "staging deployed", the toolkit has deployed the current code once (without latencies) before the measured run. Runs alternate between the sides, and which side goes first alternates too; a round is one run of each side, and its ratio is toolkit ÷ runbook. Wall time from the start of `make` (or `bash`) to its exit.',
    '',
    `- first deploy: ${runs(first)}`,
    `- staging deployed: ${runs(again)}`,
    '',
    'Where the time goes, from one more pair of runs per state through a shim that timestamps each flyctl call as it starts and ends (a few milliseconds per call, on both sides; not in the medians). Each side\'s phases follow one another and add up to its total; indented rows say what a phase is made of; — where a phase is not that side\'s.',
    '',
    '### First deploy',
    '',
    ...phaseTable(first),
    '',
    '### Staging deployed',
    '',
    ...phaseTable(again),
    '',
    '<details><summary>Timelines of the profiled runs (seconds from the start of make or bash; pid and when the simulator took the call, from calls.jsonl)</summary>',
    '',
    ...([['First deploy', first], ['Staging deployed', again]] as const).flatMap(([title, o]) => [`#### ${title}: runbook`, '', ...timeline(o.profile.runbook), '', `#### ${title}: toolkit`, '', ...timeline(o.profile.toolkit), '']),
    '</details>',
    '',
    ...testSuiteSection(),
    '',
    '## Reproduce',
    '',
    '`make bench` (about ten minutes on two cores); `BENCH_RUNS=1 BENCH_STARTUP_RUNS=3 make bench` for a quicker, noisier look; `BENCH_TESTS_ONLY=1 make bench` only writes the test suite\'s timings from the last `make test`. It exits 1 when a budget is not met. Compare only figures from the same machine, and prefer a quiet one: the ratio moves by a few hundredths with the load.',
    '',
  ].join('\n')
  writeFileSync(join(REPO, 'bench', 'results.md'), md)
  say('written to bench/results.md')
  process.exitCode = rows.every((r) => r[3]) ? 0 : 1
} finally {
  await cleanUp()
}
