import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { createExec, displayCommand, isTransient, shellQuote } from '../../scripts/lib/core/exec.ts'
import { CommandError, OperationError, Refusal, UserError } from '../../scripts/lib/core/errors.ts'
import { report } from '../../scripts/lib/core/cli.ts'
import type { Logger } from '../../scripts/lib/core/log.ts'
import { tempDir } from '../support/toolkit.ts'

function recorder() {
  const lines: { kind: string; text: string }[] = []
  const logger: Logger = {
    step: (t) => lines.push({ kind: 'step', text: t }),
    info: (t) => lines.push({ kind: 'info', text: t }),
    ok: (t) => lines.push({ kind: 'ok', text: t }),
    warn: (t) => lines.push({ kind: 'warn', text: t }),
    error: (t) => lines.push({ kind: 'error', text: t }),
    result: (t) => lines.push({ kind: 'result', text: t }),
    detail: (t) => lines.push({ kind: 'detail', text: t }),
    child: () => logger,
  }
  return { logger, lines }
}

/** A fake program that appends its argv and stdin to a log and behaves as the script says. */
function fake(body: string): { path: string; log: string } {
  const dir = tempDir()
  const log = join(dir, 'calls')
  const path = join(dir, 'prog')
  writeFileSync(path, `#!/bin/sh\necho "$@" >> ${log}\ncat >> ${log}\n${body}\n`)
  chmodSync(path, 0o755)
  return { path, log }
}

test('a read runs in dry run; a write is printed as a pasteable command and not run', async () => {
  const { logger, lines } = recorder()
  const prog = fake('echo out')
  const exec = createExec({ dryRun: true, verbose: false, log: logger })
  const read = await exec.run({ argv: [prog.path, 'status', '--json'], write: false })
  assert.is(read.stdout, 'out\n')
  const write = await exec.run({ argv: [prog.path, 'deploy', '--app', "it's"], write: true })
  assert.ok(write.skipped)
  assert.is(readFileSync(prog.log, 'utf8'), 'status --json\n')
  assert.equal(lines, [{ kind: 'result', text: `prog deploy --app "it's"` }])
})

test('secrets go on stdin; dry run shows a here-document with masked values', async () => {
  const prog = fake('')
  const live = createExec({ dryRun: false, verbose: true, log: recorder().logger })
  await live.run({ argv: [prog.path, 'secrets', 'import'], write: true, input: 'A=s3cret\n', inputPreview: 'A=****' })
  assert.is(readFileSync(prog.log, 'utf8'), 'secrets import\nA=s3cret\n')
  const { logger, lines } = recorder()
  await createExec({ dryRun: true, verbose: false, log: logger }).run({ argv: [prog.path, 'secrets', 'import'], write: true, input: 'A=s3cret\n', inputPreview: 'A=****' })
  assert.is(lines[0].text, "prog secrets import <<'EOF'\nA=****\nEOF")
})

test('a failed command becomes a CommandError with its status and stderr', async () => {
  const prog = fake('echo "Error: boom" >&2; exit 4')
  const exec = createExec({ dryRun: false, verbose: false, log: recorder().logger })
  try {
    await exec.run({ argv: [prog.path, 'x'], write: true })
    assert.unreachable()
  } catch (error) {
    assert.instance(error, CommandError)
    assert.is((error as CommandError).status, 4)
    assert.is((error as CommandError).stderr, 'Error: boom\n')
    assert.is((error as CommandError).command, 'prog x')
  }
})

test('reads are retried on transient errors; writes never', async () => {
  process.env.FLY_RETRY_BASE_MS = '10'
  const state = join(tempDir(), 'n')
  const flaky = fake(`n=$(cat ${state} 2>/dev/null || echo 0); echo $((n+1)) > ${state}; if [ $n -lt 2 ]; then echo "Error: read: connection reset by peer" >&2; exit 1; fi; echo ok`)
  const exec = createExec({ dryRun: false, verbose: false, log: recorder().logger })
  const out = await exec.run({ argv: [flaky.path, 'status'], write: false, retry: true })
  assert.is(out.stdout, 'ok\n')
  assert.is(readFileSync(state, 'utf8').trim(), '3')
  writeFileSync(state, '0')
  try {
    await exec.run({ argv: [flaky.path, 'deploy'], write: true, retry: true })
    assert.unreachable()
  } catch (error) {
    assert.instance(error, CommandError)
    assert.is(readFileSync(state, 'utf8').trim(), '1')
  }
})

test('a hanging command is stopped at its timeout', async () => {
  const prog = fake('sleep 30')
  const exec = createExec({ dryRun: false, verbose: false, log: recorder().logger })
  const started = Date.now()
  try {
    await exec.run({ argv: [prog.path], write: false, timeoutMs: 300 })
    assert.unreachable()
  } catch (error) {
    assert.instance(error, CommandError)
    assert.match((error as CommandError).reason, 'timed out after 0s and was stopped')
    assert.ok(Date.now() - started < 5000)
  }
})

test('transient texts come from flyctl errors, and exit 126 is a deadline', () => {
  assert.ok(isTransient(1, 'Error: failed to get app: Get "https://api.fly.io": read tcp: connection reset by peer'))
  assert.ok(isTransient(126, 'Error: context deadline exceeded'))
  assert.not.ok(isTransient(1, 'Error: Could not find App "x"'))
})

test('displayCommand shows the binary by name and quotes like a shell', () => {
  assert.is(displayCommand(['/opt/bin/flyctl', 'ssh', 'console', '--command', "sh -c 'cd /app'"]), `flyctl ssh console --command "sh -c 'cd /app'"`)
  // Pasted into bash, each form gives back the same argument.
  for (const arg of ['plain', 'two words', "it's", 'it\'s "$HOME"', 'a!b\'c', 'tab\there\'']) {
    const echoed = execFileSync('bash', ['-c', `printf %s ${shellQuote(arg)}`], { encoding: 'utf8' })
    assert.is(echoed, arg)
  }
})

test('errors map to the exit codes of the interface and print the right shape', () => {
  const { logger, lines } = recorder()
  assert.is(report(new UserError('bad input'), logger), 2)
  assert.is(report(new Refusal('no', ['m1: not applied on staging']), logger), 3)
  assert.is(report(new CommandError('flyctl deploy', 1, 'Error: x\n'), logger), 1)
  assert.is(report(new OperationError('unhealthy'), logger), 1)
  assert.is(report(new TypeError('oops'), logger), 1)
  assert.equal(lines.slice(0, 6).map((l) => l.text), [
    'error: bad input',
    'refused: no',
    '  m1: not applied on staging',
    'command failed (exited with status 1):',
    '  $ flyctl deploy',
    '  Error: x',
  ])
  assert.match(lines.at(-1)!.text, /^bug: TypeError: oops\n\s+at /)
})

test.run()
