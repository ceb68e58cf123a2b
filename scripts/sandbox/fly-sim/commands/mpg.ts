// fly mpg create | list | status | attach | proxy | backup | restore | destroy (internal/command/mpg/*.go,
// mpg/v2/*.go, internal/uiex/mpg/v2/client.go; fly-mpg.md): macaroon tokens only; the region is
// checked before anything is created; create waits until the cluster is ready; attach writes the
// *pooled* URL as a staged secret; proxy tunnels to the direct address; backups and restores are
// asynchronous; empty lists are plain text even with --json. A backup holds the data as it was when
// it was taken, and a restored cluster stays initializing until that data is loaded into a database
// of its own (model/restores.ts); destroy needs --yes without a terminal.
import { randomBytes } from 'node:crypto'
import { call, env } from '../call.ts'
import { FlyError, JSON_FLAG, NON_INTERACTIVE, err, hang, json, out, parseFlags, sleep, str, unknownCommand } from '../cli.ts'
import { nowIso } from '../model/fleet.ts'
import { currentSecrets, recordMinVersion, updateSecrets } from '../model/secrets.ts'
import { dir, fault, findApp, latency, sandbox } from '../runtime.ts'
import { copyForBackup, dropCopy, hasCopy, startRestored, stopRestored } from '../model/restores.ts'
import { type SimMpgCluster, readState, updateState } from '../state.ts'
import { orgJson } from './apps.ts'
import { mpgRegions } from './platform.ts'
import { serveTunnel } from './proxy.ts'

