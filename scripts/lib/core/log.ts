import chalk from 'chalk'
import { appOfName } from './names.js'
import { appendFileSync, existsSync, statSync } from 'node:fs'
import { mask } from '../secrets/mask.js'

// Progress and diagnostics go to stderr; results (tables, the dry-run runbook, JSON) to stdout,
// so `DRY_RUN=1 make deploy-staging > runbook.sh` captures only the commands. Every line passes
// through the masker. Tables fit 120 columns (a terminal, a CI log) unless VERBOSE=1 or JSON=1
// asked for full values.

/** The columns tables and wrapped text fit in: the terminal's width on a terminal; piped (CI logs,
 * files), COLUMNS when it is set, and never more than 120. */
export const WIDTH = (() => {
  if (process.stdout.isTTY && process.stdout.columns) return Math.max(60, process.stdout.columns)
  const columns = Number(process.env.COLUMNS)
  return Number.isInteger(columns) && columns >= 60 ? Math.min(columns, 120) : 120
})()

export interface Logger {
  step(message: string): void
  info(message: string): void
  ok(message: string): void
  warn(message: string): void
  /** `wrap`: an operation's failure may wrap like prose; refusals and user errors stay one line. */
  error(message: string, wrap?: boolean): void
  result(text: string): void
  /** A line of a child's progress, indented under the current step. */
  detail(line: string): void
  child(prefix: string): Logger
}

/** Text without its colour codes (and other terminal escapes flyctl may print). */
export const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')

