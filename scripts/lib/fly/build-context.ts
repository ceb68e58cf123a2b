import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { readFlyToml } from './flytoml.js'
import { type AppKey, flyConfigPath } from '../core/names.js'
import { appSourceDir, SETTINGS_FILE, workspaceDir, type Settings } from '../core/settings.js'

// What a remote build will see, checked before anything is sent (fly-platform.md §7): the build
// context is the monorepo root; the Dockerfile is the one fly.toml names, relative to the
// fly.toml's folder; Fly's default builder (Depot/BuildKit) reads <Dockerfile>.dockerignore next
// to the Dockerfile, other builders <context>/.dockerignore. Both must keep secrets out: env
// files, backups, .git and node_modules are never uploaded.

// A CommonJS module whose typings declare an ES default export: load it as CommonJS.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default

const matchers = new Map<string, ReturnType<typeof dockerignore>>()

/** Whether the ignore file leaves `path` out; each file's rules are compiled once a run (the
 * root's .dockerignore serves every app). */
function ignores(file: string, path: string): boolean {
  let matcher = matchers.get(file)
  if (!matcher) {
    const rules = readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    matchers.set(file, (matcher = dockerignore().add(rules)))
  }
  return matcher.ignores(path)
}

/** Paths that must never reach the builder, relative to the build context. */
function secretPaths(settings: Settings): string[] {
  const toolkit = settings.toolkitFromRoot === '.' ? '' : `${settings.toolkitFromRoot}/`
  const envDir = resolve(settings.toolkit, process.env.ENV_DIR ?? 'env')
  const envFromRoot = relative(settings.root, envDir)
  return [
    `${toolkit}env/staging/internal-api.env`,
    `${toolkit}env/production/internal-api.env`,
    ...(envFromRoot.startsWith('..') ? [] : [`${envFromRoot}/production/internal-api.env`]),
    `${toolkit}backups/production-2026.sql`,
    `${toolkit}.deploy-state/pending-ledger-production.jsonl`,
    '.env',
    `${settings.workspace === '.' ? '' : `${settings.workspace}/`}apps/api/.env`,
    '.git/config',
    'node_modules/x/package.json',
  ]
}

export function buildContextProblems(settings: Settings, key: AppKey): string[] {
  const problems: string[] = []
  const config = flyConfigPath('staging', key)
  const check = (fn: () => unknown) => {
    try {
      fn()
    } catch (error) {
      problems.push(...((error as { problems?: string[] }).problems ?? [(error as Error).message]))
    }
  }
  check(() => workspaceDir(settings))
  check(() => appSourceDir(settings, key))
  if (problems.length) return problems
  const lockfile = join(settings.root, settings.workspace, 'pnpm-lock.yaml')
  if (!existsSync(lockfile)) problems.push(`${relative(settings.toolkit, lockfile)} not found: the images install with pnpm --frozen-lockfile; run pnpm install in the workspace, or fix "workspace" in ${SETTINGS_FILE}`)
  for (const env of ['staging', 'prod'] as const) {
    const path = config.replace('-staging/', `-${env}/`)
    let dockerfile: string | undefined
    check(() => {
      const name = readFlyToml(path).build?.dockerfile
      if (!name) throw new Error(`${path} has no [build] dockerfile: name the app's Dockerfile there (relative to the fly.toml's folder)`)
      dockerfile = resolve(dirname(path), name)
      if (!existsSync(dockerfile)) throw new Error(`${path} names the Dockerfile ${relative(settings.toolkit, dockerfile)}, which does not exist`)
    })
    if (!dockerfile) continue
    const ignoreFiles = [`${dockerfile}.dockerignore`, join(settings.root, '.dockerignore')]
    const missing = ignoreFiles.filter((f) => !existsSync(f))
    if (missing.length) {
      problems.push(`${missing.map((f) => relative(settings.toolkit, f) || f).join(' and ')} missing: without them the builder is sent every file of ${relative(settings.toolkit, settings.root) || '.'}, env files and backups included`)
      continue
    }
    for (const file of ignoreFiles) {
      const leaks = secretPaths(settings).filter((p) => !ignores(file, p))
      if (leaks.length) problems.push(`${relative(settings.toolkit, file)} does not exclude ${leaks.join(', ')}: add them, so no secret reaches the builder`)
    }
  }
  return [...new Set(problems)]
}
