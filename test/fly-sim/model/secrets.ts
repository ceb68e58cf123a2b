// App secrets and their versions (fly-platform.md §6; flyctl internal/appsecrets/secrets.go,
// minvers.go): Fly bumps a per-app version on every update; the flyctl that made the update keeps
// it as a minimum in its own config.yml (app_secrets_minvers) and sends it with later launches.
// A flyctl on another machine (a fresh CI runner) has no entry until `secrets sync`.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { digestOf } from './fleet.ts'
import type { SimApp } from '../state.ts'

/** $FLY_CONFIG_DIR/config.yml, or ~/.fly/config.yml (helpers.GetConfigDirectory). */
function configFile(): string {
  return join(process.env.FLY_CONFIG_DIR || join(homedir(), '.fly'), 'config.yml')
}

function readConfig(): Record<string, any> {
  const file = configFile()
  return existsSync(file) ? ((parse(readFileSync(file, 'utf8')) as Record<string, any>) ?? {}) : {}
}

export function localMinVersion(app: string): number | undefined {
  const value = readConfig().app_secrets_minvers?.[app]
  return typeof value === 'number' ? value : undefined
}

export function recordMinVersion(app: string, version: number): void {
  const config = readConfig()
  config.app_secrets_minvers = { ...(config.app_secrets_minvers ?? {}), [app]: version }
  mkdirSync(join(configFile(), '..'), { recursive: true })
  writeFileSync(configFile(), stringify(config))
}

/** One update call (flaps UpdateAppSecrets): every change under one new version. */
export function updateSecrets(app: SimApp, set: Record<string, string>, unset: string[]): number {
  const version = app.secretsVersion + 1
  const at = Date.now()
  for (const [name, value] of Object.entries(set)) app.secretsLog.push({ version, name, value, at })
  for (const name of unset) app.secretsLog.push({ version, name, value: null, at })
  app.secretsVersion = version
  return version
}

/** Current secrets with the version each was last written at. */
export function currentSecrets(app: SimApp): Map<string, { value: string; version: number; digest: string }> {
  const current = new Map<string, { value: string; version: number; digest: string }>()
  for (const event of [...app.secretsLog].sort((a, b) => a.version - b.version)) {
    if (event.value === null) current.delete(event.name)
    else current.set(event.name, { value: event.value, version: event.version, digest: digestOf(event.value) })
  }
  return current
}

/** secrets list's status: Deployed when every machine runs a version that has it, Staged when none does. */
export function secretStatus(app: SimApp, version: number): 'Deployed' | 'Staged' | 'Partial' {
  const machines = app.machines.filter((m) => m.state !== 'destroyed')
  const having = machines.filter((m) => m.secretsVersion >= version).length
  if (!machines.length || having === 0) return 'Staged'
  return having === machines.length ? 'Deployed' : 'Partial'
}
