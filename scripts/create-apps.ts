// Sections 6.1/6.2 of the deployment strategy: create the environment's three Fly apps, and give
// the internal API the private networking it needs: a Flycast address (private IPv6), and no
// public IP, so only the gateway reaches it. Lists what exists first and changes only what is
// missing, so a second run changes nothing. Production asks for confirmation.
// DB=1 also creates the environment's database and attaches it to the internal API: Fly Postgres
// (`flypg`, as the strategy document) or Managed Postgres (`mpg`), as infra/fly/settings.json or
// DB_KIND say. Both print credentials: they are kept (in the env file, mode 0600), never printed.
import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { envFlag, main, type Context } from './lib/core/cli.js'
import { envFilePath } from './lib/secrets/env-files.js'
import { confirmProduction } from './lib/safety/confirm.js'
import { CommandError, OperationError, UserError } from './lib/core/errors.js'
import { table } from './lib/core/log.js'
import { PUBLIC_IP, makePrivate } from './lib/fly/network.js'
import { flyAppName, databaseAppName, shortName, type AppKey } from './lib/core/names.js'
import { registerSecret } from './lib/secrets/mask.js'
import { loadSettings, type Settings } from './lib/core/settings.js'
import type { MpgCluster } from './lib/fly/types.js'
import dotenv from 'dotenv'


/** Why the env file cannot take the database's credentials, if it cannot: checked before anything
 * is created. An existing file is opened for appending (nothing written), which also catches what
 * access(2) misses when run as root (a read-only or immutable file); a missing one needs its
 * nearest existing folder to be a writable folder. */
function unwritable(path: string): string | undefined {
  const why = (code: string | undefined) => `${path} cannot be written (${code}): DB=1 keeps the new database's credentials there; fix it first`
  try {
    if (existsSync(path)) {
      const stat = statSync(path)
      if (stat.isDirectory()) return why('EISDIR')
      if (!stat.isFile()) return `${path} is not a regular file: DB=1 keeps the new database's credentials there; make it a plain file`
      closeSync(openSync(path, 'a'))
      return undefined
    }
    let dir = dirname(path)
    while (!existsSync(dir)) dir = dirname(dir)
    if (!statSync(dir).isDirectory()) return why('ENOTDIR')
    accessSync(dir, constants.W_OK)
    return undefined
  } catch (error) {
    return why((error as NodeJS.ErrnoException).code)
  }
}

/** Env files that could not take new credentials in this run (they went to a fallback file). */
const saveFailures: string[] = []

/** Keeps connection strings in the env file (mode 0600): a CHANGE_ME placeholder from the
 * .env.example is replaced, a real value is the operator's and is left alone. If the file cannot
 * be written after all, the values go to a 0600 file of their own: credentials are never lost. */
function saveValues(ctx: Context, path: string, values: Record<string, string>): string {
  for (const value of Object.values(values)) registerSecret(value)
  try {
    mkdirSync(dirname(path), { recursive: true })
    let text = existsSync(path) ? readFileSync(path, 'utf8') : ''
    const done: string[] = []
    for (const [key, value] of Object.entries(values)) {
      const line = new RegExp(`^\\s*${key}\\s*=.*$`, 'm')
      const current = line.exec(text)?.[0]
      if (current && !current.includes('CHANGE_ME')) continue
      // Single quotes: the value is read back byte for byte (a URL has no quote in it).
      text = current ? text.replace(line, () => `${key}='${value}'`) : `${text}${text && !text.endsWith('\n') ? '\n' : ''}${key}='${value}'\n`
      done.push(key)
    }
    writeFileSync(path, text, { mode: 0o600 })
    chmodSync(path, 0o600)
    return done.length ? `${done.join(', ')} written (mode 0600)` : 'already set there: left as it is'
  } catch (error) {
    // Never lost, never printed: the first place that takes them, each file created new (wx) 0600.
    const text = Object.entries(values).map(([k, v]) => `${k}='${v}'`).join('\n') + '\n'
    const name = `microbima-${ctx.env}-database-${Date.now()}-${process.pid}.env`
    for (const fallback of [join(tmpdir(), name), join('.deploy-state', name)]) {
      try {
        mkdirSync(dirname(fallback), { recursive: true, mode: 0o700 })
        writeFileSync(fallback, text, { mode: 0o600, flag: 'wx' })
        ctx.log.error(`could not write ${path} (${(error as NodeJS.ErrnoException).code}); the credentials are in ${fallback} (mode 0600): move them into ${path}`)
        saveFailures.push(path)
        return `NOT written; saved to ${fallback}`
      } catch {
        // try the next place
      }
    }
    throw new OperationError(`could not write ${path} (${(error as NodeJS.ErrnoException).code}) nor a fallback file: the new credentials are only on Fly (flyctl secrets list --app ${flyAppName(ctx.env, 'internal-api')} shows the name)`)
  }
}

