import { $, quote, type ProcessPromise } from 'zx/core'
import { basename } from 'node:path'
import { CommandError } from './errors.js'
import type { Logger } from './log.js'
import { mask } from './secrets-mask.js'

// The one chokepoint every flyctl call and database write goes through (release-it's Shell.exec):
// reads run, even in dry run; writes run, or in dry run are printed as a shell command a person
// can paste, secrets masked. Secrets travel on stdin only, never in argv.

export interface CommandSpec {
  argv: string[]
  /** Changes something: skipped (printed) in dry run, never retried blindly. */
  write: boolean
  /** Standard input, for secrets. Never printed. */
  input?: string
  /** What a dry run prints as the here-document body instead of the input (e.g. NAME=****). */
  inputPreview?: string
  timeoutMs?: number
  /** Retry transient failures with backoff (only ever for reads). */
  retry?: boolean
  cwd?: string
  env?: Record<string, string>
  /** Exit statuses that are answers, not failures (a linter's "found something"). */
  okStatuses?: number[]
  /** Shows the child's output as it runs (interactive tools such as Prisma Studio). */
  passthrough?: boolean
  /** Streams each line of stdout as it arrives (long-running commands such as flyctl proxy). */
  onLine?: (line: string) => void
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

const running = new Set<ProcessPromise>()

/** Signals the child's process group (a FLY_BIN wrapper script and the flyctl it started), or the
 * child alone when it has no group of its own. */
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

/** Stops a child: SIGTERM, then SIGKILL if it has not ended within a few seconds. (Signals the
 * group directly: zx's kill walks the process table first, which can stall.) */
export async function stopChild(child: ProcessPromise, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = child.pid
  if (pid === undefined || !running.has(child)) return
  if (!signalGroup(pid, signal)) return // already gone
  const ended = await Promise.race([child.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref())])
  if (!ended) signalGroup(pid, 'SIGKILL')
}

/** Stops every child still running (SIGINT/SIGTERM handling). */
export async function killAllChildren(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child, signal)))
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

const retryBaseMs = () => Number(process.env.FLY_RETRY_BASE_MS ?? 500)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function createExec({ dryRun, verbose, log }: ExecOptions): Exec {
  const shown = (spec: CommandSpec) => displayCommand(spec.argv)

  const spawn = (spec: CommandSpec): ProcessPromise => {
    const child = $({
      quiet: true,
      nothrow: true,
      prefix: '',
      postfix: '',
      // Its own process group, so stopping it also stops whatever it started (see stopChild).
      detached: true,
      // No inherited terminal: flyctl must never wait on (or read) the operator's stdin.
      ...(spec.input ? { input: spec.input } : { stdio: ['ignore', 'pipe', 'pipe'] as const }),
      timeout: spec.timeoutMs,
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
    })`${spec.argv}`
    if (spec.passthrough) {
      child.stdout.on('data', (chunk: Buffer) => process.stdout.write(mask(chunk.toString())))
      child.stderr.on('data', (chunk: Buffer) => process.stderr.write(mask(chunk.toString())))
    }
    running.add(child)
    child.finally(() => running.delete(child)).catch(() => undefined)
    if (spec.onLine) {
      let pending = ''
      child.stdout.on('data', (chunk: Buffer) => {
        pending += chunk.toString()
        const lines = pending.split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) spec.onLine?.(line)
      })
    }
    return child
  }

  const once = async (spec: CommandSpec): Promise<CommandResult> => {
    const started = performance.now()
    const out = await spawn(spec)
    const durationMs = performance.now() - started
    const stderr = mask(out.stderr)
    if (out.exitCode === 0 || (out.exitCode !== null && spec.okStatuses?.includes(out.exitCode))) {
      return { stdout: out.stdout, stderr, status: out.exitCode, durationMs, skipped: false }
    }
    const timedOut = spec.timeoutMs !== undefined && durationMs >= spec.timeoutMs - 50
    throw new CommandError(
      mask(shown(spec)),
      timedOut ? null : out.exitCode,
      stderr,
      timedOut ? `timed out after ${Math.round(spec.timeoutMs! / 1000)}s and was stopped` : undefined,
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
        log.result(mask(spec.input === undefined ? command : heredoc(command, spec.inputPreview ?? '')))
        return { stdout: '', stderr: '', status: 0, durationMs: 0, skipped: true }
      }
      if (verbose) log.info(mask(`${spec.write ? '!' : '$'} ${command}`))
      const attempts = spec.retry && !spec.write ? 3 : 1
      for (let attempt = 1; ; attempt++) {
        try {
          return await once(spec)
        } catch (error) {
          if (!(error instanceof CommandError) || attempt >= attempts || !isTransient(error.status, error.stderr)) throw error
          const wait = retryBaseMs() * 2 ** (attempt - 1)
          log.warn(`${command} failed (${error.stderr.trim().split('\n').pop()}); retrying in ${wait}ms`)
          await sleep(wait)
        }
      }
    },
  }
}
