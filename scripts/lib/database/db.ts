import { AsyncLocalStorage } from 'node:async_hooks'
import { createServer } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { relative } from 'node:path'
import type { ProcessPromise } from 'zx/core'
import { OperationError, UserError } from '../core/errors.js'
import type { Context } from '../core/cli.js'
import type { DatabaseTarget } from '../secrets/env-files.js'
import { checkWriteGuard, shellQuote, stopChild, stoppingReason } from '../core/exec.js'
import { knob, seconds } from '../core/knobs.js'
import type { Environment } from '../core/names.js'

// How the toolkit reaches an environment's database (interface: Configuration and secrets):
// a host ending in .flycast or .internal through `flyctl proxy <free local port>:<port> --app
// <app>` on 127.0.0.1, a Managed Postgres host (*.flympg.net) through `flyctl mpg proxy`, any
// other host directly. Every session sets statement_timeout and lock_timeout, and every query
// has a client-side deadline too, so a table lock held elsewhere (or a database that stops
// answering) ends the step with an error instead of hanging it.

export interface Database {
  /** Reads run in dry run too. */
  query<T extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  /** Writes go through the chokepoint: printed as psql in dry run. `file`: where `sql` was read
   * from, shown instead of the SQL; `sensitive`: 1-based parameters shown as **** (salts, hashes). */
  write(sql: string, params?: unknown[], options?: { file?: string; sensitive?: number[] }): Promise<void>
  /** Runs fn in one transaction on this session (BEGIN … COMMIT, ROLLBACK on error). Queries from
   * outside fn wait until it ends. A change to the data (not the toolkit's own bookkeeping) first
   * proves the run still holds its lock, and rolls back instead of committing once the run is
   * stopping (a signal, a lost lock). */
  transaction<T>(fn: () => Promise<T>, options?: { bookkeeping?: boolean }): Promise<T>
  /** Where it connected, for messages (no password). */
  readonly where: string
  readonly env: Environment
  /** The server and database it reached: equal for two connections to one database. */
  identity(): Promise<string>
  /** False once the connection (or its proxy) is gone. */
  alive(): boolean
  close(): Promise<void>
}

export function proxyKind(host: string): 'flyctl' | 'mpg' | undefined {
  if (host.endsWith('.flympg.net')) return 'mpg'
  if (host.endsWith('.flycast') || host.endsWith('.internal')) return 'flyctl'
  return undefined
}

/** The Fly app a private host belongs to: APP.flycast, top2.nearest.of.APP.internal, … */
export function privateApp(host: string): string {
  const labels = host.split('.')
  return host.endsWith('.flycast') ? labels[0] : labels.at(-2)!
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

interface Tunnel {
  port: number
  child: ProcessPromise
}

const PROXY_COMMAND = { mpg: 'flyctl mpg proxy', flyctl: 'flyctl proxy' } as const

/** One try at a proxy: ready (its readiness line), exited (with flyctl's result), or timed out. */
async function tryProxy(ctx: Context, kind: 'mpg' | 'flyctl', name: string, target: DatabaseTarget, limit: number) {
  const port = await freePort()
  let ready!: () => void
  const readyLine = new Promise<void>((resolve) => (ready = resolve))
  const onLine = (line: string) => {
    if (line.startsWith('Proxying ')) ready()
  }
  const child = kind === 'mpg' ? ctx.fly().mpg.proxy(name, port, onLine) : ctx.fly().network.proxy(port, target.port, name, onLine)
  ctx.onCleanup(() => stopChild(child))
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    readyLine.then(() => 'ready' as const),
    child.then((out) => out),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), limit * 1000))),
  ])
  clearTimeout(timer)
  if (outcome === 'timeout') await stopChild(child)
  return { port, child, outcome }
}

/** flyctl's own words for a tunnel that did not come up (agent, WireGuard peer, handshake). */
const TUNNEL_TROUBLE = /tunnel unavailable|wireguard|context deadline exceeded|failed probing/i

/**
 * Starts the proxy and waits for its readiness line. On a fresh machine (a CI runner) flyctl first
 * creates a WireGuard peer and waits for the first handshake, which can take 20-30 s before the
 * line appears: so the wait is long (PROXY_READY_TIMEOUT, 60 s), and a tunnel that did not come up
 * gets one more try.
 */
