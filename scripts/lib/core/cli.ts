import { parseArgs } from 'node:util'
import chalk from 'chalk'
import { CommandError, EXIT, OperationError, Refusal, UserError, isKnownError, shown } from './errors.js'
import { createExec, killAllChildren, stopStarting, type Exec } from './exec.js'
import { Fly, resolveFlyBin } from '../fly/flyctl.js'
import { flag, knobProblems } from './knobs.js'
import { WIDTH, createLogger, log, plain, showFullValues, wrapLine, type Logger } from './log.js'
import { APP_KEYS, ENVIRONMENTS, type AppKey, type Environment, databaseAppName, flyAppName, isAppKey, parseEnvironment, shortName } from './names.js'
import { envDirOf, registerKnownSecrets } from '../secrets/env-files.js'
import { mask, protect } from '../secrets/mask.js'
import { registerNotifySecrets } from '../events/url.js'
import { useNamingSetting } from './settings.js'
import { originalStack } from './stack.js'

// Every script is `main(definition, body)`: strict flags, the context, the three error kinds,
// one cleanup pass on exit and on SIGINT, SIGTERM and SIGHUP (children stopped, locks released,
// an "interrupted" ledger entry). Make passes its variables through the environment (MB_APP,
// MB_YES, …), never pasted into a shell command line, so no value can run as a command.

type OptionKind = { type: 'string' | 'boolean'; short?: string }

export interface ScriptDefinition {
  name: string
  usage: string
  /** Whether the first positional argument is the environment (staging | production | prod). */
  environment: boolean
  /** How many further positional arguments the script takes itself (default none). */
  positionals?: number
  options?: Record<string, OptionKind>
}

/** How a run ended, for the cleanups (an operation's last notification says it). */
export interface RunEnd {
  exitCode: number
  /** The error the run ended with, when it failed. */
  error?: unknown
  /** The signal that stopped it. */
  signal?: NodeJS.Signals
}

export interface Context {
  env: Environment
  apps: AppKey[]
  /** Whether APP= narrowed the run to one app. */
  oneApp: boolean
  dryRun: boolean
  yes: boolean
  verbose: boolean
  envDir: string
  flags: Record<string, string | boolean | undefined>
  positionals: string[]
  log: Logger
  exec: Exec
  fly(): Fly
  onCleanup(fn: (end: RunEnd) => Promise<void> | void): void
  /** Set when the run must stop (a signal, the deploy lock lost): checked between steps. */
  readonly aborted: { reason?: string }
  /** Throws when the run was told to stop. */
  checkpoint(): void
  /** For a run whose normal end is Ctrl-C (a watch): the first SIGINT calls fn and the body
   * returns as usual (exit 0) instead of being stopped; a second one stops it. */
  endOnInterrupt(fn: () => void): void
}

const COMMON: Record<string, OptionKind> = {
  app: { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  verbose: { type: 'boolean' },
  'env-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
}

/** Make variables as the Makefile exports them (see its header). */
const FROM_MAKE: Record<string, string> = { app: 'MB_APP', 'dry-run': 'MB_DRY_RUN', yes: 'MB_YES', verbose: 'MB_VERBOSE', 'env-dir': 'MB_ENV_DIR', image: 'MB_IMAGE', version: 'MB_VERSION', name: 'MB_NAME', reason: 'MB_REASON', plan: 'MB_PLAN', 'plan-out': 'MB_PLAN_OUT', cmd: 'MB_CMD' }

/** What a string variable given empty should have held. */
const EMPTY_HINT: Record<string, string> = {
  app: `one of ${APP_KEYS.join(', ')}, or leave it out for all three`,
  'env-dir': 'the folder of the env files, or leave it out for env/',
  image: 'an image reference (registry.fly.io/APP:TAG), or leave it out',
  version: 'a release number, or leave it out',
  name: 'a migration folder name',
  reason: 'the reason, in one line',
  plan: 'the plan.json that DRY_RUN=1 PLAN_OUT= wrote, or leave it out',
  'plan-out': 'the file to write the plan to, or leave it out',
  cmd: 'the command to run on the machine, or leave it out for an interactive shell',
}

const cleanups: Array<(end: RunEnd) => Promise<void> | void> = []
let cleaning: Promise<void> | undefined

let ended: RunEnd | undefined

/** Runs every cleanup once, newest first, whoever asks (the body's end or a signal). */
function runCleanups(end: RunEnd): Promise<void> {
  ended ??= end
  cleaning ??= (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop()!
      try {
        await fn(end)
      } catch (error) {
        log.warn(`cleanup failed: ${(error as Error).message}`)
      }
    }
  })()
  return cleaning
}

