import { parseArgs } from 'node:util'
import chalk from 'chalk'
import { CommandError, EXIT, OperationError, Refusal, UserError, isKnownError } from './errors.js'
import { createExec, killAllChildren, type Exec } from './exec.js'
import { Fly, resolveFlyBin } from './fly.js'
import { createLogger, log, type Logger } from './log.js'
import { APP_KEYS, type AppKey, type Environment, isAppKey, parseEnvironment } from './names.js'
import { envDirOf } from './config.js'
import { mask } from './secrets-mask.js'

// Every script is `main(definition, body)`: strict flags, the context, the three error kinds,
// cleanup on exit and on SIGINT/SIGTERM (children stopped, locks released).

type OptionKind = { type: 'string' | 'boolean'; short?: string }

export interface ScriptDefinition {
  name: string
  usage: string
  /** Whether the first positional argument is the environment (staging | production | prod). */
  environment: boolean
  options?: Record<string, OptionKind>
}

export interface Context {
  env: Environment
  apps: AppKey[]
  dryRun: boolean
  yes: boolean
  verbose: boolean
  envDir: string
  flags: Record<string, string | boolean | undefined>
  positionals: string[]
  log: Logger
  exec: Exec
  fly(): Fly
  onCleanup(fn: () => Promise<void> | void): void
}

const COMMON: Record<string, OptionKind> = {
  app: { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  verbose: { type: 'boolean' },
  'env-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
}

const cleanups: Array<() => Promise<void> | void> = []

async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!
    try {
      await fn()
    } catch (error) {
      log.warn(`cleanup failed: ${(error as Error).message}`)
    }
  }
}

export function report(error: unknown, logger: Logger = log): number {
  if (error instanceof UserError) {
    logger.error(`error: ${error.message}`)
  } else if (error instanceof Refusal) {
    logger.error(`refused: ${error.message}`)
    for (const detail of error.details) logger.error(`  ${detail}`)
  } else if (error instanceof CommandError) {
    logger.error(`command failed (${error.reason}):`)
    logger.error(`  $ ${error.command}`)
    const stderr = error.stderr.trim()
    if (stderr) logger.info(stderr.split('\n').map((line) => `  ${line}`).join('\n'))
  } else if (error instanceof OperationError) {
    logger.error(`failed: ${error.message}`)
    for (const detail of error.details) logger.error(`  ${detail}`)
  } else {
    logger.error(`bug: ${mask((error as Error)?.stack ?? String(error))}`)
    return EXIT.failed
  }
  return isKnownError(error) ? error.exitCode : EXIT.failed
}

export function parseCommandLine(definition: ScriptDefinition, argv: string[]) {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...definition.options }, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UserError(`${(error as Error).message.split('\n')[0]}; usage: ${definition.usage}`)
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>
  const positionals = [...parsed.positionals]
  let env: Environment = 'staging'
  if (definition.environment && !flags.help) {
    const given = positionals.shift()
    const parsedEnv = parseEnvironment(given)
    if (!parsedEnv) {
      throw new UserError(
        given === undefined
          ? `no environment given: usage: ${definition.usage}`
          : `unknown environment "${given}": use staging or production (prod)`,
      )
    }
    env = parsedEnv
  }
  const app = flags.app as string | undefined
  if (app !== undefined && !isAppKey(app)) {
    throw new UserError(`unknown app "${app}": use one of ${APP_KEYS.join(', ')}`)
  }
  return { env, flags, positionals, apps: app ? [app as AppKey] : [...APP_KEYS] }
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false'
}

/** Reads a boolean setting from the environment (make passes VAR=1 through). */
export function envFlag(name: string): boolean {
  return truthy(process.env[name])
}

export async function main(definition: ScriptDefinition, body: (ctx: Context) => Promise<number | void>): Promise<void> {
  let exitCode: number = EXIT.ok
  const onSignal = (signal: NodeJS.Signals) => {
    log.error(`interrupted by ${signal}: stopping children and releasing locks`)
    void (async () => {
      await killAllChildren()
      await runCleanups()
      process.exit(signal === 'SIGINT' ? 130 : 143)
    })()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const { env, flags, positionals, apps } = parseCommandLine(definition, process.argv.slice(2))
    if (flags.help) {
      log.result(`usage: ${definition.usage}`)
      return
    }
    const dryRun = Boolean(flags['dry-run'])
    const verbose = Boolean(flags.verbose)
    const exec = createExec({ dryRun, verbose, log })
    let fly: Fly | undefined
    const ctx: Context = {
      env,
      apps,
      dryRun,
      yes: Boolean(flags.yes),
      verbose,
      envDir: envDirOf(flags['env-dir'] as string | undefined),
      flags,
      positionals,
      log,
      exec,
      fly: () => (fly ??= new Fly(exec, resolveFlyBin())),
      onCleanup: (fn) => cleanups.push(fn),
    }
    if (dryRun) log.info(chalk.yellow('dry run: reads run, writes are printed and not made'))
    exitCode = (await body(ctx)) ?? EXIT.ok
  } catch (error) {
    exitCode = report(error)
  } finally {
    await runCleanups()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  process.exitCode = exitCode
}

export { createLogger }
