// `make bench`: how little the toolkit adds to the operations it runs, and how fast it notices
// trouble, measured against the Fly simulator with fixed, realistic latencies per command.
// Every flyctl call goes through a shell shim that timestamps its start and end before and after
// the simulator runs, so the simulator's own start-up (measured separately) stays out of the
// figures. Medians over repeated runs; the table goes to bench/results.md.
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { startRehearsal } from '../test/support/rehearsal.ts'
import { FLY_BIN, type Sandbox } from '../test/support/sandbox.ts'
import { REPO, tempDir, writeEnvDir } from '../test/support/toolkit.ts'
import { table } from './lib/log.js'

const LATENCY = { deploy: 3000, status: 200, releases: 200, ssh: 1000, secrets: 300, apps: 300, volumes: 200 }
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 7)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const now = () => performance.timeOrigin + performance.now() // epoch ms, the clock of the shim's date +%s%N

interface TimedCall { start: number; end?: number; argv: string[] }

function shim(log: string): string {
  const path = join(tempDir('mb-bench-'), 'flyctl')
  // Arguments are logged separated by US (\037), so arguments with spaces survive the round trip.
  const record = (kind: string) => `{ printf '${kind} %s' "$(date +%s%N)"; for a in "$@"; do printf '\\037%s' "$a"; done; echo; } >> ${log}`
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
    else [...calls].reverse().find((c) => c.end === undefined && c.argv.join(' ') === argv.join(' '))!.end = ms
  }
  return calls
}

/** Runs one command; a run that exceeds two minutes is a broken benchmark, not a slow one. */
function sh(command: string, args: string[], env: Record<string, string>): Promise<{ code: number; ms: number; output: string }> {
  const started = now()
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    const limit = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL')
      reject(new Error(`${command} ${args.join(' ')} did not finish in 120 s:\n${output}`))
    }, 120_000)
    child.stdout.on('data', (c) => (output += c))
    child.stderr.on('data', (c) => (output += c))
    child.on('close', (code) => {
      clearTimeout(limit)
      resolve({ code: code ?? 1, ms: now() - started, output })
    })
  })
}

