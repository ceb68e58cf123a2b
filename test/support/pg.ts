import pg from 'pg'
// @ts-expect-error plain ESM module shared with the test runner and the demo
import { startEnvironmentDatabases } from '../../scripts/sandbox/postgres.mjs'

// Databases for tests. The runner serves a staging and a production PGlite instance per worker
// and passes their URLs (TEST_PG_STAGING_URL / TEST_PG_PRODUCTION_URL); a file run on its own
// starts its own pair; TEST_DATABASE_URL points everything at a real server instead, where each
// file gets two databases of its own.

export interface TestDatabases {
  staging: string
  production: string
  stop(): Promise<void>
}

let shared: Promise<TestDatabases> | undefined

async function onServer(serverUrl: string): Promise<TestDatabases> {
  const tag = `mbt_${process.pid}_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  const urls: Record<string, string> = {}
  for (const env of ['staging', 'production']) {
    await admin.query(`CREATE DATABASE ${tag}_${env}`)
    const url = new URL(serverUrl)
    url.pathname = `/${tag}_${env}`
    urls[env] = url.toString()
  }
  return {
    staging: urls.staging,
    production: urls.production,
    async stop() {
      for (const env of ['staging', 'production']) await admin.query(`DROP DATABASE IF EXISTS ${tag}_${env} WITH (FORCE)`).catch(() => undefined)
      await admin.end()
    },
  }
}

async function start(): Promise<TestDatabases> {
  if (process.env.TEST_DATABASE_URL) return onServer(process.env.TEST_DATABASE_URL)
  if (process.env.TEST_PG_STAGING_URL && process.env.TEST_PG_PRODUCTION_URL) {
    return { staging: process.env.TEST_PG_STAGING_URL, production: process.env.TEST_PG_PRODUCTION_URL, stop: async () => {} }
  }
  const dbs = await startEnvironmentDatabases({ unref: true })
  return { staging: dbs.staging.url, production: dbs.production.url, stop: () => dbs.stop() }
}

/** Empties both databases (Prisma's schema and the toolkit's own) and returns their URLs. */
export async function freshDatabases(): Promise<TestDatabases> {
  shared ??= start()
  const dbs = await shared
  await Promise.all([dbs.staging, dbs.production].map((url) => sql(url, RESET)))
  return dbs
}

const RESET = 'DROP SCHEMA IF EXISTS public CASCADE; DROP SCHEMA IF EXISTS microbima_deploy CASCADE; CREATE SCHEMA public'

/** Runs SQL (several statements allowed) and returns the last result's rows. */
export async function sql<T = Record<string, unknown>>(url: string, text: string, params?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const result = await client.query(text, params)
    const last = Array.isArray(result) ? result.at(-1) : result
    return (last?.rows ?? []) as T[]
  } finally {
    await client.end()
  }
}

/** Stops databases this process started (call at the end of a file that used them). */
export async function stopDatabases(): Promise<void> {
  if (shared) await (await shared).stop()
  shared = undefined
}
