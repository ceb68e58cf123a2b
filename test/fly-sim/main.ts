// The Fly simulator: behaves like flyctl v0.4.87 for every command the toolkit uses (arguments,
// JSON shapes and key casing, stderr texts, exit codes; shared/reference/flyctl.md), keeps state
// in $FLY_SIM_STATE across calls, logs every argv and stdin, and takes injected faults.
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createConnection, createServer } from 'node:net'
import { parse as parseToml } from 'smol-toml'
import { type Fault, type SimApp, type SimMachine, type SimState, logCall, readSandbox, readState, stateDir, takeFault, updateState } from './state.ts'

const dir = stateDir()
const argv = process.argv.slice(2)
const sandbox = readSandbox(dir)

class FlyError extends Error {
  constructor(message: string, readonly code = 1, readonly extraStdout = '') {
    super(message)
  }
}

const out = (text: string): void => void process.stdout.write(text)
const err = (text: string): void => void process.stderr.write(text)
const json = (value: unknown) => out(JSON.stringify(value, null, 4) + '\n')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')
const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const requestId = () => `01${hex(12).toUpperCase()}-jnb`
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const ulid = () => Array.from(randomBytes(26), (b) => CROCKFORD[b % 32]).join('')
const digestOf = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16)
const hang = () => new Promise<never>(() => setInterval(() => undefined, 60_000))

// ---- flags -----------------------------------------------------------------------------------

type FlagSpec = Record<string, { short?: string; value: boolean }>
const GLOBAL: FlagSpec = { 'access-token': { short: 't', value: true }, verbose: { value: false }, debug: { value: false }, help: { short: 'h', value: false } }

function parseFlags(args: string[], spec: FlagSpec) {
  const all = { ...GLOBAL, ...spec }
  const flags: Record<string, string | boolean> = {}
  const positionals: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') {
      positionals.push(...args.slice(i + 1))
      break
    }
    if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s, 2)
      const def = all[name]
      if (!def) throw new FlyError(`unknown flag: --${name}`)
      if (def.value) {
        const value = inline ?? args[++i]
        if (value === undefined) throw new FlyError(`flag needs an argument: --${name}`)
        flags[name] = value
      } else flags[name] = inline === undefined ? true : inline !== 'false'
    } else if (arg.startsWith('-') && arg.length > 1) {
      const short = arg[1]
      const name = Object.keys(all).find((k) => all[k].short === short)
      if (!name) throw new FlyError(`unknown shorthand flag: '${short}' in ${arg}`)
      if (all[name].value) {
        const value = arg.length > 2 ? arg.slice(2).replace(/^=/, '') : args[++i]
        if (value === undefined) throw new FlyError(`flag needs an argument: '${short}' in -${short}`)
        flags[name] = value
      } else flags[name] = true
    } else positionals.push(arg)
  }
  return { flags, positionals }
}

const APP_FLAG: FlagSpec = { app: { short: 'a', value: true }, config: { short: 'c', value: true } }
const JSON_FLAG: FlagSpec = { json: { short: 'j', value: false } }

function appName(flags: Record<string, string | boolean>): string {
  const name = (flags.app as string) || process.env.FLY_APP
  if (name) return name
  const config = (flags.config as string) || 'fly.toml'
  if (existsSync(config)) {
    const app = (parseToml(readFileSync(config, 'utf8')) as { app?: string }).app
    if (app) return app
  }
  throw new FlyError('the config for your app is missing an app name, add an app field to the fly.toml file or specify with the -a flag')
}

function findApp(state: SimState, name: string): SimApp {
  const app = state.apps[name]
  if (!app) throw new FlyError(`failed to get app: Could not find App "${name}"`)
  return app
}

