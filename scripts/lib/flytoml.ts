import { readFileSync } from 'node:fs'
import { parse } from 'smol-toml'
import { UserError } from './errors.js'

// The few fly.toml facts the toolkit needs: the app name and the health path.

interface FlyToml {
  app?: string
  http_service?: { checks?: Array<{ path?: string }> }
  checks?: Record<string, { path?: string; type?: string }>
  deploy?: { release_command?: string }
}

export function readFlyToml(path: string): FlyToml {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new UserError(`${path} not found: the infra/fly folders hold one fly.toml per app and environment`)
  }
  try {
    return parse(text) as FlyToml
  } catch (error) {
    throw new UserError(`${path} is not valid TOML: ${(error as Error).message.split('\n')[0]}`)
  }
}

/** The app's health path: its first HTTP check's path, `/health` when fly.toml names none. */
export function healthPath(config: FlyToml): string {
  const fromService = config.http_service?.checks?.find((check) => check.path)?.path
  const fromTopLevel = Object.values(config.checks ?? {}).find((check) => check.path)?.path
  return fromService ?? fromTopLevel ?? '/health'
}
