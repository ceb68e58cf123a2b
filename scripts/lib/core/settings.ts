import { existsSync, readFileSync, statSync } from 'node:fs'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { UserError } from './errors.js'
import { showCommandsFrom } from './exec.js'
import { APP_KEYS, type AppKey, DEFAULT_NAMING, type Environment, isAppKey, type Naming, namingProblems, useNaming } from './names.js'
import { isObject, kindOf } from './shape.js'
import { receiverProblem } from '../events/url.js'

// The one settings file of the toolkit, infra/fly/settings.json: the Fly organisation and region,
// where the applications live (the build context, the pnpm workspace, each app's source and
// package, the Prisma schema and migrations), the applications' own test command, and the kind of
// database each environment uses. Paths are relative: `root` to the toolkit's folder, the rest to
// the workspace. Keys left out take the strategy document's layout (apps/api, apps/api/prisma).
// FLY_ORG overrides the organisation and DB_KIND the database kind, for one run. `notify.url` is
// where the toolkit's notifications go (NOTIFY_URL overrides it).

export const SETTINGS_FILE = 'infra/fly/settings.json'

export type DatabaseKind = 'flypg' | 'mpg'
export const DATABASE_KINDS: readonly DatabaseKind[] = ['flypg', 'mpg']

export interface AppSettings {
  source: string
  package: string
  /** Health probe through another app (the internal API is private: probed through the gateway). */
  probeVia?: { app: AppKey; path: string }
}

export interface Settings {
  org: string
  region: string
  /** The toolkit's folder (the current directory: make runs its recipes there). */
  toolkit: string
  /** The build context: the monorepo root, absolute. */
  root: string
  /** The toolkit's folder as seen from the root (for --config paths of builds run in the root). */
  toolkitFromRoot: string
  /** The pnpm workspace, relative to the root (build arg WORKSPACE). */
  workspace: string
  apps: Record<AppKey, AppSettings>
  prisma: { schema: string; migrations: string }
  test: string
  database: Record<Environment, DatabaseKind>
  flypg: { vmSize: string; volumeSizeGb: number; clusterSize: number }
  mpg: { region: string; plan: string; volumeSizeGb: number }
  /** The notification receiver (README, "Hooks and notifications"); NOTIFY_URL overrides it. */
  notify: { url?: string }
}

const DEFAULT_APPS: Record<AppKey, AppSettings> = {
  'internal-api': { source: 'apps/api', package: 'api', probeVia: undefined },
  'public-api': { source: 'apps/public-api', package: 'public-api' },
  'web-admin': { source: 'apps/web-admin', package: 'web-admin' },
}

type Raw = Record<string, unknown>

const typeOf = (value: unknown) => (typeof value === 'string' ? `the string ${JSON.stringify(value)}` : value === null || typeof value === 'object' ? kindOf(value) : `${typeof value} ${JSON.stringify(value)}`)

/** The settings' keys, for the typo check: a key the toolkit does not read is an error, not ignored. */
const KEYS = {
  top: ['org', 'region', 'root', 'workspace', 'names', 'apps', 'prisma', 'test', 'database', 'flypg', 'postgres', 'mpg', 'notify'],
  names: ['app', 'database'],
  app: ['name', 'source', 'package', 'probeVia'],
  probeVia: ['app', 'path'],
  prisma: ['schema', 'migrations'],
  database: ['staging', 'production'],
  flypg: ['vmSize', 'volumeSizeGb', 'clusterSize'],
  mpg: ['region', 'plan', 'volumeSizeGb'],
  notify: ['url'],
}

