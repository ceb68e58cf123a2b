import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Context } from '../core/cli.js'
import { UserError } from '../core/errors.js'
import { shellQuote, stopChild } from '../core/exec.js'
import { knob } from '../core/knobs.js'
import { plain } from '../core/log.js'
import { mask } from '../secrets/mask.js'

// The operator's own checks, run at fixed points of the targets (Kamal's hooks, git's hooks):
// an executable named after its point in HOOKS_DIR (default infra/hooks). A hook runs in the
// toolkit's working directory, in its own process group, with no terminal on stdin, for at most
// HOOK_TIMEOUT seconds; at the timeout its whole group is stopped (TERM, then KILL). Whatever it
// leaves running when it exits is stopped too: nothing a hook starts outlives it unless it detaches
// itself (setsid). Its output is shown under the step, masked.
//
// Its environment is the toolkit's own minus every variable whose value holds a secret the toolkit
// knows (env-file values, database URLs, NOTIFY_URL and NOTIFY_SECRET), plus the MICROBIMA_*
// variables: a hook can print a secret's name, never its value.

export const HOOK_POINTS = ['pre-deploy', 'post-deploy', 'pre-migrate', 'post-migrate', 'pre-rollback', 'post-rollback'] as const
export type HookPoint = (typeof HOOK_POINTS)[number]

const DEFAULT_DIR = 'infra/hooks'

/** What a hook is told (MICROBIMA_*). */
export interface HookVars {
  environment: string
  /** App keys. */
  apps: string[]
  /** App key → image ref. */
  images: Record<string, string>
  commit: string
  performer: string
  /** The target's operation: deploy, migrate, rollback, rollback-migration. */
  operation: string
  migrations?: string[]
  /** post-* only. */
  result?: string
  durationS?: number
  reason?: string
  /** Set for the automatic rollback after a failed deploy. */
  trigger?: 'automatic'
}

export interface Hook {
  point: HookPoint
  /** HOOKS_DIR/<point>, as the operator wrote HOOKS_DIR: for messages. */
  path: string
}

export interface HookOutcome {
  ok: boolean
  /** Why it failed, in one line: "exited with status 1: <its last line of stderr>". */
  why?: string
  ms: number
}

function hooksDir(): { dir: string; given: boolean } {
  const given = process.env.HOOKS_DIR
  return given ? { dir: given, given: true } : { dir: DEFAULT_DIR, given: false }
}

/** The hooks among `points` that exist, checked before any change: a hook file that cannot run
 * (not executable, not a file) or a HOOKS_DIR that is not a folder is a configuration error (exit
 * 2), never a check silently skipped. A file ending in .sample is documentation, not a hook. */
export function findHooks(points: readonly HookPoint[]): Map<HookPoint, Hook> {
  const { dir, given } = hooksDir()
  const found = new Map<HookPoint, Hook>()
  if (!existsSync(dir)) {
    if (given) throw new UserError(`HOOKS_DIR=${dir} is not a folder: give the folder of the hooks, or leave it unset for ${DEFAULT_DIR}`)
    return found
  }
  if (!statSync(dir).isDirectory()) throw new UserError(`HOOKS_DIR=${dir} is not a folder: give the folder of the hooks, or leave it unset for ${DEFAULT_DIR}`)
  const problems: string[] = []
  for (const point of points) {
    const path = join(dir, point)
    if (!existsSync(path)) continue
    if (!statSync(path).isFile()) {
      problems.push(`${path} is not a file: a hook is an executable file (remove it, or rename it)`)
      continue
    }
    try {
      accessSync(path, constants.X_OK)
    } catch {
      problems.push(`${path} is not executable: chmod +x ${path} to run it at ${point}, or rename it (${point}.sample) to keep it as a sample`)
      continue
    }
    found.set(point, { point, path })
  }
  if (problems.length) throw new UserError(problems)
  return found
}

