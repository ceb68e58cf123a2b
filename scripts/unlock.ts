// Breaks the environment's deploy lock, for when its holder died and will not come back before
// the lock expires, or ends a hold (make lock-<env>). Needs YES=1: breaking a live holder's lock
// lets two deploys interleave.
import { main } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { connect } from './lib/database/db.js'
import { Refusal } from './lib/core/errors.js'
import { record } from './lib/safety/ledger.js'
import { breakLock, describeHolder, lockHolder } from './lib/safety/lock.js'

void main({ name: 'unlock', usage: 'unlock <staging|production> --yes [--dry-run] [--env-dir DIR]', environment: true }, async (ctx) => {
  const db = await connect(ctx, await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
  const holder = await lockHolder(db, ctx.env)
  if (!holder) {
    ctx.log.result(`${ctx.env}: free, nothing to break`)
    return
  }
  if (!ctx.yes && !ctx.dryRun) throw new Refusal(`breaking the ${ctx.env} lock held by ${describeHolder(holder)} needs YES=1 on the make command line (--yes): make sure that operation is really gone`)
  await breakLock(ctx, db)
  if (ctx.dryRun) return
  await record(ctx, db, { operation: 'unlock', result: 'ok', detail: `broke the lock of ${describeHolder(holder)}` })
  ctx.log.result(`${ctx.env}: lock of ${describeHolder(holder)} broken`)
})
