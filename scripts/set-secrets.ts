// Sections 3.1 and 6.3: each app's env file plus NODE_ENV becomes its Fly secrets, through
// `flyctl secrets import --stage` on stdin (values never in argv, never printed). --stage stores
// them without restarting machines: the next deploy picks them up. A diff by name comes first.
// APPLY=1 (--apply) restarts the machines now with `flyctl secrets deploy`, as the document's
// `fly secrets set` would; a failed restart leaves the secrets stored, and says so.
import chalk from 'chalk'
import { envFlag, main } from './lib/cli.js'
import { envFilePath, loadDatabaseTarget, readEnvFile } from './lib/config.js'
import { confirmProduction } from './lib/confirm.js'
import { connect } from './lib/db.js'
import { record } from './lib/ledger.js'
import { withLock } from './lib/lock.js'
import { table } from './lib/log.js'
import { flyAppName } from './lib/names.js'

await main(
  { name: 'set-secrets', usage: 'set-secrets <staging|production> [--app KEY] [--prune] [--apply] [--dry-run] [--yes] [--verbose] [--env-dir DIR]', environment: true, options: { prune: { type: 'boolean' }, apply: { type: 'boolean' } } },
  async (ctx) => {
    const prune = Boolean(ctx.flags.prune) || envFlag('PRUNE')
    const apply = Boolean(ctx.flags.apply) || envFlag('APPLY')
    // Every file is validated before the first write: a bad web-admin file leaves the others untouched.
    const target = loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
    const payloads = ctx.apps.map((key) => {
      const { values } = readEnvFile(envFilePath(ctx.envDir, ctx.env, key), ctx.env, ctx.log)
      return { key, app: flyAppName(ctx.env, key), values: { NODE_ENV: ctx.env as string, ...values } }
    })
    const fly = ctx.fly()
    const plans = await Promise.all(
      payloads.map(async (p) => {
        const onFly = await fly.secretsList(p.app)
        const onlyOnFly = onFly.map((s) => s.name).filter((name) => !(name in p.values))
        return { ...p, onFly, onlyOnFly }
      }),
    )
    for (const plan of plans) {
      const known = new Set(plan.onFly.map((s) => s.name))
      const rows = [
        ...Object.keys(plan.values).map((name) => [name, known.has(name) ? 'on Fly: re-staged (values are never read back, so not compared)' : chalk.green('added')]),
        ...plan.onlyOnFly.map((name) => [name, prune ? chalk.red('only on Fly: will be removed (--prune)') : chalk.yellow('only on Fly (kept; --prune removes it)')]),
      ]
      ctx.log.result(`${chalk.bold(plan.app)}\n${table(['secret', 'change'], rows)}`)
    }

    await confirmProduction(ctx, `set-secrets-${ctx.env}`)
    const db = await connect(ctx, target)
    await withLock(ctx, db, 'set-secrets', async () => {
      for (const plan of plans) {
        await fly.secretsImport(plan.app, plan.values)
        if (prune && plan.onlyOnFly.length) await fly.secretsUnset(plan.app, plan.onlyOnFly)
        await record(ctx, db, { operation: 'set-secrets', app: plan.app, result: 'ok', detail: `staged ${Object.keys(plan.values).join(', ')}${prune && plan.onlyOnFly.length ? `; removed ${plan.onlyOnFly.join(', ')}` : ''}` })
        if (!ctx.dryRun) ctx.log.ok(`${plan.app}: ${Object.keys(plan.values).length} secrets staged${apply ? '' : ' (they take effect at the next deploy)'}`)
      }
      if (!apply) return
      for (const plan of plans) {
        if (!ctx.dryRun && !(await fly.status(plan.app)).Machines?.length) {
          ctx.log.info(`${plan.app} has no machines yet: its first deploy starts them with these secrets`)
          continue
        }
        try {
          await fly.secretsDeploy(plan.app)
        } catch (error) {
          const message = `${plan.app}: the secrets are stored on Fly, but restarting its machines failed; they take effect at the next deploy, or retry with flyctl secrets deploy --app ${plan.app}`
          await record(ctx, db, { operation: 'set-secrets', app: plan.app, result: 'failed', detail: message })
          ctx.log.error(message)
          throw error
        }
        await record(ctx, db, { operation: 'set-secrets', app: plan.app, result: 'ok', detail: 'machines restarted with the new secrets' })
        if (!ctx.dryRun) ctx.log.ok(`${plan.app}: machines restarted with the new secrets`)
      }
    })
  },
)
