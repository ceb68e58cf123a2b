import chalk from 'chalk'
import type { Context } from '../core/cli.js'
import { formatDuration, publishTable } from '../core/log.js'
import type { Environment } from '../core/names.js'
import type { ChosenBackup } from './backups.js'
import type { CheckResult } from './check.js'

// Step 6 of a restore drill: what it found, as tables (stdout, and the job summary in GitHub
// Actions) and, with JSON=1, as the one-line object that ends stdout:
//   {"environment", "backup": {"id", "age_s"}, "restore_s", "tables": [{"name", "restored", "live"}],
//    "migrations": {"restored", "live"}, "result": "verified"|"failed", "problems": [...]}

export interface DrillOutcome {
  environment: Environment
  backup: ChosenBackup
  /** Seconds between the backup's data and the restore request (the recovery point). */
  ageS: number | null
  /** Seconds from the restore request to a checked copy (the recovery time); null when not reached. */
  restoreS: number | null
  check?: CheckResult
  /** Why it failed, when it did not get as far as a check, or besides the check's problems. */
  failure?: string
  /** What became of the scratch copy. */
  scratch: string
}

export const verified = (o: DrillOutcome) => !o.failure && Boolean(o.check) && o.check!.problems.length === 0 && /^(destroyed|kept|dry run)/.test(o.scratch)

export function problemsOf(o: DrillOutcome): string[] {
  return [...(o.failure ? [o.failure] : []), ...(o.check?.problems ?? []), ...(/^NOT destroyed/.test(o.scratch) ? [`the scratch copy was ${o.scratch}`] : [])]
}

export function drillJson(o: DrillOutcome): string {
  return JSON.stringify({
    environment: o.environment,
    backup: { id: o.backup.id, age_s: o.ageS },
    restore_s: o.restoreS,
    tables: o.check?.tables ?? [],
    migrations: o.check?.migrations ?? { restored: null, live: null },
    result: verified(o) ? 'verified' : 'failed',
    problems: problemsOf(o),
  })
}

const seconds = (s: number | null) => (s === null ? '-' : formatDuration(s * 1000))

export function printReport(ctx: Context, o: DrillOutcome): void {
  if (o.check) {
    const rows = o.check.tables.map((t) => [t.name, t.restored === null ? chalk.red('missing') : String(t.restored), String(t.live), t.restored === null ? chalk.red('MISSING') : 'ok'])
    publishTable(ctx.log, `restore drill of ${o.environment}: the restored copy's tables`, ['table', 'restored rows', 'live rows', 'check'], rows)
  }
  const problems = problemsOf(o)
  const rows = [
    ['backup', `${o.backup.id} (${o.backup.kind === 'mpg' ? `Managed Postgres, cluster ${o.backup.source}` : `snapshot of ${o.backup.source}`})`],
    ['recovery point', o.ageS === null ? 'unknown (the backup has no time)' : `${seconds(o.ageS)} old when the restore began (taken ${o.backup.takenAt!.toISOString().replace(/\.\d+Z$/, 'Z')})`],
    ['recovery time', o.restoreS === null ? '- (no checked copy)' : `${seconds(o.restoreS)} from the restore request to a checked copy`],
    ['migrations', o.check ? `${o.check.migrations.restored} applied in the copy, ${o.check.migrations.live} on the live database` : '-'],
    ['scratch copy', o.scratch],
    ['result', verified(o) ? chalk.green('verified') : chalk.red(`FAILED${problems.length ? `: ${problems.length} problem${problems.length > 1 ? 's' : ''}` : ''}`)],
    ...problems.map((p, i) => [i === 0 ? 'problems' : '', p]),
    ...(o.check?.notes ?? []).map((n, i) => [i === 0 ? 'notes' : '', n]),
  ]
  publishTable(ctx.log, `restore drill of ${o.environment}`, ['what', 'found'], rows)
}
