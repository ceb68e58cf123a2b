import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { join } from 'node:path'
import { type Problems, UserError } from '../core/errors.js'
import { parseEnvText } from './envfile.js'
import type { Logger } from '../core/log.js'
import { type AppKey, type Environment, databaseAppName, otherEnvironment } from '../core/names.js'
import { registerSecret, unmaskable } from './mask.js'
import { parseSecrets } from './flyctl-parser.js'
import { encodeSecret, secretLine } from './stdin.js'

// env/<environment>/<app>.env: dotenv files, one per app and environment, never committed.
// Each problem is one line naming the file, the line and the fix; a run reports all of them
// together, before any change.

export interface EnvFile {
  path: string
  values: Record<string, string>
}

const FLY_SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export function envDirOf(envDir: string | undefined): string {
  const dir = envDir ?? process.env.ENV_DIR ?? 'env'
  // Empty would read the env files from the current folder.
  if (dir === '') throw new UserError('ENV_DIR= is empty: give it the folder of the env files, or leave it out')
  return dir
}

export function envFilePath(envDir: string, env: Environment, app: AppKey): string {
  return join(envDir, env, `${app}.env`)
}

/** The file's text, or why it cannot be read (one line). A FIFO or device would block a read. */
export function readText(path: string, example = `${path}.example`): string {
  let stat
  try {
    stat = statSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${path} not found: copy ${example} to ${path} and fill in the values (or set ENV_DIR)`)
    throw new UserError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code}): check its owner and permissions`)
  }
  if (stat.isDirectory()) throw new UserError(`cannot read ${path} (EISDIR): it is a directory, not an env file`)
  if (!stat.isFile()) throw new UserError(`${path} is not a regular file (a pipe or a device would block the read): make it a plain file`)
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (error) {
    throw new UserError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code}): check its owner and permissions`)
  }
  // Invalid UTF-8 would be read as U+FFFD and stored so on Fly: not the value written.
  const utf8 = new TextDecoder('utf-8', { fatal: true })
  try {
    return utf8.decode(bytes)
  } catch {
    let line = 1
    for (let from = 0; ; line++) {
      const end = bytes.indexOf(10, from)
      try {
        utf8.decode(bytes.subarray(from, end < 0 ? bytes.length : end))
      } catch {
        break
      }
      if (end < 0) break
      from = end + 1
    }
    throw new UserError(`${path} line ${line} is not UTF-8 text: save the file as UTF-8`)
  }
}

/** Where `flyctl secrets import < file` would store something else than the file says (what dotenv
 * and the toolkit read): one line per key, with the quoting that makes the file paste-safe. */
export function flyctlDifferences(file: EnvFile): string[] {
  const parsed = parseSecrets(readFileSync(file.path))
  if (parsed.kind !== 'ok') return [`flyctl cannot read ${file.path} as written (${parsed.message.split('\n')[0]}): quote its values as the toolkit does`]
  const differences: string[] = []
  for (const [name, value] of Object.entries(file.values)) {
    if (parsed.secrets.get(name) === value) continue
    const encoded = encodeSecret(name, value)
    const line = 'line' in encoded ? encoded.line.slice(name.length + 1) : ''
    const quote = ['"""', "'", '"'].find((q) => line.startsWith(q)) ?? ''
    differences.push(`flyctl would read ${name} in ${file.path} otherwise than it is meant (${parsed.secrets.has(name) ? 'a different value' : 'not at all'}): write it as ${name}=${quote}…${quote} before pasting`)
  }
  for (const name of parsed.secrets.keys()) if (!(name in file.values)) differences.push(`flyctl would also read a secret named ${JSON.stringify(name)} from ${file.path}: remove or fix that line before pasting`)
  return differences
}

/** Warnings about an env file are said once per run, however often the file is read. */
const warned = new Set<string>()
function warnOnce(log: Logger, message: string): void {
  if (warned.has(message)) return
  warned.add(message)
  log.warn(message)
}

/** Flycast serves a service's external port (80 for an [http_service]), never the app's internal
 * port: `http://APP.flycast:3000` reaches nothing (fly-platform.md §4.5). */
