import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { CommandError, UserError } from '../core/errors.js'
import type { CommandSpec, Exec } from '../core/exec.js'
import { seconds } from '../core/knobs.js'
import { Apps } from './commands/apps.js'
import { Deploys } from './commands/deploys.js'
import { Machines } from './commands/machines.js'
import { Mpg } from './commands/mpg.js'
import { Network } from './commands/network.js'
import { Postgres } from './commands/postgres.js'
import { Secrets } from './commands/secrets.js'
import { markChanged, translate } from './errors.js'
import { parseJson } from './json.js'

// Every flyctl command line the toolkit uses (flyctl v0.4.87), grouped as flyctl groups them:
// fly.apps, fly.secrets, fly.deploys, fly.machines, fly.network, fly.postgres, fly.mpg. Each call
// goes through the exec chokepoint (reads run, writes are printed in a dry run); JSON is parsed
// from stdout only; flyctl's known failures become one line and the command that fixes them.

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

export function resolveOnPath(name: string, env = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/** FLY_BIN if set; otherwise flyctl on PATH (the setup action installs only that name); otherwise fly. */
export function resolveFlyBin(env = process.env): string {
  if (env.FLY_BIN !== undefined) {
    if (!existsSync(env.FLY_BIN)) throw new UserError(`FLY_BIN=${env.FLY_BIN} does not exist: point FLY_BIN at the flyctl binary or unset it`)
    if (!isExecutable(env.FLY_BIN)) throw new UserError(`FLY_BIN=${env.FLY_BIN} is not an executable file: chmod +x it or point FLY_BIN at flyctl`)
    return env.FLY_BIN
  }
  const found = resolveOnPath('flyctl', env) ?? resolveOnPath('fly', env)
  if (found) return found
  throw new UserError('flyctl not found: install it (https://fly.io/docs/flyctl/install/) or set FLY_BIN')
}

export type FlySpec = Partial<CommandSpec> & { write: boolean; harmless?: boolean }

/** The flyctl binary behind the exec chokepoint: what every command group runs through. */
export class Flyctl {
  constructor(
    readonly exec: Exec,
    readonly bin: string,
  ) {}

  async run(args: string[], spec: FlySpec) {
    try {
      const result = await this.exec.run({ argv: [this.bin, ...args], timeoutMs: seconds('FLY_READ_TIMEOUT'), retry: !spec.write || spec.harmless, ...spec })
      if (spec.write && !spec.harmless && !result.skipped) markChanged()
      return result
    } catch (error) {
      if (error instanceof CommandError) throw translate(error, args)
      throw error
    }
  }

  async json<T>(args: string[], what: string, empty?: T): Promise<T> {
    const out = await this.run(args, { write: false })
    return parseJson<T>(out.stdout, what, empty)
  }

  /** A long-running read (flyctl proxy, logs that stream): the caller stops it. */
  start(args: string[], onLine: (line: string) => void) {
    return this.exec.start({ argv: [this.bin, ...args], write: false, onLine })
  }
}

export class Fly {
  readonly apps: Apps
  readonly secrets: Secrets
  readonly deploys: Deploys
  readonly machines: Machines
  readonly network: Network
  readonly postgres: Postgres
  readonly mpg: Mpg

  constructor(exec: Exec, bin: string) {
    const flyctl = new Flyctl(exec, bin)
    this.apps = new Apps(flyctl)
    this.secrets = new Secrets(flyctl)
    this.deploys = new Deploys(flyctl)
    this.machines = new Machines(flyctl)
    this.network = new Network(flyctl)
    this.postgres = new Postgres(flyctl)
    this.mpg = new Mpg(flyctl)
  }
}