void main(
  { name: 'create-apps', usage: 'create-apps <staging|production> [--app KEY] [--db] [--dry-run] [--yes] [--verbose]', environment: true, options: { db: { type: 'boolean' } } },
  async (ctx) => {
    const settings = loadSettings()
    const wantDb = Boolean(ctx.flags.db) || envFlag('DB')
    const envFile = envFilePath(ctx.envDir, ctx.env, 'internal-api')
    if (wantDb) {
      const problem = unwritable(envFile) ?? unwritable(join(dirname(envFile), 'database.env'))
      if (problem) throw new UserError(problem)
    }
    const fly = ctx.fly()
    const kind = settings.database[ctx.env]
    if (wantDb && kind === 'mpg') {
      // Fly's MPG region list decides; jnb (the app region) has none: one line, before anything.
      const regions = await fly.network.regions()
      const region = regions.find((r) => r.code === settings.mpg.region)
      if (!region?.mpg_available) {
        const offered = regions.filter((r) => r.mpg_available).map((r) => r.code)
        throw new UserError(`region ${settings.mpg.region} is not available for Managed Postgres (available: ${offered.join(', ')}): set "mpg.region" in infra/fly/settings.json (nearest to jnb: fra, lhr or ams)`)
      }
    }
    const existing = new Set((await fly.apps.list()).map((app) => app.Name))
    const rows: string[][] = []
    const missing = ctx.apps.map((key) => flyAppName(ctx.env, key)).filter((name) => !existing.has(name))
    const api = flyAppName(ctx.env, 'internal-api')
    const apiIps = ctx.apps.includes('internal-api') && existing.has(api) ? await fly.network.ips(api) : []
    const ipWork = ctx.apps.includes('internal-api') && (!existing.has(api) || !apiIps.some((ip) => ip.Type === 'private_v6') || apiIps.some((ip) => PUBLIC_IP.has(ip.Type)))
    if (missing.length || ipWork || wantDb) await confirmProduction(ctx, `create-apps-${shortName(ctx.env)}`)

    for (const key of ctx.apps) {
      const name = flyAppName(ctx.env, key as AppKey)
      if (existing.has(name)) rows.push([name, 'exists'])
      else {
        await fly.apps.create(name, settings.org)
        rows.push([name, ctx.dryRun ? 'would create' : 'created'])
      }
    }
    if (ipWork) rows.push(...(await makePrivate(ctx, api, apiIps)).map((done) => [api, done]))
    if (wantDb) rows.push(...(kind === 'mpg' ? await managedPostgres(ctx, settings, existing, envFile) : await flyPostgres(ctx, settings, existing, envFile)))
    ctx.log.result(table(['app', 'result'], rows))
    if (saveFailures.length) throw new OperationError(`the apps are ready, but ${saveFailures.join(' and ')} could not be written: move the credentials from the file named above into it`)
  },
)

async function flyPostgres(ctx: Context, settings: Settings, existing: Set<string>, envFile: string): Promise<string[][]> {
  const fly = ctx.fly()
  const dbApp = databaseAppName(ctx.env)
  const consumer = flyAppName(ctx.env, 'internal-api')
  const rows: string[][] = []
  if (existing.has(dbApp)) rows.push([dbApp, 'exists'])
  else {
    const created = await fly.postgres.create({ name: dbApp, region: settings.region, org: settings.org, ...settings.flypg })
    if (ctx.dryRun) rows.push([dbApp, 'would create'])
    else {
      // Shown once by flyctl and never again: kept, not printed.
      const password = /^\s*Password:\s*(\S+)/m.exec(created.stdout)?.[1]
      const where = password ? saveValues(ctx, join(dirname(envFile), 'database.env'), { OPERATOR_PASSWORD: password }) : 'no password in the output'
      rows.push([dbApp, `created; its operator password: ${join(dirname(envFile), 'database.env')} (${where})`])
    }
  }
  // A run that created the database but died before attaching it gets the attach now.
  const attached = existing.has(consumer) && (await fly.secrets.list(consumer)).some((s) => s.name === 'DATABASE_URL')
  if (attached) {
    rows.push([`${dbApp} → ${consumer}`, 'already attached (DATABASE_URL is on the app)'])
    return rows
  }
  let out
  try {
    out = await fly.postgres.attach(dbApp, consumer)
  } catch (error) {
    // flyctl creates the user before it writes the secret: an attach that died in between left a
    // user whose password nobody knows. Attach again with a new user; say what to clean up.
    const user = error instanceof CommandError ? /database user "([^"]+)" already exists/.exec(error.stderr)?.[1] : undefined
    if (!user) throw error
    const fresh = `${user}_${new Date().toISOString().replace(/\D/g, '').slice(0, 12)}`
    ctx.log.warn(`an earlier attach stopped after creating the database user ${user} (its password is lost): attaching with the new user ${fresh}; drop ${user} when convenient (flyctl postgres connect --app ${dbApp}, then DROP ROLE ${user};)`)
    out = await fly.postgres.attach(dbApp, consumer, fresh)
  }
  rows.push([`${dbApp} → ${consumer}`, ctx.dryRun ? 'would attach (sets DATABASE_URL)' : 'attached (DATABASE_URL staged on the app)'])
  const url = /DATABASE_URL=(postgres(?:ql)?:\/\/\S+)/.exec(out.stdout)?.[1]
  if (url) rows.push([envFile, saveValues(ctx, envFile, { DATABASE_URL: url })])
  return rows
}

