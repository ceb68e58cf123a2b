import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { CommandError, OperationError, UserError } from '../core/errors.js'
import type { CommandSpec, Exec } from '../core/exec.js'
import { seconds } from '../core/knobs.js'
import { secretLine } from '../secrets/stdin.js'
import { isObject, kindOf } from '../core/shape.js'

// Typed wrappers over the flyctl command lines the toolkit uses (flyctl v0.4.87). JSON is parsed
// from stdout only: flyctl prints notices on stderr. flyctl's known failures are translated into
// one line and the command that fixes them.

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

export interface FlyService {
  internal_port?: number
  autostop?: boolean | 'suspend'
  autostart?: boolean
  min_machines_running?: number
}

export interface FlyMachine {
  id: string
  state: string
  region: string
  config?: { image?: string; metadata?: Record<string, string>; services?: FlyService[]; standbys?: string[]; env?: Record<string, string> }
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

export interface FlySnapshot {
  id: string
  created_at: string
  status: string
}

export interface FlyIp {
  ID: string
  Address: string
  Type: string
  Region: string
}

export interface FlyRegion {
  code: string
  name: string
  mpg_available?: boolean
}

export interface MpgCluster {
  id: string
  name: string
  region: string
  status: string
  organization?: { Slug?: string }
  attached_apps: { name: string }[] | null
}

export interface MpgBackup {
  id: string
  status: string
  type: string
  start: string
  stop: string
}

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

/** The fields each item of a flyctl JSON list must have for the toolkit to read it: a missing or
 * mistyped one is flyctl's answer to another question (or a broken one), never a crash later. */
type Field = 'string' | 'number' | 'date' | 'string?'
type ItemShape = Record<string, Field>
const ITEMS: Record<string, ItemShape> = {
  'apps list': { Name: 'string' },
  releases: { Version: 'number', Status: 'string', ImageRef: 'string', CreatedAt: 'date', Description: 'string?' },
  'secrets list': { name: 'string', digest: 'string', status: 'string?' },
  'volumes list': { id: 'string', state: 'string' },
  'volumes snapshots list': { id: 'string', created_at: 'date', status: 'string' },
  'ips list': { Address: 'string', Type: 'string' },
  'platform regions': { code: 'string' },
  'mpg list': { id: 'string', name: 'string', status: 'string' },
  'mpg backup list': { id: 'string', status: 'string' },
}

function itemProblem(item: unknown, shape: ItemShape): string | undefined {
  if (!isObject(item)) return `is ${kindOf(item)}, not an object`
  for (const [key, field] of Object.entries(shape)) {
    const value = item[key]
    if (field === 'string?' && (value === undefined || value === null)) continue
    const ok = field === 'number' ? typeof value === 'number' && Number.isFinite(value) : typeof value === 'string' && (field !== 'date' || !Number.isNaN(Date.parse(value)))
    if (!ok) return value === undefined ? `has no ${key}` : `has ${key} ${JSON.stringify(value)?.slice(0, 60)}, not ${field === 'date' ? 'a date' : `a ${field.replace('?', '')}`}`
  }
  return undefined
}

function parseJson<T>(stdout: string, what: string, empty?: T): T {
  let value: unknown
  try {
    value = JSON.parse(stdout)
  } catch {
    throw new OperationError(`flyctl ${what} did not print JSON on stdout`, [stdout.slice(0, 400)])
  }
  // Go renders a nil slice as null: the toolkit reads it as an empty list.
  if (value === null && empty !== undefined) return empty
  // Any other shape than the one asked for is flyctl's answer to another question: one line, not a crash.
  const wanted = empty === undefined ? 'an object' : kindOf(empty)
  if (kindOf(value) !== wanted) throw new OperationError(`flyctl ${what} printed ${kindOf(value)} where it prints ${wanted}: is this flyctl too old or too new? (flyctl version)`, [stdout.slice(0, 200)])
  const items = ITEMS[what]
  if (items && Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const problem = itemProblem(item, items)
      if (problem) throw new OperationError(`flyctl ${what} --json answered unexpected JSON: item ${i} ${problem}`, [stdout.slice(0, 200)])
    }
  }
  return value as T
}