async function setup(latencyMs: Record<string, number>) {
  const { sandbox, databases, stop } = await startRehearsal({ latencyMs })
  sandbox.seedApps()
  const direct = writeEnvDir({ staging: { 'internal-api': { DATABASE_URL: databases.staging.url } }, production: { 'internal-api': { DATABASE_URL: databases.production.url } } })
  const proxied = writeEnvDir({ staging: { 'internal-api': { DATABASE_URL: 'postgres://postgres:pw@microbima-staging-db.flycast:5432/postgres' } }, production: { 'internal-api': { DATABASE_URL: 'postgres://postgres:pw@microbima-prod-db.flycast:5432/postgres' } } })
  await sandbox.fly(['postgres', 'create', '--name', 'microbima-staging-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '1'])
  await sandbox.fly(['postgres', 'create', '--name', 'microbima-prod-db', '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '1'])
  await sandbox.fly(['secrets', 'import', '--app', 'microbima-staging-internal-api', '--stage'], `DATABASE_URL=${databases.staging.url}\n`)
  const log = join(tempDir('mb-bench-log-'), 'calls')
  const env = { ...sandbox.env, FLY_BIN: shim(log), ENV_DIR: direct, LOCK_WAIT: '5' }
  return { databases, sandbox, direct, proxied, log, env, stop }
}

const clear = (log: string) => writeFileSync(log, '')

async function startup(ctx: Awaited<ReturnType<typeof setup>>, target: string, vars: string[], env: Record<string, string>) {
  const samples: number[] = []
  for (let i = 0; i < STARTUP_RUNS; i++) {
    clear(ctx.log)
    const t0 = now()
    const result = await sh('make', ['-s', target, ...vars], env)
    if (result.code !== 0) throw new Error(`${target} failed:\n${result.output}`)
    samples.push(readCalls(ctx.log)[0].start - t0)
  }
  return median(samples)
}

async function simulatorCost(env: Record<string, string>) {
  const samples: number[] = []
  for (let i = 0; i < STARTUP_RUNS; i++) samples.push((await sh(FLY_BIN, ['version'], env)).ms)
  return median(samples)
}

/** The same flyctl calls as the toolkit's run, issued one after another by a plain bash script. */
function bashReplay(calls: TimedCall[]): string {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`
  return ['set -e', ...calls.map((c) => `"$FLY_BIN" ${c.argv.map(quote).join(' ')} >/dev/null`)].join('\n')
}

async function overhead(ctx: Awaited<ReturnType<typeof setup>>) {
  const ratios: number[] = []
  const toolkit: number[] = []
  const plain: number[] = []
  for (let i = 0; i < RUNS; i++) {
    clear(ctx.log)
    const run = await sh('make', ['-s', 'deploy-staging'], ctx.env)
    if (run.code !== 0) throw new Error(`deploy-staging failed:\n${run.output}`)
    const script = join(tempDir('mb-bench-'), 'replay.sh')
    writeFileSync(script, bashReplay(readCalls(ctx.log)))
    const replay = await sh('bash', [script], { ...ctx.env, FLY_BIN })
    if (replay.code !== 0) throw new Error(`bash replay failed:\n${replay.output}`)
    toolkit.push(run.ms)
    plain.push(replay.ms)
    ratios.push(run.ms / replay.ms)
  }
  return { ratio: median(ratios), toolkit: median(toolkit), plain: median(plain) }
}

async function detection(ctx: Awaited<ReturnType<typeof setup>>, sandbox: Sandbox) {
  const toHealthy: number[] = []
  const toRollback: number[] = []
  const timeout = 3
  for (let i = 0; i < RUNS; i++) {
    // (a) internal-api answers 503 for 1.5 s after its deploy, then 200: how soon does the next deploy start?
    sandbox.fault({ command: 'deploy', app: 'microbima-staging-internal-api', kind: 'http-5xx', ms: 1500, times: 1 })
    clear(ctx.log)
    const ok = await sh('make', ['-s', 'deploy-staging'], ctx.env)
    if (ok.code !== 0) throw new Error(`deploy-staging failed:\n${ok.output}`)
    const state = JSON.parse(readFileSync(join(sandbox.stateDir, 'state.json'), 'utf8'))
    const healthyAt = Object.values(state.apps['microbima-staging-internal-api'].brokenUntil as Record<string, number>).sort().at(-1)!
    const next = readCalls(ctx.log).find((c) => c.argv[0] === 'deploy' && c.argv.includes('microbima-staging-public-api'))!
    toHealthy.push(next.start - healthyAt)
    // (b) web-admin never recovers: from the end of its deploy to the start of the automatic rollback.
    sandbox.fault({ command: 'deploy', app: 'microbima-staging-web-admin', kind: 'http-5xx', times: 1 })
    clear(ctx.log)
    const bad = await sh('make', ['-s', 'deploy-staging', 'APP=web-admin'], { ...ctx.env, HEALTH_TIMEOUT: String(timeout) })
    if (bad.code === 0) throw new Error('the unhealthy deploy did not fail')
    const deploys = readCalls(ctx.log).filter((c) => c.argv[0] === 'deploy')
    toRollback.push(deploys[1].start - deploys[0].end! - timeout * 1000)
  }
  return { toHealthy: median(toHealthy), toRollback: median(toRollback), timeout }
}

async function overlap(ctx: Awaited<ReturnType<typeof setup>>) {
  const ratios: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const sequential = await sh('make', ['-s', 'deploy-staging'], ctx.env)
    const parallel = await sh('make', ['-s', 'deploy-staging'], { ...ctx.env, PARALLEL: '1' })
    if (sequential.code !== 0 || parallel.code !== 0) throw new Error(`deploy failed:\n${sequential.output}\n${parallel.output}`)
    ratios.push(parallel.ms / sequential.ms)
  }
  return median(ratios)
}

const say = (line: string) => process.stdout.write(`${line}\n`)
say(`benchmarks: simulator latencies ${JSON.stringify(LATENCY)}, ${RUNS} runs (start-up: ${STARTUP_RUNS})`)
const ctx = await setup(LATENCY)
try {
  say('warming up (first deploy, build of dist/)…')
  await sh('make', ['-s', 'build'], ctx.env)
  const first = await sh('make', ['-s', 'deploy-staging'], ctx.env)
  if (first.code !== 0) throw new Error(first.output)
  say('measuring the simulator itself…')
  const simMs = await simulatorCost(ctx.env)
  say('measuring start-up…')
  say('  health-staging')
  const health = await startup(ctx, 'health-staging', [], ctx.env)
  say('  deploy-staging DRY_RUN=1')
  const deploy = await startup(ctx, 'deploy-staging', ['DRY_RUN=1'], ctx.env)
  say('  migrate-status')
  const status = await startup(ctx, 'migrate-status', [], { ...ctx.env, ENV_DIR: ctx.proxied })
  say('measuring overhead against a plain bash script…')
  const over = await overhead(ctx)
  say('measuring health detection…')
  const detect = await detection(ctx, ctx.sandbox)
  say('measuring overlap (PARALLEL=1)…')
  const par = await overlap(ctx)

  const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`
  const rows: [string, string, string, boolean][] = [
    ['start-up: make health-staging → first flyctl call', s(health), '≤ 0.300 s', health <= 300],
    ['start-up: make deploy-staging → first flyctl call', s(deploy), '≤ 0.300 s', deploy <= 300],
    ['start-up: make migrate-status → first flyctl call', s(status), '≤ 0.300 s', status <= 300],
    [`overhead: deploy-staging ${s(over.toolkit)} vs plain bash ${s(over.plain)}`, over.ratio.toFixed(3), '≤ 1.05', over.ratio <= 1.05],
    ['detection: app healthy → next step starts', s(detect.toHealthy), '≤ 1.000 s', detect.toHealthy <= 1000],
    [`detection: failing health → rollback starts, beyond HEALTH_TIMEOUT=${detect.timeout}s`, s(detect.toRollback), '≤ 2.000 s', detect.toRollback <= 2000],
    ['overlap: deploy-staging PARALLEL=1 / sequential', par.toFixed(3), '≤ 0.60', par <= 0.6],
  ]
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}`
  const rendered = table(['measure (median)', 'value', 'budget', 'met'], rows.map(([a, b, c, ok]) => [a, b, c, ok ? 'yes' : 'NO']))
  say(`\n${rendered}\n\nsimulator start-up per flyctl call (kept out of the figures above): ${s(simMs)}`)
  const md = [
    '# Benchmark results',
    '',
    `Written by \`make bench\` on ${new Date().toISOString()}.`,
    '',
    `Machine: ${machine}.`,
    '',
    `Simulator latencies (ms): ${Object.entries(LATENCY).map(([k, v]) => `${k} ${v}`).join(', ')}. Medians of ${RUNS} runs (start-up: ${STARTUP_RUNS}).`,
    `Every flyctl call is timestamped by a shell shim before the simulator starts; the simulator's own start-up (${s(simMs)} per call) is measured separately and is not in the start-up figures. The overhead ratio compares the toolkit with a bash script issuing the same flyctl calls, one after another, against the same simulator; it can fall below 1 because the toolkit reads the three apps' status at once.`,
    '',
    '| measure (median) | value | budget | met |',
    '| --- | --- | --- | --- |',
    ...rows.map(([a, b, c, ok]) => `| ${a} | ${b} | ${c} | ${ok ? 'yes' : 'NO'} |`),
    '',
  ].join('\n')
  writeFileSync(join(REPO, 'bench', 'results.md'), md)
  say('written to bench/results.md')
  process.exitCode = rows.every((r) => r[3]) ? 0 : 1
} finally {
  await ctx.stop()
}
