// flyctl, simulated: the process the toolkit runs as FLY_BIN in the sandbox. It hands its argv,
// environment, working directory, standard input and signals to the simulator's server (server.ts)
// and plays back what the server writes, ending with the command's exit code. Only node:net and
// node:path: it starts about as fast as Node itself.
import { connect } from 'node:net'
import { join } from 'node:path'

const dir = process.env.FLY_SIM_STATE
if (!dir) {
  process.stderr.write("Error: FLY_SIM_STATE is not set: this flyctl is the sandbox's simulator (make sandbox prints the exports to use it)\n")
  process.exit(1)
}

let exitCode: number | undefined
const socket = connect(join(dir, 'flyctl.sock'))
const send = (frame: object) => socket.writable && socket.write(`${JSON.stringify(frame)}\n`)
socket.on('error', (error: NodeJS.ErrnoException) => {
  if (exitCode !== undefined) return
  const down = error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
  process.stderr.write(down ? `Error: the Fly simulator is not running for FLY_SIM_STATE=${dir} (start one with make sandbox)\n` : `Error: the Fly simulator stopped answering: ${error.message}\n`)
  process.exit(1)
})
socket.on('connect', () => {
  send({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd(), pid: process.pid })
  process.stdin.on('data', (chunk: Buffer) => send({ in: chunk.toString('base64') }))
  process.stdin.on('end', () => send({ eof: true }))
  process.stdin.on('error', () => send({ eof: true }))
})
// A signal is the command's to answer (flyctl exits 127, an ssh session says it was closed, a
// proxy exits 0): passed on, then the server's answer is awaited, a few seconds at most.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    send({ signal })
    setTimeout(() => process.exit(127), 5000).unref()
  })
}
let buffer = ''
socket.setEncoding('utf8')
socket.on('data', (chunk: string) => {
  buffer += chunk
  for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
    const frame = JSON.parse(buffer.slice(0, nl)) as { 1?: string; 2?: string; exit?: number }
    buffer = buffer.slice(nl + 1)
    if (frame[1] !== undefined) process.stdout.write(frame[1])
    if (frame[2] !== undefined) process.stderr.write(frame[2])
    if (frame.exit !== undefined) exitCode = frame.exit
  }
})
socket.on('close', () => {
  const code = exitCode ?? 1
  if (exitCode === undefined) process.stderr.write('Error: the Fly simulator closed the connection without an answer\n')
  // Whatever is still buffered reaches the pipes before the process ends.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)))
})
