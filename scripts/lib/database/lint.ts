import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import chalk from 'chalk'
import type { Context } from '../core/cli.js'
import { Refusal, UserError } from '../core/errors.js'
import { table } from '../core/log.js'
import type { LocalMigration } from './migrations.js'

// Lint of the migrations pending on a target: squawk (PostgreSQL migration linter) plus the
// data-loss warnings Prisma writes into a generated migration.sql. Destructive findings refuse a
// production change (exit 3) unless ALLOW_DESTRUCTIVE names the migration; on staging they warn.

export interface Finding {
  migration: string
  rule: string
  message: string
  destructive: boolean
}

// squawk rules whose finding can lose data or lock a live table for long.
const DESTRUCTIVE_RULES = new Set(['ban-drop-column', 'ban-drop-table', 'ban-drop-database', 'changing-column-type', 'adding-required-field', 'adding-not-nullable-field', 'ban-truncate-cascade', 'renaming-column', 'renaming-table'])
const INDEX_RULE = 'require-concurrent-index-creation'
// Rules that only restate Prisma's style (no timeouts, no IF EXISTS, int ids): noise here.
const EXCLUDED_RULES = ['require-lock-timeout', 'require-statement-timeout', 'prefer-robust-stmts', 'prefer-bigint-over-int', 'prefer-bigint-over-smallint', 'prefer-identity', 'prefer-text-field', 'prefer-timestamptz', 'ban-char-field']

export const LARGE_TABLE_ROWS = () => Number(process.env.LARGE_TABLE_ROWS ?? 10_000)

/** squawk's binary, as squawk-cli's launcher finds it (its getBinaryPath), found from this file like
 * any dependency (scripts may run from a project copy). Run directly: the launcher is one more node
 * process per lint. */
function squawkBin(): string {
  const require = createRequire(import.meta.url)
  const { getBinaryPath } = require('squawk-cli/js/index.js') as { getBinaryPath(): string }
  try {
    return getBinaryPath()
  } catch (error) {
    throw new UserError(`${String((error as Error).message).split('\n').join(' ')}`)
  }
}

/** Prisma's own header: "/*\n  Warnings:\n\n  - You are about to drop …" (written by migrate dev). */
export function prismaWarnings(script: string): string[] {
  const block = /\/\*\s*\n\s*Warnings:\s*\n([\s\S]*?)\*\//.exec(script)?.[1] ?? ''
  return block.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('- ')).map((line) => line.slice(2))
}

/** A down.sql with nothing but comments and whitespace undoes nothing. */
export function isEmptySql(text: string): boolean {
  return text.replace(/--.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '').trim() === ''
}

interface SquawkViolation {
  file: string
  line: number
  message: string
  rule_name: string
}

export async function lintMigrations(ctx: Context, migrations: LocalMigration[], rowEstimate: (table: string) => Promise<number> = async () => 0): Promise<Finding[]> {
  const findings: Finding[] = []
  if (!migrations.length) return findings
  const files = migrations.map((m) => join(m.dir, 'migration.sql'))
  const out = await ctx.exec.run({ argv: [squawkBin(), '--reporter', 'json', `--exclude=${EXCLUDED_RULES.join(',')}`, ...files], write: false, okStatuses: [1] })
  const violations = (out.stdout.trim() ? JSON.parse(out.stdout) : []) as SquawkViolation[]
  for (const v of violations) {
    const migration = migrations.find((m) => v.file.endsWith(join(m.name, 'migration.sql')))?.name ?? v.file
    let destructive = DESTRUCTIVE_RULES.has(v.rule_name)
    let message = v.message
    if (v.rule_name === INDEX_RULE) {
      const script = migrations.find((m) => m.name === migration)?.script.split('\n')[v.line] ?? ''
      const tableName = /ON\s+"?([\w]+)"?/i.exec(script)?.[1]
      const rows = tableName ? await rowEstimate(tableName) : 0
      destructive = rows > LARGE_TABLE_ROWS()
      message += tableName ? ` (${tableName}: about ${rows} rows)` : ''
    }
    findings.push({ migration, rule: v.rule_name, message: `line ${v.line + 1}: ${message}`, destructive })
  }
  for (const migration of migrations) {
    for (const warning of prismaWarnings(migration.script)) findings.push({ migration: migration.name, rule: 'prisma-data-loss-warning', message: warning, destructive: true })
    if (!existsSync(migration.downPath) || isEmptySql(readFileSync(migration.downPath, 'utf8'))) {
      findings.push({ migration: migration.name, rule: 'missing-down-migration', message: `${migration.downPath} is missing or empty: write the SQL that undoes this migration`, destructive: ctx.env === 'production' })
    }
  }
  return findings
}

