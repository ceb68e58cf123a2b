// Embedded PostgreSQL (PGlite) served over TCP, so the toolkit, the Fly simulator and psql-style
// clients talk to it as to any server. One PGlite instance is one database whatever name a client
// asks for, so each environment gets an instance (a port) of its own.
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'

// PostgreSQL's WebAssembly runs as V8's baseline (Liftoff) code only. By default V8 recompiles the
// hot functions with its optimising compiler (TurboFan) in the background: 1.5-2 s of CPU in each
// process that starts PGlite, which the sandbox's small workloads never earn back (two databases
// created, reset and written ten times: 4.6-5.3 s of CPU with that, 2.8 s without). Set before
// PGlite compiles its module (at its first instance), for this process only.
setFlagsFromString('--liftoff-only')

const RESET = 'DROP SCHEMA IF EXISTS public CASCADE; DROP SCHEMA IF EXISTS microbima_deploy CASCADE; CREATE SCHEMA public'

// A copied data directory starts with crash recovery, whose progress timer (10 s, re-armed) would
// keep a finished process alive: log_startup_progress_interval=0 sets none. shared_buffers: initdb's
// 128 MB is zeroed in WebAssembly at every start (0.5 s of CPU); the sandbox's databases are a few
// megabytes, and 16 MB holds them whole.
const START = [...PGlite.defaultStartParams, '-c', 'log_startup_progress_interval=0', '-c', 'shared_buffers=16MB']

/** Starts one PGlite instance on 127.0.0.1 (port 0 = any free port); returns its URL and stop().
 * Without a `dataDir` it starts from the empty cluster kept on disk for its `role` (emptyCluster). */
export async function startPglite({ port = 0, dataDir, unref = false, role = 'restore' } = {}) {
  const db = dataDir ? await PGlite.create({ dataDir, startParams: START }) : await PGlite.create({ loadDataDir: await emptyCluster(role), startParams: START })
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

// A new PGlite instance runs initdb in WebAssembly: about 3 s of CPU. Loading the data directory of
// an empty one takes 0.5 s, so that directory is made once per PGlite version and kept in
// node_modules/.cache (written to a temporary name, then renamed: processes may race to make it).
// One per role (staging, production, restore): initdb gives each cluster its own system
// identifier, which the toolkit compares to tell two environments' databases apart, so instances
// that may meet must not come from the same copy.
const PGLITE = (() => {
  const require = createRequire(import.meta.url)
  const main = require.resolve('@electric-sql/pglite')
  for (let dir = dirname(main); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (pkg.name === '@electric-sql/pglite') return { version: pkg.version, cache: join(dir, '..', '..', '.cache') }
    } catch {
      // not the package's folder yet
    }
  }
  return { version: 'unknown', cache: undefined }
})()

const empty = new Map()
/** The data directory of an empty PGlite cluster for `role`, made once and kept on disk: what
 * PGlite's loadDataDir reads (it only calls arrayBuffer()). Not a Blob: on Node 20 a Blob of the
 * 40 MB tar cost 0.4 s of copying per instance (construct, then arrayBuffer()); the bytes read
 * once serve every instance of the process (PGlite copies them into its own file system). */
export function emptyCluster(role = 'restore') {
  if (!/^[a-z]+$/.test(role)) throw new Error(`emptyCluster: bad role ${role}`)
  if (!empty.has(role)) empty.set(role, makeEmptyCluster(role).then((bytes) => ({ type: 'application/x-tar', size: bytes.byteLength, arrayBuffer: async () => bytes })))
  return empty.get(role)
}

/** Where the empty cluster of `role` is kept, if anywhere. */
const clusterFile = (role) => PGLITE.cache && join(PGLITE.cache, `microbima-pglite-${PGLITE.version}-wal1m-${role}.tar`)

/**
 * Makes the empty clusters that are not kept yet (one per role: the two environments' and the
 * restores'), each in a process of its own, and waits for them: a fresh clone's test run starts
 * ten databases at once, which would each make the same two clusters (initdb, 3 s of CPU each)
 * before any could read the other's.
 */
export async function makeEmptyClusters(roles = ['staging', 'production', 'restore']) {
  const missing = roles.filter((role) => clusterFile(role) && !existsSync(clusterFile(role)))
  await Promise.all(
    missing.map((role) => {
      const child = nodeWithThisModule(`await emptyCluster(${JSON.stringify(role)})`, ['ignore', 'ignore', 'inherit'])
      return new Promise((resolve, reject) => {
        child.once('error', reject)
        child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`making the empty ${role} cluster failed (status ${code})`))))
      })
    }),
  )
}