/** The MICROBIMA_* variables of a hook. */
export function hookVariables(point: HookPoint, vars: HookVars): Record<string, string> {
  const out: Record<string, string> = {
    MICROBIMA_EVENT: point,
    MICROBIMA_OPERATION: vars.operation,
    MICROBIMA_ENVIRONMENT: vars.environment,
    MICROBIMA_APPS: vars.apps.join(' '),
    MICROBIMA_IMAGES: Object.entries(vars.images).map(([key, ref]) => `${key}=${ref}`).join(' '),
    MICROBIMA_MIGRATIONS: (vars.migrations ?? []).join(' '),
    MICROBIMA_COMMIT: vars.commit,
    MICROBIMA_PERFORMER: vars.performer,
  }
  if (vars.trigger) out.MICROBIMA_TRIGGER = vars.trigger
  if (point.startsWith('post-')) {
    out.MICROBIMA_RESULT = vars.result ?? ''
    out.MICROBIMA_DURATION_S = String(Math.round(vars.durationS ?? 0))
    out.MICROBIMA_REASON = vars.reason ?? ''
  }
  // Values pass the masker too: a reason quoting a secret never reaches the hook.
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, mask(v)]))
}

/** The toolkit's environment less every variable that holds a secret value it knows (a value
 * the masker would hide), plus the hook's own variables. */
export function hookEnvironment(point: HookPoint, vars: HookVars, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const kept = Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && mask(entry[1]) === entry[1] && !entry[0].startsWith('MICROBIMA_'))
  return { ...Object.fromEntries(kept), ...hookVariables(point, vars) }
}

/** The hook as a command a person could paste (a dry run lists hooks this way, runs none). */
export function hookCommand(hook: Hook, vars: HookVars): string {
  const assignments = Object.entries(hookVariables(hook.point, vars)).map(([k, v]) => `${k}=${shellQuote(v)}`)
  return [...assignments, shellQuote(hook.path.includes('/') ? hook.path : `./${hook.path}`)].join(' ')
}

/** Runs one hook to its end or its timeout. Never throws: the caller decides what a failure means. */
export async function runHook(ctx: Context, hook: Hook, vars: HookVars): Promise<HookOutcome> {
  const started = performance.now()
  const limit = knob('HOOK_TIMEOUT')
  ctx.log.info(`hook ${hook.path} (${hook.point}, at most ${limit}s)`)
  let child
  try {
    child = ctx.exec.start({ argv: [resolve(hook.path)], write: false, cwd: process.cwd(), env: hookEnvironment(hook.point, vars), bareEnv: true, stream: true })
  } catch (error) {
    return { ok: false, why: (error as Error).message.split('\n')[0], ms: performance.now() - started }
  }
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    void stopChild(child)
  }, limit * 1000)
  // The hook ended: whatever it left in its group (a `sleep &`) still holds the output pipes, and
  // would hold the run. The group is stopped, as the timeout would stop it. (Only the group: the
  // group's leader has exited, and its pid alone may already name another process.)
  let leftovers: NodeJS.Timeout | undefined
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal)
    } catch {
      // nothing left in the group
    }
  }
  child.child?.once('exit', () => {
    if (timedOut) return
    signalGroup('SIGTERM')
    leftovers = setTimeout(() => signalGroup('SIGKILL'), 3000)
  })
  const out = await child
  clearTimeout(timer)
  clearTimeout(leftovers)
  const ms = performance.now() - started
  const last = mask(plain(out.stderr)).split('\n').map((line) => line.trim()).filter(Boolean).at(-1)
  const tail = last ? `: ${last.length > 200 ? `${last.slice(0, 199)}…` : last}` : ' (it printed nothing on stderr)'
  if (timedOut) return { ok: false, why: `timed out after ${limit}s (HOOK_TIMEOUT) and was stopped with its process group${tail}`, ms }
  if (out.exitCode === 0) return { ok: true, ms }
  const status = out.exitCode ?? (out.signal ? `signal ${out.signal}` : 'unknown')
  return { ok: false, why: `exited with status ${status}${tail}`, ms }
}