export function createLogger(prefix = ''): Logger {
  // On a terminal, prose longer than 120 columns wraps under its first word (masked first, so no
  // secret is split out of the masker's sight). Piped (CI logs, grep) every message stays one line.
  const write = (stream: NodeJS.WriteStream, text: string, indent = 0) => {
    const lines = mask(text).split('\n')
    const fitted = indent && stream.isTTY && !fullWidth ? lines.flatMap((line) => wrapLine(line, WIDTH - visible(prefix), indent)) : lines
    stream.write(fitted.map((line) => prefix + line).join('\n') + '\n')
  }
  return {
    step: (m) => write(process.stderr, chalk.bold.cyan('==> ') + chalk.bold(m), 4),
    info: (m) => write(process.stderr, m, 2),
    ok: (m) => write(process.stderr, chalk.green('✔ ') + m, 2),
    warn: (m) => write(process.stderr, chalk.yellow('! ') + m, 2),
    error: (m, wrap) => write(process.stderr, chalk.red(m), wrap ? 2 : 0),
    result: (t) => write(process.stdout, t),
    // A child's line under the step, wrapped (never cut) under the bar.
    detail: (line) => write(process.stderr, wrap(plain(line), WIDTH - 6).map((part) => chalk.dim(`    │ ${part}`)).join('\n')),
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

/** A tag as tables show it: flyctl's deployment-<ULID> by its ends (deployment-01K7…WXYZ), the
 * toolkit's git-<commit>-dirty-<time> with the whole commit and the end of the time. */
function shortTag(tag: string): string {
  const deployment = /^deployment-([0-9A-Z]{26})$/.exec(tag)
  if (deployment) return `deployment-${deployment[1].slice(0, 4)}…${deployment[1].slice(-4)}`
  const unique = /^(git-[0-9a-f]{12}-(?:dirty|rebuild))-\d{8}t\d{9}z$/.exec(tag)
  return unique ? `${unique[1]}…${tag.slice(-6)}` : tag
}

/** A registry.fly.io ref as tables show it: the repository only when it is not the row's app,
 * and a deployment tag as its first and last characters (deployment-01K7…WXYZ). */
export function shortRef(ref: string | undefined, app?: string): string {
  if (!ref) return '-'
  if (fullWidth) return ref
  const at = ref.lastIndexOf(':')
  if (at < 0 || !ref.startsWith('registry.fly.io/')) return ref
  const repo = ref.slice(0, at).replace(/^registry\.fly\.io\//, '')
  let tag = ref.slice(at + 1)
  tag = shortTag(tag)
  // The row's app, or its twin in the other environment (a promoted image): the tag says enough.
  const twins = app !== undefined && appOfName(repo)?.key !== undefined && appOfName(repo)?.key === appOfName(app)?.key
  return app === undefined || repo === app || twins ? `…:${tag}` : `${repo}:${tag}`
}

/** An image by its label (the tag after the repository: a commit, or deployment-01K7…WXYZ), as a
 * table shows it; the full reference with VERBOSE=1 or JSON=1. */
export function imageLabel(ref: string | undefined): string {
  if (!ref) return '-'
  if (fullWidth) return ref
  const name = ref.split('@')[0]
  const at = name.lastIndexOf(':')
  if (at < 0 || name.lastIndexOf('/') > at) return shorten(ref, 32)
  const tag = name.slice(at + 1)
  const short = shortTag(tag)
  return short !== tag ? short : shorten(tag, 32)
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

/** A line shortened to `width` characters, keeping its start and end (unless VERBOSE=1). */
export function fit(line: string, width: number): string {
  return fullWidth ? line : shorten(line, width)
}

/** Shortens a cell to `width` visible characters, keeping its start and end (refs, paths). A cell
 * of two values (`before → after`) keeps its arrow and shortens each side, never one across both. */
function shorten(cell: string, width: number): string {
  const text = plain(cell)
  const chars = [...text]
  if (chars.length <= width) return cell
  if (width <= 1) return '…'
  const arrow = text.indexOf(' → ')
  if (arrow > 0 && width >= 9) {
    const [left, right] = [text.slice(0, arrow), text.slice(arrow + 3)]
    const room = width - 3
    const leftRoom = Math.min([...left].length, Math.max(Math.ceil(room / 2), room - [...right].length))
    return `${shorten(left, leftRoom)} → ${shorten(right, room - leftRoom)}`
  }
  const head = Math.ceil((width - 1) / 2)
  return chars.slice(0, head).join('') + '…' + chars.slice(chars.length - (width - 1 - head)).join('')
}

/** A line of prose in lines of at most `width` columns, the later ones indented by `indent`. */
export function wrapLine(line: string, width: number, indent: number): string[] {
  return visible(line) <= width ? [line] : wrap(line, width - indent).map((part, i) => (i ? ' '.repeat(indent) : '') + part)
}

/** Where a word longer than a whole line may break: after one of these. */
const BREAK_AFTER = new Set(['-', '/', ':', ',', '.', '=', ';', '_', '…', '@', '&', '?'])

/** Where to cut a word too long for `room` columns: after its last break character that leaves
 * at least half the room used, else (a hash, a token) at the room's end. */
function breakPoint(chars: string[], room: number): number {
  for (let i = Math.min(room, chars.length); i >= Math.max(1, Math.ceil(room / 2)); i--) if (BREAK_AFTER.has(chars[i - 1])) return i
  return Math.max(1, room)
}

/** Word-wraps text into lines of `width` columns, at word boundaries: a line ends between words,
 * never inside one (microbima-staging-web-admin moves to the next line whole). Only a word longer
 * than a whole line is broken, after a - / : , . where it has one. Leading indentation is kept. */
export function wrap(cell: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  const len = (s: string) => [...s].length
  for (const token of plain(cell).split(/(\s+)/)) {
    if (!token) continue
    if (/^\s/.test(token)) {
      // Spaces between words; at the start of a continuation line they are dropped.
      if (line || !lines.length) line += token.replace(/\n/g, ' ')
      continue
    }
    let word = token
    if (line.trim() && len(line) + len(word) > width) {
      lines.push(line.trimEnd())
      line = ''
    }
    while (len(line) + len(word) > width) {
      const chars = [...word]
      const cut = breakPoint(chars, width - len(line))
      lines.push((line + chars.slice(0, cut).join('')).trimEnd())
      line = ''
      word = chars.slice(cut).join('')
    }
    line += word
  }
  if (line.trim() || !lines.length) lines.push(line.trimEnd())
  return lines
}

export interface TableOptions {
  /** The last column's cells that do not fit beside the others go on their own lines under the
   * row, indented, instead of a narrow wrapped column (long reasons, lists of migrations). */
  spill?: boolean
}

const SPILL_INDENT = 4

/** A plain text table: header row, then rows; columns padded (colour-safe) and fitted to 120
 * columns. `keep`: columns that are not shortened (the last one wraps instead). */
export function table(header: string[], rows: string[][], keep: number[] = [], options: TableOptions = {}): string {
  const n = header.length
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))))
  const gaps = 2 * (n - 1)
  const total = () => widths.reduce((a, b) => a + b, 0) + gaps
  if (!fullWidth && total() > WIDTH) {
    // The last column wraps: it takes what the others leave, if that is 24 columns or more (or as
    // many as its longest word, up to 60, so that it wraps between words, never inside one).
    // Otherwise the others shrink, widest first, down to their header or 8 (the first column,
    // what the row is about, keeps up to 32; `keep` columns keep everything).
    const longestWord = Math.max(0, ...rows.flatMap((r) => plain(r[n - 1] ?? '').split(/\s+/).map((w) => [...w].length)))
    const lastMin = options.spill ? visible(header[n - 1]) : Math.min(widths[n - 1], Math.max(24, Math.min(longestWord, 60)))
    const others = () => widths.slice(0, -1).reduce((a, b) => a + b, 0) + gaps
    const floor = header.map((h, i) => (i === 0 ? Math.min(widths[i], 32) : Math.min(widths[i], Math.max(visible(h), 8))))
    const minimum = floor.map((f, i) => (keep.includes(i) ? widths[i] : f))
    const shrink = (room: number, floor: number[]) => {
      while (others() + room > WIDTH) {
        const candidates = widths.slice(0, -1).map((w, i) => ({ w, i })).filter(({ w, i }) => w > floor[i])
        if (!candidates.length) break
        widths[candidates.reduce((a, b) => (b.w > a.w ? b : a)).i] -= 1
      }
    }
    shrink(lastMin, minimum)
    // Kept columns too wide for that: the last column narrows to 12, then they shorten as well.
    const lastFloor = options.spill ? lastMin : Math.min(widths[n - 1], 12)
    shrink(lastFloor, floor)
    widths[n - 1] = Math.max(lastFloor, WIDTH - others())
  }
  const pad = (c: string, w: number) => c + ' '.repeat(Math.max(0, w - visible(c)))
  const render = (cells: string[], bold = false): string[] => {
    const fitted = cells.map((c, i) => (fullWidth || i === n - 1 ? c : visible(c) > widths[i] ? shorten(c, widths[i]) : c))
    const fits = fullWidth || visible(fitted[n - 1] ?? '') <= widths[n - 1]
    const first = fitted.slice(0, n - 1).map((c, i) => pad(bold ? chalk.bold(c) : c, widths[i]))
    if (!fits && options.spill) {
      const own = wrap(fitted[n - 1] ?? '', WIDTH - SPILL_INDENT).map((line) => ' '.repeat(SPILL_INDENT) + line)
      return [[...first, ''].join('  ').trimEnd(), ...own]
    }
    const last = fits ? [fitted[n - 1] ?? ''] : wrap(fitted[n - 1] ?? '', widths[n - 1])
    const blank = widths.slice(0, n - 1).map((w) => ' '.repeat(w))
    return last.map((tail, k) => [...(k === 0 ? first : blank), bold ? chalk.bold(tail) : tail].join('  ').trimEnd())
  }
  return [...render(header, true), ...rows.flatMap((r) => render(r))].join('\n')
}

