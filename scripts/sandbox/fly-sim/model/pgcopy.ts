// A logical copy of a Postgres database, for the simulator's backups and snapshots: what Fly would
// bring back from a volume snapshot or a Managed Postgres backup, as far as the sandbox needs it —
// every user schema with its enum types, sequences, tables (column types, NOT NULL, defaults),
// rows, constraints and indexes. It is taken in one REPEATABLE READ transaction, so it is the data
// as it was at that moment: rows written a moment later are not in it. Values travel as text and
// are cast back with the column's own type, which Postgres' input functions read exactly.
// Not carried (nothing in a Prisma schema needs them): identity columns, partitions, views,
// functions, triggers, extensions, roles and grants.
import { createConnection } from 'node:net'
import pg from 'pg'

export interface CopiedColumn {
  name: string
  type: string
  notNull: boolean
  default: string | null
}

export interface CopiedTable {
  schema: string
  name: string
  columns: CopiedColumn[]
  rows: (string | null)[][]
}

export interface LogicalCopy {
  /** When the transaction's snapshot was taken (ISO 8601). */
  takenAt: string
  schemas: string[]
  enums: { schema: string; name: string; labels: string[] }[]
  sequences: { schema: string; name: string; type: string; start: string; increment: string; min: string; max: string; cycle: boolean; last: string | null }[]
  tables: CopiedTable[]
  /** Primary keys, unique and check constraints (added before the foreign keys), then foreign keys. */
  constraints: { schema: string; table: string; name: string; foreign: boolean; definition: string }[]
  /** Index definitions (pg_get_indexdef) not backing a constraint. */
  indexes: string[]
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`
const qualified = (schema: string, name: string) => `${ident(schema)}.${ident(name)}`
const SYSTEM = "nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'"

/** Whether host:port answers as a Postgres server: an SSLRequest gets one byte, S or N. Anything
 * else (nothing listening, an echo server a test put there) is not a database to copy. */
export function speaksPostgres(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(port, host)
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])))
    socket.once('data', (chunk: Buffer) => done(chunk.length === 1 && (chunk[0] === 0x53 || chunk[0] === 0x4e)))
  })
}

/** Copies the database at `url`, consistently. */
export async function takeCopy(url: string): Promise<LogicalCopy> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, query_timeout: 30_000 })
  client.on('error', () => undefined)
  await client.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const [{ now }] = (await client.query<{ now: Date }>('SELECT now() AS now')).rows
    const schemas = (await client.query<{ name: string }>(`SELECT nspname AS name FROM pg_namespace WHERE ${SYSTEM} ORDER BY nspname`)).rows.map((r) => r.name)
    const enums = (
      await client.query<{ schema: string; name: string; labels: string[] }>(
        `SELECT n.nspname AS schema, t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = ANY($1) GROUP BY 1, 2 ORDER BY 1, 2`,
        [schemas],
      )
    ).rows
    const sequences = (
      await client.query(
        `SELECT schemaname AS schema, sequencename AS name, data_type::text AS type, start_value::text AS start, increment_by::text AS increment,
                min_value::text AS min, max_value::text AS max, cycle, last_value::text AS last
         FROM pg_sequences WHERE schemaname = ANY($1) ORDER BY 1, 2`,
        [schemas],
      )
    ).rows as LogicalCopy['sequences']
    const relations = (
      await client.query<{ oid: number; schema: string; name: string }>(
        `SELECT c.oid, n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND NOT c.relispartition AND n.nspname = ANY($1) ORDER BY 2, 3`,
        [schemas],
      )
    ).rows
    const tables: CopiedTable[] = []
    const constraints: LogicalCopy['constraints'] = []
    const indexes: string[] = []
    for (const relation of relations) {
      const columns = (
        await client.query<CopiedColumn>(
          `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull", pg_get_expr(d.adbin, d.adrelid) AS default
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          [relation.oid],
        )
      ).rows
      const select = columns.length ? columns.map((c) => `${ident(c.name)}::text`).join(', ') : 'NULL'
      const rows = columns.length ? (await client.query({ text: `SELECT ${select} FROM ${qualified(relation.schema, relation.name)}`, rowMode: 'array' })).rows as (string | null)[][] : []
      tables.push({ schema: relation.schema, name: relation.name, columns, rows })
      const own = (
        await client.query<{ name: string; type: string; definition: string }>(
          "SELECT conname AS name, contype AS type, pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conrelid = $1 AND contype IN ('p', 'u', 'c', 'f', 'x') ORDER BY contype = 'f', conname",
          [relation.oid],
        )
      ).rows
      constraints.push(...own.map((c) => ({ schema: relation.schema, table: relation.name, name: c.name, foreign: c.type === 'f', definition: c.definition })))
      const defs = (
        await client.query<{ definition: string }>(
          'SELECT pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i WHERE i.indrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY i.indexrelid',
          [relation.oid],
        )
      ).rows
      indexes.push(...defs.map((d) => d.definition))
    }
    await client.query('COMMIT')
    return { takenAt: now.toISOString(), schemas, enums, sequences, tables, constraints, indexes }
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Something that runs SQL: a PGlite instance (exec for scripts, query with parameters). */
export interface SqlTarget {
  exec(sql: string): Promise<unknown>
  query(sql: string, params?: unknown[]): Promise<unknown>
}

/** Loads a copy into an empty database: schemas, types, sequences, tables, rows, then the
 * constraints (foreign keys last) and indexes, and the sequences where they were. */
export async function loadCopy(db: SqlTarget, copy: LogicalCopy): Promise<void> {
  for (const schema of copy.schemas) await db.exec(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`)
  for (const e of copy.enums) await db.exec(`CREATE TYPE ${qualified(e.schema, e.name)} AS ENUM (${e.labels.map((l) => `'${l.replace(/'/g, "''")}'`).join(', ')})`)
  for (const s of copy.sequences) {
    await db.exec(`CREATE SEQUENCE ${qualified(s.schema, s.name)} AS ${s.type} INCREMENT ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} START ${s.start}${s.cycle ? ' CYCLE' : ''}`)
  }
  for (const t of copy.tables) {
    const columns = t.columns.map((c) => `${ident(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}${c.default !== null ? ` DEFAULT ${c.default}` : ''}`)
    await db.exec(`CREATE TABLE ${qualified(t.schema, t.name)} (${columns.join(', ')})`)
    // Parameters in batches (Postgres takes at most 65 535 per statement).
    const perRow = Math.max(1, t.columns.length)
    const batch = Math.max(1, Math.floor(10_000 / perRow))
    for (let i = 0; i < t.rows.length; i += batch) {
      const rows = t.rows.slice(i, i + batch)
      const values = rows.map((_, r) => `(${t.columns.map((c, k) => `$${r * perRow + k + 1}::${c.type}`).join(', ')})`)
      await db.query(`INSERT INTO ${qualified(t.schema, t.name)} (${t.columns.map((c) => ident(c.name)).join(', ')}) VALUES ${values.join(', ')}`, rows.flat())
    }
  }
  for (const c of [...copy.constraints.filter((c) => !c.foreign), ...copy.constraints.filter((c) => c.foreign)]) {
    await db.exec(`ALTER TABLE ${qualified(c.schema, c.table)} ADD CONSTRAINT ${ident(c.name)} ${c.definition}`)
  }
  for (const definition of copy.indexes) await db.exec(definition)
  for (const s of copy.sequences) if (s.last !== null) await db.query(`SELECT setval($1, $2::bigint, true)`, [qualified(s.schema, s.name), s.last])
}