/** The next step after a failure that names none of its own: where to look, then run it again. */
let fallbackNext: string | undefined

export function report(error: unknown, logger: Logger = log): number {
  if (error instanceof UserError) {
    // Values are shown escaped (shown()): a newline or a bidi override in one never splits or
    // turns around its line.
    for (const problem of error.problems) logger.error(`error: ${shown(problem)}`)
    for (const detail of error.details) logger.error(`  ${shown(detail)}`)
  } else if (error instanceof Refusal) {
    logger.error(`refused: ${shown(error.message)}`)
    for (const detail of error.details) logger.error(`  ${shown(detail)}`)
  } else if (error instanceof CommandError) {
    // Wrapped, never cut: the command continues with a backslash (a paste runs it whole), flyctl's
    // lines wrap under their start.
    logger.error(`command failed (${error.reason}):`)
    for (const line of continued(`$ ${error.command}`, WIDTH - 2)) logger.error(`  ${line}`)
    const stderr = plain(error.stderr).trim()
    if (stderr) logger.info(stderr.split('\n').slice(-15).flatMap((line) => wrapLine(line, WIDTH - 2, 2).map((part) => `  ${part}`)).join('\n'))
    const next = error.next ?? fallbackNext
    if (next) logger.error(`next: ${next}`, true)
  } else if (error instanceof OperationError) {
    logger.error(`failed: ${shown(error.message)}`, true)
    for (const detail of error.details) logger.error(`  ${detail}`, true)
    const next = error.next ?? fallbackNext
    if (next) logger.error(`next: ${next}`, true)
  } else {
    logger.error(`bug: ${mask(originalStack((error as Error)?.stack ?? String(error)))}`)
    return EXIT.failed
  }
  return isKnownError(error) ? error.exitCode : EXIT.failed
}

/** A command in lines of at most `width` columns, broken between words with ` \` (a shell reads
 * them back as one command); a word longer than a line stays whole. */
export function continued(command: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of command.split(' ')) {
    if (line && [...line].length + 1 + [...word].length + 2 > width) {
      lines.push(`${line} \\`)
      line = `    ${word}`
    } else line = line ? `${line} ${word}` : word
  }
  return [...lines, line]
}

