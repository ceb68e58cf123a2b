// make console-<env> APP=… [CMD=…]: a shell on one of the app's machines, or one command there.
// The machine is chosen here, not by flyctl (flyctl-facts 10: only started machines; `-s` prompts
// and fails without a terminal, and without --machine flyctl takes the first in the API's order):
// the newest started machine that passes its checks, passed with --machine.
// CMD runs through `sh -c '…'`: flyctl's --command runs no shell on Fly, and an operator typing
// CMD="cd /app && ls" expects one. flyctl exits 1 for any remote failure and says the status only
// on stderr (`Error: ssh shell: Process exited with status N`); this says it again, plainly.
// A console on production is a change: it asks for the confirmation first.
import { main } from './lib/core/cli.js'
import { CommandError, OperationError, UserError, shown } from './lib/core/errors.js'
import { displayCommand } from './lib/core/exec.js'
import { knob } from './lib/core/knobs.js'
import { APP_KEYS, flyAppName, shortName } from './lib/core/names.js'
import { checksShown, labelShown, pickConsoleMachine } from './lib/fleet/machines.js'
import { remoteExitStatus, sessionLost } from './lib/fly/errors.js'
import { shellCommand } from './lib/fly/commands/machines.js'
import { resolveFlyBin } from './lib/fly/flyctl.js'
import { confirmProduction } from './lib/safety/confirm.js'

/** One line of shell, or the reason it is not: a newline would make hallpass's words and the
 * operator's intent part ways, and control characters are never typed on purpose. */
function commandProblem(command: string): string | undefined {
  if (!command.trim()) return 'CMD= is only blanks: give it a command to run on the machine, or leave it out for an interactive shell'
  if (/[\n\r]/.test(command)) return `CMD="${shown(command)}" has more than one line: give one line (join commands with && or ;)`
  if (/[\p{Cc}\p{Cf}\u2028\u2029]/u.test(command.replaceAll('\t', ' '))) return `CMD="${shown(command)}" holds control characters: give a plain command line`
  return undefined
}

void main(
  {
    name: 'console',
    usage: 'console <staging|production> --app KEY [--cmd COMMAND] [--dry-run] [--yes]',
    environment: true,
    options: { cmd: { type: 'string' } },
  },
  async (ctx) => {
    const command = ctx.flags.cmd as string | undefined
    const problems: string[] = []
    if (!ctx.oneApp) problems.push(`a console is on one app: give APP=<${APP_KEYS.join('|')}> (--app)`)
    const problem = command === undefined ? undefined : commandProblem(command)
    if (problem) problems.push(problem)
    if (problems.length) throw new UserError(problems)
    resolveFlyBin() // FLY_BIN's problems are usage (exit 2), found before the confirmation
    const [key] = ctx.apps
    const app = flyAppName(ctx.env, key)
    await confirmProduction(ctx, `console-prod APP=${key}`)

    const status = await ctx.fly().apps.status(app)
    const choice = pickConsoleMachine(status, { deploy: `make deploy-${shortName(ctx.env)} APP=${key}` })
    if (!choice.machine) throw new OperationError(choice.problem)
    const { machine } = choice
    if (choice.warning) ctx.log.warn(choice.warning)
    const remote = command === undefined ? undefined : shellCommand(command)
    const checks = checksShown(machine)
    ctx.log.info(`${app}: machine ${machine.id} (${machine.region}, ${checks === '-' ? 'no checks' : `checks ${checks} passing`}, image ${labelShown(machine.config?.image, app)})`)
    if (!ctx.dryRun) {
      const argv = [resolveFlyBin(), 'ssh', 'console', '--app', app, '--machine', machine.id, ...(remote === undefined ? [] : ['--command', remote])]
      if (!ctx.verbose) ctx.log.info(`$ ${displayCommand(argv)}`) // VERBOSE=1: exec shows it
      if (remote === undefined) ctx.log.info('a login shell on the machine; exit or Ctrl-D ends it')
    }
    try {
      await ctx.fly().machines.console(app, machine.id, remote)
    } catch (error) {
      if (!(error instanceof CommandError)) throw error
      // flyctl's own lines were already shown as they came (stderr is copied through).
      const where = `on machine ${machine.id} of ${app}`
      const status = remoteExitStatus(error.stderr)
      if (status !== undefined) {
        throw new OperationError(remote === undefined ? `the shell ${where} ended with status ${status}` : `the command exited with status ${status} ${where}`)
      }
      if (error.status === null) {
        throw new OperationError(`the command did not end within FLY_SSH_TIMEOUT=${knob('FLY_SSH_TIMEOUT')} s and the session was closed; it may still be running ${where}`)
      }
      if (sessionLost(error.stderr)) throw new OperationError(`the ssh session was lost before the ${remote === undefined ? 'shell' : 'command'} ended; it may still be running ${where}`)
      const last = error.stderr.trim().split('\n').pop()?.replace(/^Error:\s*/, '') ?? ''
      throw new OperationError(`flyctl ssh console could not open a session ${where}${last ? `: ${last}` : ` (${error.reason})`}`)
    }
    if (remote !== undefined && !ctx.dryRun) ctx.log.ok(`the command exited 0 on machine ${machine.id}`)
  },
)