async function startProxy(ctx: Context, target: DatabaseTarget): Promise<Tunnel> {
  const kind = proxyKind(target.host)!
  const name = kind === 'mpg' ? target.host.split('.').at(-3)! : privateApp(target.host)
  const command = PROXY_COMMAND[kind]
  const limit = knob('PROXY_READY_TIMEOUT')
  for (let attempt = 1; ; attempt++) {
    const { port, child, outcome } = await tryProxy(ctx, kind, name, target, limit)
    if (outcome === 'ready') return { port, child }
    const last = attempt >= 2
    if (outcome === 'timeout') {
      if (!last) {
        ctx.log.warn(`${command} to ${name}: the WireGuard tunnel did not come up within ${limit} s (no Proxying line); trying once more`)
        continue
      }
      throw new OperationError(`${command} to ${name}: the WireGuard tunnel did not come up (${command} printed no Proxying line within ${limit} s, twice), and was stopped`, [
        `a first WireGuard handshake on a fresh machine can take 30 s or more: raise PROXY_READY_TIMEOUT (now ${limit} s)`,
        'check the tunnel with: flyctl doctor',
        kind === 'mpg' ? `and the cluster with: flyctl mpg status ${name}` : `and the database app with: flyctl status --app ${name}`,
      ])
    }
    const stderr = outcome.stderr.trim()
    if (!last && TUNNEL_TROUBLE.test(stderr)) {
      ctx.log.warn(`${command} to ${name} exited (${stderr.split('\n').pop()}); trying once more`)
      continue
    }
    throw new OperationError(`${command} to ${name} exited with status ${outcome.exitCode}`, stderr.split('\n').slice(-5))
  }
}

/** SQL with its parameters inlined, for the dry-run runbook only. */
function literalSql(sql: string, params: unknown[] = [], sensitive: number[] = []): string {
  return sql.replace(/\$(\d+)/g, (_, index) => {
    if (sensitive.includes(Number(index))) return "'****'"
    const value = params[Number(index) - 1]
    if (value === null || value === undefined) return 'NULL'
    if (typeof value === 'number' || typeof value === 'boolean') return String(value)
    const text = (v: unknown) => `'${String(v).replace(/'/g, "''")}'`
    if (Array.isArray(value)) return value.length ? `ARRAY[${value.map(text).join(', ')}]::text[]` : "'{}'::text[]"
    return text(value)
  })
}

/** Whether a table exists yet (the toolkit's own tables and Prisma's appear on first use). */
export async function tableExists(db: Database, table: string): Promise<boolean> {
  const [{ exists }] = await db.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [table])
  return exists
}

/** Where to connect: the host itself, or the local end of a proxy (stopped at cleanup). */
export async function reach(ctx: Context, target: DatabaseTarget): Promise<{ host: string; port: number; viaProxy: boolean; tunnel?: Tunnel }> {
  if (!proxyKind(target.host)) return { host: target.host, port: target.port, viaProxy: false }
  const tunnel = await startProxy(ctx, target)
  return { host: '127.0.0.1', port: tunnel.port, viaProxy: true, tunnel }
}

/** Statement text on one line for `psql -c`: full-line comments dropped, whitespace collapsed. */
function oneLine(sql: string): string {
  return sql.replace(/^\s*--.*$/gm, '').replace(/\s+/g, ' ').trim()
}

const hostForUrl = (host: string) => (host.includes(':') ? `[${host}]` : host)

