import { readFileSync } from 'node:fs'
import { UserError } from './errors.js'

// Committed, non-secret settings of the Fly organisation (infra/fly/settings.json);
// FLY_ORG in the environment overrides the organisation.

export interface Settings {
  org: string
  region: string
  postgres: { vmSize: string; volumeSizeGb: number; clusterSize: number }
}

export function loadSettings(path = 'infra/fly/settings.json'): Settings {
  let settings: Settings
  try {
    settings = JSON.parse(readFileSync(path, 'utf8')) as Settings
  } catch (error) {
    throw new UserError(`cannot read ${path}: ${(error as Error).message.split('\n')[0]}`)
  }
  const org = process.env.FLY_ORG || settings.org
  if (!org) throw new UserError(`no Fly organisation: set "org" in ${path} or FLY_ORG`)
  return { ...settings, org }
}
