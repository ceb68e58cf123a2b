// Sections 3.1 and 6.3: each app's env file plus NODE_ENV becomes its Fly secrets, through
// `flyctl secrets import --stage` on stdin (values never in argv, never printed). --stage stores
// them without restarting machines: the next deploy picks them up. A diff by name comes first;
// only added and changed secrets are pushed (see lib/secret-fingerprints), so a second run
// changes nothing. APPLY=1 (--apply) restarts the machines now with `flyctl secrets deploy`, as
// the document's `fly secrets set` would; a failed restart leaves the secrets stored, and says so.
import chalk from 'chalk'
import { envFlag, main, type Context } from './lib/core/cli.js'
import { stoppingReason } from './lib/core/exec.js'
import { envFilePath, flyctlDifferences, loadDatabaseTarget, readEnvFile, unmaskableValues, type EnvFile } from './lib/secrets/env-files.js'
import { OperationError, Problems, UserError } from './lib/core/errors.js'
import { confirmProduction } from './lib/safety/confirm.js'
import { connect, type Database } from './lib/database/db.js'
import type { FlySecret } from './lib/fly/types.js'
import { record } from './lib/safety/ledger.js'
import { withLock } from './lib/safety/lock.js'
import { table } from './lib/core/log.js'
import { flyAppName, shortName } from './lib/core/names.js'
import { forgetFingerprints, readFingerprints, saveFingerprints, UNVERIFIED, valueMatches, type Fingerprint } from './lib/secrets/fingerprints.js'

type Change = 'added' | 'changed' | 'unchanged' | 'untracked' | 'changed on Fly' | 'unverified'

const SHOWN: Record<Change, string> = {
  added: chalk.green('added'),
  changed: chalk.yellow('changed'),
  unchanged: chalk.dim('unchanged'),
  untracked: 'on Fly, not pushed by the toolkit before: re-staged',
  'changed on Fly': chalk.yellow('changed on Fly since the last push: re-staged'),
  unverified: chalk.yellow('pushed while Fly could not confirm it, now deployed: re-staged to verify it'),
}

async function classify(value: string, onFly: FlySecret | undefined, print: Fingerprint | undefined): Promise<Change> {
  if (!onFly) return 'added'
  if (!print) return 'untracked'
  if (!(await valueMatches(print, value))) return 'changed'
  const unverified = print.flyDigest.startsWith(UNVERIFIED)
  if (print.flyDigest.slice(unverified ? UNVERIFIED.length : 0) !== onFly.digest) return 'changed on Fly'
  // Still Staged, it cannot be verified yet, and pushing it again would prove nothing (a run
  // twice in a row writes nothing); once a deploy made it Deployed, one more push can.
  return unverified && onFly.status === 'Deployed' ? 'unverified' : 'unchanged'
}

