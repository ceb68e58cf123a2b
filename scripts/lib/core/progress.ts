import chalk from 'chalk'
import { formatDuration, plain, WIDTH, type Logger } from './log.js'
import { mask } from '../secrets/mask.js'

// No silent waits: whatever the toolkit waits for (builds, a release command, health checks, a lock,
// a backup) says what it is waiting for at least every 10 seconds. On a terminal each wait is one
// line that updates in place (several at once for builds running together); piped (CI logs, files)
// a line is printed when the state changes, and again after 10 s without news.

export const HEARTBEAT_MS = 10_000

export interface Board {
  /** The current state of one line (a build's phase, `1 of 2 machines passing …`); `suffix`
   * (`(10 s of 60 s)`) is shown but is not news: a piped log prints a line when `text` changes. */
  set(key: string, text: string, suffix?: string): void
  /** Ends the board: a terminal keeps each line's final text. */
  close(): void
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

/** A terminal that can redraw lines (not CI, not a pipe). */
export const interactive = (): boolean => Boolean(process.stderr.isTTY) && !process.env.CI

/** One line per key, in the order given. `label` names each line (the app). */
export function board(log: Logger, keys: string[], label: (key: string) => string = (key) => key): Board {
  const state = new Map(keys.map((key) => [key, { text: 'starting', suffix: '', since: performance.now(), said: 0 }]))
  const width = Math.max(...keys.map((key) => label(key).length))
  const line = (key: string, text: string) => `  ${label(key).padEnd(width)}  ${text}`
  const fit = (text: string) => ([...plain(text)].length > WIDTH - 2 ? `${[...plain(text)].slice(0, WIDTH - 3).join('')}…` : text)

  if (interactive()) {
    // Redrawn in place: up as many lines as the board has, each cleared and written again.
    let frame = 0
    let drawn = false
    const draw = () => {
      frame = (frame + 1) % SPINNER.length
      const rows = keys.map((key) => {
        const s = state.get(key)!
        return fit(line(key, `${chalk.cyan(SPINNER[frame])} ${s.text} ${chalk.dim(s.suffix || `(${formatDuration(performance.now() - s.since)})`)}`))
      })
      process.stderr.write(`${drawn ? `\x1b[${keys.length}A` : ''}${rows.map((r) => `\x1b[2K${mask(r)}\n`).join('')}`)
      drawn = true
    }
    draw()
    const timer = setInterval(draw, 200)
    timer.unref()
    return {
      set(key, text, suffix = '') {
        const s = state.get(key)!
        if (s.text !== text) Object.assign(s, { text, since: performance.now() })
        s.suffix = suffix
      },
      close() {
        clearInterval(timer)
        draw()
      },
    }
  }

  // Piped: a line on each change; a reminder after HEARTBEAT_MS without one.
  const say = (key: string) => {
    const s = state.get(key)!
    s.said = performance.now()
    const suffix = s.suffix || (s.since < s.said - 1000 ? `(${formatDuration(s.said - s.since)} so far)` : '')
    log.info(line(key, `${s.text}${suffix ? chalk.dim(` ${suffix}`) : ''}`))
  }
  const timer = setInterval(() => {
    for (const key of keys) if (performance.now() - state.get(key)!.said >= HEARTBEAT_MS) say(key)
  }, 1000)
  timer.unref()
  return {
    set(key, text, suffix = '') {
      const s = state.get(key)!
      s.suffix = suffix
      if (s.text === text) return
      Object.assign(s, { text, since: performance.now() })
      say(key)
    },
    close() {
      clearInterval(timer)
    },
  }
}

/** A single wait: one line. */
export function waiting(log: Logger, what: string): { update(text: string, suffix?: string): void; close(): void } {
  const b = board(log, [what])
  return { update: (text, suffix) => b.set(what, text, suffix), close: () => b.close() }
}