export function flycastPortProblem(value: string): string | undefined {
  const match = /\bhttps?:\/\/([a-z0-9-]+)\.flycast:(\d+)/i.exec(value)
  if (!match || match[2] === '80') return undefined
  return `names port ${match[2]} on Flycast, which serves the service's external port (80), not the app's internal port: use http://${match[1]}.flycast`
}

/** The values of a file that cannot be hidden in output (a plain word, too short): said by the
 * target that pushes them (set-secrets), not by every target that reads the file. */
export function unmaskableValues(file: EnvFile): string[] {
  return Object.entries(file.values).flatMap(([name, value]) => {
    const weak = unmaskable(value)
    return weak ? [`${file.path}: the value of ${name} ${weak}: it cannot be hidden in the output; use a long random value`] : []
  })
}

export function readEnvFile(path: string, env: Environment, log: Logger): EnvFile {
  const text = readText(path)
  const problems: string[] = []
  // Secrets are their owner's alone: any access for the group or others is refused in production
  // and warned about (once) in staging.
  const mode = statSync(path).mode
  if (mode & 0o077) {
    const message = `${path} can be read or written by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): run chmod 600 ${path}`
    if (env === 'production') problems.push(message)
    else warnOnce(log, message)
  }
  const parsed = parseEnvText(path, text)
  problems.push(...parsed.problems.map((p) => p.message))
  const values = parsed.values
  for (const [name, value] of Object.entries(values)) {
    if (!FLY_SECRET_NAME.test(name)) {
      problems.push(`${path}: ${name} is not a name Fly accepts for a secret (letters, digits and _, not starting with a digit): rename it`)
      continue
    }
    if (value === '') {
      problems.push(`${path}: ${name} is empty: give it a value or remove the line`)
      continue
    }
    if (value.includes('CHANGE_ME')) {
      problems.push(`${path}: ${name} still holds the CHANGE_ME placeholder of the .env.example: fill in its value`)
      continue
    }
    try {
      secretLine(name, value, `${path}: `) // refuses here, before any write, what flyctl could not take
    } catch (error) {
      problems.push(...(error as UserError).problems)
    }
    if (name === 'NODE_ENV') continue
    registerSecret(value)
    const flycast = flycastPortProblem(value)
    if (flycast) warnOnce(log, `${path}: ${name} ${flycast}`)
  }
  if ('NODE_ENV' in values) {
    if (values.NODE_ENV !== env) problems.push(`${path} sets NODE_ENV=${values.NODE_ENV} in the ${env} environment: remove NODE_ENV, the toolkit sets it`)
    else log.warn(`${path} sets NODE_ENV; the toolkit sets it to ${env} itself, so the line is ignored`)
    delete values.NODE_ENV
  }
  if (problems.length) throw new UserError(problems)
  return { path, values }
}

export interface DatabaseTarget {
  url: string
  /** Lower-case host name, IPv6 literal without brackets, or a unix-socket folder. */
  host: string
  port: number
  database: string
  user?: string
  password?: string
  socket: boolean
  sslmode?: string
}

/** libpq's sslmode values (https://www.postgresql.org/docs/current/libpq-ssl.html). */
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/** Parses a postgres URL the way libpq and pg take it: IPv6 literals, unix-socket hosts
 * (?host=/dir or a percent-encoded /dir as host), percent-encoded credentials. */
