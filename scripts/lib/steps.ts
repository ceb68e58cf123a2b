import chalk from 'chalk'
import { formatDuration, publishTable, type Logger } from './log.js'

// Step timings and the closing summary of a pipeline: what ran, how long, what changed.

export type StepResult = 'ok' | 'failed' | 'skipped' | 'dry-run' | 'rolled back'

export interface StepRecord {
  name: string
  result: StepResult
  ms: number
  detail: string
}

export class Steps {
  readonly records: StepRecord[] = []
  private readonly startedAt = performance.now()

  constructor(private readonly log: Logger) {}

  /** Runs one step with a visible start line and its duration; the detail goes to the summary. */
  async run<T>(name: string, fn: () => Promise<T>, detail: (value: T) => string = () => ''): Promise<T> {
    this.log.step(`${name} ${chalk.dim(`(+${formatDuration(performance.now() - this.startedAt)})`)}`)
    const started = performance.now()
    try {
      const value = await fn()
      this.records.push({ name, result: 'ok', ms: performance.now() - started, detail: detail(value) })
      return value
    } catch (error) {
      this.records.push({ name, result: 'failed', ms: performance.now() - started, detail: (error as Error).message.split('\n')[0] })
      throw error
    }
  }

  note(name: string, result: StepResult, detail = ''): void {
    this.records.push({ name, result, ms: 0, detail })
  }

  /** The closing table: every step, its result, its time and what it did. */
  publishSummary(title: string): void {
    const colour = (result: StepResult) =>
      result === 'ok' ? chalk.green(result) : result === 'failed' ? chalk.red(result) : chalk.yellow(result)
    const rows = this.records.map((r) => [r.name, colour(r.result), r.ms ? formatDuration(r.ms) : '-', r.detail])
    publishTable(this.log, `${title} (${formatDuration(performance.now() - this.startedAt)})`, ['step', 'result', 'time', 'detail'], rows)
  }
}