/** Reads the settings' values, collecting every problem (one line each, naming the setting's path). */
class Reader {
  readonly problems: string[] = []
  problem(where: string, what: string): void {
    this.problems.push(`${SETTINGS_FILE}: "${where}" ${what}`)
  }
  /** An object setting: {} when left out; unknown keys are problems. */
  object(value: unknown, where: string, known: string[]): Raw {
    if (value === undefined) return {}
    if (!isObject(value)) {
      this.problem(where, `must be an object, not ${typeOf(value)}`)
      return {}
    }
    for (const key of Object.keys(value)) if (!known.includes(key)) this.problem(where ? `${where}.${key}` : key, `is not a setting (a typo?): use ${known.join(', ')}`)
    return value
  }
  text(raw: Raw, key: string, fallback: string, where = key): string {
    const value = raw[key]
    if (value === undefined) return fallback
    if (typeof value !== 'string' || !value) {
      this.problem(where, `must be a non-empty string, not ${typeOf(value)}`)
      return fallback
    }
    return value
  }
  path(raw: Raw, key: string, fallback: string, where: string): string {
    const value = this.text(raw, key, fallback, where)
    if (isAbsolute(value)) this.problem(where, `must be a relative path (${value} is absolute)`)
    return value
  }
  count(raw: Raw, key: string, fallback: number, where: string): number {
    const value = raw[key]
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      this.problem(where, `must be a positive whole number, not ${typeOf(value)}`)
      return fallback
    }
    return value
  }
  /** notify.url: a receiver URL as NOTIFY_URL takes it; the problem never shows its path or query. */
  receiver(raw: Raw): string | undefined {
    const value = raw.url
    if (value === undefined) return undefined
    if (typeof value !== 'string') {
      this.problem('notify.url', `must be the receiver's https:// URL, not ${typeOf(value)}`)
      return undefined
    }
    const problem = receiverProblem(value, 'notify.url')
    if (problem) this.problems.push(`${SETTINGS_FILE}: ${problem}`)
    return problem ? undefined : value
  }
  /** The app and database names: "names" and each app's "name", checked as a whole. */
  naming(raw: Raw): Naming {
    const names = this.object(raw.names, 'names', KEYS.names)
    // "apps" itself is checked with the rest of the settings.
    const apps = isObject(raw.apps) ? (raw.apps as Raw) : {}
    const naming: Naming = { app: this.text(names, 'app', DEFAULT_NAMING.app, 'names.app'), apps: {}, database: this.text(names, 'database', DEFAULT_NAMING.database, 'names.database') }
    for (const key of APP_KEYS) {
      const app = isObject(apps[key]) ? (apps[key] as Raw) : {}
      if (app.name !== undefined) naming.apps[key] = this.text(app, 'name', '', `apps.${key}.name`)
    }
    if (this.problems.length) return DEFAULT_NAMING
    this.problems.push(...namingProblems(naming, (part) => `${SETTINGS_FILE}: "${part}"`))
    return naming
  }
  kind(raw: Raw, env: Environment): DatabaseKind {
    const value = raw[env]
    if (value === undefined) return 'flypg'
    try {
      return databaseKind(value, `${SETTINGS_FILE}: "database.${env}"`)
    } catch (error) {
      this.problems.push((error as Error).message)
      return 'flypg'
    }
  }
}

export function databaseKind(value: unknown, where: string): DatabaseKind {
  if (value === 'flypg' || value === 'mpg') return value
  throw new UserError(`${where} is ${JSON.stringify(value) ?? String(value)}: use flypg (Fly Postgres, as the strategy document) or mpg (Fly Managed Postgres)`)
}

let cached: Settings | undefined

