import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { CommandError, OperationError, UserError } from './errors.js'
import type { CommandSpec, Exec } from './exec.js'
import { secretLine } from './secrets-stdin.js'

// Typed wrappers over the flyctl command lines the toolkit uses (see shared/reference/flyctl.md).
// JSON is parsed from stdout only: flyctl prints notices on stderr.

export interface FlyApp {
  Name: string
  Status: string
  Deployed: boolean
  Hostname: string
  Organization?: { Slug: string }
}

export interface FlyCheck {
  name: string
  status: 'passing' | 'warning' | 'critical' | string
  output?: string
}

export interface FlyMachine {
  id: string
  state: string
  region: string
  config?: { image?: string; metadata?: Record<string, string> }
  checks?: FlyCheck[]
}

export interface FlyStatus {
  Name: string
  Hostname: string
  Deployed: boolean
  Version: number
  Machines: FlyMachine[] | null
}

export interface FlyRelease {
  ID: string
  Version: number
  Status: string
  Description: string
  ImageRef: string
  CreatedAt: string
  User?: { Name?: string; Email?: string }
}

export interface FlySecret {
  name: string
  digest: string
  status?: string
}

export interface FlyVolume {
  id: string
  name: string
  state: string
  size_gb: number
  region: string
  attached_machine_id: string | null
}

const READ_TIMEOUT_MS = () => Number(process.env.FLY_READ_TIMEOUT ?? 60) * 1000
const DEPLOY_TIMEOUT_MS = () => Number(process.env.FLY_DEPLOY_TIMEOUT ?? 1800) * 1000
const SSH_TIMEOUT_MS = () => Number(process.env.FLY_SSH_TIMEOUT ?? 900) * 1000

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

function parseJson<T>(stdout: string, what: string): T {
  try {
    return JSON.parse(stdout) as T
  } catch {
    throw new OperationError(`flyctl ${what} did not print JSON on stdout`, [stdout.slice(0, 400)])
  }
}

/** The remote exit status flyctl only reports on stderr ("Error: ssh shell: Process exited with status N"). */
export function remoteExitStatus(stderr: string): number | undefined {
  const match = /ssh shell: Process exited with status (\d+)/.exec(stderr)
  return match ? Number(match[1]) : undefined
}

export class Fly {
  constructor(
    readonly exec: Exec,
    readonly bin: string,
  ) {}

  private async run(args: string[], spec: Partial<CommandSpec> & { write: boolean }) {
    try {
      return await this.exec.run({ argv: [this.bin, ...args], timeoutMs: READ_TIMEOUT_MS(), retry: !spec.write, ...spec })
    } catch (error) {
      if (error instanceof CommandError && /no access token available/.test(error.stderr)) {
        throw new UserError("flyctl is not logged in: run 'flyctl auth login' or set FLY_API_TOKEN")
      }
      throw error
    }
  }

  private async json<T>(args: string[], what: string): Promise<T> {
    const out = await this.run(args, { write: false })
    return parseJson<T>(out.stdout, what)
  }

  appsList(): Promise<FlyApp[]> {
    return this.json<FlyApp[]>(['apps', 'list', '--json'], 'apps list')
  }

  async appsCreate(name: string, org: string): Promise<void> {
    await this.run(['apps', 'create', name, '--org', org], { write: true })
  }

  status(app: string): Promise<FlyStatus> {
    return this.json<FlyStatus>(['status', '--app', app, '--json'], 'status')
  }

  releases(app: string): Promise<FlyRelease[]> {
    return this.json<FlyRelease[]>(['releases', '--app', app, '--json'], 'releases')
  }

  secretsList(app: string): Promise<FlySecret[]> {
    return this.json<FlySecret[]>(['secrets', 'list', '--app', app, '--json'], 'secrets list')
  }

  /** Values go on stdin only; a dry run shows NAME=****. */
  async secretsImport(app: string, values: Record<string, string>): Promise<void> {
    const names = Object.keys(values)
    await this.run(['secrets', 'import', '--app', app, '--stage'], {
      write: true,
      input: names.map((name) => secretLine(name, values[name])).join('\n') + '\n',
      inputPreview: names.map((name) => `${name}=****`).join('\n'),
    })
  }

  /** Restarts the app's machines with its staged secrets. */
  async secretsDeploy(app: string): Promise<void> {
    await this.run(['secrets', 'deploy', '--app', app], { write: true, timeoutMs: DEPLOY_TIMEOUT_MS() })
  }

  async secretsUnset(app: string, names: string[]): Promise<void> {
    await this.run(['secrets', 'unset', ...names, '--app', app, '--stage'], { write: true })
  }

  /** Builds remotely and deploys: the interface's deploy command line. Returns the new image ref. */
  deployBuild(app: string, config: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--config', config, '--app', app, '--remote-only'])
  }

  /** Deploys an existing image (promotion of the staging image to production). */
  deployImage(app: string, config: string, image: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--config', config, '--app', app, '--image', image])
  }

  /** The interface's rollback command line: the old image, without re-running the release command. */
  deployRollback(app: string, config: string, image: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--app', app, '--config', config, '--image', image, '--skip-release-command'])
  }

  private async deploy(args: string[]): Promise<string | undefined> {
    const out = await this.run(args, { write: true, timeoutMs: DEPLOY_TIMEOUT_MS(), env: { FLY_EMIT_RELEASE_JSON: '1' } })
    if (out.skipped) return undefined
    for (const line of out.stdout.split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const release = JSON.parse(line) as { image_ref?: string }
        if (release.image_ref) return release.image_ref
      } catch {
        // not the release line
      }
    }
    const image = args[args.indexOf('--image') + 1]
    return /^\s*image: (\S+)/m.exec(out.stderr)?.[1] ?? (args.includes('--image') ? image : undefined)
  }

  /** Runs one command on a started machine; flyctl exits 1 for any remote failure. */
  sshConsole(app: string, command: string, options: { write: boolean }) {
    return this.run(['ssh', 'console', '--app', app, '--command', command], { write: options.write, timeoutMs: SSH_TIMEOUT_MS(), retry: false })
  }

  logs(app: string, timeoutMs: number) {
    return this.run(['logs', '--app', app, '--no-tail'], { write: false, timeoutMs, retry: false })
  }

  volumesList(app: string): Promise<FlyVolume[]> {
    return this.json<FlyVolume[]>(['volumes', 'list', '--app', app, '--json'], 'volumes list')
  }

  async snapshotCreate(volumeId: string, app: string): Promise<void> {
    await this.run(['volumes', 'snapshots', 'create', volumeId, '--app', app], { write: true })
  }

  postgresCreate(options: { name: string; region: string; org: string; vmSize: string; volumeSizeGb: number; clusterSize: number }) {
    return this.run(
      [
        'postgres', 'create',
        '--name', options.name,
        '--region', options.region,
        '--org', options.org,
        '--initial-cluster-size', String(options.clusterSize),
        '--vm-size', options.vmSize,
        '--volume-size', String(options.volumeSizeGb),
      ],
      { write: true, timeoutMs: DEPLOY_TIMEOUT_MS() },
    )
  }

  postgresAttach(dbApp: string, app: string) {
    return this.run(['postgres', 'attach', dbApp, '--app', app, '--yes'], { write: true })
  }

  /** flyctl proxy LOCAL:REMOTE --app APP, started as a long-running child. */
  proxy(localPort: number, remotePort: number, app: string, onLine: (line: string) => void) {
    return this.exec.start({ argv: [this.bin, 'proxy', `${localPort}:${remotePort}`, '--app', app], write: false, onLine })
  }
}
