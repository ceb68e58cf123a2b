import { $, quote, type ProcessPromise } from 'zx/core'
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { basename } from 'node:path'
import { StringDecoder } from 'node:string_decoder'
import { CommandError } from './errors.js'
import { knob } from './knobs.js'
import { plain, type Logger } from './log.js'
import { HEARTBEAT_MS } from './progress.js'
import { mask } from '../secrets/mask.js'
import { DirectFlyctl, directSimulator } from '../../sandbox/direct-flyctl.js'

// The one chokepoint every flyctl call and database write goes through (release-it's Shell.exec):
// reads run, even in dry run; writes run, or in dry run are printed as a shell command a person
// can paste, secrets masked. Secrets travel on stdin only, never in argv.
//
// Children never outlive the toolkit. Each runs in its own process group (stopping it stops what
// it started, a FLY_BIN wrapper's flyctl included), under a small watchdog that stops it when the
// toolkit's process is gone, even after a kill -9 that left no chance to clean up.

export interface CommandSpec {
  argv: string[]
  /** Changes something: skipped (printed) in dry run, never retried blindly. */
  write: boolean
  /** Standard input, for secrets. Never printed. */
  input?: string
  /** What a dry run prints as the here-document body instead of the input (e.g. NAME=****). */
  inputPreview?: string
  timeoutMs?: number
  /** Retry transient failures with backoff (reads, and writes marked harmless). */
  retry?: boolean
  /** A write that is harmless to repeat (flyctl secrets sync): it may be retried. */
  harmless?: boolean
  cwd?: string
  env?: Record<string, string>
  /** `env` is the child's whole environment, nothing inherited (hooks: no secret value). */
  bareEnv?: boolean
  /** Exit statuses that are answers, not failures (a linter's "found something"). */
  okStatuses?: number[]
  /** Shows the child's output as it runs (interactive tools such as Prisma Studio). */
  passthrough?: boolean
  /** Streams each line of stdout as it arrives (long-running commands such as flyctl proxy). */
  onLine?: (line: string) => void
  /** Shows each line of stdout and stderr indented under the step, as it arrives (deploys, ssh). */
  stream?: boolean
  /** A dry run shows the command prefixed with `cd <dir> &&` (builds run in the build context). */
  showCwd?: string
  /** Each line of stdout and stderr as it arrives, unmasked (builds shown as one line each). */
  onOutput?: (line: string) => void
  /** Stops the command (its whole process group) when aborted. */
  abort?: AbortSignal
  /** Runs beside the commands printed next to it: a dry run prints it as `( … ) &`. */
  together?: boolean
  /** What a dry run prints instead of the command: an equivalent a person can paste (a secrets
   * import that reads the env file itself rather than a here-document of masked values). */
  dryRunAs?: string
  /** Hands the operator's terminal to the child (flyctl ssh console without --command): its
   * standard input and output are the toolkit's own, and it runs in the toolkit's process group,
   * so the terminal's Ctrl-C, job control and window size reach it as they would reach flyctl run
   * by hand. Its stderr is still read, each line copied (masked), for flyctl's error lines. Not
   * with `input`, `onLine`, `onOutput`, `stream` or `passthrough`. */
  interactive?: boolean
  /** Undoes what this run created (a restore drill's scratch database): it still starts while the
   * run is stopping (after Ctrl-C), when no other command does. */
  cleanup?: boolean
}

export interface CommandResult {
  stdout: string
  stderr: string
  status: number
  durationMs: number
  skipped: boolean
}

export interface ExecOptions {
  dryRun: boolean
  verbose: boolean
  log: Logger
}

// flyctl's texts for failures that a second try may not see (network, API gateway, deadline).
const TRANSIENT = /connection reset by peer|i\/o timeout|TLS handshake timeout|\b50[234]\b|Bad Gateway|Service Unavailable|Gateway Timeout|too many requests|\b429\b|temporary failure in name resolution|context deadline exceeded|unexpected EOF/i

export function isTransient(status: number | null, stderr: string): boolean {
  return status === 126 || TRANSIENT.test(stderr)
}

// One watchdog per toolkit process, not one per command: a small bash that learns each child's
// process group as it starts and ends. Its stdin is a pipe only the toolkit holds, so when the
// toolkit is gone, however it went (kill -9 included), its read ends; it then stops the groups
// still running (a FLY_BIN wrapper that does not exec its flyctl is in its child's group): TERM,
// then, for up to 5 s, a look every 0.1 s, then KILL to any group still there.
const WATCHDOG = [
  "groups=' '",
  'while read -r op group; do if [[ $op == + ]]; then groups+="$group "; else groups=${groups/ $group / }; fi; done',
  '[[ -n ${groups// /} ]] || exit 0',
  'for group in $groups; do kill -TERM -- "-$group" 2>/dev/null; done',
  'for ((n = 0; n < 50; n++)); do',
  '  alive=; for group in $groups; do kill -0 -- "-$group" 2>/dev/null && alive=1; done',
  '  [[ $alive ]] || exit 0',
  '  sleep 0.1',
  'done',
  'for group in $groups; do kill -KILL -- "-$group" 2>/dev/null; done',
].join('\n')