void main(
  { name: 'set-secrets', usage: 'set-secrets <staging|production> [--app KEY] [--prune] [--apply] [--dry-run] [--yes] [--verbose] [--env-dir DIR]', environment: true, options: { prune: { type: 'boolean' }, apply: { type: 'boolean' } } },
  async (ctx) => {
    const prune = Boolean(ctx.flags.prune) || envFlag('PRUNE')
    const apply = Boolean(ctx.flags.apply) || envFlag('APPLY')
    // Every file is validated before the first write: a bad web-admin file leaves the others untouched.
    const problems = new Problems()
    const target = await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log).catch((error) => {
      if (!(error instanceof UserError)) throw error
      problems.add(error.problems)
      return undefined
    })
    const payloads = ctx.apps.flatMap((key) => {
      const file = problems.check(() => readEnvFile(envFilePath(ctx.envDir, ctx.env, key), ctx.env, ctx.log))
      for (const warning of file ? unmaskableValues(file) : []) ctx.log.warn(warning)
      return file ? [{ key, app: flyAppName(ctx.env, key), file, values: { NODE_ENV: ctx.env as string, ...file.values } }] : []
    })
    problems.throwIfAny()
    const fly = ctx.fly()
    const db = await connect(ctx, target!)
    const fingerprints = await readFingerprints(db, ctx.env)
    const plans = await Promise.all(
      payloads.map(async (p) => {
        const onFly = await fly.secrets.list(p.app)
        const changes = new Map<string, Change>()
        for (const [name, value] of Object.entries(p.values)) {
          changes.set(name, await classify(value, onFly.find((s) => s.name === name), fingerprints.get(p.app)?.get(name)))
        }
        const toPush = Object.fromEntries(Object.entries(p.values).filter(([name]) => changes.get(name) !== 'unchanged'))
        const onlyOnFly = onFly.map((s) => s.name).filter((name) => !(name in p.values))
        const staged = onFly.some((s) => s.status !== undefined && s.status !== 'Deployed')
        return { ...p, changes, toPush, onlyOnFly, staged, before: new Map(onFly.map((s) => [s.name, s])) }
      }),
    )
    for (const plan of plans) {
      const rows = [
        ...[...plan.changes].map(([name, change]) => [name, SHOWN[change]]),
        ...plan.onlyOnFly.map((name) => [name, prune ? chalk.red('only on Fly: will be removed (--prune)') : chalk.yellow('only on Fly (kept; --prune removes it)')]),
      ]
      ctx.log.result(`${chalk.bold(plan.app)}\n${table(['secret', 'change'], rows)}`)
    }

    const work = plans.filter((p) => Object.keys(p.toPush).length || (prune && p.onlyOnFly.length) || (apply && p.staged))
    if (!work.length) {
      ctx.log.ok(`the secrets of ${ctx.env} already match the env files: nothing to push${apply ? ' or restart' : ''}`)
      return
    }
    await confirmProduction(ctx, `set-secrets-${shortName(ctx.env)}`)
    await withLock(ctx, db, 'set-secrets', async () => {
      for (const plan of work) await push(ctx, db, plan, prune)
      if (apply) for (const plan of work) await restart(ctx, db, plan.app)
    })
  },
)

