import type { Context } from './cli.js'
import type { Database } from './db.js'
import { Refusal } from './errors.js'
import { compareMigrations, readMigrationRows, type LocalMigration, type MigrationRow } from './migrations.js'

// The rule "never deploy untested migrations to production" as a mechanism (interface: Migration
// gate). Before any production change: every local migration applied successfully on staging with
// the same checksum; no unresolved failed migration on either database; nothing applied on
// production that is missing locally. Read-only; it runs in dry run too.

export interface GateFinding {
  migration: string
  reason: string
}

export function gateFindings(local: LocalMigration[], stagingRows: MigrationRow[] | null, productionRows: MigrationRow[] | null): GateFinding[] {
  const findings: GateFinding[] = []
  for (const status of compareMigrations(local, stagingRows)) {
    const reason = {
      applied: undefined,
      pending: 'not applied on staging',
      'rolled-back': 'rolled back on staging, not applied again',
      failed: 'failed on staging',
      'checksum-mismatch': 'checksum differs from staging (the file changed after staging applied it)',
      'unknown-on-remote': undefined,
    }[status.state]
    if (reason) findings.push({ migration: status.name, reason })
    if (status.state === 'unknown-on-remote' && status.row?.finished_at === null) {
      findings.push({ migration: status.name, reason: 'failed on staging (and missing locally)' })
    }
  }
  for (const status of compareMigrations(local, productionRows)) {
    if (status.state === 'failed') findings.push({ migration: status.name, reason: 'failed row on production: recover it first (make migrate-status)' })
    if (status.state === 'checksum-mismatch') findings.push({ migration: status.name, reason: 'checksum differs from production (the file changed after production applied it)' })
    if (status.state === 'unknown-on-remote') {
      findings.push({
        migration: status.name,
        reason: status.row?.finished_at === null ? 'failed row on production, and missing locally' : 'applied on production but missing locally',
      })
    }
  }
  return findings
}

/** Refuses (exit 3) naming each offending migration and the reason. */
export async function migrationGate(ctx: Context, staging: Database, production: Database, local: LocalMigration[]): Promise<void> {
  const findings = gateFindings(local, await readMigrationRows(staging), await readMigrationRows(production))
  if (findings.length) {
    throw new Refusal(
      `migration gate: production is not safe to change (${findings.length} problem${findings.length === 1 ? '' : 's'}); nothing was changed`,
      findings.map((f) => `${f.migration}: ${f.reason}`),
    )
  }
  void ctx
}
