// `make lock-<env> REASON=…`: hold the environment during an incident. Deploys, migrations,
// secrets and rollbacks refuse at once (exit 3) naming who holds it and why, until
// `make unlock-<env> YES=1`. lock-status shows it.
import { main } from './lib/core/cli.js'
import { loadDatabaseTarget } from './lib/secrets/env-files.js'
import { confirmProduction } from './lib/safety/confirm.js'
import { connect } from './lib/database/db.js'
import { CONTROL, UserError } from './lib/core/errors.js'
import { record } from './lib/safety/ledger.js'
import { holdLock } from './lib/safety/lock.js'
import { shortName } from './lib/core/names.js'

void main({ name: 'lock', usage: 'lock <staging|production> --reason TEXT [--dry-run] [--yes] [--env-dir DIR]', environment: true, options: { reason: { type: 'string' } } }, async (ctx) => {
  const reason = ((ctx.flags.reason as string | undefined) ?? '').trim()
  if (!reason) throw new UserError(`say why: make lock-${shortName(ctx.env)} REASON="incident 42: payments failing"`)
  if (reason.length > 200 || CONTROL.test(reason)) throw new UserError('REASON= must be one line of at most 200 characters, without control or format characters (newline, tab, DEL, U+2028, bidi overrides)')
  const db = await connect(ctx, await loadDatabaseTarget(ctx.envDir, ctx.env, ctx.log))
  await confirmProduction(ctx, `lock-${shortName(ctx.env)}`)
  await holdLock(ctx, db, reason)
  if (ctx.dryRun) return void ctx.log.result(`would hold the ${ctx.env} environment: ${reason}`)
  await record(ctx, db, { operation: 'lock', result: 'ok', detail: reason })
  ctx.log.ok(`${ctx.env} is held: ${reason}. Deploys refuse until make unlock-${shortName(ctx.env)} YES=1`)
})
