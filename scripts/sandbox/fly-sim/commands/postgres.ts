// fly postgres create | attach (internal/command/postgres/create.go, attach.go, flypg/launcher.go;
// flyctl.md §8.1–§8.2, fly-platform.md §8): the unmanaged-Postgres notice first on stderr; create
// prints the operator password once; attach creates the attachment, database and user over
// WireGuard *before* it writes the secret, so an interrupted attach leaves a user behind and the
// re-run fails on it.
import { randomBytes } from 'node:crypto'
import { APP_FLAG, FlyError, NON_INTERACTIVE, appName, err, out, parseFlags, str, unknownCommand } from '../cli.ts'
import { hex, newMachine, nowIso, startMachine } from '../model/fleet.ts'
import { allocate, hasFlycast } from '../model/ips.ts'
import { recordMinVersion, currentSecrets, updateSecrets } from '../model/secrets.ts'
import { dir, fault, findApp, latency, requestId, sandbox } from '../runtime.ts'
import { updateState } from '../state.ts'
import { newApp } from '../model/apps.ts'

const NOTICE = "\nUnmanaged Fly Postgres is not supported by Fly.io Support and users are responsible for operations, management, and disaster recovery. If you'd like a managed, supported solution, try 'fly mpg' (Managed Postgres).\nPlease visit https://fly.io/docs/mpg/overview/ for more information about Managed Postgres.\n\n"
const password = (n: number) => randomBytes(n).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, n)

async function create(args: string[]) {
  const { flags } = parseFlags(args, {
    name: { short: 'n', value: true }, region: { short: 'r', value: true }, org: { short: 'o', value: true }, 'initial-cluster-size': { value: true }, 'vm-size': { value: true }, 'volume-size': { value: true },
    password: { short: 'p', value: true }, 'generate-name': { value: false }, flex: { value: false }, stolon: { value: false }, autostart: { value: false }, 'enable-backups': { value: false }, detach: { value: false },
    'snapshot-id': { value: true }, 'fork-from': { value: true }, 'image-ref': { value: true }, 'vm-cpus': { value: true }, 'vm-memory': { value: true },
  })
  for (const needed of ['name', 'region', 'org', 'initial-cluster-size', 'vm-size', 'volume-size']) if (!flags[needed]) throw new FlyError(NON_INTERACTIVE)
  const name = str(flags, 'name')!
  const region = str(flags, 'region')!
  await latency('postgres')
  await fault('postgres create', name)
  const operatorPassword = str(flags, 'password') || password(16)
  const { flycast, machineId } = updateState(dir(), (state) => {
    if (state.apps[name]) throw new FlyError(`Validation failed: Name has already been taken (Request ID: ${requestId()})`)
    if (!(sandbox().orgs ?? ['microbima']).includes(str(flags, 'org')!)) throw new FlyError(`organization ${str(flags, 'org')} not found`)
    const app = (state.apps[name] = newApp(name, str(flags, 'org')!))
    app.postgres = { operatorPassword, users: ['postgres', 'flypgadmin', 'repmgr'], databases: ['postgres'], attachments: [] }
    app.deployed = true
    const volumeId = `vol_${hex(8)}`
    const machine = newMachine(app, { image: 'flyio/postgres-flex:16.8', env: { PRIMARY_REGION: region }, services: [], checks: [{ name: 'pg', type: 'http', port: 5500, path: '/flycheck/pg' }], metadata: { 'fly-managed-postgres': 'true', fly_platform_version: 'v2', fly_release_version: '1' }, mounts: [{ volume: volumeId, path: '/data' }], guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 } }, region, 0)
    startMachine(state, machine)
    app.machines.push(machine)
    state.volumes[volumeId] = { id: volumeId, name: 'pg_data', app: name, size_gb: Number(flags['volume-size']), region, created_at: nowIso(), attached_machine_id: machine.id, snapshots: [] }
    return { flycast: allocate(app, 'private_v6').Address, machineId: machine.id }
  })
  // flypg/launcher.go LaunchMachinesPostgres: one line per machine (its state as launched), the
  // health-check watch, then the credentials block and the closing paragraphs.
  out(`Creating postgres cluster in organization ${flags.org}\nCreating app...\nSetting secrets on app ${name}...\nProvisioning 1 of 1 machines with image flyio/postgres-flex:16.8\nWaiting for machine to start...\nMachine ${machineId} is created\n==> Monitoring health checks\n  Waiting for ${machineId} to become healthy (started, 3/3)\n\nPostgres cluster ${name} created\n  Username:    postgres\n  Password:    ${operatorPassword}\n  Hostname:    ${name}.internal\n  Flycast:     ${flycast}\n  Proxy port:  5432\n  Postgres port:  5433\n  Connection string: postgres://postgres:${operatorPassword}@${name}.flycast:5432\n\nSave your credentials in a secure place -- you won't be able to see them again!\n\nConnect to postgres\nAny app within the ${flags.org} organization can connect to this Postgres using the above connection string\n\nNow that you've set up Postgres, here's what you need to understand: https://fly.io/docs/postgres/getting-started/what-you-should-know/\n`)
}