let watchdog: ChildProcess | undefined

/** Tells the watchdog (started with the first child) that this process group now runs, or has ended. */
function watch(group: number, running: boolean): void {
  if (!watchdog) {
    // --norc: bash -c with a socket for stdin (Node's pipes are socket pairs) and no SHLVL (cron,
    // some CI runners) takes itself for an ssh session and runs ~/.bashrc, which may take long
    // (pyenv init) or print; the watchdog would still be starting when it is needed.
    watchdog = nodeSpawn('bash', ['--norc', '-c', WATCHDOG], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
    watchdog.on('error', () => undefined) // no bash: children are still stopped on every exit the toolkit sees
    watchdog.stdin!.on('error', () => undefined)
    // Neither keeps the toolkit alive: it watches, it does not wait.
    watchdog.unref()
    ;(watchdog.stdin as unknown as { unref(): void }).unref()
  }
  watchdog.stdin!.write(`${running ? '+' : '-'} ${group}\n`)
}

/** A program that could not be started, as a shell would have answered: 127 when it is not
 * there, 126 when it cannot be run. */
function notStarted(program: string, error: Error | null): { status: number; stderr: string } | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code
  if (code === 'ENOENT') return { status: 127, stderr: `${program}: not found` }
  if (code === 'EACCES' || code === 'ENOEXEC') return { status: 126, stderr: `${program}: cannot be run (${code === 'EACCES' ? 'permission denied' : 'not an executable'})` }
  return undefined
}

/** zx's spawn for a call the sandbox's simulator serves in this process (sandbox/direct-flyctl.ts):
 * no process, so no watchdog; the connection's end is the call's. */
function spawnDirect(stateDir: string, argv: string[], timeoutMs: number | undefined): typeof nodeSpawn {
  return ((_command: string, _args: readonly string[], options: SpawnOptions) => {
    const stdin = Array.isArray(options.stdio) && options.stdio[0] === 'ignore' ? 'ignore' : 'pipe'
    return new DirectFlyctl(stateDir, argv.slice(1), { env: options.env ?? {}, cwd: options.cwd?.toString(), stdin, timeoutMs }) as unknown as ChildProcess
  }) as typeof nodeSpawn
}

/** zx's spawn, given the argv itself: no shell starts and nothing is parsed; the child leads its
 * own process group, which the watchdog knows about while it runs. */
function spawnArgv(argv: string[]): typeof nodeSpawn {
  return ((_command: string, _args: readonly string[], options: SpawnOptions) => {
    const child = nodeSpawn(argv[0], argv.slice(1), { ...options, shell: false })
    const group = child.pid
    if (group !== undefined) {
      watch(group, true)
      child.once('exit', () => watch(group, false))
    }
    return child
  }) as typeof nodeSpawn
}

// The watchdog of an interactive child, which stays in the terminal's foreground process group
// (so it has none of its own for the watchdog above): the child is exec'd in place (same pid,
// default signal dispositions), and a background watcher stops it when the toolkit's process is
// gone. The watcher also ends once the child has (kill -0 $$).
const FOREGROUND_WATCHDOG = [
  'parent=$1; shift',
  '( trap \'kill $! 2>/dev/null; exit 0\' TERM; while kill -0 "$parent" 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 1 & wait $!; done; kill -0 $$ 2>/dev/null || exit 0; kill -TERM $$ 2>/dev/null; sleep 5; kill -0 $$ 2>/dev/null && kill -KILL $$ 2>/dev/null ) </dev/null >/dev/null 2>&1 &',
  'exec "$@"',
].join('\n')

const running = new Set<ProcessPromise>()

/** Set once the run is stopping: after a signal no child starts; after a lost lock no write does
 * (an error path such as an automatic rollback must not start a deploy while cleanup runs). */
let stopping: { reason: string; writesOnly: boolean } | undefined

export function stopStarting(reason: string, writesOnly = false): void {
  if (!stopping || (stopping.writesOnly && !writesOnly)) stopping = { reason, writesOnly }
}

/** Why the run is stopping (a signal, a lost lock), if it is: an open transaction rolls back. */
export const stoppingReason = (): string | undefined => stopping?.reason

/** Set by withLock while it holds a lock: every write first proves the lock is still this run's
 * (the heartbeat alone would notice a broken lock only a third of LOCK_TTL later). */