/** The remote exit status flyctl only reports on stderr ("Error: ssh shell: Process exited with status N"). */
export function remoteExitStatus(stderr: string): number | undefined {
  const match = /ssh shell: Process exited with status (\d+)/.exec(stderr)
  return match ? Number(match[1]) : undefined
}

/** An ssh session that ended without an exit status: the command may have run, or still be running. */
export function sessionLost(stderr: string): boolean {
  return /remote command exited without exit status|session forcibly closed|the remote process may still be running/.test(stderr)
}

/** Whether a write has reached Fly in this run: after one, a failure is an operation failure (1). */
let changed = false

/** One line and the command that fixes it, for flyctl's failures that have a known way out. */
export function translate(error: CommandError, args: string[]): Error {
  const stderr = error.stderr
  const app = args[args.indexOf('--app') + 1]
  const known = (message: string, next: string) =>
    changed ? new OperationError(`${message} (after changes were made in this run)`, [`next: ${next}`]) : new UserError(`${message}: ${next}`)
  if (/no access token available|token (has )?expired|invalid token|authentication required/i.test(stderr)) {
    return known('flyctl is not logged in or its token expired', "run 'flyctl auth login' or set FLY_API_TOKEN")
  }
  if (/Could not find App|app not found|Could not resolve App/i.test(stderr) && app) {
    return known(`the Fly app ${app} does not exist`, `create it with make create-apps-${app.includes('-production-') ? 'prod' : 'staging'}`)
  }
  if (/not authorized|unauthorized|permission denied|forbidden/i.test(stderr)) {
    return new CommandError(error.command, error.status, stderr, error.reason, `the token cannot do this (${app ?? 'this app'}): use an org token (flyctl tokens create org <org>) where one app's deploy token is not enough`)
  }
  if (/could not find image/i.test(stderr)) {
    return new CommandError(error.command, error.status, stderr, error.reason, `the image is not in Fly's registry for this organization: pick one from flyctl releases --app ${app ?? '<app>'} --json, or deploy staging first`)
  }
  return error
}

export class Fly {
  constructor(
    readonly exec: Exec,
    readonly bin: string,
  ) {}

  private async run(args: string[], spec: Partial<CommandSpec> & { write: boolean; harmless?: boolean }) {
    try {
      const result = await this.exec.run({ argv: [this.bin, ...args], timeoutMs: seconds('FLY_READ_TIMEOUT'), retry: !spec.write || spec.harmless, ...spec })
      if (spec.write && !spec.harmless && !result.skipped) changed = true
      return result
    } catch (error) {
      if (error instanceof CommandError) throw translate(error, args)
      throw error
    }
  }

  private async json<T>(args: string[], what: string, empty?: T): Promise<T> {
    const out = await this.run(args, { write: false })
    return parseJson<T>(out.stdout, what, empty)
  }

  appsList(): Promise<FlyApp[]> {
    return this.json<FlyApp[]>(['apps', 'list', '--json'], 'apps list', [])
  }

  async appsCreate(name: string, org: string): Promise<void> {
    await this.run(['apps', 'create', name, '--org', org], { write: true })
  }

  status(app: string): Promise<FlyStatus> {
    return this.json<FlyStatus>(['status', '--app', app, '--json'], 'status')
  }

  releases(app: string): Promise<FlyRelease[]> {
    return this.json<FlyRelease[]>(['releases', '--app', app, '--json'], 'releases', [])
  }

