// `make bench`: what the toolkit costs against the strategy document's own runbook, and how fast
// it notices trouble, against the Fly simulator with fixed latencies per flyctl command.
//
// The overhead figure compares `make deploy-staging` with section 5.1 of the document as a bash
// script: three `fly deploy` (the same build deploys the toolkit makes: same --config, --app,
// build arguments and working directory, so the simulator builds the same thing), one
// `fly ssh console` running `prisma migrate deploy`, and the `fly status` of the three apps (7.1).
// Nothing else: no database reads, no proxy, no health probe. Each run starts from its own fresh
// sandbox in the same state; runbook and toolkit runs alternate, so a busy machine slows both.
// Medians; the table goes to bench/results.md.
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

/** Milliseconds each simulated flyctl command waits, on top of the simulator's own start-up. */
const LATENCY = { deploy: 3000, status: 200, releases: 200, ssh: 1000, secrets: 300, apps: 300, volumes: 200, ips: 200, logs: 200, checks: 200, machine: 200 }
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 7)
const BUDGET = { startupMs: 300, ratio: 1.05, healthyMs: 1000, rollbackMs: 2000 }
/** Sandbox settings that speed up tests: the bench runs the toolkit's defaults instead. */
const TEST_ONLY = ['HEALTH_INTERVAL', 'HEALTH_TIMEOUT', 'FLY_RETRY_BASE_MS']
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

/** A FLY_BIN that timestamps each call before the simulator starts and after it ends (a few ms per call). */
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
  const sandbox = await createSandbox({ latencyMs: LATENCY, postgres: { 'microbima-staging-db': { host: '127.0.0.1', port: dbs.staging.port }, 'microbima-prod-db': { host: '127.0.0.1', port: dbs.production.port } } })
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
    sandbox.settings({ latencyMs: {} })
    const first = await sh('make', [...MAKE, 'deploy-staging'], env)
    if (first.code !== 0) {
      await sandbox.close()
      throw new SetupFailure(why(first.output), first.output)
    }
    sandbox.settings({ latencyMs: LATENCY })
  }
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
      const r = side === 'runbook' ? await sh('bash', [script], env) : await sh('make', [...MAKE, 'deploy-staging'], env)
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
  ratio: number
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
  return { runbook, toolkit, ratio: median(toolkit) / median(runbook), profile }
}

// ---- the timeline of one run ---------------------------------------------------------------

const label = (argv: string[]) => {
  const app = argv[argv.indexOf('--app') + 1]?.replace(/^microbima-staging-/, '')
  const head = argv[0] === 'deploy' || argv[0] === 'status' ? argv[0] : argv.slice(0, 2).join(' ')
  return argv.includes('--app') ? `${head} ${app}` : head
}

/** Where the time of a run goes, in the same phases for both sides. */
function phases(m: Measured): Record<string, number> {
  const calls = (m.timed ?? []).filter((c) => c.argv[0] !== 'proxy' && c.end !== undefined)
  const deploys = calls.filter((c) => c.argv[0] === 'deploy')
  const ssh = calls.find((c) => c.argv[0] === 'ssh')
  const exit = m.t0 + m.ms
  const out: Record<string, number> = {}
  out['start-up, to the first flyctl call'] = calls[0].start - m.t0
  out['first call to the first deploy (toolkit: preflight, secrets sync, ips list)'] = deploys[0].start - calls[0].start
  out['3 × flyctl deploy'] = deploys.reduce((sum, d) => sum + d.end! - d.start, 0)
  out['after each deploy, to the next deploy or the ssh (toolkit: health checks)'] = deploys.reduce((sum, d, i) => sum + (deploys[i + 1]?.start ?? ssh?.start ?? exit) - d.end!, 0)
  out['flyctl ssh console (prisma migrate deploy)'] = ssh ? ssh.end! - ssh.start : 0
  out['after the ssh, to the exit (runbook: 3 × flyctl status)'] = ssh ? exit - ssh.end! : 0
  return out
}