const PLANS: Record<string, { name: string; cpu: string; memory: string; price: number }> = {
  basic: { name: 'Basic', cpu: 'Shared x 2', memory: '1 GB', price: 38 },
  starter: { name: 'Starter', cpu: 'Shared x 2', memory: '2 GB', price: 72 },
  launch: { name: 'Launch', cpu: 'Performance x 2', memory: '8 GB', price: 282 },
  scale: { name: 'Scale', cpu: 'Performance x 4', memory: '33 GB', price: 962 },
  Performance: { name: 'Performance', cpu: 'Performance x 8', memory: '64 GB', price: 1922 },
}
const clusterId = () => Array.from(randomBytes(16), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('')
const provisionMs = () => sandbox().mpgProvisionMs ?? 0
const backupId = () => `bk_${randomBytes(6).toString('hex')}`

/**
 * mpg.go requireMacaroonToken: the token (-t, FLY_ACCESS_TOKEN, FLY_API_TOKEN) must hold a macaroon.
 * fly-go tokens.Parse strips `FlyV1`/`Bearer` schemes, splits on commas and counts only parts
 * prefixed fm1r_, fm1a_ or fm2_ as macaroons; anything else (fo1_… user tokens) is refused. The
 * error text ends in a newline of its own, so a blank line follows it.
 */
function requireMacaroon() {
  const argv = call().argv
  const flagIndex = argv.findIndex((a) => a === '-t' || a === '--access-token' || a.startsWith('--access-token='))
  const fromFlag = flagIndex < 0 ? undefined : argv[flagIndex].includes('=') ? argv[flagIndex].split('=').slice(1).join('=') : argv[flagIndex + 1]
  let token = (fromFlag ?? (env('FLY_ACCESS_TOKEN') || env('FLY_API_TOKEN') || '')).trim()
  for (;;) {
    const [scheme, ...rest] = token.split(' ')
    if (!rest.length || !/^(bearer|flyv1)$/i.test(scheme.trim())) break
    token = rest.join(' ').trim()
  }
  const macaroons = token.split(',').map((t) => t.trim()).filter((t) => ['fm1r', 'fm1a', 'fm2'].includes(t.split('_')[0]))
  if (!macaroons.length) {
    throw new FlyError('MPG commands require updated tokens but found older-style tokens.\n\nPlease upgrade your authentication by running:\n  flyctl auth logout\n  flyctl auth login\n')
  }
}

/** ClusterFromArgOrSelect: a lookup that fails for any reason reads as "not found". */
function findCluster(id: string | undefined): SimMpgCluster {
  if (!id) throw new FlyError(NON_INTERACTIVE)
  const cluster = readState(dir()).mpg[id]
  if (!cluster) throw new FlyError(`managed postgres cluster "${id}" not found`)
  return cluster
}

/** Clusters and backups move on with time: initializing → ready, pending → completed (or failed). */
function settle() {
  updateState(dir(), (state) => {
    for (const c of Object.values(state.mpg)) {
      if (c.status === 'initializing' && !c.restoring && c.readyAt >= 0 && Date.now() >= c.readyAt) c.status = 'ready'
      for (const b of c.backups) {
        if (!b.stop && b.readyAt >= 0 && Date.now() >= b.readyAt) {
          b.status = b.fails ? 'failed' : 'completed'
          b.stop = nowIso()
        }
      }
    }
  })
}

const pooledUrl = (c: SimMpgCluster, user = c.user, db = c.dbname) => `postgresql://${user}:${c.password}@pgbouncer.${c.id}.flympg.net/${db}`

/** fly-go types.go Organization, as the ui-ex API's cluster objects carry it: no JSON tags, so
 * capitalised keys; WireGuardPeers and DelegatedWireGuardTokens are structs, not pointers. */
function fullOrgJson(slug: string) {
  const { ID, InternalNumericID, Name, Slug, RawSlug, PaidPlan } = orgJson(slug)
  return {
    ID, InternalNumericID, Name, RemoteBuilderImage: '', RemoteBuilderApp: null, Slug, RawSlug, Type: 'SHARED', PaidPlan, Billable: true, Settings: null,
    AllowedReplaySourceOrgSlugs: null, AllowAllCrossNetworkReplays: false, WireGuardPeer: null, WireGuardPeers: { Nodes: null, Edges: null },
    DelegatedWireGuardTokens: { Nodes: null, Edges: null }, LoggedCertificates: null,
  }
}

/** uiex/mpg/types.go AttachedApp: {name, id int64}. */
const attachedJson = (c: SimMpgCluster) => (c.attachedApps.length ? c.attachedApps.map((a) => ({ name: a.name, id: /^\d+$/.test(a.id) ? Number(a.id) : parseInt(a.id.slice(0, 12), 16) })) : null)

/** uiex/mpg/v2 ManagedCluster (status, lookups): field order as the Go struct. */
function clusterJson(c: SimMpgCluster) {
  return { id: c.id, name: c.name, status: c.status, engine: 'postgres', plan: c.plan, region: c.region, organization: fullOrgJson(c.org), mpgd_cluster_id: c.id, disk: c.disk, replicas: 0, ip_assignments: { direct: c.directIp }, attached_apps: attachedJson(c) }
}

/** uiex/mpg/v1 ManagedCluster (what `mpg list` renders): another field order, a version, no engine. */
function listedClusterJson(c: SimMpgCluster) {
  return { id: c.id, mpgd_cluster_id: c.id, version: 2, name: c.name, region: c.region, status: c.status, plan: c.plan, disk: c.disk, replicas: 0, organization: fullOrgJson(c.org), ip_assignments: { direct: c.directIp }, attached_apps: attachedJson(c) }
}

async function create(args: string[]) {
  const { flags } = parseFlags(args, { name: { short: 'n', value: true }, org: { short: 'o', value: true }, region: { short: 'r', value: true }, plan: { value: true }, 'volume-size': { value: true }, 'pg-major-version': { value: true }, 'enable-postgis-support': { value: false }, v2: { value: false } })
  requireMacaroon()
  const name = str(flags, 'name')
  if (!name) throw new FlyError('name argument or flag must be specified when not running interactively')
  const orgs = sandbox().orgs ?? ['microbima']
  let org = str(flags, 'org') || env('FLY_ORG') || env('FLY_ORGANIZATION')
  if (!org) {
    if (orgs.length !== 1) throw new FlyError('org slug must be specified when not running interactively')
    org = orgs[0]
    err(`automatically selected personal organization: ${org}\n`)
  }
  if (!orgs.includes(org)) throw new FlyError(`organization ${org} not found`)
  // runCreate: the major version is checked before RunCreate looks at (or prompts for) the region.
  const major = Number(str(flags, 'pg-major-version') ?? 16)
  if (major !== 16 && major !== 17) throw new FlyError(`invalid Postgres major version: ${str(flags, 'pg-major-version')}. Supported versions are 16 and 17`)
  await latency('mpg')
  const region = str(flags, 'region')
  if (!region) throw new FlyError(NON_INTERACTIVE)
  if (!mpgRegions().includes(region)) throw new FlyError(`region ${region} is not available for Managed Postgres. Available regions: [${mpgRegions().join(' ')}]`)
  // normalizePlan: lowercased and trimmed; anything unknown (even "performance") is basic non-interactively.
  const key = (str(flags, 'plan') ?? '').trim().toLowerCase()
  const plan = PLANS[key] && key !== 'Performance' ? key : 'basic'
  const f = await fault('mpg create', name)
  const id = clusterId()
  const size = Number(str(flags, 'volume-size') ?? 10)
  updateState(dir(), (state) => {
    state.mpg[id] = {
      id, name, org, region, plan, disk: size, status: 'initializing', readyAt: f?.kind === 'never-ready' ? -1 : Date.now() + provisionMs(),
      user: 'fly-user', password: randomBytes(18).toString('base64url'), dbname: 'fly-db', directIp: `fdaa:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}:0:1::${randomBytes(1)[0] % 200 + 2}`,
      attachedApps: [], backups: [], createdAt: nowIso(),
    }
    if (f?.kind === 'error') state.mpg[id].readyAt = -2
  })
  const p = PLANS[plan]
  out(`Selected Plan: ${p.name}\n  CPU: ${p.cpu}\n  Memory: ${p.memory}\n  Price: $${p.price} per month\n\nWaiting for cluster ${name} (${id}) to be ready...\nYou can view the cluster in the UI at: https://fly.io/dashboard/${org}/managed_postgres/${id}\nYou can cancel this wait with Ctrl+C - the cluster will continue provisioning in the background.\nOnce ready, you can connect to the database with: fly mpg connect ${id}\n\n`)
  // Polls every 5 s with no timeout; only "ready" or "error" end the wait.
  for (;;) {
    settle()
    const cluster = readState(dir()).mpg[id]
    if (cluster.readyAt === -2) {
      updateState(dir(), (state) => void (state.mpg[id].status = 'error'))
      throw new FlyError('cluster creation failed')
    }
    if (cluster.status === 'ready') break
    await sleep(Math.min(200, Math.max(20, cluster.readyAt - Date.now())))
  }
  const c = readState(dir()).mpg[id]
  out(`\nManaged Postgres cluster created successfully!\n  ID: ${id}\n  Name: ${name}\n  Organization: ${org}\n  Region: ${region}\n  Plan: ${plan}\n  Disk: ${size}GB\n  PostGIS: false\n  Connection string: ${pooledUrl(c)}\n`)
}

async function list(args: string[]) {
  const { flags } = parseFlags(args, { org: { short: 'o', value: true }, deleted: { value: false }, ...JSON_FLAG })
  requireMacaroon()
  const org = str(flags, 'org')
  if (!org) throw new FlyError('slug argument must be specified when not running interactively')
  await latency('mpg')
  await fault('mpg list')
  settle()
  const clusters = Object.values(readState(dir()).mpg).filter((c) => c.org === org)
  if (!clusters.length || flags.deleted) return out(`No ${flags.deleted ? 'deleted ' : ''}managed postgres clusters found in organization ${org}\n`)
  if (flags.json) return json(clusters.map(listedClusterJson))
  out(`ID\tName\tOrg\tRegion\tStatus\tPlan\tAttached Apps\n${clusters.map((c) => `${c.id}\t${c.name}\t${c.org}\t${c.region}\t${c.status}\t${c.plan}\t${c.attachedApps.map((a) => a.name).join(', ') || '<no attached apps>'}`).join('\n')}\n`)
}

async function status(args: string[]) {
  const { flags, positionals } = parseFlags(args, JSON_FLAG)
  requireMacaroon()
  await latency('mpg')
  await fault('mpg status')
  settle()
  const c = findCluster(positionals[0])
  const credentials = { status: c.status === 'ready' ? 'ready' : c.status, user: c.user, password: c.password, dbname: c.dbname, pgbouncer_uri: pooledUrl(c) }
  if (flags.json) return json({ data: clusterJson(c), credentials })
  out(`ID\t${c.id}\nName\t${c.name}\nOrganization\t${c.org}\nRegion\t${c.region}\nStatus\t${c.status}\nAllocated Disk (GB)\t${c.disk}\nReplicas\t0\nDirect IP\t${c.directIp}\n`)
}

async function attach(args: string[]) {
  const { flags, positionals } = parseFlags(args, { app: { short: 'a', value: true }, config: { short: 'c', value: true }, 'variable-name': { value: true }, database: { short: 'd', value: true }, username: { short: 'u', value: true } })
  requireMacaroon()
  const app = str(flags, 'app') || env('FLY_APP')
  if (!app) throw new FlyError('the config for your app is missing an app name, add an app field to the fly.toml file or specify with the -a flag')
  await latency('mpg')
  const f = await fault('mpg attach', app)
  settle()
  const target = findApp(readState(dir()), app)
  if (!positionals[0]) {
    // ClusterFromArgOrSelect without an ID lists the org's clusters and prompts for one.
    out(`Listing clusters in organization ${target.org}\n`)
    const any = Object.values(readState(dir()).mpg).some((c) => c.org === target.org)
    throw new FlyError(`failed retrieving cluster : ${any ? NON_INTERACTIVE : `no managed postgres clusters found in organization ${target.org}`}`)
  }
  let cluster: SimMpgCluster
  try {
    cluster = findCluster(positionals[0])
  } catch (error) {
    throw new FlyError(`failed retrieving cluster ${positionals[0]}: ${(error as Error).message}`)
  }
  if (target.org !== cluster.org) throw new FlyError(`app ${app} is in organization ${target.org}, but cluster ${cluster.id} is in organization ${cluster.org}. They must be in the same organization to attach`)
  const variable = str(flags, 'variable-name') || 'DATABASE_URL'
  if (currentSecrets(target).has(variable)) throw new FlyError(`app ${app} already has ${variable} set. Use 'fly secrets unset ${variable}' to remove it first`)
  const url = pooledUrl(cluster, str(flags, 'username') ?? cluster.user, str(flags, 'database') ?? cluster.dbname)
  const version = updateState(dir(), (state) => {
    const v = updateSecrets(state.apps[app], { [variable]: url }, [])
    if (f?.kind !== 'attachment-record-fail') state.mpg[cluster.id].attachedApps.push({ name: app, id: state.apps[app].id })
    return v
  })
  recordMinVersion(app, version)
  if (f?.kind === 'attachment-record-fail') err('Warning: failed to create attachment record: 500 Internal Server Error\n')
  out(`\nPostgres cluster ${cluster.id} is being attached to ${app}\nThe following secret was added to ${app}:\n  ${variable}=${url}\n`)
}

async function proxy(args: string[]) {
  // No --watch-stdin here (unlike `fly proxy`): mpg proxy registers only -p and -b.
  const { flags, positionals } = parseFlags(args, { 'local-port': { short: 'p', value: true }, 'bind-addr': { short: 'b', value: true } })
  requireMacaroon()
  await latency('mpg')
  // A fault may name the cluster (as `app`), so that one environment's tunnel fails, not the other's.
  const f = await fault('mpg proxy', positionals[0])
  settle()
  const c = findCluster(positionals[0])
  if (c.status === 'initializing') throw new FlyError('cluster is still initializing, wait a bit more')
  if (c.status === 'error' || !c.password) throw new FlyError('error getting cluster password')
  if (!c.directIp) throw new FlyError('error getting cluster IP')
  if (f?.kind === 'proxy-never-ready') await hang()
  const backend = sandbox().postgres?.[c.name]
  if (!backend) throw new FlyError(`tunnel unavailable: no route to ${c.directIp} (the sandbox has no backend for ${c.name})`)
  return serveTunnel({ local: str(flags, 'local-port') ?? '16380', bind: str(flags, 'bind-addr') ?? '127.0.0.1', backend, shown: `[${c.directIp}]:5432`, watchStdin: false, dieAfterMs: f?.kind === 'proxy-dies' ? (f.ms ?? 0) : undefined })
}

async function backup(action: string | undefined, args: string[]) {
  requireMacaroon()
  if (action === 'create') {
    const { flags, positionals } = parseFlags(args, { type: { value: true } })
    const type = str(flags, 'type') ?? 'full'
    if (type !== 'full' && type !== 'incr') throw new FlyError("--type must be either 'full' or 'incr'")
    await latency('mpg')
    const f = await fault('mpg backup create')
    const c = findCluster(positionals[0])
    // RunBackupCreate prints its first line before the API call.
    out(`Creating ${type} backup for cluster ${c.id}...\n`)
    if (f?.kind === 'fail') throw new FlyError(`failed to create backup: 500 Internal Server Error`)
    // Faults: backup-fail (it ends `failed`), backup-stuck (it never ends, showing `detail` or
    // "pending": a status word the toolkit may not know), scheduled-backup (the platform's own
    // backup slipped in a second earlier and is completed already; this one takes `ms`).
    // Each backup is the database as it is now: rows written from here on are not in it.
    const now = Date.now()
    const ids = { scheduled: backupId(), asked: backupId() }
    const backend = sandbox().postgres?.[c.name]
    const copied = { scheduled: f?.kind === 'scheduled-backup' && (await copyForBackup(dir(), ids.scheduled, backend)), asked: await copyForBackup(dir(), ids.asked, backend) }
    updateState(dir(), (state) => {
      const backups = state.mpg[c.id].backups
      if (f?.kind === 'scheduled-backup') {
        const start = new Date(now - 1000).toISOString().replace(/\.\d+Z$/, 'Z')
        backups.push({ id: ids.scheduled, cluster: c.id, status: 'completed', type: 'full', start, stop: nowIso(), readyAt: now, scheduled: true, copied: copied.scheduled })
      }
      backups.push({
        id: ids.asked, cluster: c.id, status: f?.kind === 'backup-stuck' ? (f.detail ?? 'pending') : 'pending', type, start: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'), stop: '',
        readyAt: f?.kind === 'backup-stuck' ? -1 : now + (f?.ms ?? provisionMs()), ...(f?.kind === 'backup-fail' ? { fails: true } : {}), copied: copied.asked,
      })
    })
    return out('Backup queued successfully!\n')
  }
  if (action === 'list' || action === 'ls') {
    const { flags, positionals } = parseFlags(args, { ...JSON_FLAG, all: { value: false } })
    await latency('mpg')
    await fault('mpg backup list')
    settle()
    const c = findCluster(positionals[0])
    // RunBackupList: kept when start is within 24 h, or does not parse as RFC 3339.
    const recent = c.backups.filter((b) => flags.all || !(Date.now() - Date.parse(b.start) >= 24 * 3600_000))
    if (!c.backups.length) return out(`No backups found for cluster ${c.id}\n`)
    if (!recent.length) return out(`No backups found for cluster ${c.id} in the last 24 hours (use --all to see all backups)\n`)
    // The API's order is not documented and flyctl does not sort: newest first here, so that
    // nothing may take the last item for the newest.
    recent.sort((a, b) => Date.parse(b.start) - Date.parse(a.start))
    if (flags.json) return json(recent.map(({ id, status, type, start, stop }) => ({ id, status, type, start, stop })))
    return out(`ID\tStart\tStatus\tType\n${recent.map((b) => `${b.id}\t${b.start}\t${b.status}\t${b.type}`).join('\n')}\n`)
  }
  throw unknownCommand(action, 'flyctl mpg backup')
}

const RFC3339 = '2006-01-02T15:04:05Z07:00'
/**
 * Go's time.Parse(time.RFC3339, value) error text (time/format.go ParseError), or undefined when
 * it parses: the layout is walked element by element; a mismatch names the rest of the value and
 * the layout element (a literal or a std chunk; the hour alone may have one digit), leftovers are
 * "extra text", bad fields "out of range" (days are not checked against the month).
 */
function rfc3339Error(value: string): string | undefined {
  const q = (s: string) => JSON.stringify(s)
  const cannot = (rest: string, elem: string) => `parsing time ${q(value)} as ${q(RFC3339)}: cannot parse ${q(rest)} as ${q(elem)}`
  const steps: [string, RegExp, [string, number, number]?][] = [
    ['2006', /^\d{4}/], ['-', /^-/], ['01', /^\d{2}/, ['month', 1, 12]], ['-', /^-/], ['02', /^\d{2}/, ['day', 1, 31]], ['T', /^T/],
    ['15', /^\d{1,2}/, ['hour', 0, 23]], [':', /^:/], ['04', /^\d{2}/, ['minute', 0, 59]], [':', /^:/], ['05', /^\d{2}(\.\d+)?/, ['second', 0, 59]], ['Z07:00', /^(Z|[+-]\d{2}:\d{2})/],
  ]
  let rest = value
  for (const [elem, pattern, range] of steps) {
    const match = pattern.exec(rest)
    if (!match) return cannot(rest, elem)
    if (range && (Number(match[0]) < range[1] || Number(match[0]) > range[2])) return `parsing time ${q(value)}: ${range[0]} out of range`
    rest = rest.slice(match[0].length)
  }
  return rest ? `parsing time ${q(value)}: extra text: ${q(rest)}` : undefined
}

async function restore(args: string[]) {
  const { flags, positionals } = parseFlags(args, { 'backup-id': { value: true }, 'pitr-time': { value: true }, name: { short: 'n', value: true } })
  requireMacaroon()
  const backupId = str(flags, 'backup-id')
  const pitr = str(flags, 'pitr-time')
  if (!backupId && !pitr) throw new FlyError('one of --backup-id or --pitr-time is required')
  if (backupId && pitr) throw new FlyError('--backup-id and --pitr-time are mutually exclusive')
  const parseError = pitr ? rfc3339Error(pitr) : undefined
  if (parseError) throw new FlyError(`--pitr-time must be an RFC3339 timestamp with an explicit offset (e.g. 2026-06-01T12:00:00Z): ${parseError}`)
  await latency('mpg')
  await fault('mpg restore')
  settle()
  const source = findCluster(positionals[0])
  // RunRestore prints its first line before the API call.
  out(backupId ? `Restoring cluster ${source.id} from backup ${backupId}...\n` : `Restoring cluster ${source.id} to point in time ${pitr}...\n`)
  // POST /postgresv2/<id>/restore (uiex/mpg/v2 RestoreClusterBackup): flyctl turns a 404 into
  // "cluster <id> not found", naming the source cluster. Which status the API gives a backup it does
  // not know is not documented: the harsher reading, a 404, so flyctl's words blame the cluster.
  // A backup that is not completed: 422 with the API's body (its wording is not documented either).
  const backup = backupId ? source.backups.find((b) => b.id === backupId) : undefined
  if (backupId && !backup) throw new FlyError(`failed to restore cluster: cluster ${source.id} not found`)
  if (backup && backup.status !== 'completed') throw new FlyError(`failed to restore cluster: failed to restore cluster (status 422): {"error":"backup ${backup.id} is not completed"}`)
  const id = clusterId()
  const name = str(flags, 'name') ?? `${source.name}-restore-${id.slice(0, 6)}`
  // The data: the backup's copy (PITR restores the newest one taken by then, the harsher reading).
  const from = backup ?? [...source.backups].filter((b) => b.status === 'completed' && Date.parse(b.start) <= Date.parse(pitr!)).sort((a, b) => Date.parse(a.start) - Date.parse(b.start)).at(-1)
  const loading = Boolean(from?.copied && hasCopy(dir(), from.id))
  const wait = sandbox().restoreMs ?? provisionMs()
  updateState(dir(), (state) => {
    state.mpg[id] = { ...structuredClone(source), id, name, status: 'initializing', readyAt: Date.now() + wait, password: randomBytes(18).toString('base64url'), attachedApps: [], backups: [], createdAt: nowIso(), restoredFrom: source.id, directIp: `fdaa:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}:0:1::${randomBytes(1)[0] % 200 + 2}`, ...(loading ? { restoring: true } : {}) }
  })
  if (loading) {
    const stateDir = dir()
    // The load outlives this call (the API answers at once); the cluster is ready only after it.
    void startRestored(stateDir, name, from!.id).then(
      () => updateState(stateDir, (state) => void (state.mpg[id] && (state.mpg[id].restoring = false))),
      () => updateState(stateDir, (state) => void (state.mpg[id] && Object.assign(state.mpg[id], { restoring: false, status: 'error', readyAt: -1 }))),
    )
  }
  out(`Restore initiated successfully!\n  Cluster ID: ${id}\n  Cluster Name: ${name}\n`)
}

/** destroy.go runDestroy, v2/run_destroy.go RunDestroy: the lookup first, then without --yes a
 * warning and the non-interactive refusal; the DELETE is asynchronous on Fly ("may take some
 * time"); here the cluster, its backups and the database restored for it are gone at once. */
async function destroy(args: string[]) {
  const { flags, positionals } = parseFlags(args, { yes: { short: 'y', value: false } })
  requireMacaroon()
  if (positionals.length !== 1) throw new FlyError(`accepts 1 arg(s), received ${positionals.length}`)
  await latency('mpg')
  await fault('mpg destroy', positionals[0])
  settle()
  const c = findCluster(positionals[0])
  if (!flags.yes) {
    err('Destroying a managed Postgres cluster is not reversible. All data will be permanently lost.\n')
    throw new FlyError('--yes flag must be specified when not running interactively')
  }
  updateState(dir(), (state) => void delete state.mpg[c.id])
  for (const b of c.backups) dropCopy(dir(), b.id)
  await stopRestored(dir(), c.name)
  out(`Managed Postgres cluster ${c.name} (${c.id}) scheduled to be destroyed (may take some time)\n`)
}

export async function mpg(sub: string | undefined, args: string[]) {
  if (sub === 'create') return create(args)
  if (sub === 'list' || sub === 'ls') return list(args)
  if (sub === 'status') return status(args)
  if (sub === 'attach') return attach(args)
  if (sub === 'proxy') return proxy(args)
  if (sub === 'backup' || sub === 'backups') return backup(args[0], args.slice(1))
  if (sub === 'restore') return restore(args)
  if (['destroy', 'delete', 'remove', 'rm'].includes(sub ?? '')) return destroy(args)
  throw unknownCommand(sub, 'flyctl mpg')
}