async function attach(args: string[]) {
  const { flags, positionals } = parseFlags(args, { ...APP_FLAG, 'database-name': { value: true }, 'database-user': { value: true }, 'variable-name': { value: true }, superuser: { value: false }, yes: { short: 'y', value: false } })
  const consumer = appName(flags)
  const pgName = positionals[0]
  if (!pgName) throw new FlyError(NON_INTERACTIVE)
  await latency('postgres')
  const f = await fault('postgres attach', consumer)
  const variable = str(flags, 'variable-name') || 'DATABASE_URL'
  const snake = consumer.replace(/-/g, '_').toLowerCase()
  const db = (str(flags, 'database-name') || snake).replace(/-/g, '_').toLowerCase()
  const user = (str(flags, 'database-user') || snake).replace(/-/g, '_').toLowerCase()
  const step = (s: string) => (f?.kind === 'attach-interrupted' && f.detail === s ? `interrupted after ${s}` : undefined)
  const result = updateState(dir(), (state) => {
    const pg = state.apps[pgName]
    if (!pg?.postgres) throw new FlyError(`app ${pgName} is not a postgres app`)
    const app = findApp(state, consumer)
    if (!pg.machines.some((m) => m.state === 'started')) throw new FlyError('no active machines found')
    out('Checking for existing attachments\n')
    if (currentSecrets(app).has(variable)) throw new FlyError(`consumer app "${consumer}" already contains a secret named ${variable}`)
    if (pg.postgres.databases.includes(db) && !flags.yes) throw new FlyError(NON_INTERACTIVE)
    if (pg.postgres.users.includes(user)) throw new FlyError(`database user "${user}" already exists. Please specify a new database user via --database-user`)
    out('Registering attachment\n')
    pg.postgres.attachments.push(consumer)
    if (step('register')) return { interrupted: 'register' }
    if (!pg.postgres.databases.includes(db)) {
      out('Creating database\n')
      pg.postgres.databases.push(db)
    }
    if (step('database')) return { interrupted: 'database' }
    out('Creating user\n')
    pg.postgres.users.push(user)
    if (step('user')) return { interrupted: 'user' }
    const host = hasFlycast(pg) ? `${pgName}.flycast` : `top2.nearest.of.${pgName}.internal`
    const url = `postgres://${user}:${password(15)}@${host}:5432/${db}?sslmode=disable`
    const version = updateSecrets(app, { [variable]: url }, [])
    return { url, version }
  })
  // An interrupted attach (Ctrl-C, a cancelled CI job) cancels flyctl's context: the step's error
  // wraps context.Canceled, so cli.Run exits 127 and prints nothing; what was created stays.
  if ('interrupted' in result) throw new FlyError('', 127)
  recordMinVersion(consumer, result.version)
  out(`\nPostgres cluster ${pgName} is now attached to ${consumer}\nThe following secret was added to ${consumer}:\n  ${variable}=${result.url}\n`)
}

export async function postgres(sub: string | undefined, args: string[]) {
  // cobra PreRun on the direct sub-commands: the notice comes first, even when the command fails.
  if (['attach', 'connect', 'create', 'detach', 'failover', 'import', 'list', 'restart'].includes(sub ?? '')) err(NOTICE)
  if (sub === 'create') return create(args)
  if (sub === 'attach') return attach(args)
  throw unknownCommand(sub, 'flyctl postgres')
}
