import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createExec, stopChild, type CommandSpec } from '../scripts/lib/core/exec.ts'
import { CommandError } from '../scripts/lib/core/errors.ts'
import type { Logger } from '../scripts/lib/core/log.ts'
import { FLY_BIN, createSandbox, type Sandbox } from '../scripts/sandbox/sandbox.ts'
import { REPO, tempDir } from '../scripts/sandbox/files.ts'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'

// The toolkit's direct flyctl calls (scripts/sandbox/direct-flyctl.ts, what rehearsals and tests
// use) against the sandbox's bash client run as a process (what an operator's shell runs): the
// same command gives the same stdout, stderr and exit code, and the simulator logs the same call
// (argv, standard input, directory); a hung call is stopped the same way. Only the process differs:
// a direct call logs the toolkit's own process id.

const quiet: Logger = { step() {}, info() {}, ok() {}, warn() {}, error() {}, result() {}, detail() {}, child: () => quiet }

interface Seen {
  status: number | null
  stdout: string
  stderr: string
  calls: { argv: string[]; stdin: string | null; cwd: string; pid: number }[]
}

/** Runs spec once direct and once through the bash client, each time from a cleared call log. */
async function both(sandbox: Sandbox, spec: Omit<CommandSpec, 'argv' | 'write'> & { args: string[] }): Promise<{ direct: Seen; process: Seen }> {
  const exec = createExec({ dryRun: false, verbose: false, log: quiet })
  const once = async (direct: boolean): Promise<Seen> => {
    sandbox.clearCalls()
    const { args, ...rest } = spec
    const env = { ...sandbox.env, ...rest.env, FLY_SIM_DIRECT: direct ? FLY_BIN : '' }
    let seen: Omit<Seen, 'calls'>
    try {
      const result = await exec.run({ ...rest, argv: [FLY_BIN, ...args], write: false, env, cwd: REPO })
      seen = { status: result.status, stdout: result.stdout, stderr: result.stderr }
    } catch (error) {
      if (!(error instanceof CommandError)) throw error
      seen = { status: error.status, stdout: '', stderr: `${error.stderr}|${error.reason ?? ''}` }
    }
    return { ...seen, calls: sandbox.calls().map(({ argv, stdin, cwd, pid }) => ({ argv, stdin, cwd, pid })) }
  }
  const direct = await once(true)
  const process = await once(false)
  return { direct, process }
}

function same(seen: { direct: Seen; process: Seen }): void {
  const { direct, process: child } = seen
  assert.is(direct.status, child.status)
  assert.is(direct.stdout, child.stdout)
  assert.is(direct.stderr, child.stderr)
  assert.equal(
    direct.calls.map(({ pid: _pid, ...call }) => call),
    child.calls.map(({ pid: _pid, ...call }) => call),
  )
  // The direct call came from this process, the other from a process of its own.
  for (const call of direct.calls) assert.is(call.pid, process.pid)
  for (const call of child.calls) assert.is.not(call.pid, process.pid)
}

let sandbox: Sandbox
test.before(async () => {
  sandbox = await createSandbox({ timeScale: 0.005 })
  sandbox.seedApps()
})
test.after(() => sandbox.close())

test('a read: the same JSON answer, the same call logged', async () => {
  const seen = await both(sandbox, { args: ['status', '--app', 'microbima-staging-web-admin', '--json'] })
  same(seen)
  assert.is(seen.direct.status, 0)
  assert.is(JSON.parse(seen.direct.stdout).Name, 'microbima-staging-web-admin')
})

test("a failure: flyctl's stderr and exit code", async () => {
  const seen = await both(sandbox, { args: ['status', '--app', 'no-such-app'] })
  same(seen)
  assert.is(seen.direct.status, 1)
  assert.match(seen.direct.stderr, /Could not find App "no-such-app"|app not found/i)
})

test('standard input reaches flyctl (a secrets import), and the environment it was given (no token: refused)', async () => {
  const input = 'NODE_ENV=staging\nJWT_SECRET=s3cr3t-ü\n'
  const seen = await both(sandbox, { args: ['secrets', 'import', '--app', 'microbima-staging-internal-api', '--stage'], input })
  same(seen)
  assert.is(seen.direct.status, 0)
  assert.equal(seen.direct.calls.map((c) => c.stdin), [input])
  const untokened = await both(sandbox, { args: ['apps', 'list', '--json'], env: { FLY_API_TOKEN: '' } })
  same(untokened)
  assert.is.not(untokened.direct.status, 0)
})

