// Who holds the environment's deploy lock (laptops and CI share it through the database).
import { main } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { connect } from './lib/database/db.js'
import { describeHolder, isHold, lockHolder } from './lib/safety/lock.js'

void main({ name: 'lock-status', usage: 'lock-status <staging|production> [--env-dir DIR]', environment: true }, async (ctx) => {
  const db = await connect(ctx, await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
  const holder = await lockHolder(db, ctx.env)
  if (!holder) return void ctx.log.result(`${ctx.env}: free`)
  ctx.log.result(`${ctx.env}: ${isHold(holder) ? 'held' : 'locked'} by ${describeHolder(holder)}${isHold(holder) ? ' (until make unlock)' : ` (expires ${new Date(holder.expires_at).toISOString()} unless renewed)`}`)
})
