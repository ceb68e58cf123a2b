import chalk from 'chalk'
import { shortFlyError } from '../fly/errors.js'
import { formatDuration, publishTable, type Logger } from './log.js'

// Step timings and the closing summary of a pipeline: what ran, how long, what changed. A step is
// `ok` only when it succeeded; a step that only printed what it would do is `dry run`.

export type StepResult = 'ok' | 'failed' | 'skipped' | 'dry run' | 'rolled back' | 'unhealthy' | 'unknown'

export interface StepRecord {
  name: string
  result: StepResult
  ms: number
  detail: string
}

export interface StepOptions<T> {
  /** One line for the summary. */
  detail?: (value: T) => string
  /** The step's result when fn returns (default ok; a dry run of a write: dry run). */
  result?: (value: T) => StepResult
  /** A step that changes something: in a dry run it only printed, so it is `dry run`. */
  write?: boolean
}

export class Steps {
  readonly records: StepRecord[] = []
  private readonly startedAt = performance.now()

  constructor(
    private readonly log: Logger,
    private readonly dryRun = false,
  ) {}

  /** Runs one step with a visible start line and its duration. */
  async run<T>(name: string, fn: () => Promise<T>, options: StepOptions<T> | ((value: T) => string) = {}): Promise<T> {
    const opts = typeof options === 'function' ? { detail: options } : options
    this.log.step(`${name} ${chalk.dim(`(+${formatDuration(performance.now() - this.startedAt)})`)}`)
    const started = performance.now()
    try {
      const value = await fn()
      const result = this.dryRun && opts.write ? 'dry run' : opts.result?.(value) ?? 'ok'
      this.records.push({ name, result, ms: performance.now() - started, detail: opts.detail?.(value) ?? '' })
      return value
    } catch (error) {
      this.records.push({ name, result: 'failed', ms: performance.now() - started, detail: why(error) })
      throw error
    }
  }

  note(name: string, result: StepResult, detail = ''): void {
    this.records.push({ name, result, ms: 0, detail })
  }

  /** The closing table: every step, its result, its time and what it did. */
  publishSummary(title: string): void {
    const rows = this.records.map((r) => [r.name, colourResult(r.result), r.ms ? formatDuration(r.ms) : '-', r.detail])
    publishTable(this.log, `${title} (${formatDuration(performance.now() - this.startedAt)})`, ['step', 'result', 'time', 'detail'], rows)
  }
}

export function colourResult(result: string): string {
  return /^(ok|deployed|healthy|rolled back, healthy|applied|unchanged|created|exists)/.test(result) ? chalk.green(result) : /fail|unhealthy|UNHEALTHY|unknown/.test(result) ? chalk.red(result) : chalk.yellow(result)
}

/** One line saying why a step failed: for a command, what it printed last, not its command line. */
export function why(error: unknown): string {
  const stderr = (error as { stderr?: string }).stderr
  if (stderr) {
    const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean)
    const last = [...lines].reverse().find((l) => l.startsWith('Error')) ?? lines.at(-1)
    if (last) return shortFlyError(last)
  }
  return (error as Error).message.split('\n')[0]
}