/** flyctl mpg attach (the pooled URL, as DATABASE_URL), then the direct URL staged beside it.
 * Undefined in a dry run, which prints both writes. */
async function attachManaged(ctx: Context, cluster: string, consumer: string): Promise<{ pooled: string; direct: string } | undefined> {
  const fly = ctx.fly()
  const out = await fly.mpg.attach(cluster, consumer)
  if (ctx.dryRun) {
    await fly.secrets.import(consumer, { DIRECT_DATABASE_URL: 'postgresql://…@direct.…' })
    return undefined
  }
  const pooled = /DATABASE_URL=(postgres(?:ql)?:\/\/\S+)/.exec(out.stdout)?.[1]
  if (!pooled) throw new OperationError(`flyctl mpg attach printed no DATABASE_URL for ${consumer}`)
  registerSecret(pooled)
  // Migrations need a real session (advisory locks): the direct URL, which no flyctl command prints.
  const direct = pooled.replace('@pgbouncer.', '@direct.')
  registerSecret(direct)
  await fly.secrets.import(consumer, { DIRECT_DATABASE_URL: direct })
  return { pooled, direct }
}

/** The names of an app's secrets. A failed read is an error: "not attached" would be a guess, and
 * a wrong guess attaches twice (flyctl refuses) or stages nothing. */
async function secretNames(ctx: Context, app: string): Promise<Set<string>> {
  try {
    return new Set((await ctx.fly().secrets.list(app)).map((s) => s.name))
  } catch (error) {
    const why = (error as Error).message.split('\n')[0]
    throw new OperationError(`cannot tell whether ${app} already has its database: flyctl secrets list --app ${app} failed (${why}); nothing was attached, run again`, error instanceof OperationError ? error.details : [])
  }
}

/** A value of the env file as dotenv reads it, if the file can be read. */
function envFileValue(path: string, key: string): string | undefined {
  try {
    return dotenv.parse(readFileSync(path, 'utf8'))[key]
  } catch {
    return undefined
  }
}

/** The pooled URL `flyctl mpg attach` wrote, rebuilt as attach builds it (fly-mpg.md §6 step 7):
 * the cluster's pgbouncer_uri with the default user's name, password and database. */
async function pooledUrlOf(ctx: Context, cluster: string): Promise<string> {
  const { credentials } = await ctx.fly().mpg.status(cluster)
  if (!credentials?.pgbouncer_uri || !credentials.password || credentials.status === 'initializing' || credentials.status === 'error') {
    throw new OperationError(`flyctl mpg status ${cluster} gives no credentials yet (${credentials?.status ?? 'none'}): run again once the cluster is ready`)
  }
  const url = new URL(credentials.pgbouncer_uri)
  if (credentials.user) url.username = encodeURIComponent(credentials.user)
  url.password = encodeURIComponent(credentials.password)
  if (credentials.dbname) url.pathname = `/${credentials.dbname}`
  registerSecret(url.toString())
  return url.toString()
}

