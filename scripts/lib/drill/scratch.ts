import { randomBytes } from 'node:crypto'
import type { Context } from '../core/cli.js'
import { CommandError, OperationError, UserError } from '../core/errors.js'
import { knob } from '../core/knobs.js'
import { waiting } from '../core/progress.js'
import { databaseAppName } from '../core/names.js'
import type { Settings } from '../core/settings.js'
import { connect, type Database } from '../database/db.js'
import type { DatabaseTarget } from '../secrets/env-files.js'
import type { ChosenBackup } from './backups.js'

// Steps 2 and 5 of a restore drill: the scratch copy. Managed Postgres: `flyctl mpg restore
// <cluster> --backup-id <id> --name <scratch>` makes a NEW cluster (the live one is never touched),
// polled with `flyctl mpg status <new id> --json` until ready and reached through `flyctl mpg proxy
// <new id>` with the live database's name and the new cluster's credentials. Fly Postgres:
// `flyctl postgres create --name <scratch> --snapshot-id <id> …` makes a NEW app whose volume is
// the snapshot (its roles and passwords are the live database's), reached through `flyctl proxy`.
//
// Then it is destroyed, whatever happened: on success, on failure, on Ctrl-C (the destroy still
// starts while the run is stopping), unless KEEP=1. Only what this run created, by the name it chose
// (checked free first) and the id flyctl gave back, is ever destroyed: never a name that is not a
// scratch name, never the live cluster or app.

const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15).toLowerCase()

/** `<database app>-drill-<yyyymmdd>-<hhmmss>-<4 hex>`: what a drill may create, and all it may destroy. */
export function scratchName(ctx: Context): string {
  return `${databaseAppName(ctx.env)}-drill-${stamp()}-${randomBytes(2).toString('hex')}`
}

const SCRATCH = /-drill-\d{8}-\d{6}-[0-9a-f]{4}$/

export class Scratch {
  /** The new cluster's id (MPG), once flyctl has said it. */
  id?: string
  /** Whether this run asked Fly to create it (it may exist even if the command failed). */
  private asked = false
  /** Whether the create command reported success. */
  private made = false
  /** MPG clusters of the same name that existed before (none, since the name is new: a guard). */
  private existing = new Set<string>()
  private disposing?: Promise<string>

  constructor(
    private readonly ctx: Context,
    private readonly settings: Settings,
    readonly backup: ChosenBackup,
    readonly name: string,
    private readonly keep: boolean,
  ) {
    if (!SCRATCH.test(name)) throw new Error(`${name} is not a scratch name`)
  }

  /** What it is, for messages. */
  get label(): string {
    return this.backup.kind === 'mpg' ? `scratch cluster ${this.name}${this.id ? ` (${this.id})` : ''}` : `scratch database app ${this.name}`
  }

  /** The command that destroys it, for a person. */
  get destroyCommand(): string {
    return this.backup.kind === 'mpg' ? `flyctl mpg destroy ${this.id ?? `<id of ${this.name}: flyctl mpg list --org ${this.settings.org}>`} --yes` : `flyctl apps destroy ${this.name} --yes`
  }

  /** Asks Fly for the copy. MPG returns at once; Fly Postgres returns once the database answers
   * (its health checks pass), within `timeoutMs`. */
  async create(timeoutMs: number): Promise<void> {
    const fly = this.ctx.fly()
    if (this.backup.kind === 'mpg') {
      const clusters = await fly.mpg.list(this.settings.org)
      this.existing = new Set(clusters.filter((c) => c.name === this.name).map((c) => c.id))
      if (this.existing.size) throw new UserError(`a Managed Postgres cluster named ${this.name} exists already: run the drill again (it picks a new name)`)
      this.asked = true
      const out = await fly.mpg.restore(this.backup.source, this.backup.id, this.name)
      if (out.skipped) return
      this.made = true
      this.id = /^\s*Cluster ID:\s*(\S+)/m.exec(out.stdout)?.[1] ?? (await this.findByName())[0]
      if (!this.id) throw new OperationError(`flyctl mpg restore said it started, but named no cluster, and flyctl mpg list shows no ${this.name}`)
      if (this.id === this.backup.source) throw new OperationError(`flyctl mpg restore named the live cluster ${this.id} as the new one: stopping, nothing will be destroyed`)
      return
    }
    if ((await fly.apps.list()).some((a) => a.Name === this.name)) throw new UserError(`an app named ${this.name} exists already: run the drill again (it picks a new name)`)
    const volume = this.backup.volume!
    this.asked = true
    const create = () => fly.postgres.create({ name: this.name, snapshotId: this.backup.id, region: volume.region, org: this.settings.org, clusterSize: 1, vmSize: this.settings.flypg.vmSize, volumeSizeGb: Math.max(volume.sizeGb, this.settings.flypg.volumeSizeGb), timeoutMs })
    if (this.ctx.dryRun) {
      await create()
      return
    }
    // flyctl says nothing while the volume is restored: the wait has a line of its own.
    const line = waiting(this.ctx.log, this.name)
    const started = performance.now()
    const tick = setInterval(() => line.update('restoring the snapshot (flyctl postgres create)', `(${Math.round((performance.now() - started) / 1000)} s of ${Math.round(timeoutMs / 1000)} s)`), 1000)
    tick.unref()
    try {
      await create()
      this.made = true
    } finally {
      clearInterval(tick)
      line.close()
    }
  }

  private async findByName(cleanup = false): Promise<string[]> {
    const clusters = await this.ctx.fly().mpg.list(this.settings.org, { cleanup })
    return clusters.filter((c) => c.name === this.name && !this.existing.has(c.id) && c.id !== this.backup.source).map((c) => c.id)
  }

