import chalk from 'chalk'
import { appendFileSync } from 'node:fs'
import { mask } from './secrets-mask.js'

// Progress and diagnostics go to stderr; results (tables, the dry-run runbook, JSON) to stdout,
// so `DRY_RUN=1 make deploy-staging > runbook.sh` captures only the commands. Every line passes
// through the masker. Tables fit 120 columns (a terminal, a CI log) unless VERBOSE=1 or JSON=1
// asked for full values.

export const WIDTH = 120

export interface Logger {
  step(message: string): void
  info(message: string): void
  ok(message: string): void
  warn(message: string): void
  error(message: string): void
  result(text: string): void
  /** A line of a child's progress, indented under the current step. */
  detail(line: string): void
  child(prefix: string): Logger
}

/** Text without its colour codes (and other terminal escapes flyctl may print). */
export const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')

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
    detail: (line) => write(process.stderr, chalk.dim(`    │ ${plain(line).slice(0, WIDTH - 6)}`)),
    child: (p) => createLogger(prefix + chalk.dim(`[${p}] `)),
  }
}

export const log = createLogger()

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`
}

let fullWidth = false
/** VERBOSE=1 or JSON=1: tables show full values, however wide. */
export function showFullValues(full: boolean): void {
  fullWidth = full
}

/** A registry.fly.io ref as tables show it: the repository only when it is not the row's app,
 * and a deployment tag as its first and last characters (deployment-01K7…WXYZ). */
export function shortRef(ref: string | undefined, app?: string): string {
  if (!ref) return '-'
  if (fullWidth) return ref
  const at = ref.lastIndexOf(':')
  if (at < 0) return ref
  const repo = ref.slice(0, at).replace(/^registry\.fly\.io\//, '')
  let tag = ref.slice(at + 1)
  const deployment = /^deployment-([0-9A-Z]{26})$/.exec(tag)
  if (deployment) tag = `deployment-${deployment[1].slice(0, 4)}…${deployment[1].slice(-4)}`
  return repo === app ? `…:${tag}` : `${repo}:${tag}`
}

/** A moment as an operator reads it: relative while recent, a date after. */
export function formatWhen(date: Date | string, now = Date.now()): string {
  const t = new Date(date).getTime()
  if (fullWidth) return new Date(t).toISOString().replace('T', ' ').slice(0, 19)
  const s = Math.round((now - t) / 1000)
  if (s < 0) return new Date(t).toISOString().slice(0, 16).replace('T', ' ')
  if (s < 90) return `${s}s ago`
  if (s < 90 * 60) return `${Math.round(s / 60)}m ago`
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h ago`
  return new Date(t).toISOString().slice(0, 10)
}

const visible = (s: string) => [...plain(s)].length

/** Shortens a cell to `width` visible characters, keeping its start and end (refs, paths). */
function shorten(cell: string, width: number): string {
  const text = plain(cell)
  const chars = [...text]
  if (chars.length <= width) return cell
  if (width <= 1) return '…'
  const head = Math.ceil((width - 1) / 2)
  return chars.slice(0, head).join('') + '…' + chars.slice(chars.length - (width - 1 - head)).join('')
}

/** Word-wraps the last column's cell into lines of `width`. */
function wrap(cell: string, width: number): string[] {
  const words = plain(cell).split(/(\s+)/)
  const lines: string[] = []
  let line = ''
  for (const word of words) {
    if ([...line + word].length > width && line.trim()) {
      lines.push(line.trimEnd())
      line = word.trimStart()
    } else line += word
    while ([...line].length > width) {
      lines.push([...line].slice(0, width).join(''))
      line = [...line].slice(width).join('')
    }
  }
  if (line.trim() || !lines.length) lines.push(line.trimEnd())
  return lines
}

/** A plain text table: header row, then rows; columns padded (colour-safe) and fitted to 120 columns. */
export function table(header: string[], rows: string[][]): string {
  const n = header.length
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))))
  const gaps = 2 * (n - 1)
  const total = () => widths.reduce((a, b) => a + b, 0) + gaps
  if (!fullWidth && total() > WIDTH) {
    // The last column wraps; the others shrink, widest first, down to their header or 8.
    const minimum = header.map((h, i) => (i === n - 1 ? Math.min(widths[i], 24) : Math.min(widths[i], Math.max(visible(h), 8))))
    while (total() > WIDTH) {
      const candidates = widths.map((w, i) => ({ w, i })).filter(({ w, i }) => w > minimum[i] && (i === n - 1 || w > 12))
      if (!candidates.length) break
      const widest = candidates.reduce((a, b) => (b.w > a.w ? b : a))
      widths[widest.i] -= 1
    }
  }
  const pad = (c: string, w: number) => c + ' '.repeat(Math.max(0, w - visible(c)))
  const render = (cells: string[], bold = false): string[] => {
    const fitted = cells.map((c, i) => (fullWidth || i === n - 1 ? c : visible(c) > widths[i] ? shorten(c, widths[i]) : c))
    const last = fullWidth || visible(fitted[n - 1] ?? '') <= widths[n - 1] ? [fitted[n - 1] ?? ''] : wrap(fitted[n - 1] ?? '', widths[n - 1])
    const first = fitted.slice(0, n - 1).map((c, i) => pad(bold ? chalk.bold(c) : c, widths[i]))
    const blank = widths.slice(0, n - 1).map((w) => ' '.repeat(w))
    return last.map((tail, k) => [...(k === 0 ? first : blank), bold ? chalk.bold(tail) : tail].join('  ').trimEnd())
  }
  return [...render(header, true), ...rows.flatMap((r) => render(r))].join('\n')
}

/** Prints a titled table as a result and, in GitHub Actions, appends it as Markdown to the run's
 * summary (GITHUB_STEP_SUMMARY), so the run page shows what changed without reading the log. A
 * summary that cannot be written is a warning: it never fails, or changes the outcome of, a run. */
export function publishTable(log: Logger, title: string, header: string[], rows: string[][]): void {
  log.result(`${chalk.bold(title)}\n${table(header, rows)}`)
  appendSummary(log, [`#### ${cell(title)}`, '', `| ${header.map(cell).join(' | ')} |`, `|${header.map(() => ' --- |').join('')}`, ...rows.map((r) => `| ${header.map((_, i) => cell(r[i] ?? '')).join(' | ')} |`), ''].join('\n'))
}

const cell = (s: string) => mask(plain(s)).replace(/\|/g, '\\|').replace(/\n/g, '<br>') || ' '

let summaryBroken = false
export function appendSummary(log: Logger, markdown: string): void {
  const summary = process.env.GITHUB_STEP_SUMMARY
  if (!summary || summaryBroken) return
  try {
    appendFileSync(summary, `${mask(markdown)}\n`)
  } catch (error) {
    summaryBroken = true
    log.warn(`cannot write the step summary ${summary} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): the tables are in the log only`)
  }
}
