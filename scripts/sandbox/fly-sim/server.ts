// The simulator as a server: one per sandbox, on 127.0.0.1 at the port written in
// $FLY_SIM_STATE/flyctl.port. Each `flyctl …` the toolkit runs is scripts/sandbox/flyctl, a short
// bash script that hands the server its argv, environment, working directory and process id,
// streams its standard input and passes on the signals it gets; the server runs the command in a
// Call and streams back what it writes and its exit code. One long-lived process instead of a Node
// start-up per flyctl call; calls still run side by side, each with its own view, as flyctl
// processes do.
//
// Wire format (what bash can read and write without helpers):
// - a call connection opens with NUL-terminated fields: `call`, call id, pid, cwd, `none` or `pipe`
//   (standard input), argc, the argv, `NAME=value` environment entries (or `@proc`: read them from
//   /proc/<pid>/environ, the environment the flyctl process started with), an empty field; then it
//   carries one line per signal (`k`);
// - a stdin connection opens with `stdin`, call id (NUL-terminated), then the raw bytes; its close is
//   the end of standard input;
// - the server answers on the call connection with frames: `o`/`e` + a byte count + a newline, then
//   that many bytes of stdout/stderr (bash reads them in one go: a line-by-line read costs a system
//   call per byte), and finally `x` + the exit code + a newline.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { type Call, runInCall } from './call.ts'
import { runFlyctl } from './dispatch.ts'
import { stopReleaseCommands } from './commands/release-command.ts'
import { powerOffMachines } from './model/exec.ts'
import { stopAllRestored } from './model/restores.ts'

/** The file that holds the server's port, in the state directory. */
export const PORT_FILE = 'flyctl.port'

export interface Simulator {
  /** The state directory it serves (FLY_SIM_STATE). */
  dir: string
  port: number
  close(): Promise<void>
}

/** Ends a call that was interrupted: flyctl's own answer to the signal, or 127. */
class Interrupted extends Error {}

/** The first `count` NUL-terminated fields of buf, and what follows them (undefined: not all here yet). */
function fields(buf: Buffer, count: number): { values: string[]; rest: Buffer } | undefined {
  const values: string[] = []
  let at = 0
  while (values.length < count) {
    const end = buf.indexOf(0, at)
    if (end < 0) return undefined
    values.push(buf.subarray(at, end).toString('utf8'))
    at = end + 1
  }
  return { values, rest: buf.subarray(at) }
}

interface Request {
  id: string
  pid: number
  cwd: string
  argv: string[]
  env: Record<string, string>
  /** Standard input comes on a connection of its own (else it is empty). */
  stdin: boolean
}

/** A whole request, or undefined while its fields are still arriving. */
function parseRequest(buf: Buffer): { request: Request; rest: Buffer } | undefined {
  const head = fields(buf, 6)
  if (!head) return undefined
  const [, id, pid, cwd, stdin, argc] = head.values
  const args = fields(head.rest, Number(argc))
  if (!args) return undefined
  const env: Record<string, string> = {}
  let rest = args.rest
  for (;;) {
    const entry = fields(rest, 1)
    if (!entry) return undefined
    rest = entry.rest
    const [text] = entry.values
    if (text === '') break
    for (const line of text === '@proc' ? readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0') : [text]) {
      const eq = line.indexOf('=')
      if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1)
    }
  }
  return { request: { id, pid: Number(pid), cwd, argv: args.values, env, stdin: stdin === 'pipe' }, rest }
}

/** Output as the client reads it: its kind, its length in bytes, the bytes. */
function frame(kind: 'o' | 'e', text: string): string {
  return text ? `${kind}${Buffer.byteLength(text)}\n${text}` : ''
}

class Server {
  private readonly stdins = new Map<string, PassThrough>()

  constructor(private readonly dir: string) {}

  /** The stdin stream of a call, whichever of its two connections arrives first. */
  private stdinFor(id: string): PassThrough {
    let stream = this.stdins.get(id)
    if (!stream) {
      stream = new PassThrough()
      this.stdins.set(id, stream)
      stream.on('close', () => this.stdins.delete(id))
    }
    return stream
  }