/** Time during which no flyctl call (but `flyctl proxy`) was running: the caller's own work. */
function ownTime(m: Measured): number {
  const spans = (m.timed ?? []).filter((c) => c.argv[0] !== 'proxy' && c.end !== undefined).map((c) => [c.start, c.end!]).sort((a, b) => a[0] - b[0])
  let busy = 0
  let until = m.t0
  for (const [a, b] of spans) {
    if (b > until) busy += b - Math.max(a, until)
    until = Math.max(until, b)
  }
  return m.ms - busy
}

/** Each shim-timed call with its calls.jsonl entry (pid, and `t`: when the simulator had started). */
function matched(m: Measured): { call: TimedCall; logged?: Call }[] {
  const pool = [...m.calls]
  return (m.timed ?? []).map((call) => {
    const i = pool.findIndex((p) => p.argv.join(' ') === call.argv.join(' '))
    return { call, logged: i < 0 ? undefined : pool.splice(i, 1)[0] }
  })
}

/** How long the simulator takes to start, per call, in the run itself: the shim's start to the
 * moment the simulator logs the call in calls.jsonl. */
function simulatorStartups(m: Measured): number[] {
  return matched(m).flatMap(({ call, logged }) => (logged ? [logged.t - call.start] : []))
}

/** Length of the union of intervals. */
function union(spans: [number, number][]): [number, number][] {
  const out: [number, number][] = []
  for (const [a, b] of [...spans].sort((x, y) => x[0] - y[0])) {
    const last = out.at(-1)
    if (last && a <= last[1]) last[1] = Math.max(last[1], b)
    else out.push([a, b])
  }
  return out
}

/** Time during which the run only waited for simulators to start: some simulator process was
 * starting and no flyctl call had got past its start-up (`flyctl proxy`, which serves the whole
 * run, aside). What a flyctl that starts at once would save, at most. */
function startupOnly(m: Measured): number {
  const pairs = matched(m).filter(({ logged }) => logged)
  const starting = union(pairs.map(({ call, logged }) => [call.start, logged!.t]))
  const working = union(pairs.filter(({ call }) => call.argv[0] !== 'proxy' && call.end !== undefined).map(({ call, logged }) => [logged!.t, call.end!]))
  let only = 0
  for (const [a, b] of starting) {
    let covered = 0
    for (const [c, d] of working) covered += Math.max(0, Math.min(b, d) - Math.max(a, c))
    only += b - a - covered
  }
  return only
}