test('a long answer arrives whole (framing across many chunks)', async () => {
  const app = 'microbima-staging-public-api'
  const many = Array.from({ length: 3000 }, (_, i) => `KEY_${i}_ü=${'v'.repeat(i % 50)}`).join('\n')
  await sandbox.direct(['secrets', 'import', '--app', app, '--stage'], `${many}\n`)
  const seen = await both(sandbox, { args: ['secrets', 'list', '--app', app, '--json'] })
  same(seen)
  assert.ok(seen.direct.stdout.length > 200_000, `${seen.direct.stdout.length} characters`)
  assert.is(JSON.parse(seen.direct.stdout).length, 3000)
})

test('a hung call is stopped at its timeout as a process would be: the same answer', async () => {
  sandbox.fault({ command: 'status', kind: 'hang', times: 2 })
  const seen = await both(sandbox, { args: ['status', '--app', 'microbima-staging-web-admin'], timeoutMs: 500 })
  same(seen)
  assert.is(seen.direct.status, null)
  assert.match(seen.direct.stderr, /timed out after 1s and was stopped|timed out after 0s and was stopped/)
})

test('a long-running call (flyctl logs): the same lines as they come, stopped the same way (TERM: the same exit), the same call logged', async () => {
  const app = 'microbima-staging-web-admin'
  sandbox.appLog(app, 'GET /health 200')
  const once = async (direct: boolean) => {
    sandbox.clearCalls()
    const exec = createExec({ dryRun: false, verbose: false, log: quiet })
    const lines: string[] = []
    let seen!: () => void
    const first = new Promise<void>((resolve) => (seen = resolve))
    const env = { ...sandbox.env, FLY_SIM_DIRECT: direct ? FLY_BIN : '' }
    const child = exec.start({ argv: [FLY_BIN, 'logs', '--app', app], write: false, env, cwd: REPO, onLine: (line) => (lines.push(line), line.includes('GET /health') && seen()) })
    await first
    await stopChild(child)
    const out = await child
    return { status: out.exitCode, lines: lines.map((l) => l.replace(/^\S+ /, '')), calls: sandbox.calls().map(({ argv, pid }) => ({ argv, pid })) }
  }
  const direct = await once(true)
  const child = await once(false)
  assert.is(child.status, direct.status)
  assert.ok(direct.lines.length > 0)
  assert.equal(direct.lines, child.lines)
  assert.equal(direct.calls.map((c) => c.argv), [['logs', '--app', app]])
  assert.equal(child.calls.map((c) => c.argv), [['logs', '--app', app]])
  assert.is(direct.calls[0].pid, process.pid)
  assert.is.not(child.calls[0].pid, process.pid)
})

test('a simulator that is not running: one line saying so, exit 1 (no port file, a stale port, a port that is no number)', async () => {
  const free = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
  for (const port of [undefined, String(free), 'abc', '70000']) {
    const state = tempDir('mb-no-sim-')
    if (port !== undefined) writeFileSync(join(state, 'flyctl.port'), `${port}\n`)
    const seen = await both(sandbox, { args: ['status', '--app', 'microbima-staging-web-admin'], env: { FLY_SIM_STATE: state } })
    same(seen)
    assert.is(seen.direct.status, 1)
    assert.is(seen.direct.stderr, `Error: the Fly simulator is not running for FLY_SIM_STATE=${state} (start one with make sandbox)\n|exited with status 1`)
  }
})

test('a standard input never ended (zx does not end an empty one): the call ends, and its stdin connection with it', async () => {
  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
  const before = sockets()
  const seen = await both(sandbox, { args: ['status', '--app', 'microbima-staging-web-admin'], input: '' })
  same(seen)
  assert.is(seen.direct.status, 0)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.is(sockets(), before)
})

test("make sandbox's exports run flyctl as a process: only the sandbox's rehearsal environment goes direct", () => {
  assert.is(sandbox.connection.FLY_SIM_DIRECT, undefined)
  assert.is(sandbox.env.FLY_SIM_DIRECT, FLY_BIN)
})

test.run()
