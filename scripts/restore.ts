// `make restore-<env> BACKUP_ID=…`: restore a Managed Postgres backup into a NEW cluster (flyctl
// mpg restore never touches the live one), after confirmation. Without BACKUP_ID it lists the
// backups to choose from. Pointing the app at the new cluster stays a deliberate, separate step
// (the README's "Restore a database" section): a restore is checked before traffic moves.
import { main } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { mpgCluster } from './lib/database/backup.js'
import { confirmProduction } from './lib/safety/confirm.js'
import { OperationError, UserError } from './lib/core/errors.js'
import { formatWhen, table } from './lib/core/log.js'
import { databaseAppName, flyAppName, shortName } from './lib/core/names.js'
import { loadSettings } from './lib/core/settings.js'

void main({ name: 'restore', usage: 'restore <staging|production> [--backup-id ID] [--name NEW_CLUSTER] [--dry-run] [--yes] [--env-dir DIR]', environment: true, options: { 'backup-id': { type: 'string' }, name: { type: 'string' } } }, async (ctx) => {
  const settings = loadSettings()
  if (settings.database[ctx.env] !== 'mpg') {
    throw new UserError(`restore-${shortName(ctx.env)} restores Managed Postgres backups, and ${ctx.env} uses Fly Postgres (flypg): restore a volume snapshot with flyctl postgres create --snapshot-id <id> (README, "Restore a database")`)
  }
  const backupId = (ctx.flags['backup-id'] as string | undefined) ?? process.env.BACKUP_ID
  const name = (ctx.flags.name as string | undefined) ?? `${databaseAppName(ctx.env)}-restore-${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`
  if (!/^[a-z0-9-]+$/.test(name)) throw new UserError(`NAME=${name} is not a cluster name (lowercase letters, digits and -)`)
  const target = await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log)
  const cluster = mpgCluster(target)
  if (!cluster) throw new UserError(`the ${ctx.env} database URL names no Managed Postgres cluster (*.flympg.net)`)
  const fly = ctx.fly()
  const backups = await fly.mpg.backupList(cluster)
  ctx.log.result(table(['backup', 'status', 'type', 'started'], backups.map((b) => [b.id, b.status, b.type, formatWhen(b.start)])))
  if (!backupId) throw new UserError(`choose a backup: make restore-${shortName(ctx.env)} BACKUP_ID=<id from the table above>`)
  const backup = backups.find((b) => b.id === backupId)
  if (!backup || backup.status !== 'completed') throw new UserError(`BACKUP_ID=${backupId} is not a completed backup of cluster ${cluster} in the last 24 hours: choose one from the table above`)
  if ((await fly.mpg.list(settings.org)).some((c) => c.name === name)) throw new UserError(`a cluster named ${name} exists already: choose another with NAME=`)
  await confirmProduction(ctx, `restore-${shortName(ctx.env)} (into a new cluster ${name})`)
  await fly.mpg.restore(cluster, backupId, name)
  if (ctx.dryRun) return
  const created = (await fly.mpg.list(settings.org)).find((c) => c.name === name)
  if (!created) throw new OperationError(`flyctl mpg restore said it started, but flyctl mpg list shows no cluster ${name}`)
  ctx.log.ok(`restore of ${backupId} started into the new cluster ${name} (${created.id}); the live cluster ${cluster} is untouched`)
  ctx.log.info(`when flyctl mpg status ${created.id} says ready, check it (flyctl mpg connect ${created.id}), then point the app at it: flyctl secrets unset DATABASE_URL DIRECT_DATABASE_URL --app ${flyAppName(ctx.env, 'internal-api')} --stage, flyctl mpg attach ${created.id} --app ${flyAppName(ctx.env, 'internal-api')}, update env/${ctx.env}/internal-api.env, make deploy-${shortName(ctx.env)}`)
})
