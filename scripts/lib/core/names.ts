import { posix } from 'node:path'

// The names table of the interface: environments, app keys, Fly app names, config folders.

export const ENVIRONMENTS = ['staging', 'production'] as const
export type Environment = (typeof ENVIRONMENTS)[number]

export const APP_KEYS = ['internal-api', 'public-api', 'web-admin'] as const
export type AppKey = (typeof APP_KEYS)[number]

/** Deploy order within an environment. */
export const DEPLOY_ORDER: readonly AppKey[] = APP_KEYS

const ALIASES: Record<string, Environment> = { staging: 'staging', production: 'production', prod: 'production' }

export function parseEnvironment(value: string | undefined): Environment | undefined {
  return value === undefined ? undefined : ALIASES[value]
}

export function isAppKey(value: unknown): value is AppKey {
  return typeof value === 'string' && (APP_KEYS as readonly string[]).includes(value)
}

/** `staging` or `prod`: the suffix of the infra/fly folders and of the make targets. */
export function shortName(env: Environment): 'staging' | 'prod' {
  return env === 'production' ? 'prod' : 'staging'
}

// The Fly app names, from the settings' "names" (read before anything else a target does): one
// pattern for the three apps, one per app where an adopter's names differ, one for the databases.
// {env} is staging or production, {short} staging or prod, {app} the app's key.
export interface Naming {
  app: string
  apps: Partial<Record<AppKey, string>>
  database: string
}

export const DEFAULT_NAMING: Naming = { app: 'microbima-{env}-{app}', apps: {}, database: 'microbima-{short}-db' }
let naming = DEFAULT_NAMING

export function useNaming(chosen: Naming): void {
  naming = chosen
}

export const fillName = (pattern: string, env: Environment, app = ''): string => pattern.replaceAll('{env}', env).replaceAll('{short}', shortName(env)).replaceAll('{app}', app)

export function flyAppName(env: Environment, app: AppKey): string {
  return fillName(naming.apps[app] ?? naming.app, env, app)
}

export function databaseAppName(env: Environment): string {
  return fillName(naming.database, env)
}

/** Which app and environment a Fly app name is, when it is one of the six. */
export function appOfName(name: string): { env: Environment; key: AppKey } | undefined {
  for (const env of ENVIRONMENTS) for (const key of APP_KEYS) if (flyAppName(env, key) === name) return { env, key }
  return undefined
}

/** Problems of a naming: unknown placeholders, names Fly refuses, the same name twice (two
 * environments or two apps sharing an app would deploy over each other). */
export function namingProblems(candidate: Naming, where: (part: string) => string): string[] {
  const problems: string[] = []
  const patterns: [string, string][] = [[where('names.app'), candidate.app], [where('names.database'), candidate.database], ...Object.entries(candidate.apps).map(([key, p]) => [where(`apps.${key}.name`), p!] as [string, string])]
  for (const [at, pattern] of patterns) {
    const unknown = pattern.match(/\{(?!env\}|short\}|app\})[^}]*\}/)
    if (unknown) problems.push(`${at} has ${unknown[0]}: the placeholders are {env}, {short} and {app}`)
    else if (!/\{(env|short)\}/.test(pattern)) problems.push(`${at} is ${JSON.stringify(pattern)}: it needs {env} or {short}, or staging and production would share the app`)
  }
  if (problems.length) return problems
  const names = new Map<string, string>()
  for (const env of ENVIRONMENTS) {
    const all: [string, string][] = [...APP_KEYS.map((key) => [`${env} ${key}`, fillName(candidate.apps[key] ?? candidate.app, env, key)] as [string, string]), [`${env} database`, fillName(candidate.database, env)]]
    for (const [what, name] of all) {
      // Fly app names: lowercase letters, digits and dashes (flyctl apps create refuses the rest).
      if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name)) problems.push(`the ${what} app would be named ${JSON.stringify(name)}: Fly app names are 3 to 63 lowercase letters, digits and dashes`)
      else if (names.has(name)) problems.push(`the ${what} app and the ${names.get(name)} app would both be named ${name}: give each its own name`)
      else names.set(name, what)
    }
  }
  return problems
}

export function flyConfigPath(env: Environment, app: AppKey): string {
  return `infra/fly/${app}-${shortName(env)}/fly.toml`
}

/** The fly.toml path as flyctl sees it when it runs in the build context (the monorepo root). */
export function buildConfigPath(toolkitFromRoot: string, env: Environment, app: AppKey): string {
  return posix.normalize(posix.join(toolkitFromRoot, flyConfigPath(env, app)))
}

export function otherEnvironment(env: Environment): Environment {
  return env === 'production' ? 'staging' : 'production'
}

/** IMAGE=: a registry reference (registry.fly.io/APP:TAG, optionally @sha256:…), nothing a shell
 * or flyctl could read as an option or more than one word. */
export function imageRefProblem(image: string): string | undefined {
  return /^[A-Za-z0-9][\w.\-/]*(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/.test(image) ? undefined : `IMAGE=${image} is not an image reference (registry.fly.io/APP:TAG)`
}
