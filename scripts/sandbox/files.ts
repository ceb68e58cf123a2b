import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

// Where the sandbox lives and the throwaway files it needs: the repository it runs from, temporary
// folders, and env folders written as an operator would write them (mode 0600 files).

/** The repository root: found upwards from this file, which may also run bundled from dist/. */
export const REPO = (() => {
  let dir = import.meta.dirname
  while (!existsSync(join(dir, 'Makefile')) || !existsSync(join(dir, 'scripts'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the repository root')
    dir = parent
  }
  return dir
})()

/** The environment of a process the sandbox starts: this one's, without NODE_EXTRA_CA_CERTS (nothing
 * in the sandbox speaks TLS, and every node process spends 80 ms reading the bundle), plus `extra`. */
export function sandboxProcessEnv(extra: Record<string, string>): Record<string, string | undefined> {
  const { NODE_EXTRA_CA_CERTS: _unused, ...inherited } = process.env
  return { ...inherited, ...extra }
}

/** Temporary folders this process made: removed when it ends, however far its work got. */
const made = new Set<string>()
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

/** A new temporary folder, removed when this process ends. */
export function tempDir(prefix = 'mb-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.add(dir)
  return dir
}

export type AppValues = Partial<Record<'internal-api' | 'public-api' | 'web-admin', Record<string, string>>>
export type EnvFiles = Partial<Record<'staging' | 'production', AppValues>>

/** Writes an env folder (mode 0600 files) and returns its path, for ENV_DIR / --env-dir. */
export function writeEnvDir(files: EnvFiles, dir = tempDir('mb-env-')): string {
  for (const [env, apps] of Object.entries(files)) {
    mkdirSync(join(dir, env), { recursive: true })
    for (const [app, values] of Object.entries(apps ?? {})) {
      const path = join(dir, env, `${app}.env`)
      writeFileSync(path, Object.entries(values ?? {}).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 })
      chmodSync(path, 0o600)
    }
  }
  return dir
}

/** Env files for both environments, as an operator fills them in from the .env.example files: the
 * internal API on the given database URLs, the web admin reaching it over Flycast (port 80, the
 * service's external port). Values are sandbox placeholders, never real secrets. */
export function sandboxEnvFiles(urls: { staging: string; production: string }, label = 'sandbox'): EnvFiles {
  // Values as an operator should make them (random), so the
  // toolkit can hide them in its output and has no reason to warn about them.
  const secret = (name: string) => `${label}-${name}-${randomBytes(12).toString('hex')}`
  const apps = (env: 'staging' | 'production'): AppValues => ({
    'internal-api': { DATABASE_URL: urls[env], JWT_SECRET: secret(`jwt-${env}`), MPESA_CONSUMER_KEY: secret(`mpesa-key-${env}`), MPESA_CONSUMER_SECRET: secret(`mpesa-${env}`) },
    'public-api': { KONG_PARTNER_API_KEY: secret(`partner-key-${env}`) },
    'web-admin': { SESSION_SECRET: secret(`session-${env}`), INTERNAL_API_URL: `http://microbima-${env}-internal-api.flycast` },
  })
  return { staging: apps('staging'), production: apps('production') }
}

/** DATABASE_URL as env/<environment>/internal-api.env.example has it: `make create-apps-<env> DB=1`
 * replaces the placeholder with the attached database's URL. */
export const PLACEHOLDER_DATABASE_URLS = {
  staging: 'postgres://microbima_staging_internal_api:CHANGE_ME@microbima-staging-db.flycast:5432/microbima_staging_internal_api?sslmode=disable',
  production: 'postgres://microbima_production_internal_api:CHANGE_ME@microbima-prod-db.flycast:5432/microbima_production_internal_api?sslmode=disable',
}
