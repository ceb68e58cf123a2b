import { compareMigrations, type LocalMigration, type MigrationRow } from './migrations.js'

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

/**
 * The gate follows the images (not only the local files): what production will run is what the
 * promoted internal API image carries, so its migrations must be exactly those applied on staging.
 * A staging deploy that applied a migration and was then rolled back automatically leaves staging
 * holding a migration its running image does not know; the reverse is an image whose migrations
 * staging never ran.
 */
export function imageGateFindings(carried: { name: string; checksum: string }[], stagingRows: MigrationRow[] | null, image: string): GateFinding[] {
  const findings: GateFinding[] = []
  const rows = stagingRows ?? []
  const applied = rows.filter((r) => r.finished_at !== null && r.rolled_back_at === null)
  const byName = new Map(carried.map((m) => [m.name, m]))
  for (const m of carried) {
    const row = applied.filter((r) => r.migration_name === m.name).at(-1)
    if (!row) findings.push({ migration: m.name, reason: `carried by the staging image ${image} but not applied on staging` })
    else if (row.checksum !== m.checksum) findings.push({ migration: m.name, reason: `the staging image carries another version of it than staging applied (checksum)` })
  }
  for (const row of applied) {
    if (!byName.has(row.migration_name)) findings.push({ migration: row.migration_name, reason: `applied on staging, but staging's running image ${image} does not carry it (a deploy that applied it was rolled back?)` })
  }
  return findings
}
