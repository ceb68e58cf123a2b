import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { finished } from 'node:stream/promises'

// The sandbox's flyctl client (scripts/sandbox/flyctl) without its bash process: the same wire
// format to the simulator's server (fly-sim/server.ts), spoken from the toolkit's own process, so
// a rehearsal's or a test's flyctl call costs no process start (a bash and its fork from a large
// node process: some 12 ms of CPU each, over some 3,400 calls a test run). The toolkit's exec
// chokepoint uses it when FLY_SIM_DIRECT names the very program it would run, for one-shot and
// long-running calls (flyctl proxy, logs: the server ends them when the connection drops, as when
// the client dies); the sandbox's `env` sets it, `make sandbox`'s exports do not (an operator's
// shell runs the bash client, as it would run flyctl), and interactive calls (a terminal's) stay
// processes. What flyctl sees is the same: argv, the environment it would have been
// given, its directory, standard input (none, or a stream of its own), a signal as `k`; what the
// caller sees is a child process: stdout, stderr, an exit code, `kill`.

/** The simulator's state directory, when `program` is the sandbox's client and calls may go direct. */
export function directSimulator(program: string, env: Record<string, string | undefined>): string | undefined {
  return env.FLY_SIM_DIRECT && env.FLY_SIM_STATE && program === env.FLY_SIM_DIRECT ? env.FLY_SIM_STATE : undefined
}

export interface DirectCallOptions {
  env: Record<string, string | undefined>
  cwd?: string
  /** `ignore`: no standard input (the client's /dev/null); else a stream the caller writes and ends. */
  stdin: 'ignore' | 'pipe'
  /** Then a TERM, as zx's timeout would send the client. */
  timeoutMs?: number
}

/** One flyctl call served by the simulator, shaped like a ChildProcess for zx. */
export class DirectFlyctl extends EventEmitter {
  readonly pid = undefined
  readonly stdout = new PassThrough()
  readonly stderr = new PassThrough()
  readonly stdin: PassThrough | null
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null
  private readonly call: Socket | undefined
  private done = false
  private killedBy: NodeJS.Signals | undefined
  /** The standard input connection: closed when the call ends, as the client kills its feeder. */
  private feed: Socket | undefined

  constructor(stateDir: string, argv: string[], options: DirectCallOptions) {
    super()
    this.stdin = options.stdin === 'pipe' ? new PassThrough() : null
    const notRunning = `Error: the Fly simulator is not running for FLY_SIM_STATE=${stateDir} (start one with make sandbox)\n`
    let port = Number.NaN
    try {
      port = Number(readFileSync(join(stateDir, 'flyctl.port'), 'utf8').trim())
    } catch {
      // no port file: not running
    }
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      this.fail(notRunning)
      return
    }
    const id = `${process.pid}-${randomBytes(6).toString('hex')}`
    const env = Object.entries(options.env).flatMap(([name, value]) => (value === undefined ? [] : [`${name}=${value}`]))
    const fields = ['call', id, String(process.pid), options.cwd ?? process.cwd(), this.stdin ? 'pipe' : 'none', String(argv.length), ...argv, ...env, '']
    const call = connect(port, '127.0.0.1')
    this.call = call
    call.write(fields.map((field) => `${field}\0`).join(''))
    if (this.stdin) {
      const feed = connect(port, '127.0.0.1')
      this.feed = feed
      feed.on('error', () => undefined)
      feed.write(`stdin\0${id}\0`)
      this.stdin.pipe(feed)
    }
    const timer = options.timeoutMs ? setTimeout(() => this.kill('SIGTERM'), options.timeoutMs) : undefined
    let buffer: Buffer = Buffer.alloc(0)
    let code: number | undefined
    let refused = false
    call.on('data', (chunk: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk
      for (;;) {
        const newline = buffer.indexOf(0x0a)
        if (newline < 0) return
        const kind = String.fromCharCode(buffer[0])
        const number = Number(buffer.subarray(1, newline).toString('latin1'))
        if (kind === 'x') {
          code = number
          buffer = buffer.subarray(newline + 1)
          continue
        }
        if (buffer.length < newline + 1 + number) return
        ;(kind === 'o' ? this.stdout : this.stderr).write(buffer.subarray(newline + 1, newline + 1 + number))
        buffer = buffer.subarray(newline + 1 + number)
      }
    })
    call.on('error', (error: NodeJS.ErrnoException) => {
      if (code === undefined && !this.killedBy && error.code === 'ECONNREFUSED') {
        refused = true
        this.stderr.write(notRunning)
      }
    })
    call.on('close', () => {
      clearTimeout(timer)
      if (this.killedBy) return void this.end(null, this.killedBy)
      if (code === undefined) {
        if (!refused && !this.stderr.writableEnded) this.stderr.write('Error: the Fly simulator closed the connection without an answer\n')
        return void this.end(1, null)
      }
      this.end(code, null)
    })
  }

  /** INT, TERM and HUP are flyctl's to answer (the client passes them on); any other signal ends
   * the call as it would end the client: the connection drops, which the server takes as an interrupt. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.done || !this.call) return false
    const name = typeof signal === 'number' ? 'SIGTERM' : signal
    if (name === 'SIGINT' || name === 'SIGTERM' || name === 'SIGHUP') {
      if (!this.call.destroyed) this.call.write('k\n')
    } else {
      this.killedBy = name
      this.call.destroy()
    }
    return true
  }

  ref(): void {}
  unref(): void {}

  private fail(message: string): void {
    this.stderr.write(message)
    setImmediate(() => void this.end(1, null))
  }

  /** Ends like a process: its output streams first, then `exit` and `close`. */
  private async end(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.done) return
    this.done = true
    if (this.feed) {
      this.stdin?.unpipe(this.feed)
      this.feed.destroy()
    }
    this.stdout.end()
    this.stderr.end()
    await Promise.all([finished(this.stdout), finished(this.stderr)]).catch(() => undefined)
    this.exitCode = code
    this.signalCode = signal
    this.emit('exit', code, signal)
    this.emit('close', code, signal)
  }
}