async function managedPostgres(ctx: Context, settings: Settings, existing: Set<string>, envFile: string): Promise<string[][]> {
  const fly = ctx.fly()
  const name = databaseAppName(ctx.env)
  const consumer = flyAppName(ctx.env, 'internal-api')
  const rows: string[][] = []
  let cluster = (await fly.mpg.list(settings.org)).find((c) => c.name === name)
  if (cluster) rows.push([`${name} (Managed Postgres ${cluster.id})`, `exists (${cluster.status})`])
  else {
    await fly.mpg.create({ name, org: settings.org, region: settings.mpg.region, plan: settings.mpg.plan, volumeSizeGb: settings.mpg.volumeSizeGb })
    if (ctx.dryRun) {
      rows.push([name, `would create (Managed Postgres, ${settings.mpg.region}, ${settings.mpg.plan})`])
      // The cluster's id exists only once it is created: the runbook names it by a placeholder.
      await attachManaged(ctx, `<${name}-id>`, consumer)
      rows.push([`${name} → ${consumer}`, 'would attach (pooled DATABASE_URL) and stage DIRECT_DATABASE_URL'])
      return rows
    }
    cluster = (await fly.mpg.list(settings.org)).find((c) => c.name === name)
    if (!cluster) throw new OperationError(`flyctl mpg create ended, but flyctl mpg list --org ${settings.org} shows no cluster ${name}`)
    rows.push([`${name} (Managed Postgres ${cluster.id})`, `created in ${cluster.region}`])
  }
  const secrets = existing.has(consumer) || !ctx.dryRun ? await secretNames(ctx, consumer) : new Set<string>()
  if (secrets.has('DATABASE_URL')) {
    // Attached already: an earlier run may have stopped before DIRECT_DATABASE_URL or the env file.
    rows.push(...(await finishAttached(ctx, cluster, consumer, secrets, envFile)))
    return rows
  }
  const attached = await attachManaged(ctx, cluster.id, consumer)
  if (!attached) {
    rows.push([`${name} → ${consumer}`, 'would attach (pooled DATABASE_URL) and stage DIRECT_DATABASE_URL'])
    return rows
  }
  const { pooled, direct } = attached
  const after = new Set((await fly.secrets.list(consumer)).map((s) => s.name))
  if (!after.has('DATABASE_URL') || !after.has('DIRECT_DATABASE_URL')) throw new OperationError(`${consumer} should now have DATABASE_URL and DIRECT_DATABASE_URL, but flyctl secrets list shows ${[...after].join(', ') || 'neither'}`)
  rows.push([`${name} → ${consumer}`, 'attached: pooled DATABASE_URL for the app, DIRECT_DATABASE_URL for migrations (staged)'])
  rows.push([envFile, saveValues(ctx, envFile, { DATABASE_URL: pooled, DIRECT_DATABASE_URL: direct })])
  return rows
}

/** The app has a DATABASE_URL. If it is this cluster's (an attachment, or the env file names the
 * cluster), stage a missing DIRECT_DATABASE_URL and write what the env file lacks; a URL from
 * elsewhere is the operator's and is left alone. */
async function finishAttached(ctx: Context, cluster: MpgCluster, consumer: string, secrets: Set<string>, envFile: string): Promise<string[][]> {
  const name = databaseAppName(ctx.env)
  const fromFile = envFileValue(envFile, 'DATABASE_URL')
  const fileNamesCluster = fromFile !== undefined && fromFile.includes(`@pgbouncer.${cluster.id}.flympg.net`)
  const listed = (cluster.attached_apps ?? []).some((a) => a.name === consumer)
  if (!listed && !fileNamesCluster) {
    ctx.log.warn(`${consumer} has a DATABASE_URL that is not from ${name} (${cluster.id}): flyctl mpg list shows no attachment, and ${envFile} names no *.${cluster.id}.flympg.net host; left as it is`)
    return [[`${name} → ${consumer}`, `not attached: DATABASE_URL on the app is not from ${cluster.id}; left as it is`]]
  }
  if (fileNamesCluster) registerSecret(fromFile)
  const pooled = fileNamesCluster ? fromFile! : await pooledUrlOf(ctx, cluster.id)
  const direct = pooled.replace('@pgbouncer.', '@direct.')
  registerSecret(direct)
  const rows: string[][] = []
  if (secrets.has('DIRECT_DATABASE_URL')) rows.push([`${name} → ${consumer}`, 'already attached (DATABASE_URL is on the app, and DIRECT_DATABASE_URL)'])
  else {
    await ctx.fly().secrets.import(consumer, { DIRECT_DATABASE_URL: direct })
    if (!ctx.dryRun && !(await ctx.fly().secrets.list(consumer)).some((s) => s.name === 'DIRECT_DATABASE_URL')) throw new OperationError(`${consumer} should now have DIRECT_DATABASE_URL, but flyctl secrets list does not show it`)
    rows.push([`${name} → ${consumer}`, `already attached; DIRECT_DATABASE_URL ${ctx.dryRun ? 'would be staged' : 'staged now'} (an earlier run stopped before it)`])
  }
  const missing = ['DATABASE_URL', 'DIRECT_DATABASE_URL'].filter((key) => !envFileValue(envFile, key) || envFileValue(envFile, key)!.includes('CHANGE_ME'))
  if (ctx.dryRun) rows.push([envFile, missing.length ? `would write ${missing.join(', ')}` : 'already set there: left as it is'])
  else rows.push([envFile, saveValues(ctx, envFile, { DATABASE_URL: pooled, DIRECT_DATABASE_URL: direct })])
  return rows
}
