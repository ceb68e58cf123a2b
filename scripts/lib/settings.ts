import { existsSync, readFileSync, statSync } from 'node:fs'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { UserError } from './errors.js'
import { APP_KEYS, type AppKey, type Environment } from './names.js'

// The one settings file of the toolkit, infra/fly/settings.json: the Fly organisation and region,
// where the applications live (the build context, the pnpm workspace, each app's source and
// package, the Prisma schema and migrations), the applications' own test command, and the kind of
// database each environment uses. Paths are relative: `root` to the toolkit's folder, the rest to
// the workspace. Keys left out take the strategy document's layout (apps/api, apps/api/prisma).
// FLY_ORG overrides the organisation and DB_KIND the database kind, for one run.

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
}

const DEFAULT_APPS: Record<AppKey, AppSettings> = {
  'internal-api': { source: 'apps/api', package: 'api', probeVia: undefined },
  'public-api': { source: 'apps/public-api', package: 'public-api' },
  'web-admin': { source: 'apps/web-admin', package: 'web-admin' },
}

type Raw = Record<string, any>

function text(raw: Raw, key: string, fallback: string, where = key): string {
  const value = raw[key] ?? fallback
  if (typeof value !== 'string' || !value) throw new UserError(`${SETTINGS_FILE}: "${where}" must be a non-empty string`)
  return value
}

function count(raw: Raw, key: string, fallback: number, where: string): number {
  const value = raw[key] ?? fallback
  if (!Number.isInteger(value) || value <= 0) throw new UserError(`${SETTINGS_FILE}: "${where}" must be a positive whole number`)
  return value
}

function relativePath(value: string, where: string): string {
  if (isAbsolute(value)) throw new UserError(`${SETTINGS_FILE}: "${where}" must be a relative path (${value} is absolute)`)
  return value
}

export function databaseKind(value: unknown, where: string): DatabaseKind {
  if (value === 'flypg' || value === 'mpg') return value
  throw new UserError(`${where} is ${JSON.stringify(value)}: use flypg (Fly Postgres, as the strategy document) or mpg (Fly Managed Postgres)`)
}

let cached: Settings | undefined

export function loadSettings(toolkit = process.cwd()): Settings {
  if (cached && cached.toolkit === toolkit) return cached
  const path = join(toolkit, SETTINGS_FILE)
  let raw: Raw
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Raw
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UserError(`${SETTINGS_FILE} not found in ${toolkit}: run the toolkit from its own folder (make -C <toolkit folder> …)`)
    throw new UserError(`cannot read ${SETTINGS_FILE}: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new UserError(`${SETTINGS_FILE} must hold a JSON object`)
  const root = resolve(toolkit, relativePath(text(raw, 'root', '.'), 'root'))
  const apps = {} as Record<AppKey, AppSettings>
  for (const key of APP_KEYS) {
    const given = (raw.apps ?? {})[key] ?? {}
    const probe = given.probeVia
    if (probe !== undefined && (!APP_KEYS.includes(probe.app) || typeof probe.path !== 'string' || !probe.path.startsWith('/'))) {
      throw new UserError(`${SETTINGS_FILE}: "apps.${key}.probeVia" must be {"app": <app key>, "path": "/…"}`)
    }
    apps[key] = { source: relativePath(text(given, 'source', DEFAULT_APPS[key].source, `apps.${key}.source`), `apps.${key}.source`), package: text(given, 'package', DEFAULT_APPS[key].package, `apps.${key}.package`), probeVia: probe }
  }
  const prisma = raw.prisma ?? {}
  const database = raw.database ?? {}
  const fromEnv = process.env.DB_KIND
  const kind = (env: Environment) => (fromEnv !== undefined && fromEnv !== '' ? databaseKind(fromEnv, 'DB_KIND') : databaseKind(database[env] ?? 'flypg', `${SETTINGS_FILE} "database.${env}"`))
  const flypg = raw.flypg ?? raw.postgres ?? {}
  const mpg = raw.mpg ?? {}
  cached = {
    org: process.env.FLY_ORG || text(raw, 'org', ''),
    region: text(raw, 'region', 'jnb'),
    toolkit,
    root,
    toolkitFromRoot: relative(root, toolkit) || '.',
    workspace: relativePath(text(raw, 'workspace', '.'), 'workspace'),
    apps,
    prisma: {
      schema: relativePath(text(prisma, 'schema', `${apps['internal-api'].source}/prisma/schema.prisma`, 'prisma.schema'), 'prisma.schema'),
      migrations: relativePath(text(prisma, 'migrations', `${apps['internal-api'].source}/prisma/migrations`, 'prisma.migrations'), 'prisma.migrations'),
    },
    test: text(raw, 'test', 'pnpm -r test'),
    database: { staging: kind('staging'), production: kind('production') },
    flypg: { vmSize: text(flypg, 'vmSize', 'shared-cpu-1x', 'flypg.vmSize'), volumeSizeGb: count(flypg, 'volumeSizeGb', 10, 'flypg.volumeSizeGb'), clusterSize: count(flypg, 'clusterSize', 1, 'flypg.clusterSize') },
    mpg: { region: text(mpg, 'region', 'fra', 'mpg.region'), plan: text(mpg, 'plan', 'basic', 'mpg.plan'), volumeSizeGb: count(mpg, 'volumeSizeGb', 10, 'mpg.volumeSizeGb') },
  }
  if (!cached.org) throw new UserError(`no Fly organisation: set "org" in ${SETTINGS_FILE} or FLY_ORG`)
  return cached
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