/** Staging: findings are warnings. Production: destructive findings refuse unless ALLOW_DESTRUCTIVE names the migration. */
export async function lintPending(ctx: Context, pending: LocalMigration[], rowEstimate?: (table: string) => Promise<number>): Promise<void> {
  const findings = await lintMigrations(ctx, pending, rowEstimate)
  if (!findings.length) return
  const allowed = new Set((process.env.ALLOW_DESTRUCTIVE ?? '').split(',').map((s) => s.trim()).filter(Boolean))
  const blocking = ctx.env === 'production' ? findings.filter((f) => f.destructive && !allowed.has(f.migration)) : []
  // Informational findings (locks taken while creating new tables, …) only with --verbose.
  const shown = ctx.verbose ? findings : findings.filter((f) => f.destructive)
  const hidden = findings.length - shown.length
  if (shown.length) {
    ctx.log.info(
      table(
        ['migration', 'rule', 'severity', 'finding'],
        shown.map((f) => [f.migration, f.rule, f.destructive ? (blocking.includes(f) ? chalk.red('blocks production') : chalk.yellow('destructive')) : 'info', f.message]),
      ),
    )
  }
  if (hidden) ctx.log.info(`migration lint: ${hidden} informational finding${hidden === 1 ? '' : 's'} (VERBOSE=1 shows them)`)
  if (blocking.length) {
    const names = [...new Set(blocking.map((f) => f.migration))]
    throw new Refusal(`migration lint: destructive change in ${names.join(', ')}; production is refused (set ALLOW_DESTRUCTIVE=${names.join(',')} once you have checked it)`, blocking.map((f) => `${f.migration}: ${f.rule}: ${f.message}`))
  }
  if (findings.some((f) => f.destructive)) ctx.log.warn(`destructive migration findings above: production will refuse them unless ALLOW_DESTRUCTIVE names the migration`)
}

/** A transaction-control statement in a SQL script (BEGIN, COMMIT, …), comments and quoted text
 * aside; undefined when there is none. The script is read in one pass, as Postgres' lexer does, so
 * a quote inside a comment or a `--` inside a string hides nothing: '…' (with '' inside), E'…'
 * (with backslash escapes), "…", $tag$…$tag$, -- and nested /* … *\/ comments. */
const DOLLAR_QUOTE = /\$([A-Za-z_]\w*)?\$/y

export function transactionControl(sql: string): string | undefined {
  let code = ''
  let i = 0
  while (i < sql.length) {
    DOLLAR_QUOTE.lastIndex = i
    const dollar = sql[i] === '$' ? DOLLAR_QUOTE.exec(sql) : null
    if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i)
      i = end < 0 ? sql.length : end
      code += ' '
    } else if (sql.startsWith('/*', i)) {
      let depth = 0
      do {
        if (sql.startsWith('/*', i)) (depth++, (i += 2))
        else if (sql.startsWith('*/', i)) (depth--, (i += 2))
        else i++
      } while (depth > 0 && i < sql.length)
      code += ' '
    } else if (dollar && !/[\w$]/.test(sql[i - 1] ?? '')) {
      const end = sql.indexOf(dollar[0], i + dollar[0].length)
      i = end < 0 ? sql.length : end + dollar[0].length
      code += ' $$ '
    } else if (sql[i] === "'" || sql[i] === '"') {
      const quote = sql[i]
      const escapes = quote === "'" && /[eE]/.test(sql[i - 1] ?? '') && !/[\w$]/.test(sql[i - 2] ?? '')
      i++
      while (i < sql.length) {
        if (escapes && sql[i] === '\\') i += 2
        else if (sql[i] === quote && sql[i + 1] === quote) i += 2
        else if (sql[i] === quote) break
        else i++
      }
      i++
      code += ` ${quote}${quote} `
    } else {
      code += sql[i]
      i++
    }
  }
  for (const statement of code.split(';')) {
    const word = /^\s*(BEGIN|COMMIT|ROLLBACK|END|START\s+TRANSACTION|SAVEPOINT|RELEASE|ABORT|PREPARE\s+TRANSACTION)\b/i.exec(statement)?.[1]
    if (word) return word.toUpperCase().replace(/\s+/g, ' ')
  }
  return undefined
}
