// fly logs (internal/command/logs/logs.go, polling.go; flyctl.md §7): --no-tail returns after
// the first non-empty batch and waits forever on an empty buffer; without it, logs stream until
// cancelled. --json prints pretty-printed objects one after another (not NDJSON).
import { APP_FLAG, JSON_FLAG, appName, hang, json, out, parseFlags, sleep } from '../cli.ts'
import { dir, fault, findApp, latency } from '../runtime.ts'
import { readState } from '../state.ts'
export { logLine } from '../model/logs.ts'

// internal/render/logs.go LogEntry through aurora: faint time, green region, coloured level, always
// ANSI (aurora ignores the terminal), and no space between `[level]` and the message.
const faint = (s: string) => `\x1b[2m${s}\x1b[0m`
const green = (s: string) => `\x1b[32m${s}\x1b[0m`
/** render/logs.go levelColor: debug cyan, info blue, warn/warning yellow, anything else red. */
const levelColour = (level: string) => `\x1b[${level === 'debug' ? 36 : level === 'info' ? 34 : level === 'warn' || level === 'warning' ? 33 : 31}m${level}\x1b[0m`

function render(lines: string[], asJson: boolean) {
  for (const line of lines) {
    const [timestamp, instance, region, level, ...rest] = line.split('\t')
    const message = rest.join('\t')
    // logs/entry.go Meta: nested structs (not pointers), so HTTP, Error and URL are objects of zero values.
    const meta = { Instance: instance, Region: region, Event: { Provider: 'app' }, HTTP: { Request: { ID: '', Method: '', Version: '' }, Response: { status_code: 0 } }, Error: { Code: 0, Message: '' }, URL: { Full: '' } }
    if (asJson) json({ level, instance, message, region, timestamp, meta })
    else out(`${faint(timestamp)} app[${instance}] ${green(region)} [${levelColour(level)}]${message}\n`)
  }
}

export async function logs(args: string[]) {
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, 'no-tail': { short: 'n', value: false }, region: { short: 'r', value: true }, machine: { value: true }, instance: { short: 'i', value: true } })
  const name = appName(flags)
  await latency('logs')
  await fault('logs', name)
  const lines = findApp(readState(dir()), name).logs
  if (flags['no-tail']) {
    if (!lines.length) await hang()
    return render(lines.slice(-100), Boolean(flags.json))
  }
  // Streaming: what is there, then every new line as it arrives, until cancelled.
  let shown = Math.max(0, lines.length - 100)
  for (;;) {
    const now = findApp(readState(dir()), name).logs
    render(now.slice(shown), Boolean(flags.json))
    shown = now.length
    await sleep(200)
  }
}
