import type { Context } from '../core/cli.js'
import type { Settings } from '../core/settings.js'
import type { Steps } from '../core/steps.js'
import type { Database } from '../database/db.js'
import type { LocalMigration } from '../database/migrations.js'
import type { AppOutcome } from './outcome.js'

/** One deploy run: what every step of it shares. */
export interface DeployRun {
  ctx: Context
  settings: Settings
  db: Database
  steps: Steps
  outcomes: AppOutcome[]
  /** The local migrations. */
  local: LocalMigration[]
}