/** The tar's bytes, as one ArrayBuffer of their own. */
async function makeEmptyCluster(role) {
  const file = clusterFile(role)
  if (file) {
    try {
      const bytes = readFileSync(file)
      return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    } catch {
      // not made yet
    }
  }
  // WAL in segments of 1 MB, not initdb's 16 MB: the empty cluster is 31 MB instead of 40 (the
  // 16 MB segment is mostly zeros), and each instance reads and copies it twice as it starts
  // (0.2 s of CPU less per instance, some 27 of them in make test). Nothing in the sandbox reads
  // wal_segment_size.
  const db = await PGlite.create({ initDbStartParams: ['--wal-segsize=1'] })
  const dump = await (await db.dumpDataDir('none')).arrayBuffer()
  await db.close()
  if (file) {
    try {
      mkdirSync(PGLITE.cache, { recursive: true })
      const tmp = `${file}.${process.pid}`
      writeFileSync(tmp, Buffer.from(dump))
      renameSync(tmp, file)
    } catch {
      // only a cache: the next process makes it again
    }
  }
  return dump
}

/** A staging and a production database, as PGlite instances. */
export async function startEnvironmentDatabases(options = {}) {
  const [staging, production] = await Promise.all([startPglite({ ...options, role: 'staging' }), startPglite({ ...options, role: 'production' })])
  return {
    staging,
    production,
    reset: () => Promise.all([staging.reset(), production.reset()]),
    async stop() {
      await Promise.all([staging.stop(), production.stop()])
    },
  }
}

/**
 * A staging and a production database in a process of their own, for the test runner, which starts
 * a node process per test file: each start is a fork, which copies the page tables of all the
 * parent's memory (some 300 MB for two PGlite instances) and makes the databases fault on their
 * memory again after it. A rehearsal keeps its databases in its own process: its steps are few,
 * and apart, make demo took 24 s instead of 20 s with the same CPU (the cause not pinned down;
 * a query's round trip then crosses to another process, idle in between). Resolves to their
 * ports and URLs once both are up; stop() ends the process, which also ends when its parent dies
 * (its stdin closes).
 */
export function startEnvironmentDatabasesProcess() {
  const child = nodeWithThisModule('await serveEnvironmentDatabases()', ['pipe', 'pipe', 'inherit'])
  return new Promise((resolve, reject) => {
    let line = ''
    const onData = (chunk) => {
      line += chunk
      if (!line.includes('\n')) return
      child.stdout.off('data', onData)
      const { staging, production } = JSON.parse(line)
      resolve({ staging, production, stop: () => new Promise((stopped) => (child.once('close', stopped), child.stdin.end())) })
    }
    child.stdout.on('data', onData)
    child.once('error', reject)
    child.once('close', (code) => reject(new Error(`the sandbox's databases exited (status ${code}) before they were up`)))
  })
}

/** The process startEnvironmentDatabasesProcess starts: the ports and URLs as one JSON line on
 * stdout, then the databases until stdin closes. */
export async function serveEnvironmentDatabases() {
  const dbs = await startEnvironmentDatabases()
  const address = ({ port, url }) => ({ port, url })
  process.stdout.write(`${JSON.stringify({ staging: address(dbs.staging), production: address(dbs.production) })}\n`)
  process.stdin.resume().on('end', async () => {
    await dbs.stop()
    process.exit(0)
  })
}

/** A node process that runs `code` with this module's exports in scope (as `emptyCluster`, …). */
function nodeWithThisModule(code, stdio) {
  const source = `import * as postgres from ${JSON.stringify(pathToFileURL(thisFile()).href)}\nconst { emptyCluster, serveEnvironmentDatabases } = postgres\n${code}`
  const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env
  return spawn(process.execPath, ['--input-type=module', '-e', source], { env, stdio })
}

/** This file. Bundled (into dist/*.mjs, or a test's bundle), import.meta names the bundle, so it is
 * found upwards from there: the repository's scripts/sandbox/postgres.mjs. */
function thisFile() {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'scripts', 'sandbox', 'postgres.mjs')
    if (existsSync(file)) return file
    if (dirname(dir) === dir) throw new Error(`cannot find scripts/sandbox/postgres.mjs above ${import.meta.dirname}`)
  }
}
