// Name resolution inside the organisation's private network (fly-platform.md §4.5, §4.6;
// fly-mpg.md §7): APP.flycast needs a private_v6 on the app (Fly Proxy, autostart); APP.internal
// and its variants reach started machines directly; MPG hosts (direct.<id>.flympg.net,
// pgbouncer.<id>.flympg.net) resolve only inside the network. The sandbox maps database apps and
// clusters to the real local servers that play them.
import { hasFlycast } from './ips.ts'
import type { Sandbox, SimState } from '../state.ts'

export interface Backend {
  host: string
  port: number
  /** How the simulator itself reads the database there, to copy it into a backup or snapshot (a
   * real server's credentials and database); unset, any name will do (a PGlite instance). */
  url?: string
}

/** Where a machine's connection to host:port really goes, or why it cannot. */
export function resolveBackend(state: SimState, sandbox: Sandbox, host: string, port: number): Backend | { error: string } {
  const lower = host.toLowerCase()
  const mpg = /^(direct|pgbouncer)\.([a-z0-9]+)\.flympg\.net$/.exec(lower)
  if (mpg) {
    const cluster = state.mpg[mpg[2]]
    const backend = cluster && sandbox.postgres?.[cluster.name]
    if (!cluster || !backend) return { error: `getaddrinfo ENOTFOUND ${host}` }
    if (cluster.status !== 'ready') return { error: `connect ECONNREFUSED ${host}:${port}` }
    return backend
  }
  if (lower.endsWith('.flycast')) {
    const name = lower.slice(0, -'.flycast'.length)
    const app = state.apps[name]
    if (!app || !hasFlycast(app)) return { error: `getaddrinfo ENOTFOUND ${host}` }
    const backend = sandbox.postgres?.[name]
    return backend ?? { error: `connect ECONNREFUSED ${host}:${port}` }
  }
  if (lower.endsWith('.internal')) {
    const labels = lower.slice(0, -'.internal'.length).split('.')
    const name = labels.at(-1)!
    const app = state.apps[name]
    if (!app || !app.machines.some((m) => m.state === 'started')) return { error: `getaddrinfo ENOTFOUND ${host}` }
    const backend = sandbox.postgres?.[name]
    return backend ?? { error: `connect ECONNREFUSED ${host}:${port}` }
  }
  return { host, port }
}
