import type { Context, RunEnd } from '../core/cli.js'
import { Refusal, UserError } from '../core/errors.js'
import { why } from '../core/steps.js'
import type { Database } from '../database/db.js'
import { compareMigrations, listLocalMigrations, readMigrationRows } from '../database/migrations.js'
import { record } from '../safety/ledger.js'
import { gitCommit } from '../safety/git.js'
import { who } from '../safety/who.js'
import { findHooks, hookCommand, runHook, type Hook, type HookPoint, type HookVars } from './hooks.js'
import { Notifier, newEvent, receiver, type OperationKind, type Outcome } from './notify.js'

// One operation of a target, as hooks and notifications see it. A script calls
//
//   const op = startOperation(ctx, { kind: 'deploy' })          // first thing: checks hooks (exit 2)
//   …its own checks: configuration, gate, confirmation, lock…
//   await op.run({ db, apps, images, migrations }, () => work()) // right before the first change
//
// run() runs the pre-* hooks (one that fails refuses the operation, exit 3, before any change),
// sends `<kind>.started` where the interface lists one (deploy), runs the work, then the post-*
// hooks (a failure is a warning) and sends the result event. A run that ends before run() (a
// refusal, a failed preflight, a signal) still sends its `<kind>.failed` with the reason; bad usage
// or configuration (exit 2) sends nothing: nothing was attempted. A dry run lists the hooks it
// would run, as commands, and runs and sends nothing.
//
// A deploy that applies migrations (the internal API's release command) is also a migration: its
// pre-migrate hook runs after pre-deploy and can veto the deploy; at its end the database says
// whether they were applied (migrate.succeeded / migrate.failed, then post-migrate). Its automatic
// rollback runs the rollback hooks around it (automaticRollback); the deploy's event says
// deploy.rolled_back. A migration rollback (rollback-migration) changes the schema: it is a
// `migrate` operation (the migrate hooks, migrate.* events) with operation "rollback-migration".
// A restore drill calls startOperation(ctx, { kind: 'restore_drill', operation: 'restore-drill' })
// and run(): it has no hooks and sends restore_drill.succeeded or restore_drill.failed.

export type Result = 'succeeded' | 'failed' | 'rolled-back'

export interface OperationSpec {
  kind: OperationKind
  /** The target's operation when it is not the kind (rollback-migration, restore-drill). */
  operation?: string
}

export type Images = Record<string, string>

export interface RunSpec {
  /** The environment's database, for the ledger (a code rollback may run without it). */
  db?: Database
  apps?: readonly string[]
  /** App key → image ref, read when the hooks run and the events are sent (what runs at the end). */
  images?: Images | (() => Images)
  /** Migrations this operation applies or undoes. */
  migrations?: string[]
  /** The result of a failed run when it is not plain `failed` (a deploy that was rolled back). */
  failedAs?: () => Result
}

const OUTCOME: Record<Result, Outcome> = { succeeded: 'succeeded', failed: 'failed', 'rolled-back': 'rolled_back' }

const HOOKS: Record<OperationKind, { pre?: HookPoint; post?: HookPoint }> = {
  deploy: { pre: 'pre-deploy', post: 'post-deploy' },
  migrate: { pre: 'pre-migrate', post: 'post-migrate' },
  rollback: { pre: 'pre-rollback', post: 'post-rollback' },
  restore_drill: {},
}

/** One line saying why a run failed, as events and post-* hooks carry it. */
export function reasonOf(error: unknown): string {
  if (error instanceof Refusal) return `refused: ${error.message}`
  if (error instanceof UserError) return error.problems.join('; ')
  return why(error)
}

let current: Operation | undefined

export class Operation {
  private readonly started = performance.now()
  private readonly notifier: Notifier
  private readonly hooks: Map<HookPoint, Hook>
  private spec: RunSpec = {}
  private begun = false
  private ending?: Promise<void>

  constructor(
    private readonly ctx: Context,
    readonly kind: OperationKind,
    readonly operation: string,
  ) {
    // Every hook the operation may run is checked now, before anything else (exit 2).
    const points: HookPoint[] = kind === 'deploy' ? ['pre-deploy', 'post-deploy', 'pre-migrate', 'post-migrate', 'pre-rollback', 'post-rollback'] : [HOOKS[kind].pre, HOOKS[kind].post].filter((p): p is HookPoint => p !== undefined)
    this.hooks = findHooks(points)
    this.notifier = new Notifier(receiver(), ctx.log, ctx.dryRun)
    // The run ended without reaching the end of run(): a refusal, a failure before it, a signal.
    ctx.onCleanup((end) => this.endOfRun(end))
  }