async function push(ctx: Context, db: Database, plan: { app: string; file: EnvFile; toPush: Record<string, string>; onlyOnFly: string[]; changes: Map<string, Change>; before: Map<string, FlySecret> }, prune: boolean): Promise<void> {
  const fly = ctx.fly()
  const names = Object.keys(plan.toPush)
  const removed = prune ? plan.onlyOnFly : []
  if (!names.length && !removed.length) return
  if (ctx.dryRun && names.length) {
    // The printed import reads the env file itself: it pushes every key of it (the same values).
    const all = Object.keys(plan.file.values).length + 1
    if (names.length < all) ctx.log.result(`# ${plan.app}: ${names.join(', ')} changed; the command pushes all ${all} (the same values for the others)`)
    for (const difference of flyctlDifferences(plan.file)) ctx.log.result(`# ${difference}`)
  }
  try {
    if (names.length) await fly.secrets.import(plan.app, plan.toPush, { file: plan.file.path, nodeEnv: ctx.env })
    if (removed.length) await fly.secrets.unset(plan.app, removed)
  } catch (error) {
    // flyctl failed or timed out: what Fly holds now is unknown, and the history says so.
    // (A run stopped by a signal or a lost lock records that instead.)
    if (!ctx.dryRun && !stoppingReason()) await record(ctx, db, { operation: 'set-secrets', app: plan.app, result: 'failed', detail: `${names.length ? `import of ${names.join(', ')}` : `unset of ${removed.join(', ')}`}: ${(error as Error).message.split('\n')[0]}` })
    throw error
  }
  if (ctx.dryRun) return
  // flyctl exiting 0 proves nothing: what Fly now reports must show every change. A digest that did
  // not move for a value that did means nothing was stored; such a secret is not fingerprinted.
  // For a value the toolkit cannot compare (on Fly, never pushed by it) the status tells: Fly dates
  // each secret's last write, so a secret written now is newer than every machine's release and
  // cannot still show Deployed.
  const listed = new Map((await fly.secrets.list(plan.app)).map((s) => [s.name, s]))
  const after = new Map([...listed].map(([name, s]) => [name, s.digest]))
  const notWritten = (name: string) => {
    const was = plan.before.get(name)
    const now = listed.get(name)
    if (!now) return true
    if (!was || now.digest !== was.digest) return false
    const change = plan.changes.get(name)
    return change === 'changed' || change === 'changed on Fly' || (was.status === 'Deployed' && now.status === 'Deployed')
  }
  // A secret the toolkit never pushed, already Staged on Fly, whose digest did not move: Fly held
  // this value already, or flyctl dropped it; nothing here can tell which. Its fingerprint is kept
  // as unverified: the first run after a deploy (it is Deployed then) pushes it once more and can tell.
  const unverifiable = (name: string) => {
    const was = plan.before.get(name)
    return !notWritten(name) && was !== undefined && was.status !== 'Deployed' && was.digest === listed.get(name)?.digest
  }
  const lost = [...names.filter(notWritten), ...removed.filter((name) => after.has(name))]
  const unsure = names.filter(unverifiable)
  const stored = Object.fromEntries(Object.entries(plan.toPush).filter(([name]) => !lost.includes(name)))
  await saveFingerprints(db, ctx.env, plan.app, stored, new Map([...after].map(([name, digest]) => [name, unsure.includes(name) ? `${UNVERIFIED}${digest}` : digest])))
  await forgetFingerprints(db, ctx.env, plan.app, removed.filter((name) => !after.has(name)))
  // What was staged and removed, leaving out the names given.
  const done = (leftOut: string[]) => {
    const staged = names.filter((n) => !leftOut.includes(n))
    const gone = removed.filter((n) => !leftOut.includes(n))
    return [staged.length ? `staged ${staged.join(', ')}` : '', gone.length ? `removed ${gone.join(', ')}` : ''].filter(Boolean).join('; ')
  }
  const detail = done(lost)
  if (lost.length) {
    const message = `${plan.app}: Fly does not show ${lost.join(', ')} as ${removed.some((n) => lost.includes(n)) ? 'changed' : 'stored'} (secrets list after the import: digest unchanged or missing)`
    await record(ctx, db, { operation: 'set-secrets', app: plan.app, result: 'failed', detail: `${detail}; NOT stored: ${lost.join(', ')}` })
    throw new OperationError(message, ['flyctl exited 0, but the change is not there: run the target again; if it persists, check flyctl secrets list --app ' + plan.app])
  }
  const verified = done(unsure)
  await record(ctx, db, { operation: 'set-secrets', app: plan.app, result: 'ok', detail: unsure.length ? `${detail}; unverified: ${unsure.join(', ')}` : detail })
  if (verified) ctx.log.ok(`${plan.app}: ${verified}, verified in flyctl secrets list${names.length > unsure.length ? ' (they take effect at the next deploy)' : ''}`)
  if (unsure.length) {
    ctx.log.warn(`${plan.app}: ${unsure.join(', ')} imported, but Fly's digest did not change and ${unsure.length === 1 ? 'it was' : 'they were'} already Staged: Fly held ${unsure.length === 1 ? 'this value' : 'these values'} already, or did not store ${unsure.length === 1 ? 'it' : 'them'}; the first run after the next deploy pushes ${unsure.length === 1 ? 'it' : 'them'} once more to tell`)
  }
}

/** `flyctl secrets deploy`: the machines restart with the staged secrets. */
async function restart(ctx: Context, db: Database, app: string): Promise<void> {
  const fly = ctx.fly()
  if (!ctx.dryRun && !(await fly.apps.status(app)).Machines?.length) {
    ctx.log.info(`${app} has no machines yet: its first deploy starts them with these secrets`)
    return
  }
  try {
    await fly.secrets.deploy(app)
  } catch (error) {
    const message = `${app}: the secrets are stored on Fly, but restarting its machines failed; they take effect at the next deploy, or retry with flyctl secrets deploy --app ${app}`
    await record(ctx, db, { operation: 'set-secrets', app, result: 'failed', detail: message })
    ctx.log.error(message)
    throw error
  }
  if (ctx.dryRun) return
  const pending = (await fly.secrets.list(app)).filter((s) => s.status !== undefined && s.status !== 'Deployed')
  if (pending.length) {
    const message = `${app}: flyctl secrets deploy exited 0, but ${pending.map((s) => `${s.name} is ${s.status}`).join(', ')}`
    await record(ctx, db, { operation: 'set-secrets', app, result: 'failed', detail: message })
    throw new OperationError(message, [`retry with flyctl secrets deploy --app ${app}`])
  }
  await record(ctx, db, { operation: 'set-secrets', app, result: 'ok', detail: 'machines restarted with the new secrets' })
  ctx.log.ok(`${app}: machines restarted with the new secrets (secrets list shows them all deployed)`)
}