function timeline(m: Measured): string[] {
  return [
    `| call | pid | starts | ends | takes | of which the simulator's start-up |`,
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
  const env = { ...warm.env, FLY_BIN: shim(log) }
  let repeated = 0
  for (let i = 0; i < RUNS; i++) {
    // (a) the gateway answers 503 for 1.5 s after its deploy, then 200: how soon does the next deploy start?
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
    const next = readCalls(log).find((c) => c.argv[0] === 'deploy' && c.argv.includes(flyAppName('staging', 'web-admin')))!
    toHealthy.push(next.start - healthyAt)
    // (b) web-admin never recovers: from the end of its deploy to the start of the automatic rollback.
    warm.sandbox.fault({ command: 'deploy', app: flyAppName('staging', 'web-admin'), kind: 'http-5xx', times: 1 })
    writeFileSync(log, '')
    const bad = await sh('make', [...MAKE, 'deploy-staging', 'APP=web-admin'], { ...env, HEALTH_TIMEOUT: String(timeout) })
    if (bad.code === 0) throw new Error('the unhealthy deploy did not fail')
    const deploys = readCalls(log).filter((c) => c.argv[0] === 'deploy')
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

  const ratioRow = (what: string, o: Overhead): [string, string, string, boolean] => [
    `overhead, ${what}: deploy-staging ${s(median(o.toolkit))} / runbook ${s(median(o.runbook))}`,
    o.ratio.toFixed(3),
    `≤ ${BUDGET.ratio.toFixed(2)}`,
    o.ratio <= BUDGET.ratio,
  ]
  const rows: [string, string, string, boolean][] = [
    ['start-up: make health-staging → first flyctl call', s(health), `≤ ${s(BUDGET.startupMs)}`, health <= BUDGET.startupMs],
    ['start-up: make deploy-staging DRY_RUN=1 → first flyctl call', s(dry), `≤ ${s(BUDGET.startupMs)}`, dry <= BUDGET.startupMs],
    ['start-up: make migrate-status → first flyctl call', s(status), `≤ ${s(BUDGET.startupMs)}`, status <= BUDGET.startupMs],
    ratioRow('first deploy', first),
    ratioRow('staging deployed', again),
    ['detection: app healthy → next deploy starts', s(detect.toHealthy), `≤ ${s(BUDGET.healthyMs)}`, detect.toHealthy <= BUDGET.healthyMs],
    [`detection: failing health → rollback starts, beyond HEALTH_TIMEOUT=${detect.timeout}s`, s(detect.toRollback), `≤ ${s(BUDGET.rollbackMs)}`, detect.toRollback <= BUDGET.rollbackMs],
  ]
  const loadAfter = loadavg()
  const minutes = ((performance.now() - started) / 60_000).toFixed(1)
  say(`\n${table(['measure (median)', 'value', 'budget', 'met'], rows.map(([a, b, c, ok]) => [a, b, c, ok ? 'yes' : 'NO']))}`)
  const inRun = (side: Side) => median([first, again].flatMap((o) => simulatorStartups(o.profile[side])))
  say(`\nsimulator start-up per flyctl call: ${s(simMs)} idle (flyctl version); inside the profiled runs ${s(inRun('runbook'))} (runbook), ${s(inRun('toolkit'))} (toolkit)`)

  const phaseTable = (o: Overhead) => {
    const a = phases(o.profile.runbook)
    const b = phases(o.profile.toolkit)
    return [
      '| phase | runbook | toolkit | toolkit − runbook |',
      '| --- | --- | --- | --- |',
      ...Object.keys(a).map((k) => `| ${k} | ${s(a[k])} | ${s(b[k])} | ${s(b[k] - a[k])} |`),
      `| **total** | **${s(o.profile.runbook.ms)}** | **${s(o.profile.toolkit.ms)}** | **${s(o.profile.toolkit.ms - o.profile.runbook.ms)}** |`,
      `| no flyctl call running (own work, start-up included) | ${s(ownTime(o.profile.runbook))} | ${s(ownTime(o.profile.toolkit))} | ${s(ownTime(o.profile.toolkit) - ownTime(o.profile.runbook))} |`,
      `| waiting only for simulator processes to start | ${s(startupOnly(o.profile.runbook))} | ${s(startupOnly(o.profile.toolkit))} | ${s(startupOnly(o.profile.toolkit) - startupOnly(o.profile.runbook))} |`,
      `| ratio of this pair; without that wait | | ${(o.profile.toolkit.ms / o.profile.runbook.ms).toFixed(3)}; ${net(o).toFixed(3)} | |`,
      `| flyctl calls | ${o.profile.runbook.calls.length} | ${o.profile.toolkit.calls.length} | |`,
    ]
  }
  const net = (o: Overhead) => (o.profile.toolkit.ms - startupOnly(o.profile.toolkit)) / (o.profile.runbook.ms - startupOnly(o.profile.runbook))
  const runs = (o: Overhead) => `runbook ${o.runbook.map(s).join(', ')}; toolkit ${o.toolkit.map(s).join(', ')}; ratio per round ${o.toolkit.map((t, i) => (t / o.runbook[i]).toFixed(3)).join(', ')}`
  const md = [
    '# Benchmark results',
    '',
    `Written by \`make bench\` on ${new Date().toISOString()} in ${minutes} minutes.`,
    '',
    `Machine: ${machine}. One-minute load average ${loadBefore[0].toFixed(2)} at the start, ${loadAfter[0].toFixed(2)} at the end, ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} (median ${median(loads).toFixed(2)}) after the measured deploys: other work shared the machine; runbook and toolkit runs alternate, so it slows both, though not alike (below).`,
    '',
    `Simulator latencies (ms), per flyctl command: ${Object.entries(LATENCY).map(([k, v]) => `${k} ${v}`).join(', ')}. On top of them every call pays the simulator's start-up, a Node process: ${s(simMs)} for one \`flyctl version\` at a time; inside the profiled runs, a median ${s(inRun('runbook'))} per call for the runbook and ${s(inRun('toolkit'))} for the toolkit, which starts several at once and shares the ${cpus().length} cores with its own work and the sandbox. It is not subtracted (it stands for the API round trips a real flyctl makes), but a real flyctl, a Go binary, starts in a few tens of milliseconds: the simulator weighs more on the side that makes more calls, the toolkit's. Medians of ${RUNS} runs per side (start-up: ${STARTUP_RUNS}). The toolkit runs with its default settings (HEALTH_INTERVAL 0.5 s, HEALTH_TIMEOUT 60 s) and reaches the database as env/staging/internal-api.env.example says, over Flycast through \`flyctl proxy\`.`,
    '',
    '| measure (median) | value | budget | met |',
    '| --- | --- | --- | --- |',
    ...rows.map(([a, b, c, ok]) => `| ${a} | ${b} | ${c} | ${ok ? 'yes' : 'NO'} |`),
    '',
    ...(failures.length
      ? [`Runs that failed and were repeated in a fresh sandbox (not in the figures): ${failures.map((f) => `${f.side}, ${f.state}: ${f.why.replace(/\|/g, '\\|')}`).join('; ')}.`, '']
      : ['No run failed.', '']),
    '',
    '## Overhead against the document\'s runbook',
    '',
    'The baseline is section 5.1 of the strategy document as a bash script, against the same simulator with the same latencies: three `flyctl deploy` (the toolkit\'s build deploys, argument for argument: `--config`, `--app`, `--remote-only`, the three `--build-arg`, `--deploy-retries 0`, in the build context), one `flyctl ssh console --app microbima-staging-internal-api --command "sh -c \'cd /app && npx prisma migrate deploy\'"`, and `flyctl status --app … --json` of the three apps (section 7.1). No database reads, no proxy, no health probe. The toolkit side is `make deploy-staging`. Every run, on either side, starts from a fresh sandbox in the same state: the apps created (the internal API with its Flycast address), both database apps, every staging secret staged, empty databases; for "staging deployed", the toolkit has deployed the current code once (without latencies) before the measured run. Runs alternate between the sides, and which side goes first alternates too. Wall time from the start of `make` (or `bash`) to its exit.',
    '',
    `- first deploy: ${runs(first)}`,
    `- staging deployed: ${runs(again)}`,
    '',
    'Where the time goes, from one more pair of runs per state through a shim that timestamps each flyctl call as it starts and ends (a few milliseconds per call, on both sides; not in the medians). "Waiting only for simulator processes to start" is the time when some simulator was still starting (from the shim\'s timestamp to its entry in calls.jsonl) and no flyctl call was past its start-up: at most what a flyctl that starts at once would save. The ratio without it is an estimate for a real flyctl, for information; the budget applies to the measured ratio.',
    '',
    '### First deploy',
    '',
    ...phaseTable(first),
    '',
    '### Staging deployed',
    '',
    ...phaseTable(again),
    '',
    '<details><summary>Timelines of the profiled runs (seconds from the start of make or bash; pid and the simulator\'s start-up from calls.jsonl)</summary>',
    '',
    ...([['First deploy', first], ['Staging deployed', again]] as const).flatMap(([title, o]) => [`#### ${title}: runbook`, '', ...timeline(o.profile.runbook), '', `#### ${title}: toolkit`, '', ...timeline(o.profile.toolkit), '']),
    '</details>',
    '',
    '## Reproduce',
    '',
    '`make bench` (about ten minutes on two cores); `BENCH_RUNS=1 BENCH_STARTUP_RUNS=3 make bench` for a quicker, noisier look. It exits 1 when a budget is not met. Compare only figures from the same machine, and prefer a quiet one: the ratio moves by a few hundredths with the load.',
    '',
  ].join('\n')
  writeFileSync(join(REPO, 'bench', 'results.md'), md)
  say('written to bench/results.md')
  process.exitCode = rows.every((r) => r[3]) ? 0 : 1
} finally {
  await cleanUp()
}