async function latency(command: string) {
  const fromEnv = Object.fromEntries((process.env.FLY_SIM_LATENCY ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
  const ms = fromEnv[command] ?? sandbox.latencyMs?.[command] ?? 0
  if (ms > 0) await sleep(ms)
}

/** Faults every command honours; returns the fault for command-specific kinds. */
async function fault(command: string, app?: string): Promise<Fault | undefined> {
  const f = takeFault(dir, command, app)
  if (!f) return undefined
  if (f.kind === 'hang') await hang()
  if (f.kind === 'unauthenticated') throw new FlyError("no access token available. Please login with 'flyctl auth login'")
  if (f.kind === 'transient') throw new FlyError(`failed to get app: Get "https://api.fly.io/graphql": read tcp 10.0.0.2:51234->77.83.140.164:443: read: connection reset by peer`)
  return f
}

// ---- JSON shapes -----------------------------------------------------------------------------

function orgJson(slug: string) {
  return { ID: `org_${slug}`, InternalNumericID: '1234', Name: slug, Slug: slug, RawSlug: slug, PaidPlan: true }
}

function appJson(app: SimApp) {
  const current = app.releases.at(-1)
  return {
    ID: app.id, Name: app.name, Status: app.machines.length ? 'deployed' : 'pending', Deployed: app.machines.length > 0,
    Hostname: `${app.name}.fly.dev`, AppURL: `https://${app.name}.fly.dev`, Version: current?.Version ?? 0, NetworkID: 0, Network: 'default',
    Organization: orgJson(app.org), PlatformVersion: 'machines', PostgresAppRole: app.postgres ? { Name: 'postgres_cluster' } : null,
    Secrets: null, CurrentRelease: current ? { Version: current.Version, Status: current.Status, CreatedAt: current.CreatedAt } : null,
  }
}

function checkStatus(machine: SimMachine) {
  return machine.healthyAt >= 0 && Date.now() >= machine.healthyAt ? 'passing' : 'critical'
}

function machineChecks(machine: SimMachine) {
  const status = checkStatus(machine)
  return [{ name: 'servicecheck-00-http-8080', status, output: status === 'passing' ? 'Success' : 'connect: connection refused', updated_at: now() }]
}

function machineJson(app: SimApp, machine: SimMachine) {
  const [repository, tag] = machine.image.replace('registry.fly.io/', '').split(':')
  return {
    id: machine.id, name: `sim-${machine.id.slice(0, 6)}`, state: machine.state, region: machine.region,
    image_ref: { registry: 'registry.fly.io', repository, tag, digest: `sha256:${createHash('sha256').update(machine.image).digest('hex')}`, labels: {} },
    instance_id: machine.id.toUpperCase(), private_ip: machine.privateIp, created_at: machine.createdAt, updated_at: machine.updatedAt,
    config: { image: machine.image, metadata: { fly_release_version: String(machine.releaseVersion), fly_process_group: 'app', fly_platform_version: 'v2' }, env: { FLY_PROCESS_GROUP: 'app', PRIMARY_REGION: 'jnb' }, services: [], guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 512 } },
    checks: machineChecks(machine), events: [], host_status: 'ok', cordoned: false,
  }
}

function releaseJson(r: SimApp['releases'][number]) {
  return { ID: r.ID, Version: r.Version, Stable: r.Status === 'complete', InProgress: false, Reason: '', Description: r.Description, Status: r.Status, DeploymentStrategy: '', Metadata: null, User: { ID: 'u_sim', Name: r.UserName, Email: 'ci@microbima.example', EnablePaidHobby: false }, EvaluationID: '', CreatedAt: r.CreatedAt, ImageRef: r.ImageRef }
}

function addRelease(app: SimApp, status: string, image: string, description = 'Release') {
  const release = { ID: `rel_${hex(6)}`, Version: (app.releases.at(-1)?.Version ?? 0) + 1, Status: status, Description: description, ImageRef: image, CreatedAt: now(), UserName: process.env.FLY_SIM_USER ?? 'sim' }
  app.releases.push(release)
  return release
}

// ---- commands --------------------------------------------------------------------------------

async function appsCreate(args: string[]) {
  const { flags, positionals } = parseFlags(args, { name: { value: true }, org: { short: 'o', value: true }, 'generate-name': { value: false }, network: { value: true }, save: { value: false }, yes: { short: 'y', value: false }, ...JSON_FLAG })
  await latency('apps')
  const name = positionals[0] ?? (flags.name as string)
  if (positionals[0] && flags.name && flags.name !== positionals[0]) throw new FlyError(`two app names specified ${positionals[0]} and ${flags.name}, only one may be specified`)
  if (!name) throw new FlyError('prompt: non interactive')
  const orgs = sandbox.orgs ?? ['microbima']
  let org = (flags.org as string) || process.env.FLY_ORG || process.env.FLY_ORGANIZATION
  if (!org) {
    if (orgs.length !== 1) throw new FlyError('org slug must be specified when not running interactively')
    org = orgs[0]
    err(`automatically selected personal organization: ${org}\n`)
  }
  if (!orgs.includes(org)) throw new FlyError(`organization ${org} not found`)
  await fault('apps', name)
  const app = updateState(dir, (state) => {
    if (state.apps[name] || sandbox.takenNames?.includes(name)) throw new FlyError(`Validation failed: Name has already been taken (Request ID: ${requestId()})`)
    state.apps[name] = { id: hex(8), name, org, secrets: {}, releases: [], machines: [], logs: [], brokenImages: [] }
    return state.apps[name]
  })
  if (flags.json) json(appJson(app))
  else out(`New app created: ${name}\n`)
}

async function appsList(args: string[]) {
  const { flags } = parseFlags(args, { org: { short: 'o', value: true }, quiet: { short: 'q', value: false }, ...JSON_FLAG })
  await latency('apps')
  await fault('apps')
  const apps = Object.values(readState(dir).apps).filter((a) => !flags.org || a.org === flags.org)
  if (flags.json) json(apps.map(appJson))
  else if (flags.quiet) out(apps.map((a) => a.name).join('\n') + (apps.length ? '\n' : ''))
  else out(apps.length ? apps.map((a) => `${a.name}\t${a.org}\t${appJson(a).Status}`).join('\n') + '\n' : 'No apps found\n')
}

async function status(args: string[]) {
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, watch: { value: false }, all: { value: false } })
  const name = appName(flags)
  await latency('status')
  await fault('status', name)
  if (flags.watch && flags.json) throw new FlyError('--watch and --json are not supported together')
  const app = findApp(readState(dir), name)
  const machines = app.machines.filter((m) => m.state !== 'destroyed').sort((a, b) => b.id.localeCompare(a.id))
  if (flags.json) {
    const { ID, Name, Deployed, Status, Hostname, Version, AppURL, Organization, PlatformVersion } = appJson(app)
    json({ ID, Name, Deployed, Status, Hostname, Version, AppURL, Organization, PlatformVersion, Machines: machines.map((m) => machineJson(app, m)) })
  } else {
    out(`App\n  Name     = ${app.name}\n  Owner    = ${app.org}\n  Hostname = ${app.name}.fly.dev\n  Platform = machines\n\n`)
    out(machines.length ? `Machines\nID\tSTATE\tREGION\tCHECKS\n${machines.map((m) => `${m.id}\t${m.state}\t${m.region}\t${machineChecks(m).filter((c) => c.status === 'passing').length} total, 1 passing`).join('\n')}\n` : 'No machines are available on this app\n')
  }
}

