// Embedded PostgreSQL (PGlite) served over TCP, so the toolkit, the Fly simulator and psql-style
// clients talk to it as to any server. One PGlite instance is one database whatever name a client
// asks for, so each environment gets an instance (a port) of its own.
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const RESET = 'DROP SCHEMA IF EXISTS public CASCADE; DROP SCHEMA IF EXISTS microbima_deploy CASCADE; CREATE SCHEMA public'

/** Starts one PGlite instance on 127.0.0.1 (port 0 = any free port); returns its URL and stop().
 * `template`: an empty instance to clone, three times faster than starting one from scratch. */
export async function startPglite({ port = 0, dataDir, unref = false, template } = {}) {
  const db = template ? await template.clone() : await PGlite.create(dataDir ? { dataDir } : undefined)
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 32 })
  await server.start()
  // A test file run on its own must still exit when its tests are done.
  if (unref) server.server?.unref()
  const actualPort = Number(String(server.getServerConn()).split(':').pop())
  return {
    port: actualPort,
    url: `postgres://postgres:postgres@127.0.0.1:${actualPort}/postgres`,
    /** The PGlite instance itself, for loading data in this process (a restore). */
    db,
    /** Empties the database: the application's schema and the toolkit's own. */
    reset: () => db.exec(RESET),
    async stop() {
      await server.stop().catch(() => undefined)
      await db.close().catch(() => undefined)
    },
  }
}

let empty
/** An empty PGlite instance kept for cloning (startPglite's template), made once per process. */
export function emptyTemplate() {
  empty ??= PGlite.create()
  return empty
}

/** A staging and a production database, as PGlite instances. */
export async function startEnvironmentDatabases(options = {}) {
  const [staging, production] = await Promise.all([startPglite(options), startPglite(options)])
  return {
    staging,
    production,
    reset: () => Promise.all([staging.reset(), production.reset()]),
    async stop() {
      await Promise.all([staging.stop(), production.stop()])
    },
  }
}