export function loadSettings(toolkit = process.cwd()): Settings {
  if (cached && cached.toolkit === toolkit) return cached
  const path = join(toolkit, SETTINGS_FILE)
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UserError(`${SETTINGS_FILE} not found in ${toolkit}: run the toolkit from its own folder (make -C <toolkit folder> …)`)
    throw new UserError(`cannot read ${SETTINGS_FILE}: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!isObject(parsed)) throw new UserError(`${SETTINGS_FILE} must hold a JSON object`)
  // Every value is checked for its type (a wrong one is never replaced by the default), every key
  // for a typo, and all problems are reported together.
  const r = new Reader()
  const raw = r.object(parsed, '', KEYS.top)
  const naming = r.naming(raw)
  const root = resolve(toolkit, r.path(raw, 'root', '.', 'root'))
  const givenApps = r.object(raw.apps, 'apps', [...APP_KEYS])
  const apps = {} as Record<AppKey, AppSettings>
  for (const key of APP_KEYS) {
    const given = r.object(givenApps[key], `apps.${key}`, KEYS.app)
    let probeVia: AppSettings['probeVia']
    if (given.probeVia !== undefined) {
      const where = `apps.${key}.probeVia`
      const probe = r.object(given.probeVia, where, KEYS.probeVia)
      if (isObject(given.probeVia)) {
        if (!isAppKey(probe.app)) r.problem(`${where}.app`, `must be one of ${APP_KEYS.join(', ')}, not ${typeOf(probe.app)}`)
        else if (probe.app === key) r.problem(`${where}.app`, `names ${key} itself: probe an app through another one (the gateway), or remove probeVia`)
        if (typeof probe.path !== 'string' || !probe.path.startsWith('/')) r.problem(`${where}.path`, `must be a path starting with /, not ${typeOf(probe.path)}`)
        if (isAppKey(probe.app) && probe.app !== key && typeof probe.path === 'string' && probe.path.startsWith('/')) probeVia = { app: probe.app, path: probe.path }
      }
    }
    apps[key] = { source: r.path(given, 'source', DEFAULT_APPS[key].source, `apps.${key}.source`), package: r.text(given, 'package', DEFAULT_APPS[key].package, `apps.${key}.package`), probeVia }
  }
  const prisma = r.object(raw.prisma, 'prisma', KEYS.prisma)
  const database = r.object(raw.database, 'database', KEYS.database)
  const databaseKinds = { staging: r.kind(database, 'staging'), production: r.kind(database, 'production') }
  const fromEnv = process.env.DB_KIND
  // DB_KIND= left empty falls back to the settings (documented): only a given kind overrides them.
  const kind = (env: Environment) => (fromEnv !== undefined && fromEnv !== '' ? databaseKind(fromEnv, 'DB_KIND') : databaseKinds[env])
  if (raw.flypg !== undefined && raw.postgres !== undefined) r.problem('postgres', 'is the old name of "flypg": keep one')
  const flypgWhere = raw.flypg === undefined && raw.postgres !== undefined ? 'postgres' : 'flypg'
  const flypg = r.object(raw[flypgWhere], flypgWhere, KEYS.flypg)
  const mpg = r.object(raw.mpg, 'mpg', KEYS.mpg)
  const notify = r.object(raw.notify, 'notify', KEYS.notify)
  if (raw.org !== undefined) r.text(raw, 'org', '')
  const settings: Settings = {
    org: process.env.FLY_ORG || (typeof raw.org === 'string' ? raw.org : ''),
    region: r.text(raw, 'region', 'jnb'),
    toolkit,
    root,
    toolkitFromRoot: relative(root, toolkit) || '.',
    workspace: r.path(raw, 'workspace', '.', 'workspace'),
    apps,
    prisma: {
      schema: r.path(prisma, 'schema', `${apps['internal-api'].source}/prisma/schema.prisma`, 'prisma.schema'),
      migrations: r.path(prisma, 'migrations', `${apps['internal-api'].source}/prisma/migrations`, 'prisma.migrations'),
    },
    test: r.text(raw, 'test', 'pnpm -r test'),
    database: { staging: 'flypg', production: 'flypg' },
    flypg: { vmSize: r.text(flypg, 'vmSize', 'shared-cpu-1x', `${flypgWhere}.vmSize`), volumeSizeGb: r.count(flypg, 'volumeSizeGb', 10, `${flypgWhere}.volumeSizeGb`), clusterSize: r.count(flypg, 'clusterSize', 1, `${flypgWhere}.clusterSize`) },
    mpg: { region: r.text(mpg, 'region', 'fra', 'mpg.region'), plan: r.text(mpg, 'plan', 'basic', 'mpg.plan'), volumeSizeGb: r.count(mpg, 'volumeSizeGb', 10, 'mpg.volumeSizeGb') },
    notify: { url: r.receiver(notify) },
  }
  if (r.problems.length) throw new UserError(r.problems)
  useNaming(naming)
  settings.database = { staging: kind('staging'), production: kind('production') }
  if (!settings.org) throw new UserError(`no Fly organisation: set "org" in ${SETTINGS_FILE} or FLY_ORG`)
  // Vendored in a monorepo (tools/deploy): printed commands say where they run.
  showCommandsFrom(settings.toolkitFromRoot === '.' ? undefined : toolkit)
  cached = settings
  return cached
}

/** notify.url of the settings file alone, checked as loadSettings checks it: the targets that do not
 * otherwise read the settings (a rollback in an incident) must not fail on an unrelated setting.
 * Undefined when the file or the key is missing. */
export function notifyUrlSetting(toolkit = process.cwd()): string | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(join(toolkit, SETTINGS_FILE), 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UserError(`cannot read ${SETTINGS_FILE}: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!isObject(parsed)) throw new UserError(`${SETTINGS_FILE} must hold a JSON object`)
  const r = new Reader()
  const url = r.receiver(r.object(parsed.notify, 'notify', KEYS.notify))
  if (r.problems.length) throw new UserError(r.problems)
  return url
}