  secretsList(app: string): Promise<FlySecret[]> {
    return this.json<FlySecret[]>(['secrets', 'list', '--app', app, '--json'], 'secrets list', [])
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
    await this.run(['secrets', 'deploy', '--app', app], { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT'), stream: true })
  }

  async secretsUnset(app: string, names: string[]): Promise<void> {
    await this.run(['secrets', 'unset', ...names, '--app', app, '--stage'], { write: true })
  }

  /** Learns the latest secrets version, so a deploy from this machine (a fresh CI runner) sees
   * secrets set elsewhere (flyctl keeps the minimum version locally). Changes nothing on Fly. */
  async secretsSync(app: string): Promise<void> {
    await this.run(['secrets', 'sync', '--app', app], { write: true, harmless: true })
  }

  /** The minimum secrets version this machine's flyctl keeps for an app (app_secrets_minvers in
   * its config.yml; fly-platform.md §6), or undefined when it cannot be read. Read only to see
   * whether another flyctl wrote the file back over a sync; never changed. */
  async knownSecretsVersion(app: string): Promise<number | undefined> {
    try {
      const dir = process.env.FLY_CONFIG_DIR || join(homedir(), '.fly')
      const { parse: parseYaml } = await import('yaml') // only deploys need it: not loaded at every start
      const value = (parseYaml(readFileSync(join(dir, 'config.yml'), 'utf8')) as { app_secrets_minvers?: Record<string, unknown> } | null)?.app_secrets_minvers?.[app]
      return typeof value === 'number' ? value : undefined
    } catch {
      return undefined
    }
  }

  /** Builds remotely from the build context `cwd` and deploys. Returns the new image ref. */
  deployBuild(app: string, config: string, buildArgs: Record<string, string>, cwd: string, showCwd?: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--config', config, '--app', app, '--remote-only', ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])], { cwd, showCwd })
  }

  /** Deploys an existing image (promotion of the staging image to production). */
  deployImage(app: string, config: string, image: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--app', app, '--config', config, '--image', image])
  }

  /** The interface's rollback command line: the old image, without re-running the release command. */
  deployRollback(app: string, config: string, image: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--app', app, '--config', config, '--image', image, '--skip-release-command'])
  }

  private async deploy(args: string[], where: { cwd?: string; showCwd?: string } = {}): Promise<string | undefined> {
    const out = await this.run(args, { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT'), env: { FLY_EMIT_RELEASE_JSON: '1' }, stream: true, ...where })
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
    return this.run(['ssh', 'console', '--app', app, '--command', command], { write: options.write, timeoutMs: seconds('FLY_SSH_TIMEOUT'), retry: false, stream: options.write })
  }

  logs(app: string, timeoutMs: number) {
    return this.run(['logs', '--app', app, '--no-tail'], { write: false, timeoutMs, retry: false })
  }

  /** `flyctl logs` without --no-tail: streams until stopped. */
  logsFollow(app: string, onLine: (line: string) => void) {
    return this.exec.start({ argv: [this.bin, 'logs', '--app', app], write: false, onLine })
  }

  volumesList(app: string): Promise<FlyVolume[]> {
    return this.json<FlyVolume[]>(['volumes', 'list', '--app', app, '--json'], 'volumes list', [])
  }

  snapshotsList(volumeId: string, app: string): Promise<FlySnapshot[]> {
    return this.json<FlySnapshot[]>(['volumes', 'snapshots', 'list', volumeId, '--app', app, '--json'], 'volumes snapshots list', [])
  }

  async snapshotCreate(volumeId: string, app: string): Promise<void> {
    await this.run(['volumes', 'snapshots', 'create', volumeId, '--app', app], { write: true })
  }

  ipsList(app: string): Promise<FlyIp[]> {
    return this.json<FlyIp[]>(['ips', 'list', '--app', app, '--json'], 'ips list', [])
  }

  async ipsAllocatePrivateV6(app: string): Promise<void> {
    await this.run(['ips', 'allocate-v6', '--private', '--app', app], { write: true })
  }

  async ipsRelease(app: string, address: string): Promise<void> {
    await this.run(['ips', 'release', address, '--app', app], { write: true })
  }

  platformRegions(): Promise<FlyRegion[]> {
    return this.json<FlyRegion[]>(['platform', 'regions', '--json'], 'platform regions', [])
  }

  postgresCreate(options: { name: string; region: string; org: string; vmSize: string; volumeSizeGb: number; clusterSize: number }) {
    return this.run(
      ['postgres', 'create', '--name', options.name, '--region', options.region, '--org', options.org, '--initial-cluster-size', String(options.clusterSize), '--vm-size', options.vmSize, '--volume-size', String(options.volumeSizeGb)],
      { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT') },
    )
  }

  postgresAttach(dbApp: string, app: string, databaseUser?: string) {
    return this.run(['postgres', 'attach', dbApp, '--app', app, ...(databaseUser ? ['--database-user', databaseUser] : []), '--yes'], { write: true })
  }

  /** flyctl proxy LOCAL:REMOTE --app APP, started as a long-running child. */
  proxy(localPort: number, remotePort: number, app: string, onLine: (line: string) => void) {
    return this.exec.start({ argv: [this.bin, 'proxy', `${localPort}:${remotePort}`, '--app', app], write: false, onLine })
  }

  // ---- Managed Postgres (fly mpg) ------------------------------------------------------------

  /** `mpg list --json` prints plain text, not [], when there are no clusters. */
  async mpgList(org: string): Promise<MpgCluster[]> {
    const out = await this.run(['mpg', 'list', '--org', org, '--json'], { write: false })
    return out.stdout.trim().startsWith('[') ? parseJson<MpgCluster[]>(out.stdout, 'mpg list', []) : []
  }

  mpgCreate(options: { name: string; org: string; region: string; plan: string; volumeSizeGb: number }) {
    return this.run(['mpg', 'create', '--name', options.name, '--org', options.org, '--region', options.region, '--plan', options.plan, '--volume-size', String(options.volumeSizeGb)], { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT') })
  }

  mpgAttach(clusterId: string, app: string) {
    return this.run(['mpg', 'attach', clusterId, '--app', app], { write: true })
  }

  mpgProxy(clusterId: string, localPort: number, onLine: (line: string) => void) {
    return this.exec.start({ argv: [this.bin, 'mpg', 'proxy', clusterId, '--local-port', String(localPort)], write: false, onLine })
  }

  async mpgBackupCreate(clusterId: string): Promise<void> {
    await this.run(['mpg', 'backup', 'create', clusterId], { write: true })
  }

  /** Backups of the last 24 hours; plain text (no JSON) when there are none. */
  async mpgBackupList(clusterId: string): Promise<MpgBackup[]> {
    const out = await this.run(['mpg', 'backup', 'list', clusterId, '--json'], { write: false })
    return out.stdout.trim().startsWith('[') ? parseJson<MpgBackup[]>(out.stdout, 'mpg backup list', []) : []
  }

  mpgRestore(clusterId: string, backupId: string, name: string) {
    return this.run(['mpg', 'restore', clusterId, '--backup-id', backupId, '--name', name], { write: true })
  }
}

/** flyctl's long error texts as one short line for tables (the full text is printed above them). */
export function shortFlyError(text: string): string {
  const health = /timeout reached waiting for health checks to pass for machine (\w+)/.exec(text)
  if (health) return `machine ${health[1]} failed its health checks; flyctl stopped the rolling deploy there`
  const release = /release command failed - aborting deployment\. machine \w+ exited with non-zero status of (\d+)/.exec(text)
  if (release) return `the release command exited ${release[1]}: no machine was changed`
  const state = /timeout reached waiting for machine's state to change/.exec(text)
  if (state) return 'a machine never reached the started state'
  const image = /could not find image "([^"]+)"/i.exec(text)
  if (image) return `Fly's registry has no image ${image[1]}`
  return text.replace(/^Error:\s*/, '').replace(/\s*\(Request ID: [^)]*\)/, '')
}