export function parseDatabaseUrl(value: string | undefined, where: string, key = 'DATABASE_URL'): DatabaseTarget {
  if (!value) throw new UserError(`${where} has no ${key}: add ${key}=postgres://… for the internal API`)
  let url: URL
  // libpq takes credentials with an empty host (postgresql://u:pw@/db?host=/run/postgresql), which
  // WHATWG URLs refuse: such a host is read as empty, as libpq does.
  const EMPTY_HOST = '__empty-host__'
  try {
    url = new URL(value.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/i, `$1${EMPTY_HOST}`))
  } catch {
    throw new UserError(`${where}: ${key} is not a URL: use postgres://USER:PASSWORD@HOST:PORT/DATABASE`)
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new UserError(`${where}: ${key} uses ${url.protocol}// but must be a postgres:// or postgresql:// URL`)
  }
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part)
    } catch {
      throw new UserError(`${where}: the ${what} in ${key} has a % that is not followed by two hex digits: write a literal % as %25`)
    }
  }
  const user = decode(url.username, 'user name') || undefined
  const password = decode(url.password, 'password') || undefined
  const database = decode(url.pathname.replace(/^\//, ''), 'database name')
  const socketDir = url.searchParams.get('host')
  let host = url.hostname === EMPTY_HOST ? '' : decode(url.hostname, 'host').replace(/^\[|\]$/g, '')
  let socket = false
  // Host names are case-insensitive; a unix-socket folder is a path, kept as written.
  if (host.startsWith('/')) socket = true
  else if (!host && socketDir?.startsWith('/')) {
    host = socketDir
    socket = true
  } else host = host.toLowerCase()
  if (!host) throw new UserError(`${where}: ${key} names no host: use postgres://USER:PASSWORD@HOST:PORT/DATABASE`)
  const givenPort = url.port || url.searchParams.get('port') || '5432'
  const port = /^\d+$/.test(givenPort) ? Number(givenPort) : NaN
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`${where}: ${key} has port ${givenPort || '(empty)'}, which is not a TCP port (1-65535)`)
  const sslmode = url.searchParams.get('sslmode') ?? undefined
  if (sslmode !== undefined && !SSL_MODES.includes(sslmode)) throw new UserError(`${where}: ${key} has sslmode=${sslmode}, which libpq does not know: use one of ${SSL_MODES.join(', ')}`)
  return { url: value, host, port, database: database || user || 'postgres', user, password, socket, sslmode }
}

function namesDatabaseApp(host: string, dbApp: string): boolean {
  return host.split('.').includes(dbApp)
}

/** The addresses a host stands for, so `localhost` and `127.0.0.1` compare equal. */
async function addresses(target: DatabaseTarget): Promise<Set<string>> {
  if (target.socket) return new Set([`unix:${target.host.replace(/\/$/, '')}`])
  if (target.host.endsWith('.flycast') || target.host.endsWith('.internal') || target.host.endsWith('.flympg.net')) {
    // Fly's private names: the app or cluster is the identity (they resolve only inside Fly).
    const labels = target.host.split('.')
    return new Set([`fly:${target.host.endsWith('.flympg.net') ? labels.at(-3) : target.host.endsWith('.internal') ? labels.at(-2) : labels[0]}`])
  }
  // An IPv4 address written as IPv6 (::ffff:127.0.0.1, which URLs normalise to ::ffff:7f00:1) is
  // the same address.
  const plain = (address: string) => {
    const lower = address.toLowerCase()
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower)
    if (hex) return [parseInt(hex[1], 16) >> 8, parseInt(hex[1], 16) & 255, parseInt(hex[2], 16) >> 8, parseInt(hex[2], 16) & 255].join('.')
    return lower.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')
  }
  try {
    const found = await lookup(target.host, { all: true, verbatim: true })
    return new Set([plain(target.host), ...found.map((a) => plain(a.address))])
  } catch {
    return new Set([plain(target.host)])
  }
}

/** The internal API's database URL for the toolkit's own connections: the direct one when the
 * file has DIRECT_DATABASE_URL (Managed Postgres gives the app a pooled DATABASE_URL). */