  private images(): Images {
    const images = this.spec.images
    return typeof images === 'function' ? images() : { ...(images ?? {}) }
  }

  private async vars(extra: Partial<HookVars> = {}, apps?: readonly string[]): Promise<HookVars> {
    return {
      environment: this.ctx.env,
      apps: [...(apps ?? this.spec.apps ?? this.ctx.apps)],
      images: this.images(),
      migrations: this.spec.migrations ?? [],
      commit: (await gitCommit()) ?? '',
      performer: who(),
      operation: this.operation,
      ...extra,
    }
  }

  private seconds(since = this.started): number {
    return Math.round((performance.now() - since) / 100) / 10
  }

  private async notify(kind: OperationKind, outcome: Outcome, reason?: string, operation = this.operation, apps?: string[]): Promise<void> {
    if (!this.notifier.receiver) return
    const vars = await this.vars({}, apps)
    this.notifier.send(
      newEvent({
        event: `${kind}.${outcome}`,
        operation,
        environment: vars.environment,
        apps: vars.apps,
        images: vars.images,
        migrations: vars.migrations ?? [],
        commit: vars.commit || null,
        performer: vars.performer,
        result: outcome === 'rolled_back' ? 'rolled-back' : outcome,
        duration_s: outcome === 'started' ? null : this.seconds(),
        reason: reason ?? null,
      }),
    )
  }

  /** Runs a pre-* hook; one that fails refuses (exit 3) and the ledger says so. */
  private async pre(point: HookPoint, varsOf: () => Promise<HookVars>, refused = `the ${this.operation} was not started, nothing was changed`): Promise<void> {
    const hook = this.hooks.get(point)
    if (!hook) return
    const vars = await varsOf()
    if (this.ctx.dryRun) {
      this.ctx.log.result(hookCommand(hook, vars))
      return
    }
    const outcome = await runHook(this.ctx, hook, vars)
    if (outcome.ok) {
      this.ctx.log.ok(`hook ${point} passed`)
      return
    }
    await record(this.ctx, this.spec.db, { operation: `${point} hook`, app: undefined, result: 'refused', durationMs: outcome.ms, detail: `${hook.path} ${outcome.why}` })
    throw new Refusal(`the ${point} hook ${hook.path} ${outcome.why}; ${refused}`)
  }

  /** Runs a post-* hook; one that fails is a warning (and a ledger entry), never the exit code. */
  private async post(point: HookPoint, varsOf: () => Promise<HookVars>): Promise<void> {
    const hook = this.hooks.get(point)
    if (!hook) return
    const vars = await varsOf()
    if (this.ctx.dryRun) {
      this.ctx.log.result(hookCommand(hook, vars))
      return
    }
    if (this.ctx.aborted.reason) {
      this.ctx.log.warn(`hook ${hook.path} not run: ${this.ctx.aborted.reason}`)
      return
    }
    const outcome = await runHook(this.ctx, hook, vars)
    if (outcome.ok) {
      this.ctx.log.ok(`hook ${point} passed`)
      return
    }
    this.ctx.log.warn(`the ${point} hook ${hook.path} ${outcome.why} (a warning: the ${this.operation}'s result and exit code stand)`)
    await record(this.ctx, this.spec.db, { operation: `${point} hook`, result: 'failed', durationMs: outcome.ms, detail: `${hook.path} ${outcome.why}` })
  }

  /** Right before the operation's first change: the pre-* hooks, `<kind>.started`, the work, the
   * post-* hooks and the result event. Returns what the work returned; rethrows its error. */
  async run<T>(spec: RunSpec, work: () => Promise<T>): Promise<T> {
    this.spec = spec
    this.begun = true
    const { pre } = HOOKS[this.kind]
    const migrating = this.migratesAlong()
    try {
      if (pre) await this.pre(pre, () => this.vars())
      if (migrating) await this.pre('pre-migrate', () => this.vars({ operation: 'migrate' }, ['internal-api']), `the ${this.operation} was not started (it would apply ${spec.migrations!.join(', ')}), nothing was changed`)
    } catch (error) {
      await this.finish('failed', reasonOf(error), { hooks: false })
      throw error
    }
    if (this.kind === 'deploy') await this.notify('deploy', 'started')
    let value: T
    try {
      value = await work()
    } catch (error) {
      await this.finish(spec.failedAs?.() ?? 'failed', reasonOf(error), { hooks: true })
      throw error
    }
    await this.finish('succeeded', undefined, { hooks: true })
    return value
  }