  /** MPG: polls the new cluster until it is ready and has credentials; returns them. */
  async ready(deadline: number): Promise<{ user: string; password: string }> {
    if (this.backup.kind !== 'mpg') return { user: '', password: '' }
    const line = waiting(this.ctx.log, this.name)
    const timeout = knob('DRILL_TIMEOUT')
    const started = performance.now()
    let interval = 250
    try {
      for (;;) {
        this.ctx.checkpoint()
        const status = await this.ctx.fly().mpg.status(this.id!)
        const state = status.data.status
        const credentials = status.credentials
        if (state === 'ready' && credentials?.status !== 'initializing' && credentials?.password) return { user: credentials.user ?? 'fly-user', password: credentials.password }
        if (state === 'error' || credentials?.status === 'error') throw new OperationError(`the ${this.label} ended in status "error" (flyctl mpg status ${this.id}): the backup did not restore`)
        if (Date.now() >= deadline) throw new OperationError(`the ${this.label} was not ready within DRILL_TIMEOUT=${timeout} s (last seen: "${state}")`, ['a large database takes longer to restore: raise DRILL_TIMEOUT (seconds) and run again'])
        line.update(`flyctl mpg status ${this.id}: ${state}`, `(${Math.round((performance.now() - started) / 1000)} s of ${timeout} s)`)
        await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))))
        interval = Math.min(interval * 2, 5000)
      }
    } finally {
      line.close()
    }
  }

  /** Where the copy answers: the live database's name; the new cluster's credentials (MPG) or the
   * live ones the snapshot carried (Fly Postgres). */
  target(live: DatabaseTarget, credentials: { user: string; password: string }): DatabaseTarget {
    if (this.backup.kind === 'mpg') {
      const host = `direct.${this.id}.flympg.net`
      return { url: `postgresql://${credentials.user}:****@${host}/${live.database}`, host, port: 5432, database: live.database, user: credentials.user, password: credentials.password, socket: false, sslmode: live.sslmode }
    }
    const host = `${this.name}.flycast`
    return { url: `postgres://${live.user ?? 'postgres'}:****@${host}:5432/${live.database}`, host, port: 5432, database: live.database, user: live.user, password: live.password, socket: false, sslmode: 'disable' }
  }

  /** Connects to the copy; a copy that does not answer yet (a new app's address, a tunnel) is
   * tried again, every few seconds, until the deadline. */
  async connect(live: DatabaseTarget, credentials: { user: string; password: string }, deadline: number): Promise<Database> {
    const target = this.target(live, credentials)
    for (let attempt = 1; ; attempt++) {
      this.ctx.checkpoint()
      try {
        return await connect(this.ctx, target)
      } catch (error) {
        if (!(error instanceof OperationError)) throw error
        const why = error.message.replace(/^cannot connect to the \w+ database at /, '')
        if (Date.now() + 3000 >= deadline) throw new OperationError(`cannot connect to the ${this.label}: ${why}`, error.details)
        this.ctx.log.warn(`the ${this.label} does not answer yet (attempt ${attempt}: ${why}); trying again in 3 s`)
        await new Promise((resolve) => setTimeout(resolve, 3000))
      }
    }
  }

  /** Destroys what this run created, once, whoever asks first (the run's end or a signal); KEEP=1
   * keeps it and says how to destroy it. Returns what became of it, for the report and the ledger. */
  dispose(): Promise<string> {
    this.disposing ??= this.destroy()
    return this.disposing
  }

  private async destroy(): Promise<string> {
    if (!this.asked) return 'nothing was created'
    const fly = this.ctx.fly()
    if (this.ctx.dryRun) {
      if (this.backup.kind === 'flypg') await fly.apps.destroy(this.name)
      else this.ctx.log.info(`then it would wait until the new cluster is ready, check it, and destroy it: ${this.destroyCommand}`)
      return 'dry run'
    }
    if (this.keep) {
      this.ctx.log.warn(`KEEP=1: the ${this.label} is kept (it is billed until destroyed); destroy it with: ${this.destroyCommand}`)
      return `kept (${this.destroyCommand})`
    }
    try {
      if (this.backup.kind === 'mpg') {
        // Asked, but no id came back (the run was stopped while flyctl mpg restore ran): the API may
        // still be making it, so it is looked for by its name a few times.
        let ids = this.id ? [this.id] : await this.findByName(true)
        for (let look = 1; !ids.length && look < 3; look++) {
          await new Promise((resolve) => setTimeout(resolve, 1000))
          ids = await this.findByName(true)
        }
        for (const id of ids) {
          if (id === this.backup.source) throw new Error(`refusing to destroy the live cluster ${id}`)
          await fly.mpg.destroy(id, { cleanup: true })
        }
        if (!ids.length) return 'nothing to destroy (flyctl mpg list shows no such cluster)'
      } else {
        if (this.name === this.backup.source || !SCRATCH.test(this.name)) throw new Error(`refusing to destroy ${this.name}`)
        try {
          await fly.apps.destroy(this.name, { cleanup: true })
        } catch (error) {
          // A create that failed before it made the app (or never started): nothing is there.
          if (!this.made && error instanceof CommandError && /Could not find App/.test(error.stderr)) return 'nothing to destroy (the app was never created)'
          throw error
        }
      }
      this.ctx.log.ok(`destroyed the ${this.label}`)
      return 'destroyed'
    } catch (error) {
      const why = error instanceof CommandError ? error.stderr.trim().split('\n').pop() : (error as Error).message
      this.ctx.log.error(`could not destroy the ${this.label} (${why}): destroy it by hand: ${this.destroyCommand}`)
      return `NOT destroyed (${why})`
    }
  }
}
