// The command surface every simulated flyctl command shares: cobra/pflag-style flag parsing, the
// output streams, flyctl's error shape (`Error: <message>` on stderr, exit 1; internal/cli/cli.go)
// and how the target app is chosen (internal/command/command.go RequireAppName).
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { call, env } from './call.ts'

export class FlyError extends Error {
  constructor(
    message: string,
    readonly code = 1,
    /** Text flyctl prints on stdout as well (usage hints, the panic report). */
    readonly extraStdout = '',
    /** Lines printed after the error (flyerr description and suggestion). */
    readonly extraStderr = '',
  ) {
    super(message)
  }
}

export const out = (text: string): void => call().write(1, text)
export const err = (text: string): void => call().write(2, text)
/** internal/render/render.go: json.Encoder with a 4-space indent and a trailing newline. */
export const json = (value: unknown) => out(JSON.stringify(value, null, 4) + '\n')
/** Waits ms; an interrupted call stops waiting (the call has already ended). */
export const sleep = (ms: number) =>
  new Promise<void>((resolve, reject) => {
    const { interrupted } = call()
    if (interrupted.aborted) return reject(interrupted.reason)
    const timer = setTimeout(() => (interrupted.removeEventListener('abort', stop), resolve()), ms)
    const stop = () => (clearTimeout(timer), reject(interrupted.reason))
    interrupted.addEventListener('abort', stop, { once: true })
  })
/** Waits until the call is interrupted (a command that never returns). */
export const hang = () =>
  new Promise<never>((_, reject) => {
    const { interrupted } = call()
    if (interrupted.aborted) return reject(interrupted.reason)
    interrupted.addEventListener('abort', () => reject(interrupted.reason), { once: true })
  })

export type FlagSpec = Record<string, { short?: string; value: boolean; repeat?: boolean }>
export type Flags = Record<string, string | boolean | string[]>

// internal/command/root/root.go: the only persistent flags.
const GLOBAL: FlagSpec = { 'access-token': { short: 't', value: true }, verbose: { value: false }, debug: { value: false }, help: { short: 'h', value: false } }
export const APP_FLAG: FlagSpec = { app: { short: 'a', value: true }, config: { short: 'c', value: true } }
export const JSON_FLAG: FlagSpec = { json: { short: 'j', value: false } }

/** pflag: --name=value, --name value, -x value, -xvalue; booleans take --name=false; unknown flags fail. */
export function parseFlags(args: string[], spec: FlagSpec): { flags: Flags; positionals: string[] } {
  const all = { ...GLOBAL, ...spec }
  const flags: Flags = {}
  const positionals: string[] = []
  const set = (name: string, value: string | boolean) => {
    if (all[name].repeat) flags[name] = [...((flags[name] as string[] | undefined) ?? []), String(value)]
    else flags[name] = value
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') {
      positionals.push(...args.slice(i + 1))
      break
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
      const inline = eq < 0 ? undefined : arg.slice(eq + 1)
      const def = all[name]
      if (!def) throw new FlyError(`unknown flag: --${name}`)
      if (def.value) {
        const value = inline ?? args[++i]
        if (value === undefined) throw new FlyError(`flag needs an argument: --${name}`)
        set(name, value)
      } else set(name, inline === undefined ? true : !['false', '0', 'f', 'F', 'FALSE', 'False'].includes(inline))
    } else if (arg.startsWith('-') && arg.length > 1) {
      const short = arg[1]
      const name = Object.keys(all).find((k) => all[k].short === short)
      if (!name) throw new FlyError(`unknown shorthand flag: '${short}' in ${arg}`)
      if (all[name].value) {
        const value = arg.length > 2 ? arg.slice(2).replace(/^=/, '') : args[++i]
        if (value === undefined) throw new FlyError(`flag needs an argument: '${short}' in -${short}`)
        set(name, value)
      } else set(name, true)
    } else positionals.push(arg)
  }
  return { flags, positionals }
}

export const str = (flags: Flags, name: string): string | undefined => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined)

/** RequireAppName: -a/--app, then FLY_APP, then `app` in the config file (-c, or ./fly.toml). */
export function appName(flags: Flags): string {
  const name = str(flags, 'app') || env('FLY_APP')
  if (name) return name
  const config = resolve(call().cwd, str(flags, 'config') || 'fly.toml')
  if (existsSync(config)) {
    const app = (parseToml(readFileSync(config, 'utf8')) as { app?: string }).app
    if (app) return app
  }
  throw new FlyError('the config for your app is missing an app name, add an app field to the fly.toml file or specify with the -a flag')
}

/** cobra's unknown sub-command; cli.Run then prints the hint on stdout (fmt.Printf, then fmt.Println: a blank line). */
export function unknownCommand(sub: string | undefined, parent: string): FlyError {
  return new FlyError(`unknown command "${sub ?? ''}" for "${parent}"`, 1, `Run '${parent} --help' for usage.\n\n`)
}

/** Cobra's positional-argument validators (cobra/args.go). */
export function exactArgs(positionals: string[], n: number): void {
  if (positionals.length !== n) throw new FlyError(`accepts ${n} arg(s), received ${positionals.length}`)
}
export function minimumArgs(positionals: string[], n: number): void {
  if (positionals.length < n) throw new FlyError(`requires at least ${n} arg(s), only received ${positionals.length}`)
}

/** The prompt package when stdin/stdout are not terminals (internal/prompt/prompt.go). */
export const NON_INTERACTIVE = 'prompt: non interactive'