function toolkitUrl(values: Record<string, string>, path: string): DatabaseTarget {
  const direct = values.DIRECT_DATABASE_URL
  if (direct) {
    parseDatabaseUrl(values.DATABASE_URL, path)
    return parseDatabaseUrl(direct, path, 'DIRECT_DATABASE_URL')
  }
  return parseDatabaseUrl(values.DATABASE_URL, path)
}

/** The other environment's database, if its file is there and filled in (a copy of the
 * .env.example still holding CHANGE_ME is "not configured yet", not an error). */
export function otherDatabase(envDir: string, env: Environment): DatabaseTarget | undefined {
  return configuredDatabase(envDir, otherEnvironment(env))
}

/** An environment's database as its file names it, read without checks or DNS (undefined when the
 * file is missing or not filled in). */
export function configuredDatabase(envDir: string, env: Environment): DatabaseTarget | undefined {
  const path = envFilePath(envDir, env, 'internal-api')
  if (!existsSync(path)) return undefined
  const values = parseEnvText(path, readText(path)).values
  if (!values.DATABASE_URL || values.DATABASE_URL.includes('CHANGE_ME')) return undefined
  registerSecret(values.DATABASE_URL)
  registerSecret(values.DIRECT_DATABASE_URL)
  return toolkitUrl(values, path)
}

/** The environment's database, from internal-api.env, after the cross-environment guard. */
export async function loadDatabaseTarget(envDir: string, env: Environment, log: Logger): Promise<DatabaseTarget> {
  const path = envFilePath(envDir, env, 'internal-api')
  const own = toolkitUrl(readEnvFile(path, env, log).values, path)
  const other = otherEnvironment(env)
  if (namesDatabaseApp(own.host, databaseAppName(other))) {
    throw new UserError(`${path}: the ${env} DATABASE_URL points at ${databaseAppName(other)}, the ${other} database: use ${databaseAppName(env)}`)
  }
  const theirs = otherDatabase(envDir, env)
  if (theirs && theirs.port === own.port && theirs.database === own.database) {
    const [a, b] = await Promise.all([addresses(own), addresses(theirs)])
    if ([...a].some((address) => b.has(address))) {
      throw new UserError(`staging and production name the same database (${own.host}:${own.port}/${own.database}): give each environment its own database`)
    }
  }
  return own
}

/** Every secret value this machine holds for either environment, registered with the masker at
 * the start of every script, so no output (flyctl's, an app's logs, a health probe's body) can
 * show one, whatever the script reads itself. Unreadable files are skipped here: the scripts that
 * need a file report its problems. */
export function registerKnownSecrets(envDir: string): void {
  for (const env of ['staging', 'production'] as const) {
    let names: string[]
    try {
      names = readdirSync(join(envDir, env)).filter((f) => f.endsWith('.env'))
    } catch {
      continue
    }
    for (const name of names) {
      const path = join(envDir, env, name)
      try {
        if (!statSync(path).isFile()) continue
        for (const [key, value] of Object.entries(parseEnvText(path, readFileSync(path, 'utf8')).values)) if (key !== 'NODE_ENV') registerSecret(value)
      } catch {
        // unreadable: nothing to register
      }
    }
  }
}

/** What a migrating pipeline reaches: the environment's database and, for production, staging's
 * (the migration gate reads it). Problems are collected, for reporting with the run's others. */
export async function loadPipelineTargets(envDir: string, env: Environment, log: Logger, problems: Problems): Promise<{ target?: DatabaseTarget; stagingTarget?: DatabaseTarget }> {
  try {
    const target = await loadDatabaseTarget(envDir, env, log)
    if (env !== 'production') return { target }
    const stagingTarget = otherDatabase(envDir, 'production')
    if (!stagingTarget) problems.add(`${envFilePath(envDir, 'staging', 'internal-api')} is needed for the production gate (it reads staging's database): add it with staging's DATABASE_URL`)
    return { target, stagingTarget }
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    problems.add(error.problems)
    return {}
  }
}
