// The simulator as a server: one per sandbox, listening on $FLY_SIM_STATE/flyctl.sock. A flyctl
// process (client.ts) sends one request — its argv, environment, working directory and process id
// — then its standard input and any signal it gets; the server runs the command in a Call and
// streams back what it writes and its exit code. One long-lived process instead of a Node start-up
// per flyctl call; calls still run side by side, each with its own view, as flyctl processes do.
//
// Frames are JSON lines. Client → server: the request, then {"in": base64}, {"eof": true},
// {"signal": "SIGTERM"}. Server → client: {"1": text} (stdout), {"2": text} (stderr), {"exit": N}.
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { type Call, runInCall } from './call.ts'
import { runFlyctl } from './dispatch.ts'
import { stopReleaseCommands } from './commands/release-command.ts'

export const SOCKET = 'flyctl.sock'

export interface Simulator {
  /** The state directory it serves (FLY_SIM_STATE). */
  dir: string
  close(): Promise<void>
}

/** Ends a call that was interrupted: flyctl's own answer to the signal, or 127. */
class Interrupted extends Error {}

function serve(connection: Socket, dir: string): void {
  connection.setEncoding('utf8')
  const stdin = new PassThrough()
  const interrupt = new AbortController()
  let current: Call | undefined
  let finished = false
  let buffer = ''
  const send = (frame: object) => {
    if (!finished && !connection.destroyed) connection.write(`${JSON.stringify(frame)}\n`)
  }
  const finish = (code: number) => {
    if (finished) return
    connection.end(`${JSON.stringify({ exit: code })}\n`)
    finished = true
  }
  const onInterrupt = () => {
    if (finished || !current) return
    const { onInterrupt: answer } = current
    const code = answer ? runInCall(current, answer) : 127
    finish(code)
    interrupt.abort(new Interrupted())
  }
  const start = (request: { argv: string[]; env: Record<string, string>; cwd: string; pid: number }) => {
    current = {
      argv: request.argv,
      env: request.env,
      cwd: request.cwd,
      dir,
      pid: request.pid,
      stdin,
      write: (fd, text) => send({ [fd]: text }),
      interrupted: interrupt.signal,
      memo: new Map(),
    }
    runInCall(current, runFlyctl).then(finish, (error: unknown) => {
      if (interrupt.signal.aborted) return // the call already ended
      send({ 2: `fly simulator: internal error: ${(error as Error)?.stack ?? String(error)}\n` })
      finish(70)
    })
  }
  connection.on('data', (chunk: string) => {
    buffer += chunk
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const frame = JSON.parse(buffer.slice(0, nl))
      buffer = buffer.slice(nl + 1)
      if (!current) start(frame)
      else if (frame.in !== undefined) stdin.write(Buffer.from(frame.in, 'base64'))
      else if (frame.eof) stdin.end()
      else if (frame.signal) onInterrupt()
    }
  })
  // The flyctl process went away (killed): for the call, that is an interrupt.
  connection.on('close', () => {
    stdin.end()
    onInterrupt()
  })
  connection.on('error', () => undefined)
}

export async function startSimulator(dir: string): Promise<Simulator> {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, SOCKET)
  if (existsSync(path)) rmSync(path)
  const connections = new Set<Socket>()
  const server = createServer((connection) => {
    connections.add(connection)
    connection.on('close', () => connections.delete(connection))
    serve(connection, dir)
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve))
  // The sandbox's owner decides when it ends; a listening socket must not keep a finished test alive.
  server.unref()
  return {
    dir,
    close: async () => {
      await stopReleaseCommands(dir)
      await new Promise<void>((resolve) => {
        for (const connection of connections) connection.destroy()
        server.close(() => resolve())
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