const writeGuards = new Set<() => Promise<void>>()

/** Registers a guard; returns its removal. */
export function guardWrites(guard: () => Promise<void>): () => void {
  writeGuards.add(guard)
  return () => writeGuards.delete(guard)
}

export async function checkWriteGuard(): Promise<void> {
  for (const guard of writeGuards) await guard()
}

/** Signals the child's process group, or the child alone when it has no group of its own. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal)
      return true
    } catch {
      // no such group or process: try the next
    }
  }
  return false
}

/** Stops a child: SIGTERM, then SIGKILL if it has not ended within a few seconds. */
export async function stopChild(child: ProcessPromise, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!running.has(child)) return
  const direct = child.child instanceof DirectFlyctl ? child.child : undefined
  const pid = child.pid
  const send = (sent: NodeJS.Signals) => (direct ? direct.kill(sent) : pid !== undefined && signalGroup(pid, sent))
  if (!send(signal)) return // already gone
  const ended = await Promise.race([child.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref())])
  if (!ended) send('SIGKILL')
}

/** Stops every child still running (signals, a lost lock). */
export async function killAllChildren(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child, signal)))
}

/** Where printed commands say they run when the toolkit is not at its repository's root (a
 * monorepo's tools/deploy): set once the settings are read. */
let displayDir: string | undefined
export function showCommandsFrom(dir: string | undefined): void {
  displayDir = dir
}

/** One argument as a person would type it: bare when safe, else in single quotes, else in double
 * quotes when nothing in it is special there (`sh -c 'cd /app'`), else zx's $'…' form. */