  accept(connection: Socket): void {
    let buffer = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      const kind = fields(buffer, 1)?.values[0]
      if (kind === undefined) return
      if (kind === 'stdin') {
        const head = fields(buffer, 2)
        if (!head) return
        connection.off('data', onData)
        const stdin = this.stdinFor(head.values[1])
        if (head.rest.length) stdin.write(head.rest)
        connection.on('data', (more: Buffer) => stdin.write(more))
        connection.on('close', () => stdin.end())
        connection.on('error', () => undefined)
        return
      }
      const parsed = parseRequest(buffer)
      if (!parsed) return
      connection.off('data', onData)
      this.run(connection, parsed.request, parsed.rest)
    }
    connection.on('data', onData)
    connection.on('error', () => undefined)
  }

  private run(connection: Socket, request: Request, early: Buffer): void {
    const stdin = request.stdin ? this.stdinFor(request.id) : new PassThrough().end()
    const interrupt = new AbortController()
    let finished = false
    const send = (text: string) => {
      if (!finished && !connection.destroyed) connection.write(text)
    }
    const call: Call = {
      argv: request.argv,
      env: request.env,
      cwd: request.cwd,
      dir: this.dir,
      pid: request.pid,
      stdin,
      write: (fd, text) => send(frame(fd === 1 ? 'o' : 'e', text)),
      interrupted: interrupt.signal,
      memo: new Map(),
    }
    const finish = (code: number) => {
      if (finished) return
      send(`x${code}\n`)
      finished = true
      connection.end()
    }
    const onInterrupt = () => {
      if (finished) return
      const answer = call.onInterrupt
      finish(answer ? runInCall(call, answer) : 127)
      interrupt.abort(new Interrupted())
    }
    // After the request, the call connection carries only signals, one `k` line each.
    const onSignals = (chunk: Buffer) => chunk.includes(0x6b) && onInterrupt()
    if (early.length) onSignals(early)
    connection.on('data', onSignals)
    // The flyctl process went away (killed): for the call, that is an interrupt.
    connection.on('close', () => {
      onInterrupt()
      // A stdin connection that never came (a process killed early) must not leave the stream open.
      setTimeout(() => stdin.destroy(), 5000).unref()
    })
    runInCall(call, runFlyctl).then(finish, (error: unknown) => {
      if (interrupt.signal.aborted) return // the call already ended
      send(frame('e', `fly simulator: internal error: ${(error as Error)?.stack ?? String(error)}\n`))
      finish(70)
    })
  }
}

export async function startSimulator(dir: string): Promise<Simulator> {
  mkdirSync(dir, { recursive: true })
  const server = new Server(dir)
  const connections = new Set<Socket>()
  const tcp = createServer((connection) => {
    connections.add(connection)
    connection.on('close', () => connections.delete(connection))
    server.accept(connection)
  })
  await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(0, '127.0.0.1', resolve))
  // The sandbox's owner decides when it ends; a listening socket must not keep a finished test alive.
  tcp.unref()
  const { port } = tcp.address() as { port: number }
  writeFileSync(join(dir, PORT_FILE), `${port}\n`)
  return {
    dir,
    port,
    close: async () => {
      await stopReleaseCommands(dir)
      powerOffMachines(dir)
      // The databases restores started in this process end with the simulator.
      await stopAllRestored(dir)
      await new Promise<void>((resolve) => {
        for (const connection of connections) connection.destroy()
        tcp.close(() => resolve())
      })
    },
  }
}

export interface DirectResult {
  code: number
  stdout: string
  stderr: string
  /** stdout and stderr together, in the order they were written. */
  output: string
}

/** Runs one flyctl command in this process, without a flyctl process (setting a sandbox up). */
export async function runDirect(dir: string, argv: string[], options: { env: Record<string, string>; cwd: string; input?: string }): Promise<DirectResult> {
  const result: DirectResult = { code: 0, stdout: '', stderr: '', output: '' }
  const direct: Call = {
    argv,
    env: options.env,
    cwd: options.cwd,
    dir,
    pid: process.pid,
    stdin: Readable.from([Buffer.from(options.input ?? '')]),
    write: (fd, text) => {
      if (fd === 1) result.stdout += text
      else result.stderr += text
      result.output += text
    },
    interrupted: new AbortController().signal,
    memo: new Map(),
  }
  result.code = await runInCall(direct, runFlyctl)
  return result
}
