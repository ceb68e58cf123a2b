// fly postgres create | attach (internal/command/postgres/create.go, attach.go, flypg/launcher.go;
// flyctl.md §8.1–§8.2, fly-platform.md §8): the unmanaged-Postgres notice first on stderr; create
// prints the operator password once, and with --snapshot-id restores the snapshot's data into the
// new app's first volume (a database of its own, model/restores.ts); attach creates the attachment,
// database and user over WireGuard *before* it writes the secret, so an interrupted attach leaves a
// user behind and the re-run fails on it.
import { randomBytes } from 'node:crypto'
import { APP_FLAG, FlyError, NON_INTERACTIVE, appName, err, out, parseFlags, sleep, str, unknownCommand } from '../cli.ts'
import { hex, newMachine, nowIso, startMachine } from '../model/fleet.ts'
import { allocate, hasFlycast } from '../model/ips.ts'
import { recordMinVersion, currentSecrets, updateSecrets } from '../model/secrets.ts'
import { hasCopy, startRestored } from '../model/restores.ts'
import { dir, fault, findApp, latency, requestId, sandbox } from '../runtime.ts'
import { readState, updateState } from '../state.ts'
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
  const org = str(flags, 'org')!
  const snapshotId = str(flags, 'snapshot-id')
  if (!(sandbox().orgs ?? ['microbima']).includes(org)) throw new FlyError(`organization ${org} not found`)
  if (str(flags, 'fork-from') && snapshotId) throw new FlyError('cannot specify both --fork-from and --snapshot-id')
  await latency('postgres')
  await fault('postgres create', name)
  const operatorPassword = str(flags, 'password') || password(16)
  const size = Number(flags['volume-size'])
  // flypg/launcher.go LaunchMachinesPostgres, step by step, each line as it happens: the app is
  // created first (createApp), then its Flycast address and secrets, and only then the volume:
  // a snapshot that does not exist (the API's wording for it is not documented) fails there,
  // after the app, its address and its secrets exist. Nothing cleans them up: the app stays.
  out(`Creating postgres cluster in organization ${org}\nCreating app...\n`)
  updateState(dir(), (state) => {
    if (state.apps[name]) throw new FlyError(`Validation failed: Name has already been taken (Request ID: ${requestId()})`)
    const app = (state.apps[name] = newApp(name, org))
    app.postgres = { operatorPassword, users: ['postgres', 'flypgadmin', 'repmgr'], databases: ['postgres'], attachments: [] }
  })
  const flycast = updateState(dir(), (state) => allocate(state.apps[name], 'private_v6').Address)
  out(`Setting secrets on app ${name}...\n`)
  const secretsVersion = updateState(dir(), (state) => {
    const secrets: Record<string, string> = { SU_PASSWORD: password(15), REPL_PASSWORD: password(15), OPERATOR_PASSWORD: operatorPassword, SSH_KEY: `-----BEGIN OPENSSH PRIVATE KEY-----\n${password(64)}\n-----END OPENSSH PRIVATE KEY-----`, SSH_CERT: `ssh-ed25519-cert-v01@openssh.com ${password(64)}`, FLY_CONSUL_URL: `https://:${password(24)}@consul-fra-9.fly-shared.net/${name}-${hex(4)}/` }
    // setSecrets: a restore is told by FLY_RESTORED_FROM, which the postgres-flex image reads at boot.
    if (snapshotId) secrets.FLY_RESTORED_FROM = snapshotId
    return updateSecrets(state.apps[name], secrets, [])
  })
  recordMinVersion(name, secretsVersion)
  out(`${snapshotId ? 'Restoring' : 'Provisioning'} 1 of 1 machines with image flyio/postgres-flex:16.8\n`)
  // CreateVolumeRequest.SnapshotID (machine 1 only); flaps wraps its error, and the launcher again.
  const snapshot = snapshotId ? Object.values(readState(dir()).volumes).flatMap((v) => v.snapshots.map((s) => ({ s, v }))).find(({ s }) => s.id === snapshotId && s.status === 'created') : undefined
  if (snapshotId && !snapshot) throw new FlyError(`failed to create volume: failed to create volume: snapshot ${snapshotId} not found (Request ID: ${requestId()})`)
  if (snapshot && size < snapshot.v.size_gb) throw new FlyError(`failed to create volume: failed to create volume: size_gb ${size} is smaller than the snapshot's volume (${snapshot.v.size_gb} GB) (Request ID: ${requestId()})`)
  const machineId = updateState(dir(), (state) => {
    const app = state.apps[name]
    app.deployed = true
    const volumeId = `vol_${hex(8)}`
    const machine = newMachine(app, { image: 'flyio/postgres-flex:16.8', env: { PRIMARY_REGION: region }, services: [], checks: [{ name: 'pg', type: 'http', port: 5500, path: '/flycheck/pg' }], metadata: { 'fly-managed-postgres': 'true', fly_platform_version: 'v2', fly_release_version: '1' }, mounts: [{ volume: volumeId, path: '/data' }], guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 } }, region, app.secretsVersion)
    startMachine(state, machine)
    app.machines.push(machine)
    state.volumes[volumeId] = { id: volumeId, name: 'pg_data', app: name, size_gb: size, region, created_at: nowIso(), attached_machine_id: machine.id, snapshots: [] }
    return machine.id
  })
  out('Waiting for machine to start...\n')
  if (snapshot) {
    // A machine restoring a snapshot starts once its volume holds the data (flyctl waits up to an
    // hour); the health-check watch then waits for the pg check, i.e. a database that answers.
    if (snapshot.s.copied && hasCopy(dir(), snapshot.s.id)) await startRestored(dir(), name, snapshot.s.id)
    await sleep(sandbox().restoreMs ?? 0)
  }
  out(`Machine ${machineId} is created\n==> Monitoring health checks\n  Waiting for ${machineId} to become healthy (started, 3/3)\n\nPostgres cluster ${name} created\n  Username:    postgres\n  Password:    ${operatorPassword}\n  Hostname:    ${name}.internal\n  Flycast:     ${flycast}\n  Proxy port:  5432\n  Postgres port:  5433\n  Connection string: postgres://postgres:${operatorPassword}@${name}.flycast:5432\n\nSave your credentials in a secure place -- you won't be able to see them again!\n\nConnect to postgres\nAny app within the ${org} organization can connect to this Postgres using the above connection string\n\nNow that you've set up Postgres, here's what you need to understand: https://fly.io/docs/postgres/getting-started/what-you-should-know/\n`)
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
