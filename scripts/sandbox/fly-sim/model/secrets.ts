// App secrets and their versions (fly-platform.md §6; flyctl internal/appsecrets/secrets.go,
// minvers.go): Fly bumps a per-app version on every update; the flyctl that made the update keeps
// it as a minimum in its own config.yml (app_secrets_minvers) and sends it with later launches.
// A flyctl on another machine (a fresh CI runner) has no entry until `secrets sync`.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { call, env } from '../call.ts'
import { digestOf } from './fleet.ts'
import type { SimApp } from '../state.ts'

/** $FLY_CONFIG_DIR/config.yml, or ~/.fly/config.yml (helpers.GetConfigDirectory). */
function configFile(): string {
  return join(env('FLY_CONFIG_DIR') || join(env('HOME') ?? '/root', '.fly'), 'config.yml')
}

// The file changes only when a minimum is saved, and parsing it took a millisecond of every call.
let parsedConfig: { text: string; value: Record<string, any> } | undefined

function readConfig(): Record<string, any> {
  const file = configFile()
  if (!existsSync(file)) return {}
  const text = readFileSync(file, 'utf8')
  if (parsedConfig?.text !== text) parsedConfig = { text, value: (parse(text) as Record<string, any>) ?? {} }
  return structuredClone(parsedConfig.value)
}

// flyctl reads config.yml once, at start (viper), and saving a minimum version writes its whole
// in-memory map back over the file's key (appsecrets/minvers.go setMinvers, config/file.go set).
// So two flyctl processes that save at once for different apps lose one entry: the second writes
// the map it read before the first saved. Read once per call, at its start, as flyctl does.
function minvers(): Record<string, number> {
  const memo = call().memo
  if (!memo.has('minvers')) memo.set('minvers', { ...(readConfig().app_secrets_minvers ?? {}) })
  return memo.get('minvers') as Record<string, number>
}

/** Reads config.yml now: called when a call starts, before anything that takes time. */
export function loadMinVersions(): void {
  minvers()
}

export function localMinVersion(app: string): number | undefined {
  const value = minvers()[app]
  return typeof value === 'number' ? value : undefined
}

export function recordMinVersion(app: string, version: number): void {
  const map = { ...minvers(), [app]: version }
  call().memo.set('minvers', map)
  const config = readConfig()
  config.app_secrets_minvers = map
  mkdirSync(join(configFile(), '..'), { recursive: true })
  // flyctl writes under a file lock that its readers take too, so no reader sees half a file:
  // here a rename does the same. What is lost is only what the map read at start did not have.
  const temp = `${configFile()}.${call().pid}.${Math.random().toString(36).slice(2)}.tmp`
  writeFileSync(temp, stringify(config))
  renameSync(temp, configFile())
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

/** Current secrets with the version (and time) each was last written at. */
export function currentSecrets(app: SimApp): Map<string, { value: string; version: number; digest: string; at: number }> {
  const current = new Map<string, { value: string; version: number; digest: string; at: number }>()
  for (const event of [...app.secretsLog].sort((a, b) => a.version - b.version)) {
    if (event.value === null) current.delete(event.name)
    else current.set(event.name, { value: event.value, version: event.version, digest: digestOf(event.value), at: event.at })
  }
  return current
}

/**
 * secrets list's status (internal/command/secrets/list.go computeSecretStatus): flyctl does not
 * know which secrets version a machine runs. It counts a machine as having a secret when the
 * release its metadata names (fly_release_version) was created at or after the secret's
 * updated_at: Deployed when every machine does, Staged when none does (or there are no machines),
 * Partial otherwise. A machine launched with a stale secrets version (no minvers) still counts.
 */
export function secretStatus(app: SimApp, updatedAt: number): 'Deployed' | 'Staged' | 'Partial' {
  const machines = app.machines.filter((m) => m.state !== 'destroyed')
  const created = (version: number) => {
    const release = app.releases.find((r) => r.Version === version)
    return release ? (release.createdMs ?? Date.parse(release.CreatedAt)) : undefined
  }
  const having = machines.filter((m) => {
    const at = created(m.releaseVersion)
    return at !== undefined && updatedAt <= at
  }).length
  if (!machines.length || having === 0) return 'Staged'
  return having === machines.length ? 'Deployed' : 'Partial'
}
