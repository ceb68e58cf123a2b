import chalk from 'chalk'
import { appendFileSync } from 'node:fs'
import { mask } from './secrets-mask.js'

// Progress and diagnostics go to stderr; results (tables, the dry-run runbook, JSON) to stdout,
// so `DRY_RUN=1 make deploy-staging > runbook.sh` captures only the commands.

export interface Logger {
  step(message: string): void
  info(message: string): void
  ok(message: string): void
  warn(message: string): void
  error(message: string): void
  result(text: string): void
  child(prefix: string): Logger
}

export function createLogger(prefix = ''): Logger {
  const write = (stream: NodeJS.WriteStream, text: string) => {
    const lines = mask(text).split('\n')
    stream.write(lines.map((line) => prefix + line).join('\n') + '\n')
  }
  return {
    step: (m) => write(process.stderr, chalk.bold.cyan('==> ') + chalk.bold(m)),
    info: (m) => write(process.stderr, m),
    ok: (m) => write(process.stderr, chalk.green('✔ ') + m),
    warn: (m) => write(process.stderr, chalk.yellow('! ') + m),
    error: (m) => write(process.stderr, chalk.red(m)),
    result: (t) => write(process.stdout, t),
    child: (p) => createLogger(prefix + chalk.dim(`[${p}] `)),
  }
}

export const log = createLogger()

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`
}

/** Text without its colour codes. */
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')

/** A plain text table: header row, then rows; columns padded to the widest cell (colour-safe). */
export function table(header: string[], rows: string[][]): string {
  const visible = (s: string) => plain(s).length
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))))
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - visible(c)))).join('  ').trimEnd()
  return [line(header.map((h) => chalk.bold(h))), ...rows.map(line)].join('\n')
}

/** Prints a titled table as a result and, in GitHub Actions, appends it as Markdown to the run's
 * summary (GITHUB_STEP_SUMMARY), so the run page shows what changed without reading the log. */
export function publishTable(log: Logger, title: string, header: string[], rows: string[][]): void {
  log.result(`${chalk.bold(title)}\n${table(header, rows)}`)
  const summary = process.env.GITHUB_STEP_SUMMARY
  if (!summary) return
  const cell = (s: string) => mask(plain(s)).replace(/\|/g, '\\|') || ' '
  const markdown = [`#### ${cell(title)}`, '', `| ${header.map(cell).join(' | ')} |`, `|${header.map(() => ' --- |').join('')}`, ...rows.map((r) => `| ${header.map((_, i) => cell(r[i] ?? '')).join(' | ')} |`), '']
  appendFileSync(summary, `${markdown.join('\n')}\n`)
}
