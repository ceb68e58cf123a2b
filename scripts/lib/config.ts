import { readFileSync, statSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import dotenv from 'dotenv'
import { UserError } from './errors.js'
import type { Logger } from './log.js'
import { type AppKey, type Environment, databaseAppName, otherEnvironment } from './names.js'
import { registerSecret } from './secrets-mask.js'
import { secretLine } from './secrets-stdin.js'

// env/<environment>/<app>.env: dotenv files, one per app and environment, never committed.
// Every problem is reported as one line naming the file, the line and the fix, before any change.

export interface EnvFile {
  path: string
  values: Record<string, string>
}

const FLY_SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const DOTENV_LINE = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(.*)$/

export function envDirOf(envDir: string | undefined): string {
  return envDir ?? process.env.ENV_DIR ?? 'env'
}

export function envFilePath(envDir: string, env: Environment, app: AppKey): string {
  return join(envDir, env, `${app}.env`)
}

/** Checks the line structure dotenv would silently skip: malformed lines and repeated keys. */
function checkLines(path: string, text: string): void {
  const seen = new Map<string, number>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (/^\s*(#.*)?$/.test(line)) continue
    const match = DOTENV_LINE.exec(line)
    if (!match) throw new UserError(`${path} line ${i + 1} is not NAME=VALUE: fix or remove that line`)
    const [, key, rest] = match
    if (seen.has(key)) throw new UserError(`${path} line ${i + 1} sets ${key} again (first on line ${seen.get(key)}): keep one`)
    seen.set(key, i + 1)
    const quote = rest[0]
    if ((quote === '"' || quote === "'" || quote === '`') && !rest.slice(1).includes(quote)) {
      // A quoted value may span lines: skip to the line that closes it.
      while (++i < lines.length && !lines[i].includes(quote));
      if (i >= lines.length) throw new UserError(`${path} line ${seen.get(key)}: the quoted value of ${key} is never closed`)
    }
  }
}

export function readEnvFile(path: string, env: Environment, log: Logger): EnvFile {
  if (!existsSync(path)) {
    throw new UserError(`${path} not found: copy ${path}.example to ${path} and fill in the values (or set ENV_DIR)`)
  }
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new UserError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code}): check its owner and permissions`)
  }
  const mode = statSync(path).mode
  if (mode & 0o004) {
    const message = `${path} is readable by every user (mode ${(mode & 0o777).toString(8)}): run chmod 600 ${path}`
    if (env === 'production') throw new UserError(message)
    log.warn(message)
  }
  checkLines(path, text)
  const values = dotenv.parse(text)
  for (const [name, value] of Object.entries(values)) {
    if (!FLY_SECRET_NAME.test(name)) {
      throw new UserError(`${path}: ${name} is not a name Fly accepts for a secret (letters, digits and _, not starting with a digit): rename it`)
    }
    if (value === '') throw new UserError(`${path}: ${name} is empty: give it a value or remove the line`)
    if (value.includes('CHANGE_ME')) throw new UserError(`${path}: ${name} still holds the CHANGE_ME placeholder of the .env.example: fill in its value`)
    secretLine(name, value, `${path}: `) // refuses here, before any write, what flyctl could not take
    if (name !== 'NODE_ENV') registerSecret(value)
  }
  if ('NODE_ENV' in values) {
    if (values.NODE_ENV !== env) {
      throw new UserError(`${path} sets NODE_ENV=${values.NODE_ENV} in the ${env} environment: remove NODE_ENV, the toolkit sets it`)
    }
    log.warn(`${path} sets NODE_ENV; the toolkit sets it to ${env} itself, so the line is ignored`)
    delete values.NODE_ENV
  }
  return { path, values }
}

export interface DatabaseTarget {
  url: string
  host: string
  port: number
  database: string
}

export function parseDatabaseUrl(value: string | undefined, where: string): DatabaseTarget {
  if (!value) throw new UserError(`${where} has no DATABASE_URL: add DATABASE_URL=postgres://… for the internal API`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UserError(`${where}: DATABASE_URL is not a URL: use postgres://USER:PASSWORD@HOST:PORT/DATABASE`)
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new UserError(`${where}: DATABASE_URL uses ${url.protocol}// but must be a postgres:// or postgresql:// URL`)
  }
  if (!url.hostname) throw new UserError(`${where}: DATABASE_URL names no host`)
  return {
    url: value,
    host: url.hostname.toLowerCase(),
    port: Number(url.port || 5432),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || 'postgres',
  }
}

function namesDatabaseApp(host: string, dbApp: string): boolean {
  return host.split('.').includes(dbApp)
}

/** The environment's database, from internal-api.env, after the cross-environment guard. */
export function loadDatabaseTarget(envDir: string, env: Environment, log: Logger): DatabaseTarget {
  const path = envFilePath(envDir, env, 'internal-api')
  const own = parseDatabaseUrl(readEnvFile(path, env, log).values.DATABASE_URL, path)
  const other = otherEnvironment(env)
  if (namesDatabaseApp(own.host, databaseAppName(other))) {
    throw new UserError(`${path}: the ${env} DATABASE_URL points at ${databaseAppName(other)}, the ${other} database: use ${databaseAppName(env)}`)
  }
  const otherPath = envFilePath(envDir, other, 'internal-api')
  if (existsSync(otherPath)) {
    const theirs = parseDatabaseUrl(dotenv.parse(readFileSync(otherPath, 'utf8')).DATABASE_URL, otherPath)
    if (theirs.host === own.host && theirs.port === own.port && theirs.database === own.database) {
      throw new UserError(
        `staging and production name the same database (${own.host}:${own.port}/${own.database}): give each environment its own database`,
      )
    }
  }
  return own
}