async function checksList(args: string[]) {
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, 'check-name': { value: true } })
  const name = appName(flags)
  await latency('checks')
  await fault('checks', name)
  const app = findApp(readState(dir), name)
  const byMachine = Object.fromEntries(app.machines.map((m) => [m.id, machineChecks(m)]))
  if (flags.json) json(byMachine)
  else out(Object.entries(byMachine).map(([id, checks]) => checks.map((c) => `${c.name}\t${c.status}\t${id}`).join('\n')).join('\n') + '\n')
}

async function releases(args: string[]) {
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, image: { value: false } })
  const name = appName(flags)
  await latency('releases')
  await fault('releases', name)
  const list = [...findApp(readState(dir), name).releases].sort((a, b) => b.Version - a.Version).slice(0, 25)
  if (flags.json) json(list.map(releaseJson))
  else out(`VERSION\tSTATUS\tDESCRIPTION\tUSER\tDATE${flags.image ? '\tDOCKER IMAGE' : ''}\n` + list.map((r) => `v${r.Version}\t${r.Status}\t${r.Description}\t${r.UserName}\t${r.CreatedAt}${flags.image ? `\t${r.ImageRef}` : ''}`).join('\n') + '\n')
}

/** flyctl's secrets parser (internal/command/secrets/parser.go). */
function parseSecrets(input: string): Record<string, string> {
  const secrets: Record<string, string> = {}
  const lines = input.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '')
    if (!line.trim() || line.trim().startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq < 0) throw new FlyError(`Failed to parse secrets from stdin: Secrets must be provided as NAME=VALUE pairs (${line} is invalid)`)
    const key = line.slice(0, eq).trim()
    let value = line.slice(eq + 1).replace(/^\s+/, '')
    if (value.startsWith('"""')) {
      const parts = [value.slice(3)]
      while (!parts.at(-1)!.endsWith('"""') && i + 1 < lines.length) parts.push(lines[++i])
      value = parts.join('\n').replace(/"""$/, '')
    } else {
      const hash = value.search(/ #/)
      if (hash >= 0 && (value.slice(0, hash).split('"').length - 1) % 2 === 0) value = value.slice(0, hash)
      const m = /^"(.*)"$/s.exec(value) ?? /^'(.*)'$/s.exec(value)
      if (m) value = m[1]
    }
    secrets[key] = value
  }
  return secrets
}

async function storeSecrets(sub: string, name: string, set: Record<string, string>, unset: string[], stage: boolean) {
  await latency('secrets')
  const f = await fault(`secrets ${sub}`, name)
  if (f?.kind === 'fail') throw new FlyError(`failed to update app secrets: internal server error (Request ID: ${requestId()})`)
  const deployed = updateState(dir, (state) => {
    const app = findApp(state, name)
    for (const [k, v] of Object.entries(set)) app.secrets[k] = { value: v, digest: digestOf(v), updatedAt: Date.now(), staged: true }
    for (const k of unset) delete app.secrets[k]
    return app.machines.length > 0
  })
  if (stage) return out('Secrets have been staged, but not set on VMs. Deploy or update machines in this app for the secrets to take effect.\n')
  if (!deployed) return out('Secrets are staged for the first deployment\n')
  const machineId = updateState(dir, (state) => state.apps[name].machines[0].id)
  if (f?.kind === 'restart-fail') throw new FlyError(`failed to update machine ${machineId}: failed to update VM ${machineId}: request returned non-2xx status, 500 (Request ID: ${requestId()})`)
  updateState(dir, (state) => {
    const app = state.apps[name]
    addRelease(app, 'complete', app.machines[0].image, 'Secrets updated')
    for (const s of Object.values(app.secrets)) s.staged = false
  })
  out(`Updating existing machines in '${name}' with rolling strategy\n✔ Machine ${machineId} is now in a good state\n`)
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return ''
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString()
}

async function secrets(sub: string | undefined, args: string[]) {
  const common: FlagSpec = { ...APP_FLAG, stage: { value: false }, detach: { value: false }, 'dns-checks': { value: false } }
  if (sub === 'import') {
    const { flags } = parseFlags(args, common)
    const name = appName(flags)
    const input = await readStdin()
    logStdin(input)
    const parsed = parseSecrets(input)
    if (!Object.keys(parsed).length) throw new FlyError('requires at least one SECRET=VALUE pair')
    return storeSecrets('import', name, parsed, [], Boolean(flags.stage))
  }
  if (sub === 'set') {
    const { flags, positionals } = parseFlags(args, common)
    const name = appName(flags)
    if (!positionals.length) throw new FlyError('requires at least one SECRET=VALUE pair')
    const values: Record<string, string> = {}
    for (const arg of positionals) {
      const eq = arg.indexOf('=')
      if (eq < 0) throw new FlyError(`could not parse secrets: '${arg}': must be in the format NAME=VALUE`)
      values[arg.slice(0, eq)] = arg.slice(eq + 1)
    }
    return storeSecrets('set', name, values, [], Boolean(flags.stage))
  }
  if (sub === 'unset') {
    const { flags, positionals } = parseFlags(args, common)
    const name = appName(flags)
    if (!positionals.length) throw new FlyError('requires at least one argument')
    return storeSecrets('unset', name, {}, positionals, Boolean(flags.stage))
  }
  if (sub === 'list' || sub === 'ls') {
    const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG })
    const name = appName(flags)
    await latency('secrets')
    await fault('secrets list', name)
    const list = Object.entries(findApp(readState(dir), name).secrets).sort(([a], [b]) => a.localeCompare(b)).map(([k, s]) => ({ name: k, digest: s.digest, status: s.staged ? 'Staged' : 'Deployed' }))
    if (flags.json) return json(list)
    return out(`NAME\tDIGEST\tSTATUS\n${list.map((s) => `${s.status === 'Staged' ? '* ' : ''}${s.name}\t${s.digest}\t${s.status}`).join('\n')}\n`)
  }
  if (sub === 'deploy') {
    const { flags } = parseFlags(args, common)
    const name = appName(flags)
    if (!findApp(readState(dir), name).machines.length) throw new FlyError('no machines available to deploy')
    return storeSecrets('deploy', name, {}, [], false)
  }
  throw unknownCommand(sub, 'flyctl secrets')
}

function logStdin(input: string) {
  logCall(dir, argv, input)
}

function runReleaseCommandArgs(command: string): 'migrate' | 'other' {
  return /prisma migrate deploy/.test(command) ? 'migrate' : 'other'
}

async function standin(state: SimState, app: SimApp, image: string): Promise<{ status: number; stdout: string; stderr: string }> {
  const url = app.secrets.DATABASE_URL?.value
  if (!url) return { status: 1, stdout: '', stderr: 'Error: Environment variable not found: DATABASE_URL.\n' }
  const parsed = new URL(url)
  const host = parsed.hostname
  let connection = { host, port: Number(parsed.port || 5432) }
  if (host.endsWith('.flycast') || host.endsWith('.internal')) {
    const target = sandbox.postgres?.[host.split('.').find((label) => sandbox.postgres?.[label]) ?? host.split('.')[0]]
    if (!target) return { status: 1, stdout: '', stderr: `Error: P1001: Can't reach database server at \`${host}:${connection.port}\`\n` }
    connection = target
  }
  const { migrateDeploy } = await import('./prisma-standin.ts')
  const migrations = join(state.images[image]?.dir ?? '/nonexistent', 'migrations')
  return migrateDeploy(migrations, { ...connection, user: decodeURIComponent(parsed.username) || undefined, password: decodeURIComponent(parsed.password) || undefined, database: decodeURIComponent(parsed.pathname.slice(1)) || 'postgres' }, `${host}:${parsed.port || 5432}`)
}

function parseDuration(value: string | undefined, fallbackMs: number): number {
  if (!value) return fallbackMs
  if (/^\d+$/.test(value)) return Number(value) * 1000
  let ms = 0
  for (const [, n, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms']!
  return ms || fallbackMs
}

async function deploy(args: string[]) {
  const { flags, positionals } = parseFlags(args, {
    ...APP_FLAG, image: { short: 'i', value: true }, 'image-label': { value: true }, 'remote-only': { value: false }, 'local-only': { value: false },
    strategy: { value: true }, 'skip-release-command': { value: false }, detach: { value: false }, 'wait-timeout': { value: true },
    'release-command-timeout': { value: true }, 'build-only': { value: false }, push: { value: false }, yes: { short: 'y', value: false }, now: { value: false },
    env: { short: 'e', value: true }, 'max-unavailable': { value: true }, regions: { value: true }, 'primary-region': { value: true },
  })
  const cwd = positionals[0] ? resolve(positionals[0]) : process.cwd()
  const configPath = resolve(cwd, (flags.config as string) || 'fly.toml')
  if (!existsSync(configPath)) throw new FlyError(`failed loading app config from ${configPath}: open ${configPath}: no such file or directory`)
  const config = parseToml(readFileSync(configPath, 'utf8')) as { app?: string; deploy?: { release_command?: string; wait_timeout?: string; strategy?: string } }
  const name = (flags.app as string) || process.env.FLY_APP || config.app
  if (!name) throw new FlyError('the config for your app is missing an app name, add an app field to the fly.toml file or specify with the -a flag')
  findApp(readState(dir), name)
  const f = await fault('deploy', name)
  await latency('deploy')
  if (f?.kind === 'fail') throw new FlyError(`failed to update machine ${hex(7)}: failed to update VM: request returned non-2xx status, 500 (Request ID: ${requestId()})`)

  // Image: an existing ref, or a "remote build" of the working directory.
  let image = flags.image as string | undefined
  if (image) {
    const known = readState(dir).images[image]
    const owner = known && readState(dir).apps[known.app]
    if (!known || (owner && owner.org !== readState(dir).apps[name].org)) throw new FlyError(`failed to fetch an image or build from source: Could not find image "${image}"`)
    err(`==> Verifying image\nimage: ${image}\n`)
  } else {
    image = `registry.fly.io/${name}:${(flags['image-label'] as string) || `deployment-${ulid()}`}`
    const imageDir = join(dir, 'images', image.replace(/[^\w.-]+/g, '_'))
    mkdirSync(imageDir, { recursive: true })
    if (existsSync(join(cwd, 'prisma', 'migrations'))) cpSync(join(cwd, 'prisma', 'migrations'), join(imageDir, 'migrations'), { recursive: true })
    err(`==> Building image\nWaiting for depot builder...\n==> Building image with Depot\n--> Pushing image done\nimage: ${image}\nimage size: 187 MB\n`)
    const ref = image
    updateState(dir, (state) => (state.images[ref] = { ref, app: name, dir: imageDir }))
  }
  const deployedImage = image
  const state = readState(dir)
  const app = state.apps[name]
  const releaseCommand = config.deploy?.release_command
  if (releaseCommand && !flags['skip-release-command']) {
    const machineId = hex(7)
    err(`Running ${name} release_command: ${releaseCommand}\n`)
    const result = f?.kind === 'release-command-fail'
      ? { status: 1, stdout: '', stderr: 'Error: P3018\n\nA migration failed to apply (injected fault)\n' }
      : runReleaseCommandArgs(releaseCommand) === 'migrate' ? await standin(state, app, deployedImage) : { status: 0, stdout: '', stderr: '' }
    if (result.status !== 0) {
      updateState(dir, (s) => addRelease(s.apps[name], 'failed', deployedImage))
      err(`Error release_command failed running on machine ${machineId} with exit code ${result.status}.\nChecking logs: fetching the last 100 lines below:\n`)
      err((result.stdout + result.stderr).split('\n').filter(Boolean).slice(-100).map((l) => `  ${l}\n`).join(''))
      throw new FlyError(`release command failed - aborting deployment. machine ${machineId} exited with non-zero status of ${result.status}`)
    }
    err(`Starting machine ${machineId}\n${result.stdout.split('\n').filter(Boolean).map((l) => `  ${l}\n`).join('')}✔ release_command ${machineId} completed successfully\n`)
  }

  const waitMs = parseDuration((flags['wait-timeout'] as string) || config.deploy?.wait_timeout, 300_000) * (sandbox.timeScale ?? 1)
  const strategy = (flags.strategy as string) || config.deploy?.strategy || 'rolling'
  const release = updateState(dir, (s) => {
    const a = s.apps[name]
    if (!a.machines.length) {
      const t = now()
      a.machines.push({ id: hex(7), state: 'started', region: 'jnb', image: deployedImage, releaseVersion: 0, healthyAt: 0, privateIp: `fdaa:0:1::${a.machines.length + 2}`, createdAt: t, updatedAt: t })
    }
    const unhealthy = f?.kind === 'unhealthy'
    const r = addRelease(a, unhealthy ? 'failed' : 'complete', deployedImage)
    for (const m of a.machines) {
      Object.assign(m, { image: deployedImage, state: 'started', releaseVersion: r.Version, updatedAt: now(), healthyAt: unhealthy ? -1 : Date.now() + (f?.kind === 'healthy-after-ms' ? f.ms ?? 0 : 0) })
    }
    // http-5xx: the app's own /health answers 503 (for `ms` after the deploy, or for good).
    if (f?.kind === 'http-5xx' && f.ms) a.brokenUntil = { ...a.brokenUntil, [deployedImage]: Date.now() + f.ms }
    else if (f?.kind === 'http-5xx') a.brokenImages.push(deployedImage)
    for (const secret of Object.values(a.secrets)) secret.staged = false
    a.logs.push(`${now()} app[${a.machines[0].id}] jnb [info] Starting init (commit: sim)...`, `${now()} app[${a.machines[0].id}] jnb [info] listening on :8080 (image ${deployedImage})`)
    return r
  })
  const machine = readState(dir).apps[name].machines[0]
  out(`Updating existing machines in '${name}' with ${strategy} strategy\n`)
  if (!flags.detach && strategy !== 'immediate') {
    if (f?.kind === 'unhealthy') {
      await sleep(waitMs)
      throw new FlyError(`failed to update machine ${machine.id}: Unrecoverable error: timeout reached waiting for health checks to pass for machine ${machine.id}: failed to get VM ${machine.id}: Get "https://api.machines.dev/v1/apps/${name}/machines/${machine.id}": net/http: request canceled`)
    }
    const wait = machine.healthyAt - Date.now()
    if (wait > 0) {
      if (wait > waitMs) {
        await sleep(waitMs)
        throw new FlyError(`failed to update machine ${machine.id}: Unrecoverable error: timeout reached waiting for health checks to pass for machine ${machine.id}`)
      }
      await sleep(wait)
    }
  }
  out(`✔ Machine ${machine.id} is now in a good state\nVisit your newly deployed app at https://${name}.fly.dev/\n`)
  if (process.env.FLY_EMIT_RELEASE_JSON === '1') out(JSON.stringify({ id: release.ID, version: release.Version, image_ref: deployedImage }) + '\n')
}

/** hallpass splits -C with shell-words rules; there is no shell. */
function shellWords(command: string): string[] {
  const words: string[] = []
  let current = ''
  let quote: string | null = null
  let has = false
  for (let i = 0; i < command.length; i++) {
    const c = command[i]
    if (quote) {
      if (c === quote) quote = null
      else if (c === '\\' && quote === '"' && i + 1 < command.length) current += command[++i]
      else current += c
    } else if (c === "'" || c === '"') {
      quote = c
      has = true
    } else if (c === '\\' && i + 1 < command.length) {
      current += command[++i]
      has = true
    } else if (/\s/.test(c)) {
      if (has || current) words.push(current)
      current = ''
      has = false
    } else current += c
  }
  if (has || current) words.push(current)
  return words
}

async function ssh(sub: string | undefined, args: string[]) {
  if (sub !== 'console') throw unknownCommand(sub, 'flyctl ssh')
  const { flags } = parseFlags(args, { ...APP_FLAG, command: { short: 'C', value: true }, pty: { value: false }, machine: { value: true }, select: { short: 's', value: false }, region: { short: 'r', value: true }, 'process-group': { short: 'g', value: true }, user: { short: 'u', value: true }, address: { short: 'A', value: true }, quiet: { short: 'q', value: false }, org: { short: 'o', value: true } })
  const name = appName(flags)
  await latency('ssh')
  const f = await fault('ssh', name)
  const state = readState(dir)
  const app = findApp(state, name)
  const machine = app.machines.find((m) => m.state === 'started' && (!flags.machine || m.id === flags.machine))
  if (!machine) throw new FlyError(`app ${name} has no started VMs. It may be unhealthy or not have been deployed yet. Try the following command to verify:\n\nfly status --app ${name}`)
  if (f?.kind === 'ssh-connect-fail' || f?.kind === 'fail') throw new FlyError('error connecting to SSH server: ssh: handshake failed: EOF')
  err(`Connecting to ${machine.privateIp}... complete\n`)
  const words = shellWords((flags.command as string) ?? '')
  const script = words[0] === 'sh' && words[1] === '-c' ? words[2] ?? '' : undefined
  const isMigrate = script !== undefined ? /^cd \/app && (npx )?prisma migrate deploy$/.test(script.trim()) : words.join(' ') === 'npx prisma migrate deploy'
  let result
  if (isMigrate) result = f?.kind === 'remote-fail' ? { status: 1, stdout: '', stderr: 'Error: P3018 (injected fault)\n' } : await standin(state, app, machine.image)
  else if (script !== undefined) result = { status: 127, stdout: '', stderr: `sh: 1: ${script.split(/\s/)[0]}: not found\n` }
  else result = { status: 127, stdout: '', stderr: `exec: "${words[0] ?? ''}": executable file not found in $PATH\n` }
  out(result.stdout)
  err(result.stderr)
  if (result.status !== 0) throw new FlyError(`ssh shell: Process exited with status ${result.status}`)
}

async function logs(args: string[]) {
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, 'no-tail': { short: 'n', value: false }, region: { short: 'r', value: true }, machine: { value: true } })
  const name = appName(flags)
  await latency('logs')
  await fault('logs', name)
  const lines = findApp(readState(dir), name).logs
  // A --no-tail poll with an empty buffer keeps backing off and never returns (the real hazard).
  if (!flags['no-tail'] || !lines.length) await hang()
  if (flags.json) {
    for (const line of lines) {
      const [timestamp, , region, level, ...rest] = line.split(' ')
      json({ level: level.replace(/[[\]]/g, ''), instance: line.split('[')[1].split(']')[0], message: rest.join(' '), region, timestamp, meta: { Instance: '', Region: region, Event: { Provider: 'app' }, HTTP: null, Error: null, URL: null } })
    }
  } else out(lines.join('\n') + '\n')
}

async function proxy(args: string[]) {
  const { flags, positionals } = parseFlags(args, { ...APP_FLAG, 'bind-addr': { short: 'b', value: true }, select: { short: 's', value: false }, quiet: { short: 'q', value: false }, org: { short: 'o', value: true }, 'watch-stdin': { value: false } })
  const name = appName(flags)
  if (!positionals[0]) throw new FlyError('requires at least 1 arg(s), only received 0')
  const [local, remote = local] = positionals[0].split(':')
  const f = await fault('proxy', name)
  const target = sandbox.postgres?.[name]
  findApp(readState(dir), name)
  if (!target) throw new FlyError(`no machines found for app ${name} (sandbox has no backend for it)`)
  if (f?.kind === 'proxy-never-ready') await hang()
  const server = createServer((socket) => {
    const upstream = createConnection(target.port, target.host)
    socket.pipe(upstream).pipe(socket)
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
  })
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(Number(local), (flags['bind-addr'] as string) || '127.0.0.1', ok))
  const port = (server.address() as { port: number }).port
  out(`Proxying localhost:${port} to remote [${positionals[1] ?? `${name}.internal`}]:${remote}\n`)
  const stop = () => process.exit(0)
  process.removeAllListeners('SIGINT')
  process.removeAllListeners('SIGTERM')
  process.on('SIGINT', stop).on('SIGTERM', stop)
  if (flags['watch-stdin']) process.stdin.on('end', stop).resume()
  await hang()
}

async function postgres(sub: string | undefined, args: string[]) {
  err('Unmanaged Fly Postgres is not supported by Fly.io Support and users are responsible for operations, management, and disaster recovery. If you\'d like a managed, supported solution, try \'fly mpg\' (Managed Postgres).\n')
  if (sub === 'create') {
    const { flags } = parseFlags(args, { name: { short: 'n', value: true }, region: { short: 'r', value: true }, org: { short: 'o', value: true }, 'initial-cluster-size': { value: true }, 'vm-size': { value: true }, 'volume-size': { value: true }, password: { short: 'p', value: true }, 'generate-name': { value: false }, flex: { value: false }, autostart: { value: false }, 'enable-backups': { value: false }, detach: { value: false }, 'snapshot-id': { value: true }, 'image-ref': { value: true } })
    for (const needed of ['name', 'region', 'org', 'initial-cluster-size', 'vm-size', 'volume-size']) if (!flags[needed]) throw new FlyError('prompt: non interactive')
    const name = flags.name as string
    await latency('postgres')
    await fault('postgres', name)
    const password = (flags.password as string) || hex(12)
    updateState(dir, (state) => {
      if (state.apps[name]) throw new FlyError(`Validation failed: Name has already been taken (Request ID: ${requestId()})`)
      const volumeId = `vol_${hex(8)}`
      const t = now()
      const machine = { id: hex(7), state: 'started', region: flags.region as string, image: 'flyio/postgres-flex:16', releaseVersion: 1, healthyAt: 0, privateIp: 'fdaa:0:1::9', createdAt: t, updatedAt: t }
      state.apps[name] = { id: hex(8), name, org: flags.org as string, postgres: { password, volumeId }, secrets: {}, releases: [], machines: [machine], logs: [], brokenImages: [] }
      state.volumes[volumeId] = { id: volumeId, name: 'pg_data', app: name, size_gb: Number(flags['volume-size']), region: flags.region as string, created_at: t, attached_machine_id: machine.id, snapshots: [] }
    })
    out(`Creating postgres cluster in organization ${flags.org}\nPostgres cluster ${name} created\n  Username:    postgres\n  Password:    ${password}\n  Hostname:    ${name}.internal\n  Flycast:     fdaa:0:1:0:1::5\n  Proxy port:  5432\n  Postgres port:  5433\n  Connection string: postgres://postgres:${password}@${name}.flycast:5432\n\nSave your credentials in a secure place -- you won't be able to see them again!\n`)
    return
  }
  if (sub === 'attach') {
    const { flags, positionals } = parseFlags(args, { ...APP_FLAG, 'database-name': { value: true }, 'database-user': { value: true }, 'variable-name': { value: true }, superuser: { value: false }, yes: { short: 'y', value: false } })
    const consumer = appName(flags)
    const pgName = positionals[0]
    await latency('postgres')
    const variable = (flags['variable-name'] as string) || 'DATABASE_URL'
    const url = updateState(dir, (state) => {
      const pgApp = state.apps[pgName]
      if (!pgApp?.postgres) throw new FlyError(`app ${pgName} is not a postgres app`)
      const app = findApp(state, consumer)
      if (app.secrets[variable]) throw new FlyError(`consumer app "${consumer}" already contains a secret named ${variable}`)
      const db = ((flags['database-name'] as string) || consumer).replace(/-/g, '_').toLowerCase()
      const user = ((flags['database-user'] as string) || consumer).replace(/-/g, '_').toLowerCase()
      const value = `postgres://${user}:${hex(10)}@${pgName}.flycast:5432/${db}?sslmode=disable`
      app.secrets[variable] = { value, digest: digestOf(value), updatedAt: Date.now(), staged: true }
      return value
    })
    out(`Checking for existing attachments\nRegistering attachment\nCreating database\nCreating user\n\nPostgres cluster ${pgName} is now attached to ${consumer}\nThe following secret was added to ${consumer}:\n  ${variable}=${url}\n`)
    return
  }
  throw unknownCommand(sub, 'flyctl postgres')
}

async function volumes(sub: string | undefined, args: string[]) {
  if (sub === 'list' || sub === 'ls') {
    const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, all: { value: false } })
    const name = appName(flags)
    await latency('volumes')
    await fault('volumes', name)
    findApp(readState(dir), name)
    const list = Object.values(readState(dir).volumes).filter((v) => v.app === name).map((v) => ({ id: v.id, name: v.name, state: 'created', size_gb: v.size_gb, region: v.region, zone: '2824', encrypted: true, attached_machine_id: v.attached_machine_id, attached_alloc_id: null, created_at: v.created_at, host_dedication_id: '', snapshot_retention: 5, auto_backup_enabled: true }))
    if (flags.json) return json(list)
    return out(list.length ? `ID\tSTATE\tNAME\tSIZE\tREGION\n${list.map((v) => `${v.id}\t${v.state}\t${v.name}\t${v.size_gb}GB\t${v.region}`).join('\n')}\n` : 'No volumes found\n')
  }
  if (sub === 'snapshots') {
    const [action, ...rest] = args
    const { flags, positionals } = parseFlags(rest, { ...APP_FLAG, ...JSON_FLAG })
    const volumeId = positionals[0]
    if (!volumeId) throw new FlyError('accepts 1 arg(s), received 0')
    await latency('volumes')
    if (action === 'create') {
      await fault('volumes', flags.app as string | undefined)
      updateState(dir, (state) => {
        const volume = state.volumes[volumeId]
        if (!volume) throw new FlyError(`failed to create volume snapshot: volume ${volumeId} not found (Request ID: ${requestId()})`)
        volume.snapshots.push({ id: `vs_${hex(8)}`, created_at: now() })
      })
      return out(`Scheduled to snapshot volume ${volumeId}\n`)
    }
    if (action === 'list' || action === 'ls') {
      const volume = readState(dir).volumes[volumeId]
      if (!volume) throw new FlyError(`volume ${volumeId} not found`)
      const list = volume.snapshots.map((s) => ({ id: s.id, size: 1024, volume_size: volume.size_gb, digest: hex(8), created_at: s.created_at, status: 'created', retention_days: 5 }))
      if (flags.json) return json(list)
      if (!list.length) return err(`No snapshots available for volume ${volumeId}\n`)
      return out(list.map((s) => `${s.id}\t${s.status}\t${s.created_at}`).join('\n') + '\n')
    }
    throw unknownCommand(action, 'flyctl volumes snapshots')
  }
  throw unknownCommand(sub, 'flyctl volumes')
}

function unknownCommand(sub: string | undefined, parent: string) {
  return new FlyError(`unknown command "${sub ?? ''}" for "${parent}"`, 1, `Run '${parent} --help' for usage.\n`)
}

async function dispatch(): Promise<void> {
  const [command, sub, ...rest] = argv
  const afterCommand = argv.slice(1)
  if (command === 'version') return out('flyctl v0.4.87 linux/amd64 Commit: sim BuildDate: 2026-08-20T00:00:00Z\n')
  if (!process.env.FLY_API_TOKEN && !process.env.FLY_ACCESS_TOKEN && !argv.some((a) => a === '-t' || a.startsWith('--access-token'))) {
    throw new FlyError("no access token available. Please login with 'flyctl auth login'")
  }
  switch (command) {
    case 'apps':
      if (sub === 'create') return appsCreate(rest)
      if (sub === 'list' || sub === 'ls') return appsList(rest)
      if (sub === 'releases') return releases(rest)
      throw unknownCommand(sub, 'flyctl apps')
    case 'status':
      return status(afterCommand)
    case 'checks':
      if (sub === 'list') return checksList(rest)
      throw unknownCommand(sub, 'flyctl checks')
    case 'releases':
      return releases(afterCommand)
    case 'secrets':
      return secrets(sub, rest)
    case 'deploy':
      return deploy(afterCommand)
    case 'ssh':
      return ssh(sub, rest)
    case 'logs':
      return logs(afterCommand)
    case 'proxy':
      return proxy(afterCommand)
    case 'postgres':
    case 'pg':
      return postgres(sub, rest)
    case 'volumes':
    case 'volume':
    case 'vol':
      return volumes(sub, rest)
    default:
      throw unknownCommand(command, 'flyctl')
  }
}

const interrupted = () => process.exit(127)
process.on('SIGINT', interrupted).on('SIGTERM', interrupted)
// Every invocation is logged when it starts (so hung and interrupted calls show too);
// `secrets import` is logged once its stdin has been read, with that stdin.
if (!(argv[0] === 'secrets' && argv[1] === 'import')) logCall(dir, argv, null)
try {
  await dispatch()
} catch (error) {
  if (!(error instanceof FlyError)) throw error
  err(`Error: ${error.message}\n`)
  if (error.extraStdout) out(error.extraStdout)
  process.exitCode = error.code
}
