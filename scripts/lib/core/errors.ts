// The three kinds of failure (webpod's model) and the exit codes of the interface:
// 0 success, 1 an operation failed, 2 bad usage or configuration, 3 refused by a safety rule.

export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const

/** Bad usage or configuration, found before any change: one red line each, exit 2. */
export class UserError extends Error {
  readonly exitCode = EXIT.usage
  /** Every problem found, one line each (a run reports all of them together). */
  readonly problems: string[]
  constructor(
    message: string | string[],
    readonly hint?: string,
    /** Indented lines under the error (a list the one problem stands for). */
    readonly details: string[] = [],
  ) {
    const list = Array.isArray(message) ? message : [message]
    super(list.join('\n'))
    this.problems = list
  }
}

/** A safety rule said no (confirmation, migration gate, lint, lock, git), before any change: exit 3. */
export class Refusal extends Error {
  readonly exitCode = EXIT.refused
  constructor(message: string, readonly details: string[] = []) {
    super(message)
  }
}

/** An external command failed: the command, its exit code and its stderr; exit 1. */
export class CommandError extends Error {
  readonly exitCode = EXIT.failed
  constructor(
    readonly command: string,
    readonly status: number | null,
    readonly stderr: string,
    readonly reason = status === null ? 'could not be run' : `exited with status ${status}`,
    /** What to do next, when the failure is a known one (flyctl's texts translated). */
    readonly next?: string,
  ) {
    super(`${command} ${reason}`)
  }
}

/** An operation (health, database, a pipeline step) failed: a message and a report; exit 1. */
export class OperationError extends Error {
  readonly exitCode = EXIT.failed
  constructor(
    message: string,
    readonly details: string[] = [],
    /** The next step to take, printed last. */
    readonly next?: string,
  ) {
    super(message)
  }
}

export type KnownError = UserError | Refusal | CommandError | OperationError

export function isKnownError(error: unknown): error is KnownError {
  return error instanceof UserError || error instanceof Refusal || error instanceof CommandError || error instanceof OperationError
}

/** Collects configuration problems so a run reports all of them at once. */
export class Problems {
  readonly list: string[] = []
  add(problem: string | string[]): void {
    this.list.push(...(Array.isArray(problem) ? problem : [problem]))
  }
  /** Runs fn, keeping its user errors instead of stopping at the first. */
  check<T>(fn: () => T): T | undefined {
    try {
      return fn()
    } catch (error) {
      if (!(error instanceof UserError)) throw error
      this.add(error.problems)
      return undefined
    }
  }
  throwIfAny(): void {
    if (this.list.length) throw new UserError([...new Set(this.list)])
  }
}

/** Control and format characters (C0, DEL, C1, line/paragraph separators, bidi overrides and
 * isolates, zero-width marks): they split a line or reorder what the terminal shows. */
export const CONTROL = /[\p{Cc}\p{Cf}\u2028\u2029]/u
const CONTROLS = new RegExp(CONTROL.source, 'gu')
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** A value as an error line shows it: every control or format character escaped (\n, \u202e),
 * so a value never splits its `error:` line or turns the text around. */
export function shown(value: string): string {
  return value.replace(CONTROLS, (c) => NAMED[c] ?? `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`)
}
