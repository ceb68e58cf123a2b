// fly ssh console (internal/command/ssh/console.go, ssh/io.go; flyctl.md §6, fly-platform.md §2.4,
// §9, flyctl-facts 10): only started machines are candidates; -C runs the command without a
// shell; a remote exit N≠0 is exit 1 with `Error: ssh shell: Process exited with status N`; a
// session that ends without an exit status, or is cancelled, says so and the remote command may
// still be running. Without -C (or with --pty) a PTY is allocated: stdout and stderr come back
// merged on stdout with CRLF line ends, and input is not echoed (modes ECHO 0).
// Simplification: the login shell without -C is root's bash reduced to what the simulator can
// run: it prompts `root@<machine id>:<dir># `, runs each line of standard input as `sh -c` would
// (the commands of model/exec.ts, `&&`, `cd`, `exit [N]`), prints `logout` and ends at `exit` or
// at the end of its input with the last status.
import { createInterface } from 'node:readline'
import { call, env as callEnv } from '../call.ts'
import { APP_FLAG, FlyError, NON_INTERACTIVE, err, out, parseFlags, str, unknownCommand } from '../cli.ts'
import { secretsAt } from '../model/fleet.ts'
import { machinesPower, runCommand, runShellLine, shellWords, type ExecContext } from '../model/exec.ts'
import { dir, fault, findApp, latency, sandbox } from '../runtime.ts'
import { readState } from '../state.ts'

const FLAGS = {
  ...APP_FLAG, command: { short: 'C', value: true }, pty: { value: false }, machine: { value: true }, select: { short: 's', value: false },
  region: { short: 'r', value: true }, 'process-group': { short: 'g', value: true }, user: { short: 'u', value: true }, address: { short: 'A', value: true },
  quiet: { short: 'q', value: false }, org: { short: 'o', value: true }, container: { value: true }, 'no-container': { value: false },
}

export async function ssh(sub: string | undefined, args: string[]) {
  if (sub !== 'console') throw unknownCommand(sub, 'flyctl ssh')
  const { flags } = parseFlags(args, FLAGS)
  const name = str(flags, 'app') || callEnv('FLY_APP')
  if (!name) throw new FlyError('the config for your app is missing an app name, add an app field to the fly.toml file or specify with the -a flag')
  await latency('ssh')
  const f = await fault('ssh', name)
  const state = readState(dir())
  const app = findApp(state, name)
  // console.go selectMachine: started machines only (no started one is an error even with
  // --machine), then -r/--region, then --machine among what is left.
  let started = app.machines.filter((m) => m.state === 'started')
  if (!started.length) throw new FlyError(`app ${name} has no started VMs.\nIt may be unhealthy or not have been deployed yet.\nTry the following command to verify:\n\nfly status`)
  const region = str(flags, 'region')
  if (region) {
    started = started.filter((m) => m.region === region)
    if (!started.length) throw new FlyError(`app ${name} has no VMs in region ${region}`)
  }
  const wanted = str(flags, 'machine')
  if (wanted && !started.some((m) => m.id === wanted)) throw new FlyError(`--machine="${wanted}" not found/started`)
  // -s/--select: a prompt, which fails without a terminal when there is a choice to make.
  if (flags.select) {
    if (wanted !== undefined) throw new FlyError("--machine can't be used with -s/--select")
    if (started.length > 1) throw new FlyError(`selecting VM: ${NON_INTERACTIVE}`)
    out(`Only one machine available, selecting ${started[0].id} in region ${started[0].region}\n`)
  }
  const machine = started.find((m) => m.id === wanted) ?? started[0]
  if (!wanted && !flags.select && started.length > 1) out(`No machine specified, using ${machine.id} in region ${machine.region}\n`)
  // connect.go spin(): without a terminal, the "in" text alone on stderr; --quiet disables it. It
  // is printed before the dial, so a connection failure follows it.
  if (!flags.quiet) err(`Connecting to ${machine.privateIp}...\n`)
  if (f?.kind === 'ssh-connect-fail' || f?.kind === 'fail') throw new FlyError('error connecting to SSH server: ssh: handshake failed: EOF')
  const command = str(flags, 'command') ?? ''
  const env = { ...machine.config.env, ...secretsAt(app, machine.secretsVersion) }
  const words = shellWords(command)
  const pty = command === '' || Boolean(flags.pty)
  // With a PTY, the terminal merges both streams and turns each \n into \r\n (ONLCR).
  const write = pty ? (text: string) => out(text.replace(/\r?\n/g, '\r\n')) : undefined
  // Cancelled while the session runs: flyctl returns at once; the remote side goes on.
  call().onInterrupt = () => {
    err('Error: ssh shell: session forcibly closed; the remote process may still be running\n')
    return 1
  }
  if (command === '') {
    const status = await loginShell({ state, sandbox: sandbox(), image: state.images[machine.image], env, signal: machinesPower(dir()) }, machine.id, write!)
    if (status !== 0) throw new FlyError(`ssh shell: Process exited with status ${status}`)
    return
  }

  if (f?.kind === 'ssh-dropped-running') {
    // The session drops while the remote command goes on: it runs to its end after flyctl returned.
    void runCommand({ state, sandbox: sandbox(), image: state.images[machine.image], env, slowMs: f.ms ?? 1500, signal: machinesPower(dir()) }, words).catch(() => undefined)
    throw new FlyError('ssh shell: wait: remote command exited without exit status or exit signal')
  }
  const result = f?.kind === 'remote-fail'
    ? { status: 1, stdout: '', stderr: 'Error: P3018 (injected fault)\n' }
    : await runCommand({ state, sandbox: sandbox(), image: state.images[machine.image], env, slowMs: f?.kind === 'slow' ? f.ms : undefined, signal: machinesPower(dir()) }, words)
  if (write) write(result.stdout + result.stderr)
  else {
    out(result.stdout)
    err(result.stderr)
  }
  if (f?.kind === 'ssh-dropped') throw new FlyError('ssh shell: wait: remote command exited without exit status or exit signal')
  if (result.status !== 0) throw new FlyError(`ssh shell: Process exited with status ${result.status}`)
}

/** The login shell of a session without -C: a prompt, each line of input run, the last status. */
async function loginShell(ctx: ExecContext, machineId: string, write: (text: string) => void): Promise<number> {
  let cwd = '/root'
  let status = 0
  const prompt = () => write(`root@${machineId}:${cwd === '/root' ? '~' : cwd.replace(/^\/root\//, '~/')}# `)
  const lines = createInterface({ input: call().stdin, crlfDelay: Infinity })
  prompt()
  for await (const line of lines) {
    if (/^\s*exit\s*$/.test(line)) break // `exit` alone: the last status
    if (line.trim()) {
      const result = await runShellLine(ctx, line, cwd)
      write(result.stdout + result.stderr)
      status = result.status
      cwd = result.cwd
      if (result.exit) break
    }
    prompt()
  }
  lines.close()
  write('logout\n')
  return status
}
