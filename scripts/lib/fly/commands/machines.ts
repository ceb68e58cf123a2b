import { CommandError } from '../../core/errors.js'
import { seconds } from '../../core/knobs.js'
import { remoteExitStatus, sessionLost, translate } from '../errors.js'
import type { Flyctl } from '../flyctl.js'

/** `sh -c '<command>'` for `flyctl ssh console --command`, which runs no shell on Fly: the command
 * single-quoted for sh (each ' as '\''), which is also how hallpass splits it into words. */
export function shellCommand(command: string): string {
  return `sh -c '${command.replaceAll("'", "'\\''")}'`
}

/** What runs on an app's machines: ssh console and logs (flyctl.md §6, §7). */
export class Machines {
  constructor(private readonly flyctl: Flyctl) {}

  /** Runs one command on a started machine; flyctl exits 1 for any remote failure. */
  ssh(app: string, command: string, options: { write: boolean }) {
    return this.flyctl.run(['ssh', 'console', '--app', app, '--command', command], { write: options.write, timeoutMs: seconds('FLY_SSH_TIMEOUT'), retry: false, stream: options.write })
  }

  /** An operator's session on one machine (flyctl-facts 10: `--machine`, never `-s`): without a
   * command, the terminal is handed over (a login shell with a PTY); with one, its output is
   * streamed, masked, bounded by FLY_SSH_TIMEOUT. Counts as a write: a dry run prints it. A failure
   * of the remote command is not translated: its stderr is the machine's, and "permission denied"
   * there says nothing about the token. */
  async console(app: string, machine: string, command?: string) {
    const args = ['ssh', 'console', '--app', app, '--machine', machine, ...(command === undefined ? [] : ['--command', command])]
    const mode = command === undefined ? { interactive: true } : { passthrough: true, timeoutMs: seconds('FLY_SSH_TIMEOUT') }
    try {
      return await this.flyctl.exec.run({ argv: [this.flyctl.bin, ...args], write: true, retry: false, ...mode })
    } catch (error) {
      if (error instanceof CommandError && remoteExitStatus(error.stderr) === undefined && !sessionLost(error.stderr)) throw translate(error, args)
      throw error
    }
  }

  logs(app: string, timeoutMs: number) {
    return this.flyctl.run(['logs', '--app', app, '--no-tail'], { write: false, timeoutMs, retry: false })
  }

  /** `flyctl logs` without --no-tail: streams until stopped. */
  logsFollow(app: string, onLine: (line: string) => void) {
    return this.flyctl.start(['logs', '--app', app], onLine)
  }
}
