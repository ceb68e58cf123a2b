import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { listLocalMigrations } from '../scripts/lib/database/migrations.ts'
import { loadSettings, schemaPath } from '../scripts/lib/core/settings.ts'
import { getDatabaseConfig, DEVELOPMENT_URL } from '../prisma/database.config.ts'
import { freshDatabases, sql } from './support/pg.ts'
import { run } from './support/toolkit.ts'

const columns = async (url: string) =>
  (await sql<{ t: string; c: string }>(url, "SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")).map((r) => `${r.t}.${r.c}`)

/** Model fields with a column (scalars), parsed from schema.prisma. */
function schemaColumns(): string[] {
  const schema = readFileSync(schemaPath(loadSettings()), 'utf8')
  const enums = [...schema.matchAll(/^enum (\w+)/gm)].map((m) => m[1])
  const scalars = new Set(['String', 'Int', 'DateTime', 'Decimal', 'Boolean', ...enums])
  const out: string[] = []
  for (const [, model, body] of schema.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    for (const [, field, type] of body.matchAll(/^\s+(\w+)\s+(\w+)/gm)) if (scalars.has(type)) out.push(`${model}.${field}`)
  }
  return out.sort()
}

test('the migrations build exactly the schema in schema.prisma', async () => {
  const { staging } = await freshDatabases()
  for (const m of listLocalMigrations()) await sql(staging, m.script)
  assert.equal(await columns(staging), schemaColumns())
})

test('each down.sql undoes its migration: up, down, up again, and all downs leave an empty schema', async () => {
  const { staging } = await freshDatabases()
  const migrations = listLocalMigrations()
  assert.ok(migrations.length >= 3)
  for (const m of migrations) {
    const before = await columns(staging)
    await sql(staging, m.script)
    await sql(staging, readFileSync(m.downPath, 'utf8'))
    assert.equal(await columns(staging), before, `${m.name}: down.sql restores the previous schema`)
    await sql(staging, m.script)
  }
  for (const m of [...migrations].reverse()) await sql(staging, readFileSync(m.downPath, 'utf8'))
  assert.equal(await columns(staging), [])
  assert.equal(await sql(staging, "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype = 'e'"), [])
})

test('prisma validate passes, with the toolkit\'s config and with the app\'s own (the schema engine stand-in)', async () => {
  const app = await run('npx', ['prisma', 'validate'], { cwd: join(process.cwd(), 'examples/microbima/apps/api'), env: { PRISMA_SCHEMA_ENGINE_BINARY: join(process.cwd(), 'test/support/schema-engine-stub'), PRISMA_HIDE_UPDATE_MESSAGE: '1' }, timeoutMs: 120_000 })
  assert.is(app.code, 0, app.output)
  const result = await run('npx', ['prisma', 'validate', '--config', 'prisma/prisma.config.ts'], { env: { PRISMA_SCHEMA_ENGINE_BINARY: join(process.cwd(), 'test/support/schema-engine-stub'), PRISMA_HIDE_UPDATE_MESSAGE: '1' }, timeoutMs: 120_000 })
  assert.is(result.code, 0, result.output)
  assert.match(result.output, 'is valid')
})

test('database config: development never defaults to a remote or production host', () => {
  const dev = getDatabaseConfig('development', {})
  assert.is(dev.connectionString, DEVELOPMENT_URL)
  assert.is(new URL(dev.connectionString!).hostname, 'localhost')
  assert.equal([dev.max, dev.connectionTimeoutMillis, dev.ssl], [5, 10_000, false])
  assert.is(getDatabaseConfig(undefined, {}).connectionString, DEVELOPMENT_URL)
  assert.throws(() => getDatabaseConfig('development', { DATABASE_URL: 'postgres://u:p@microbima-prod-db.flycast:5432/db' }), /must not use the production database/)
})

test('database config: staging and production need DATABASE_URL; pool sizes, timeouts and TLS per environment', () => {
  assert.throws(() => getDatabaseConfig('staging', {}), /DATABASE_URL is not set for staging/)
  assert.throws(() => getDatabaseConfig('production', {}), /DATABASE_URL is not set for production/)
  const stg = getDatabaseConfig('staging', { DATABASE_URL: 'postgres://u:p@microbima-staging-db.flycast:5432/db?sslmode=disable' })
  assert.equal([stg.max, stg.connectionTimeoutMillis, stg.ssl], [10, 30_000, false])
  const prod = getDatabaseConfig('production', { DATABASE_URL: 'postgres://u:p@db.example.com:5432/db?sslmode=verify-full' })
  assert.equal([prod.max, prod.connectionTimeoutMillis, prod.ssl], [20, 60_000, { rejectUnauthorized: true }])
})

test.run()