export function shellQuote(arg: string): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg
  if (!arg.includes("'")) return `'${arg}'`
  if (!/["$`\\!\n]/.test(arg)) return `"${arg}"`
  return quote(arg)
}

/** The command as a person would type it: the flyctl binary shown by its name, not its path. */
export function displayCommand(argv: string[]): string {
  const [program, ...args] = argv
  return [basename(program), ...args].map(shellQuote).join(' ')
}

function heredoc(command: string, body: string): string {
  return `${command} <<'EOF'\n${body.replace(/\n?$/, '\n')}EOF`
}

export interface Exec {
  run(spec: CommandSpec): Promise<CommandResult>
  /** Starts a long-running child (flyctl proxy); the caller stops it. */
  start(spec: CommandSpec): ProcessPromise
  /** A write that is not a command (a database statement, a file): printed in dry run, else done. */
  change<T>(preview: string, action: () => Promise<T>): Promise<T | undefined>
  readonly dryRun: boolean
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function lines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let pending = ''
  // A character split across two chunks is decoded whole.
  const decoder = new StringDecoder('utf8')
  stream.on('data', (chunk: Buffer) => {
    pending += decoder.write(chunk)
    const parts = pending.split('\n')
    pending = parts.pop() ?? ''
    for (const line of parts) each(line)
  })
  stream.on('end', () => pending && each(pending))
}

export function createExec({ dryRun, verbose, log }: ExecOptions): Exec {
  // A command that runs elsewhere is shown in a subshell, so a paste does not move the shell; in
  // the monorepo layout every command says where it runs (the operator may stand anywhere).
  const shown = (spec: CommandSpec) => {
    const where = spec.showCwd ?? displayDir
    return where ? `(cd ${shellQuote(where)} && ${displayCommand(spec.argv)})` : displayCommand(spec.argv)
  }

  const spawn = (spec: CommandSpec): ProcessPromise => {
    if (stopping && !spec.cleanup && (spec.write || !stopping.writesOnly)) throw new CommandError(mask(shown(spec)), null, '', `was not started: ${stopping.reason}`)
    const interactive = Boolean(spec.interactive)
    const env = spec.bareEnv ? { ...spec.env } : { ...process.env, ...spec.env }
    // A call of the sandbox's own flyctl, in a rehearsal or a test: served in this process, a
    // long-running one (flyctl proxy, logs) too; one that owns the terminal stays a process.
    const direct = !interactive && !spec.passthrough ? directSimulator(spec.argv[0], env) : undefined
    const child = $({
      quiet: true,
      nothrow: true,
      prefix: '',
      postfix: '',
      // Its own process group, so stopping it also stops whatever it started (see stopChild);
      // an interactive child stays in the terminal's foreground group instead.
      detached: !interactive,
      // No inherited terminal, except for the one interactive command: flyctl must never wait on
      // (or read) the operator's stdin.
      ...(interactive ? { stdio: ['inherit', 'inherit', 'pipe'] as const } : spec.input !== undefined ? { input: spec.input } : { stdio: ['ignore', 'pipe', 'pipe'] as const }),
      // zx's timeout signals a process group; a direct call keeps its own (the same TERM).
      timeout: direct ? undefined : spec.timeoutMs,
      cwd: spec.cwd,
      env,
      ...(interactive ? {} : { spawn: direct ? spawnDirect(direct, spec.argv, spec.timeoutMs) : spawnArgv(spec.argv) }),
    })`${interactive ? ['sh', '-c', FOREGROUND_WATCHDOG, 'watchdog', String(process.pid)] : []} ${spec.argv}`
    if (spec.passthrough) {
      // Whole lines, so a secret split across two chunks is still seen (and masked) whole.
      lines(child.stdout, (line) => process.stdout.write(`${mask(line)}\n`))
    }
    if (spec.passthrough || interactive) lines(child.stderr, (line) => process.stderr.write(`${mask(line)}\n`))
    running.add(child)
    child.finally(() => running.delete(child)).catch(() => undefined)
    if (spec.onLine) lines(child.stdout, spec.onLine)
    if (spec.onOutput) {
      lines(child.stdout, spec.onOutput)
      lines(child.stderr, spec.onOutput)
    }
    if (spec.stream) {
      // No silent waits: flyctl says nothing while a release command runs or a machine's checks
      // settle; after HEARTBEAT_MS of silence the step says what it is still waiting for.
      let last = { line: '', at: performance.now() }
      const shown = (line: string) => {
        if (!line.trim()) return
        last = { line: plain(line).trim(), at: performance.now() }
        log.detail(line)
      }
      lines(child.stdout, shown)
      lines(child.stderr, shown)
      const heartbeat = setInterval(() => {
        const quiet = performance.now() - last.at
        if (quiet < HEARTBEAT_MS) return
        log.detail(`… still waiting, ${Math.round(quiet / 1000)} s since: ${last.line.slice(0, 80) || 'the start'}`)
        last.at = performance.now()
      }, 1000)
      heartbeat.unref()
      child.finally(() => clearInterval(heartbeat)).catch(() => undefined)
    }
    if (spec.abort) {
      const stop = () => void stopChild(child)
      if (spec.abort.aborted) stop()
      else spec.abort.addEventListener('abort', stop, { once: true })
      child.finally(() => spec.abort!.removeEventListener('abort', stop)).catch(() => undefined)
    }
    return child
  }

  const once = async (spec: CommandSpec): Promise<CommandResult> => {
    const started = performance.now()
    const out = await spawn(spec)
    const durationMs = performance.now() - started
    const unstarted = notStarted(spec.argv[0], out.cause)
    if (unstarted) throw new CommandError(mask(shown(spec)), unstarted.status, unstarted.stderr)
    const stderr = mask(out.stderr)
    if (out.exitCode === 0 || (out.exitCode !== null && spec.okStatuses?.includes(out.exitCode))) {
      return { stdout: out.stdout, stderr, status: out.exitCode, durationMs, skipped: false }
    }
    const timedOut = spec.timeoutMs !== undefined && durationMs >= spec.timeoutMs - 50
    throw new CommandError(
      mask(shown(spec)),
      timedOut ? null : out.exitCode,
      stderr,
      timedOut ? `timed out after ${Math.round(spec.timeoutMs! / 1000)}s and was stopped` : out.signal ? `was stopped${stopping ? ` (${stopping.reason})` : ` by ${out.signal}`}` : undefined,
    )
  }

  return {
    dryRun,
    start(spec) {
      if (verbose) log.info(mask(`$ ${shown(spec)}`))
      return spawn(spec)
    },
    async change(preview, action) {
      if (dryRun) {
        log.result(mask(preview))
        return undefined
      }
      if (verbose) log.info(mask(`! ${preview}`))
      return action()
    },
    async run(spec) {
      const command = shown(spec)
      if (spec.write && dryRun) {
        const printed = spec.dryRunAs ?? (spec.input === undefined ? command : heredoc(command, spec.inputPreview ?? ''))
        log.result(mask(spec.together ? `${printed.startsWith('(') ? printed : `(${printed})`} &` : printed))
        return { stdout: '', stderr: '', status: 0, durationMs: 0, skipped: true }
      }
      if (verbose) log.info(mask(`${spec.write ? '!' : '$'} ${command}`))
      if (spec.write) await checkWriteGuard()
      const attempts = spec.retry && (!spec.write || spec.harmless) ? 3 : 1
      for (let attempt = 1; ; attempt++) {
        try {
          return await once(spec)
        } catch (error) {
          if (!(error instanceof CommandError) || attempt >= attempts || !isTransient(error.status, error.stderr)) throw error
          const wait = knob('FLY_RETRY_BASE_MS') * 2 ** (attempt - 1)
          log.warn(`${mask(command)} failed (${error.stderr.trim().split('\n').pop()}); retrying in ${wait}ms`)
          await sleep(wait)
        }
      }
    },
  }
}