/** The app names of the settings file ("names", each app's "name"), put to use: every target
 * reads them first, and only them (a rollback in an incident must not fail on another setting).
 * The strategy document's names when the file or the keys are missing. */
export function useNamingSetting(toolkit = process.cwd()): void {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(join(toolkit, SETTINGS_FILE), 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new UserError(`cannot read ${SETTINGS_FILE}: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!isObject(parsed)) throw new UserError(`${SETTINGS_FILE} must hold a JSON object`)
  const r = new Reader()
  const naming = r.naming(parsed)
  if (r.problems.length) throw new UserError(r.problems)
  useNaming(naming)
}

/** A folder of the settings that must exist, or a one-line error naming the setting to fix. */
function existing(settings: Settings, path: string, setting: string, kind: 'directory' | 'file'): string {
  const ok = existsSync(path) && (kind === 'directory' ? statSync(path).isDirectory() : statSync(path).isFile())
  if (!ok) throw new UserError(`${relative(settings.toolkit, path) || '.'} is not a ${kind}: fix "${setting}" in ${SETTINGS_FILE}`)
  return path
}

export const workspaceDir = (s: Settings) => existing(s, join(s.root, s.workspace), 'workspace', 'directory')
export const migrationsDir = (s: Settings) => existing(s, join(s.root, s.workspace, s.prisma.migrations), 'prisma.migrations', 'directory')
export const schemaPath = (s: Settings) => existing(s, join(s.root, s.workspace, s.prisma.schema), 'prisma.schema', 'file')
export const appSourceDir = (s: Settings, app: AppKey) => existing(s, join(s.root, s.workspace, s.apps[app].source), `apps.${app}.source`, 'directory')

/**
 * The settings of this repository point at the toolkit's own sample app; copied into a monorepo
 * unchanged they would deploy the sample. Said out loud, not silently.
 */
export function sampleWarning(s: Settings): string | undefined {
  const sample = resolve(s.toolkit, 'examples')
  const workspace = resolve(s.root, s.workspace)
  const vendored = existsSync(join(s.toolkit, '..', '.git')) || existsSync(join(s.toolkit, '..', '..', '.git')) || existsSync(join(s.toolkit, '..', 'pnpm-workspace.yaml')) || existsSync(join(s.toolkit, '..', '..', 'pnpm-workspace.yaml'))
  if (workspace.startsWith(`${sample}/`) && vendored) {
    return `${SETTINGS_FILE} still points at the toolkit's sample app (${relative(s.toolkit, workspace)}): set "root" and "workspace" to your monorepo (see README, "Add the toolkit to a monorepo")`
  }
  return undefined
}

/** For tests: settings are read once per process. */
export function forgetSettings(): void {
  cached = undefined
}
