import { createServer } from 'node:net'
import { relative } from 'node:path'
import pg from 'pg'
import { OperationError } from './errors.js'
import type { Context } from './cli.js'
import type { DatabaseTarget } from './config.js'
import { shellQuote, stopChild } from './exec.js'

// The interface's connection rule: a host ending in .flycast or .internal is reached through
// `flyctl proxy <free local port>:<port> --app <first label of the host>` on 127.0.0.1;
// any other host is connected to directly.

export interface Database {
  /** Reads run in dry run too. */
  query<T extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  /** Writes go through the chokepoint: printed as psql in dry run. */
  /** `file`: where `sql` was read from, shown instead of the SQL in dry run. */
  write(sql: string, params?: unknown[], file?: string): Promise<void>
  /** Where it connected, for messages (no password). */
  readonly where: string
  close(): Promise<void>
}

export function needsProxy(host: string): boolean {
  return host.endsWith('.flycast') || host.endsWith('.internal')
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

const proxyReadyMs = () => Number(process.env.PROXY_READY_TIMEOUT ?? 20) * 1000
const connectTimeoutMs = () => Number(process.env.DB_CONNECT_TIMEOUT ?? 15) * 1000

async function startProxy(ctx: Context, target: DatabaseTarget): Promise<number> {
  const app = target.host.split('.')[0]
  const port = await freePort()
  let ready!: () => void
  const readyLine = new Promise<void>((resolve) => (ready = resolve))
  const child = ctx.fly().proxy(port, target.port, app, (line) => {
    if (line.startsWith('Proxying ')) ready()
  })
  ctx.onCleanup(() => stopChild(child))
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    readyLine.then(() => 'ready' as const),
    child.then((out) => out),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), proxyReadyMs()))),
  ])
  clearTimeout(timer)
  if (outcome === 'timeout') {
    throw new OperationError(`flyctl proxy to ${app} did not become ready within ${proxyReadyMs() / 1000}s`, [
      `is the database app ${app} running? check with: flyctl status --app ${app}`,
    ])
  }
  if (outcome !== 'ready') {
    throw new OperationError(`flyctl proxy to ${app} exited with status ${outcome.exitCode}`, outcome.stderr.trim().split('\n'))
  }
  return port
}

/** SQL with its parameters inlined, for the dry-run runbook only. */
function literalSql(sql: string, params: unknown[] = []): string {
  return sql.replace(/\$(\d+)/g, (_, index) => {
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

/** Where to connect: the host itself, or the local end of a flyctl proxy (stopped at cleanup). */
export async function reach(ctx: Context, target: DatabaseTarget): Promise<{ host: string; port: number; viaProxy: boolean }> {
  const viaProxy = needsProxy(target.host)
  return viaProxy ? { host: '127.0.0.1', port: await startProxy(ctx, target), viaProxy } : { host: target.host, port: target.port, viaProxy }
}

/** Statement text on one line for `psql -c`: full-line comments dropped (on one line they would
 * comment out everything after them), whitespace collapsed. */
function oneLine(sql: string): string {
  return sql.replace(/^\s*--.*$/gm, '').replace(/\s+/g, ' ').trim()
}

export async function connect(ctx: Context, target: DatabaseTarget): Promise<Database> {
  const url = new URL(target.url)
  const { host, port, viaProxy } = await reach(ctx, target)
  const sslmode = url.searchParams.get('sslmode')
  const client = new pg.Client({
    host,
    port,
    user: decodeURIComponent(url.username) || undefined,
    password: decodeURIComponent(url.password) || undefined,
    database: target.database,
    // Fly's private network (flycast/.internal) does not speak TLS; elsewhere follow sslmode.
    ssl: viaProxy || !sslmode || sslmode === 'disable' || sslmode === 'prefer' ? false : { rejectUnauthorized: sslmode === 'verify-full' },
    connectionTimeoutMillis: connectTimeoutMs(),
  })
  const where = `${target.host}:${target.port}/${target.database}${viaProxy ? ` (through flyctl proxy on 127.0.0.1:${port})` : ''}`
  client.on('error', () => undefined)
  try {
    await client.connect()
  } catch (error) {
    throw new OperationError(`cannot connect to the ${ctx.env} database at ${where}: ${(error as Error).message}`)
  }
  ctx.onCleanup(() => client.end().catch(() => undefined))
  return {
    where,
    async query<T extends object>(sql: string, params: unknown[] = []) {
      try {
        return (await client.query(sql, params)).rows as T[]
      } catch (error) {
        throw new OperationError(`query on the ${ctx.env} database failed: ${(error as Error).message}`, [sql.trim().split('\n')[0]])
      }
    },
    async write(sql: string, params: unknown[] = [], file?: string) {
      // A file's SQL runs as one multi-statement query, one transaction: psql -1 -f does the same.
      const preview = file
        ? `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 --single-transaction -f ${shellQuote(relative(process.cwd(), file))}`
        : `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c ${shellQuote(oneLine(literalSql(sql, params)))}`
      await ctx.exec.change(preview, async () => {
        try {
          await client.query(sql, params)
        } catch (error) {
          const code = (error as { code?: string }).code
          throw new OperationError(`write to the ${ctx.env} database failed: ${(error as Error).message}${code ? ` (SQLSTATE ${code})` : ''}`, [sql.trim().split('\n')[0]])
        }
      })
    },
    close: () => client.end().catch(() => undefined),
  }
}