export function parseCommandLine(definition: ScriptDefinition, argv: string[], env: NodeJS.ProcessEnv = process.env) {
  const options = { ...COMMON, ...definition.options }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UserError(`${(error as Error).message.split('\n')[0]}; usage: ${definition.usage}`)
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>
  // Make's variables, for the options this script has. Make passes only the ones given; one given
  // empty (PLAN=, a CI variable never filled) is a mistake, never "not given".
  const empty: string[] = []
  for (const [option, variable] of Object.entries(FROM_MAKE)) {
    const value = env[variable]
    if (!(option in options) || value === undefined) continue
    if (value === '') {
      if (options[option].type === 'string') empty.push(`${variable.replace(/^MB_/, '')}= is empty: give it ${EMPTY_HINT[option] ?? 'a value, or leave it out'}`)
      continue
    }
    const kind = options[option].type
    const given = kind === 'boolean' ? flag(variable) : value
    if (flags[option] !== undefined && flags[option] !== given) throw new UserError(`--${option} and ${variable.replace(/^MB_/, '')}= disagree: give one`)
    if (kind === 'boolean' && !given) continue
    flags[option] = given
  }
  if (empty.length) throw new UserError(empty)
  const positionals = [...parsed.positionals]
  let environment: Environment = 'staging'
  if (definition.environment && !flags.help) {
    const given = positionals.shift()
    const parsedEnv = parseEnvironment(given)
    if (!parsedEnv) {
      throw new UserError(given === undefined ? `no environment given: usage: ${definition.usage}` : `unknown environment "${given}": use staging or production (prod)`)
    }
    environment = parsedEnv
  }
  if (positionals.length > (definition.positionals ?? 0)) throw new UserError(`unexpected argument "${positionals[definition.positionals ?? 0]}": usage: ${definition.usage}`)
  const app = flags.app as string | undefined
  if (app !== undefined && !isAppKey(app)) {
    const words = app.trim().split(/[\s,;]+/)
    throw new UserError(words.length > 1 && words.every(isAppKey) ? `APP="${app}" names more than one app: give one of ${APP_KEYS.join(', ')}, or none for all three` : `unknown app "${app}": use one of ${APP_KEYS.join(', ')}`)
  }
  return { env: environment, flags, positionals, apps: app ? [app as AppKey] : [...APP_KEYS], oneApp: Boolean(app) }
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 }
const CLEANUP_LIMIT_MS = 20_000

/** The make targets' names (printed in every hint): part of the toolkit's own vocabulary. */
const TARGETS = ['create-apps', 'set-secrets', 'deploy', 'migrate', 'migrate-status', 'health', 'logs', 'rollback', 'rollback-migration', 'restore', 'restore-drill', 'migration', 'studio', 'lock', 'lock-status', 'unlock', 'history', 'diff', 'notify-retry', 'console', 'releases', 'status', 'sandbox', 'sandbox-stop', 'check'].flatMap((t) => [t, `${t}-staging`, `${t}-prod`])