/** Prints a titled table as a result and, in GitHub Actions, appends it as Markdown to the run's
 * summary (GITHUB_STEP_SUMMARY), so the run page shows what changed without reading the log. A
 * summary that cannot be written is a warning: it never fails, or changes the outcome of, a run. */
export function publishTable(log: Logger, title: string, header: string[], rows: string[][], keep: number[] = [], options: TableOptions = {}): void {
  log.result(`${chalk.bold(title)}\n${table(header, rows, keep, options)}`)
  appendSummary(log, [`#### ${cell(title)}`, '', `| ${header.map(cell).join(' | ')} |`, `|${header.map(() => ' --- |').join('')}`, ...rows.map((r) => `| ${header.map((_, i) => cell(r[i] ?? '')).join(' | ')} |`), ''].join('\n'))
}

const cell = (s: string) => mask(plain(s)).replace(/\|/g, '\\|').replace(/\n/g, '<br>') || ' '

let summaryBroken = false
export function appendSummary(log: Logger, markdown: string): void {
  const summary = process.env.GITHUB_STEP_SUMMARY
  if (!summary || summaryBroken) return
  try {
    // Opening a FIFO for writing blocks until someone reads it: only a plain file is written.
    const stat = existsSync(summary) ? statSync(summary) : undefined
    if (stat && !stat.isFile()) throw Object.assign(new Error('not a regular file'), { code: stat.isDirectory() ? 'EISDIR' : 'not a regular file' })
    appendFileSync(summary, `${mask(markdown)}\n`)
  } catch (error) {
    summaryBroken = true
    log.warn(`cannot write the step summary ${summary} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): the tables are in the log only`)
  }
}
