import { plain } from '../core/log.js'

// flyctl's smoke checks (flyctl-facts 4): a machine that keeps restarting soon after its update
// fails the deploy with `smoke checks for <id> failed: the app appears to be crashing`, and the
// machine's log lines since its update after "Check its logs: here's the last lines below, …".
// A deploy token may not read logs: then a `Warn: not authorized to retrieve app logs` line and
// `<not authorized to retrieve logs>` instead of the lines.

export interface SmokeFailure {
  machine: string
  /** The machine's log lines flyctl printed (none when it could not read them). */
  lines: string[]
  /** Why flyctl printed no lines, when it said. */
  noLogs?: string
}

export function smokeFailure(stderr: string): SmokeFailure | undefined {
  const text = plain(stderr)
  const found = /smoke checks for (\w+) failed: the app appears to be crashing/.exec(text)
  if (!found) return undefined
  const machine = found[1]
  const marker = `Check its logs: here's the last lines below, or run 'fly logs -i ${machine}':\n`
  const at = text.lastIndexOf(marker)
  const lines = at < 0 ? [] : text.slice(at + marker.length).split('\n').map((l) => l.trimEnd()).filter((l) => l.trim())
  if (/^<(not authorized to retrieve logs|error fetching logs)/.test(lines[0] ?? '')) {
    const token = /not authorized to retrieve app logs/.test(text)
    return { machine, lines: [], noLogs: token ? 'flyctl may not read logs with this token (a deploy token cannot)' : 'flyctl could not read the logs' }
  }
  return { machine, lines }
}

/** One line for summaries: the crash, and the last message line the machine logged. */
export function describeCrash(crash: SmokeFailure): string {
  const message = crash.lines.filter((l) => !/^\s/.test(l)).at(-1) ?? crash.lines.at(-1)
  return `the image crashes on start: machine ${crash.machine} kept restarting (flyctl's smoke checks)${message ? `; it logged: ${message}` : ''}`
}
