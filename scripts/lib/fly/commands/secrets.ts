import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { displayCommand, shellQuote } from '../../core/exec.js'
import { seconds } from '../../core/knobs.js'
import { secretLine } from '../../secrets/stdin.js'
import type { Flyctl } from '../flyctl.js'
import type { FlySecret } from '../types.js'

/** flyctl secrets (flyctl.md §2; fly-platform.md §6). Values travel on stdin only. */
export class Secrets {
  constructor(private readonly flyctl: Flyctl) {}

  list(app: string): Promise<FlySecret[]> {
    return this.flyctl.json<FlySecret[]>(['secrets', 'list', '--app', app, '--json'], 'secrets list', [])
  }

  /** Values go on stdin only. A dry run prints a command that reads the env file itself (plus
   * NODE_ENV, which the toolkit adds), so the paste holds no secret and stores the file's values. */
  async import(app: string, values: Record<string, string>, from?: { file: string; nodeEnv?: string }): Promise<void> {
    const names = Object.keys(values)
    const args = ['secrets', 'import', '--app', app, '--stage']
    const fromFile = from && `{ cat ${shellQuote(from.file)}${from.nodeEnv ? `; echo NODE_ENV=${from.nodeEnv}` : ''}; } | ${displayCommand([this.flyctl.bin, ...args])}`
    await this.flyctl.run(args, {
      write: true,
      input: names.map((name) => secretLine(name, values[name])).join('\n') + '\n',
      inputPreview: names.map((name) => `${name}=****`).join('\n'),
      dryRunAs: fromFile,
    })
  }

  /** Restarts the app's machines with its staged secrets. */
  async deploy(app: string): Promise<void> {
    await this.flyctl.run(['secrets', 'deploy', '--app', app], { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT'), stream: true })
  }

  async unset(app: string, names: string[]): Promise<void> {
    await this.flyctl.run(['secrets', 'unset', ...names, '--app', app, '--stage'], { write: true })
  }

  /** Learns the latest secrets version, so a deploy from this machine (a fresh CI runner) sees
   * secrets set elsewhere (flyctl keeps the minimum version locally). Changes nothing on Fly. */
  async sync(app: string): Promise<void> {
    await this.flyctl.run(['secrets', 'sync', '--app', app], { write: true, harmless: true })
  }

  /** The minimum secrets version this machine's flyctl keeps for an app (app_secrets_minvers in
   * its config.yml; fly-platform.md §6), or undefined when it cannot be read. Read only to see
   * whether another flyctl wrote the file back over a sync; never changed. */
  async knownVersion(app: string): Promise<number | undefined> {
    try {
      const dir = process.env.FLY_CONFIG_DIR || join(homedir(), '.fly')
      const { parse: parseYaml } = await import('yaml') // only deploys need it: not loaded at every start
      const value = (parseYaml(readFileSync(join(dir, 'config.yml'), 'utf8')) as { app_secrets_minvers?: Record<string, unknown> } | null)?.app_secrets_minvers?.[app]
      return typeof value === 'number' ? value : undefined
    } catch {
      return undefined
    }
  }
}
