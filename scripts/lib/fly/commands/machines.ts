import { seconds } from '../../core/knobs.js'
import type { Flyctl } from '../flyctl.js'

/** What runs on an app's machines: ssh console and logs (flyctl.md §6, §7). */
export class Machines {
  constructor(private readonly flyctl: Flyctl) {}

  /** Runs one command on a started machine; flyctl exits 1 for any remote failure. */
  ssh(app: string, command: string, options: { write: boolean }) {
    return this.flyctl.run(['ssh', 'console', '--app', app, '--command', command], { write: options.write, timeoutMs: seconds('FLY_SSH_TIMEOUT'), retry: false, stream: options.write })
  }

  logs(app: string, timeoutMs: number) {
    return this.flyctl.run(['logs', '--app', app, '--no-tail'], { write: false, timeoutMs, retry: false })
  }

  /** `flyctl logs` without --no-tail: streams until stopped. */
  logsFollow(app: string, onLine: (line: string) => void) {
    return this.flyctl.start(['logs', '--app', app], onLine)
  }
}