/** How a session asks for TLS: `first` is tried; `fallback` (plain) only if the server refuses it. */
export function tlsPlan(target: DatabaseTarget, via: 'mpg' | 'flyctl' | undefined): { first: false | ConnectionOptions; fallback: boolean } {
  const mode = target.sslmode
  const verify = (servername: string | undefined): ConnectionOptions => ({
    rejectUnauthorized: true,
    ...(servername ? { servername } : {}),
    ...(mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
  })
  if (target.socket || mode === 'disable') return { first: false, fallback: false }
  // Fly Postgres over flyctl proxy (.flycast/.internal): plain inside the WireGuard tunnel, as before.
  if (via === 'flyctl') return { first: false, fallback: false }
  if (via === 'mpg') {
    // Managed Postgres has TLS on by default: asked for first; plain only when the server refuses
    // it (and the URL did not insist). Through the proxy the peer is 127.0.0.1: the certificate is
    // checked against the cluster's own host name.
    if (mode === 'require') return { first: { rejectUnauthorized: false }, fallback: false }
    if (mode === 'verify-ca' || mode === 'verify-full') return { first: verify(target.host), fallback: false }
    if (mode === 'allow') return { first: false, fallback: false }
    return { first: { rejectUnauthorized: false }, fallback: true }
  }
  if (!mode || mode === 'prefer' || mode === 'allow') return { first: false, fallback: false }
  return { first: mode === 'require' ? { rejectUnauthorized: false } : verify(undefined), fallback: false }
}

/** node-postgres' error when the server answers the SSLRequest with N (pg lib/connection.js). */
const TLS_REFUSED = /server does not support SSL connections/i

/** node-postgres. At load it asks whether it runs in a Cloudflare Worker: `navigator.userAgent`
 * where there is a navigator (Node 21 and later), else a `new Response(…)` probe, which on Node 20
 * loads undici (about 25 ms of CPU in every run that opens a database). There it is shown, while it
 * loads, the navigator Node 21 would have. Loaded once per process. */
let pgModule: Promise<typeof import('pg').default> | undefined
const loadPg = () => (pgModule ??= importPg())

async function importPg(): Promise<typeof import('pg').default> {
  if ('navigator' in globalThis) return (await import('pg')).default
  Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` }, configurable: true })
  try {
    return (await import('pg')).default
  } finally {
    delete (globalThis as { navigator?: unknown }).navigator
  }
}

export async function connect(ctx: Context, target: DatabaseTarget, env: Environment = ctx.env): Promise<Database> {
  // pg is loaded while the proxy starts, not at every start of every script.
  const [{ host, port, viaProxy, tunnel }, pg] = await Promise.all([reach(ctx, target), loadPg()])
  const statementMs = seconds('DB_STATEMENT_TIMEOUT')
  const via = viaProxy ? proxyKind(target.host) : undefined
  const plan = tlsPlan(target, via)
  const newClient = (ssl: false | ConnectionOptions) => {
    const client = new pg.Client({
      host,
      port,
      user: target.user,
      password: target.password,
      database: target.database,
      ssl,
      connectionTimeoutMillis: seconds('DB_CONNECT_TIMEOUT'),
      statement_timeout: statementMs,
      lock_timeout: seconds('DB_LOCK_TIMEOUT'),
      idle_in_transaction_session_timeout: statementMs * 2,
      // Client-side as well: a server (or a proxy) that accepts and never answers still ends.
      query_timeout: statementMs + 5000,
      application_name: 'microbima-deploy',
    })
    // An 'error' event without a listener would crash the process; the session's own listeners follow.
    client.on('error', () => undefined)
    return client
  }
  const where = `${target.socket ? target.host : `${hostForUrl(target.host)}:${target.port}`}/${target.database}${viaProxy ? ` (through ${via === 'mpg' ? 'flyctl mpg proxy' : 'flyctl proxy'} on 127.0.0.1:${port})` : ''}`
  let client = newClient(plan.first)
  try {
    try {
      await client.connect()
    } catch (error) {
      if (!plan.first || !TLS_REFUSED.test((error as Error).message)) throw error
      await client.end().catch(() => undefined)
      if (!plan.fallback) {
        throw new OperationError(`cannot connect to the ${env} database at ${where}: the server refused TLS, and the URL's sslmode=${target.sslmode} forbids a connection without it`, [
          via === 'mpg' ? 'Managed Postgres offers TLS by default: find out why this server does not, or remove sslmode from the URL to let the toolkit go plain when TLS is refused' : `remove sslmode=${target.sslmode} from the URL only if the network between here and the server is trusted`,
        ])
      }
      // The server said no to TLS before anything was sent: the same session, in plain.
      client = newClient(false)
      await client.connect()
    }
  } catch (error) {
    // A tunnel to a database that did not answer is no use to anyone: it ends now, not at exit.
    if (tunnel) await stopChild(tunnel.child)
    if (error instanceof OperationError) throw error
    throw new OperationError(`cannot connect to the ${env} database at ${where}: ${(error as Error).message}`)
  }
  let alive = true
  client.on('error', () => (alive = false))
  client.on('end', () => (alive = false))
  tunnel?.child.then(() => (alive = false), () => (alive = false))
  ctx.onCleanup(() => client.end().catch(() => undefined))
  const fail = (verb: string, error: unknown, sql: string) => {
    const code = (error as { code?: string }).code
    const message = (error as Error).message
    const why = code === '57014' ? `${message} (DB_STATEMENT_TIMEOUT=${statementMs / 1000}s)` : code === '55P03' ? `${message}: another session holds a lock on it (DB_LOCK_TIMEOUT)` : /timeout/i.test(message) && !code ? `${message}: the database did not answer within ${statementMs / 1000 + 5}s` : message
    return new OperationError(`${verb} on the ${env} database failed: ${why}${code ? ` (SQLSTATE ${code})` : ''}`, [oneLine(sql).slice(0, 200)])
  }
  // One session: a query from outside an open transaction (a signal's cleanup writing the ledger,
  // releasing the lock) would otherwise run inside it and share its fate.
  const insideTransaction = new AsyncLocalStorage<boolean>()
  // A connection answers one query at a time. The lock's heartbeat or a signal's ledger entry may ask
  // while another query runs: they wait here (pg's own queue for this is deprecated, gone in pg 9).
  let previous: Promise<unknown> = Promise.resolve()
  const oneAtATime = <T>(run: () => Promise<T>): Promise<T> => {
    const next = previous.then(run, run)
    previous = next.catch(() => undefined)
    return next
  }
  let openTransaction: Promise<void> | undefined
  const outsideTransaction = async () => {
    while (openTransaction && !insideTransaction.getStore()) await openTransaction
  }
  const db: Database = {
    where,
    env,
    alive: () => alive,
    async query<T extends object>(sql: string, params: unknown[] = []) {
      await outsideTransaction()
      try {
        return (await oneAtATime(() => client.query(sql, params))).rows as T[]
      } catch (error) {
        throw fail('query', error, sql)
      }
    },
    async write(sql: string, params: unknown[] = [], options = {}) {
      const preview = options.file
        ? `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 --single-transaction -f ${shellQuote(relative(process.cwd(), options.file))}`
        : `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c ${shellQuote(oneLine(literalSql(sql, params, options.sensitive)))}`
      await ctx.exec.change(preview, async () => {
        await outsideTransaction()
        try {
          await oneAtATime(() => client.query(sql, params))
        } catch (error) {
          throw fail('write', error, sql)
        }
      })
    },
    async transaction(fn, options = {}) {
      if (!options.bookkeeping) await checkWriteGuard()
      await outsideTransaction()
      let ended!: () => void
      openTransaction = new Promise<void>((resolve) => (ended = resolve))
      try {
        return await insideTransaction.run(true, async () => {
          await db.query('BEGIN')
          const result = await fn()
          const stopping = stoppingReason()
          if (stopping && !options.bookkeeping) throw new OperationError(`the transaction was rolled back, nothing in it was changed: ${stopping}`)
          await db.query('COMMIT')
          return result
        })
      } catch (error) {
        await oneAtATime(() => client.query('ROLLBACK')).catch(() => undefined)
        throw error
      } finally {
        openTransaction = undefined
        ended()
      }
    },
    async identity() {
      const [row] = await db.query<{ sysid: string | null; oid: string; db: string }>(
        `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS oid, current_database() AS db`,
      ).catch(async () => db.query<{ sysid: string | null; oid: string; db: string }>(`SELECT coalesce(inet_server_addr()::text, '') || ':' || coalesce(inet_server_port()::text, '') AS sysid, (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS oid, current_database() AS db`))
      return `${row.sysid}/${row.oid}/${row.db}`
    },
    close: async () => {
      alive = false
      await client.end().catch(() => undefined)
    },
  }
  return db
}

/** Staging and production reached in one run must be two databases: compared by the server's
 * identity (system identifier and database oid), which no pair of host names can fake. */
export async function assertDistinct(a: Database, b: Database): Promise<void> {
  const [x, y] = await Promise.all([a.identity(), b.identity()])
  if (x === y) {
    throw new UserError(`staging and production reach the same database (${a.where} and ${b.where} are one server and database): give each environment its own database`)
  }
}
