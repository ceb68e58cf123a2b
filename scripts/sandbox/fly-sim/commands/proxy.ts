// fly proxy LOCAL[:REMOTE] [REMOTE_HOST] -a APP (internal/command/proxy/proxy.go; flyctl.md §8.3)
// and the tunnel under `fly mpg proxy`: binds, prints the readiness line on stdout, forwards real
// bytes to the sandbox's database, exits 0 on SIGINT/SIGTERM; --watch-stdin exits when stdin ends.
import { createConnection, createServer, type Socket } from 'node:net'
import { call, Exit } from '../call.ts'
import { APP_FLAG, FlyError, appName, err, hang, minimumArgs, out, parseFlags, sleep } from '../cli.ts'
import { dir, fault, findApp, latency, sandbox } from '../runtime.ts'
import { readState } from '../state.ts'
import type { Backend } from '../model/network.ts'

export interface Tunnel {
  local: string
  bind: string
  backend: Backend
  /** What the readiness line names as the remote. */
  shown: string
  watchStdin: boolean
  /** Fault: the proxy exits this long after becoming ready (a dropped WireGuard tunnel). */
  dieAfterMs?: number
}

export async function serveTunnel(t: Tunnel): Promise<never> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    const upstream = createConnection(t.backend.port, t.backend.host)
    for (const s of [socket, upstream]) sockets.add(s).has(s) && s.on('close', () => sockets.delete(s))
    socket.pipe(upstream).pipe(socket)
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
  })
  // The tunnel lives as long as its call: when the call ends, so do the listener and its connections.
  const close = () => {
    server.close()
    for (const s of sockets) s.destroy()
  }
  const current = call()
  current.interrupted.addEventListener('abort', close, { once: true })
  // net.ListenTCP's error, as Go prints it.
  await new Promise<void>((ok, fail) => server.once('error', () => fail(new FlyError(`listen tcp ${t.bind}:${t.local}: bind: address already in use`))).listen(Number(t.local), t.bind, ok))
  const port = (server.address() as { port: number }).port
  out(`Proxying localhost:${port} to remote ${t.shown}\n`)
  // SIGINT/SIGTERM: ProxyServer returns nil, so the exit code is 0.
  current.onInterrupt = () => 0
  const stdinEnded = t.watchStdin ? new Promise<never>((_, reject) => current.stdin.on('end', () => (close(), reject(new Exit(0)))).resume()) : undefined
  if (t.dieAfterMs !== undefined) {
    await Promise.race([sleep(t.dieAfterMs), ...(stdinEnded ? [stdinEnded] : [])])
    close()
    err('Error: tunnel unavailable: failed probing "personal": context deadline exceeded\n')
    throw new Exit(1)
  }
  return Promise.race([hang(), ...(stdinEnded ? [stdinEnded] : [])])
}

export async function proxy(args: string[]) {
  const { flags, positionals } = parseFlags(args, { ...APP_FLAG, 'bind-addr': { short: 'b', value: true }, select: { short: 's', value: false }, quiet: { short: 'q', value: false }, org: { short: 'o', value: true }, 'watch-stdin': { value: false } })
  const name = appName(flags)
  minimumArgs(positionals, 1)
  const [local, remote = local] = positionals[0].split(':')
  // The app's lookup and the WireGuard tunnel take Fly's time before the readiness line.
  await latency('proxy')
  const f = await fault('proxy', name)
  findApp(readState(dir()), name)
  const backend = sandbox().postgres?.[name]
  if (!backend) throw new FlyError(`no machines found for app ${name} (the sandbox has no backend for it)`)
  if (f?.kind === 'proxy-never-ready') {
    const current = call()
    current.onInterrupt = () => 0
    if (flags['watch-stdin']) await Promise.race([hang(), new Promise<never>((_, reject) => current.stdin.on('end', () => reject(new Exit(0))).resume())])
    await hang()
  }
  const host = positionals[1] ?? `${name}.internal`
  return serveTunnel({ local, bind: (flags['bind-addr'] as string) || '127.0.0.1', backend, shown: `[${host}]:${remote}`, watchStdin: Boolean(flags['watch-stdin']), dieAfterMs: f?.kind === 'proxy-dies' ? (f.ms ?? 0) : undefined })
}
