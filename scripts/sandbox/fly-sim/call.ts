// One flyctl invocation as the simulator serves it. The simulator runs as a server (server.ts) in
// the sandbox's process; each `flyctl …` the toolkit runs is a small client (client.ts) that hands
// its argv, environment, working directory and standard input to the server and plays back what
// the server writes. Everything a command would take from its process (streams, environment,
// working directory, signals, the exit) it takes from its Call instead, so calls that run at the
// same time stay apart, as flyctl processes do.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Readable } from 'node:stream'

export interface Call {
  argv: string[]
  env: Record<string, string | undefined>
  cwd: string
  /** The simulator's state directory (FLY_SIM_STATE). */
  dir: string
  stdin: Readable
  /** The caller's process id (logged in calls.jsonl, so tests can find the process). */
  pid: number
  write(fd: 1 | 2, text: string): void
  /** Aborted when the caller is interrupted (SIGINT or SIGTERM to flyctl) or goes away. */
  interrupted: AbortSignal
  /** What this command does when interrupted, returning its exit code; unset: exit 127, silently
   * (cli.Run maps a cancelled context to 127 and prints nothing). */
  onInterrupt?: () => number
  /** Per-call memory for modules that read something once at start, as flyctl does (config.yml). */
  memo: Map<string, unknown>
}

const storage = new AsyncLocalStorage<Call>()

/** Runs fn as part of the call (its output, environment and state directory are the call's). */
export function runInCall<T>(call: Call, fn: () => T): T {
  return storage.run(call, fn)
}

export function call(): Call {
  const current = storage.getStore()
  if (!current) throw new Error('the simulator used outside a flyctl call')
  return current
}

/** process.exit for a command: ends the call with this code. */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

export const env = (name: string): string | undefined => call().env[name]