export async function main(definition: ScriptDefinition, body: (ctx: Context) => Promise<number | void>): Promise<void> {
  let exitCode: number = EXIT.ok
  let failure: unknown
  const aborted: { reason?: string } = {}
  let signalled: NodeJS.Signals | undefined
  let signalledAt = 0
  let endOnInterrupt: (() => void) | undefined
  const onSignal = (signal: NodeJS.Signals) => {
    if (signal === 'SIGINT' && endOnInterrupt && !signalled) {
      const end = endOnInterrupt
      endOnInterrupt = undefined
      end()
      return
    }
    // make passes a SIGTERM on to its children, so `kill <make's group>` delivers it twice at once:
    // that is one request to stop, not the operator insisting.
    if (signalled === signal && performance.now() - signalledAt < 1000) return
    if (signalled) {
      // A second Ctrl-C: the operator will not wait for the cleanup (a database that does not answer).
      log.error(`interrupted again by ${signal}: exiting now; children killed, the lock expires by itself (make lock-status)`)
      void killAllChildren('SIGKILL')
      process.exit(SIGNAL_EXIT[signalled])
    }
    signalled = signal
    signalledAt = performance.now()
    aborted.reason = `interrupted by ${signal}`
    stopStarting(aborted.reason)
    log.error(`interrupted by ${signal}: stopping children and releasing locks`)
    // The cleanup is bounded too: a run that was told to stop always ends.
    setTimeout(() => {
      log.error(`the cleanup after ${signal} did not finish within ${CLEANUP_LIMIT_MS / 1000}s: exiting; the lock expires by itself (make lock-status)`)
      void killAllChildren('SIGKILL')
      process.exit(SIGNAL_EXIT[signal])
    }, CLEANUP_LIMIT_MS).unref()
    void (async () => {
      await killAllChildren()
      await runCleanups({ exitCode: SIGNAL_EXIT[signal], signal })
      process.exit(SIGNAL_EXIT[signal])
    })()
  }
  for (const signal of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) process.on(signal, onSignal)
  // The compiled scripts are CommonJS, which has no top-level await: they call main() without
  // waiting for it. A run whose work hangs on a promise that never settles, with nothing left to
  // wait for, would then end quietly with exit 0; it is a bug, and says so.
  const unfinished = () => {
    log.error('bug: the run ended before its work did (a promise that never settles): it did not finish')
    process.exitCode = EXIT.failed
  }
  process.once('beforeExit', unfinished)
  // A closed terminal (SIGHUP, ssh dropped) or a reader that went away (| head) makes writes fail
  // with EIO or EPIPE: the output is lost, the run still cleans up and exits with its own code.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined)
  try {
    // The app names first: everything after uses them.
    useNamingSetting()
    // The toolkit's own names are never masked: a short secret that is also a word must not
    // turn app names into microbima-****-web-admin.
    protect([...ENVIRONMENTS, 'prod', ...APP_KEYS, ...ENVIRONMENTS.flatMap((e) => [databaseAppName(e), ...APP_KEYS.map((a) => flyAppName(e, a))]), 'microbima', 'CHANGE_ME', 'flyctl', ...TARGETS])
    const { env, flags, positionals, apps, oneApp } = parseCommandLine(definition, process.argv.slice(2))
    // Every failure ends with a next step: its own when it knows one, else where to look and how to
    // run it again.
    const short = definition.environment ? shortName(env) : undefined
    const target = `make ${definition.name}${short ? `-${short}` : ''}${oneApp ? ` APP=${apps[0]}` : ''}`
    fallbackNext = short ? `make status-${short} shows the fleet now, make history-${short} what ran; fix the cause above, then ${target} again` : `fix the cause above, then ${target} again`
    if (flags.help) {
      log.result(`usage: ${definition.usage}`)
      return
    }
    const problems = knobProblems()
    if (problems.length) throw new UserError(problems)
    const dryRun = Boolean(flags['dry-run'])
    const verbose = Boolean(flags.verbose)
    showFullValues(verbose || flag('JSON') || Boolean(flags.json))
    const envDir = envDirOf(flags['env-dir'] as string | undefined)
    registerKnownSecrets(envDir)
    registerNotifySecrets()
    const exec = createExec({ dryRun, verbose, log })
    let fly: Fly | undefined
    const ctx: Context = {
      env,
      apps,
      oneApp,
      dryRun,
      yes: Boolean(flags.yes),
      verbose,
      envDir,
      flags,
      positionals,
      log,
      exec,
      fly: () => (fly ??= new Fly(exec, resolveFlyBin())),
      // A cleanup registered once the run is ending (a database connection that was still being
      // made when a read failed) runs at once: nothing would end it, and it would hold the process.
      onCleanup: (fn) => (ended ? void Promise.resolve(ended).then(fn).catch(() => undefined) : cleanups.push(fn)),
      aborted,
      checkpoint() {
        if (aborted.reason) throw new OperationError(`stopped: ${aborted.reason}`)
      },
      endOnInterrupt: (fn) => (endOnInterrupt = fn),
    }
    if (dryRun) log.info(chalk.yellow('dry run: reads run, writes are printed and not made'))
    exitCode = (await body(ctx)) ?? EXIT.ok
  } catch (error) {
    failure = error
    exitCode = report(error)
  } finally {
    await runCleanups({ exitCode, error: failure })
    // A child nobody stopped would keep the process alive: none outlives the run.
    await killAllChildren()
    process.off('beforeExit', unfinished)
    if (!signalled) for (const signal of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) process.off(signal, onSignal)
  }
  process.exitCode = exitCode
  // Whatever else still holds the event loop (a socket, a timer), the run ends with its code.
  setTimeout(() => process.exit(exitCode), 3000).unref()
}

/** Reads a boolean setting from the environment (make passes VAR=1 through). */
export const envFlag = flag

export { createLogger }
