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

export function flyAppName(env: Environment, app: AppKey): string {
  return `microbima-${env}-${app}`
}

export function databaseAppName(env: Environment): string {
  return env === 'production' ? 'microbima-prod-db' : 'microbima-staging-db'
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