  /** A deploy that deploys the internal API with migrations pending applies them. */
  private migratesAlong(): boolean {
    return this.kind === 'deploy' && (this.spec.migrations?.length ?? 0) > 0 && (this.spec.apps ?? this.ctx.apps).includes('internal-api')
  }

  /** What the database says of the migrations a deploy was to apply. */
  private async migrationResult(): Promise<{ result: Result; reason?: string }> {
    const names = this.spec.migrations ?? []
    try {
      const statuses = compareMigrations(listLocalMigrations(), await readMigrationRows(this.spec.db!))
      const missing = names.filter((name) => statuses.find((s) => s.name === name)?.state !== 'applied')
      return missing.length ? { result: 'failed', reason: `not applied: ${missing.join(', ')}` } : { result: 'succeeded' }
    } catch (error) {
      return { result: 'failed', reason: `could not read the migrations afterwards: ${reasonOf(error)}` }
    }
  }

  private finish(result: Result, reason: string | undefined, options: { hooks: boolean }): Promise<void> {
    this.ending ??= (async () => {
      const hooks = options.hooks && this.begun
      if (hooks && this.migratesAlong() && !this.ctx.dryRun) {
        const migrated = this.spec.db ? await this.migrationResult() : { result: 'failed' as const, reason: 'the database was not reachable to tell' }
        // The migration is the internal API's: its event and hook name that app alone.
        await this.notify('migrate', OUTCOME[migrated.result], migrated.reason, 'migrate', ['internal-api'])
        await this.post('post-migrate', () => this.vars({ operation: 'migrate', result: migrated.result, durationS: this.seconds(), reason: migrated.reason }, ['internal-api']))
      } else if (hooks && this.migratesAlong()) {
        await this.post('post-migrate', () => this.vars({ operation: 'migrate', result, durationS: 0 }, ['internal-api']))
      }
      await this.notify(this.kind, OUTCOME[result], reason)
      const { post } = HOOKS[this.kind]
      if (hooks && post) await this.post(post, () => this.vars({ result, durationS: this.seconds(), reason }))
      await this.notifier.flush()
    })()
    return this.ending
  }

  private async endOfRun(end: RunEnd): Promise<void> {
    if (this.ending || this.ctx.dryRun) return this.ending
    // Bad usage or configuration: nothing was attempted, nobody needs to hear of it.
    if (end.error instanceof UserError) return
    const reason = end.signal ? `interrupted by ${end.signal}` : end.error !== undefined ? reasonOf(end.error) : undefined
    return this.finish(end.exitCode === 0 ? 'succeeded' : 'failed', reason, { hooks: false })
  }

  /** The automatic rollback of one app after its failed deploy, between the rollback hooks. A
   * pre-rollback hook that fails refuses it (the app stays as it is; the caller says so). */
  async rollback<T>(app: string, image: string, reason: string, work: () => Promise<T>, succeeded: (value: T) => boolean): Promise<T> {
    const started = performance.now()
    const vars = async (extra: Partial<HookVars> = {}) => ({ ...(await this.vars({ operation: 'rollback', trigger: 'automatic', ...extra }, [app])), images: { [app]: image } })
    await this.pre('pre-rollback', () => vars(), `the automatic rollback of ${app} was not started: it stays as the failed deploy left it`)
    let value: T
    try {
      value = await work()
    } catch (error) {
      await this.post('post-rollback', () => vars({ result: 'failed', durationS: this.seconds(started), reason: reasonOf(error) }))
      throw error
    }
    const ok = succeeded(value)
    await this.post('post-rollback', () => vars({ result: ok ? 'succeeded' : 'failed', durationS: this.seconds(started), reason: ok ? undefined : `${reason}: still unhealthy afterwards` }))
    return value
  }
}

/** The operation of this run (first thing in a script's body; see above). */
export function startOperation(ctx: Context, spec: OperationSpec): Operation {
  current = new Operation(ctx, spec.kind, spec.operation ?? spec.kind)
  return current
}

/** The automatic rollback of an app during a deploy, between the rollback hooks of the run's
 * operation (none: just the work). */
export function automaticRollback<T>(app: string, image: string, reason: string, work: () => Promise<T>, succeeded: (value: T) => boolean): Promise<T> {
  return current ? current.rollback(app, image, reason, work, succeeded) : work()
}
