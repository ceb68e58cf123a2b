import { CommandError, OperationError, UserError } from '../core/errors.js'

// flyctl's failures as an operator reads them: the remote status `ssh console` only prints, and one
// line with the command that fixes each known failure.

/** The remote exit status flyctl only reports on stderr ("Error: ssh shell: Process exited with status N"). */
export function remoteExitStatus(stderr: string): number | undefined {
  const match = /ssh shell: Process exited with status (\d+)/.exec(stderr)
  return match ? Number(match[1]) : undefined
}

/** An ssh session that ended without an exit status: the command may have run, or still be running. */
export function sessionLost(stderr: string): boolean {
  return /remote command exited without exit status|session forcibly closed|the remote process may still be running/.test(stderr)
}

/**
 * flyctl's own error: the `Error: …` line cli.printError writes last (before its description and
 * suggestion), never a line flyctl relays from an app. A release command's log lines come before
 * it (each behind a timestamp), a remote command's stderr (ssh console) before it too, and the log
 * lines of a crashing machine after it, below "Check its logs:". None (flyctl was stopped): ''.
 */
export function flyctlError(stderr: string): string {
  const own = stderr.replace(/\x1b\[[0-9;]*m/g, '').split(/^Check its logs: here's the last lines below.*$/m)[0]
  return own.split('\n').map((l) => l.trim()).reverse().find((l) => l.startsWith('Error: ')) ?? ''
}

/** The release_command machine flyctl stopped waiting for (waitForReleaseCommandToFinish): its
 * command (a migration) may still be running there. */
export function releaseCommandTimedOut(stderr: string): string | undefined {
  return /error waiting for release_command machine (\w+) to finish running: timeout reached/.exec(flyctlError(stderr))?.[1]
}

/**
 * A release command flyctl stopped waiting for (flyctl.md §4.1): it may still be running, holding
 * Prisma's advisory lock, and the next deploy that runs a release command destroys its machine
 * (kill=true, without a word), killing the migration mid-way. What it means, how to watch it, and
 * when deploying again is safe. `unfinished`: migrations started and not finished (undefined: the
 * database could not be read).
 */
export function releaseCommandOutlived(app: string, machine: string, timeout: string, environment: string, unfinished: string[] | undefined): OperationError {
  const make = environment === 'production' ? 'prod' : 'staging'
  return new OperationError(`the release command of ${app} ran longer than its release_command_timeout (${timeout}): flyctl stopped waiting, but the migration may still be running on machine ${machine}, holding Prisma's advisory lock 72707369`, [
    `no machine of ${app} was changed; the toolkit does not deploy ${app} again in this run, not even to roll back: a deploy that runs the release command first destroys machine ${machine}, which kills the migration mid-way`,
    unfinished === undefined
      ? `the ${environment} database could not be read to say which migration is running`
      : unfinished.length
        ? `started and not finished now: ${unfinished.join(', ')} (running, or killed: do not resolve or roll it back while machine ${machine} exists)`
        : 'no migration is started and unfinished right now (it may be waiting for the lock)',
    `watch it: flyctl machine list --app ${app} --json (machine ${machine}, fly_process_group fly_app_release_command; it destroys itself when the migration ends)`,
    `its output: flyctl logs --app ${app} --machine ${machine}`,
    `the migrations: make migrate-status; the lock: SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369`,
    `deploy again (make deploy-${make}) only once machine ${machine} is gone from that list and make migrate-status shows no unfinished migration`,
  ])
}

/** Whether a write has reached Fly in this run: after one, a failure is an operation failure (1). */
let changed = false

/** Called after each write flyctl made. */
export function markChanged(): void {
  changed = true
}

/** One line and the command that fixes it, for flyctl's failures that have a known way out. */
export function translate(error: CommandError, args: string[]): Error {
  // Only flyctl's own error line counts: a migration's "permission denied for table" in the
  // release command's logs is not a token problem.
  const stderr = flyctlError(error.stderr)
  const app = args[args.indexOf('--app') + 1]
  const known = (message: string, next: string) =>
    changed ? new OperationError(`${message} (after changes were made in this run)`, [`next: ${next}`]) : new UserError(`${message}: ${next}`)
  if (/no access token available|token (has )?expired|invalid token|authentication required/i.test(stderr)) {
    return known('flyctl is not logged in or its token expired', "run 'flyctl auth login' or set FLY_API_TOKEN")
  }
  if (/Could not find App|app not found|Could not resolve App/i.test(stderr) && app) {
    return known(`the Fly app ${app} does not exist`, `create it with make create-apps-${app.includes('-production-') ? 'prod' : 'staging'}`)
  }
  if (/not authorized|unauthorized|permission denied|forbidden/i.test(stderr)) {
    return new CommandError(error.command, error.status, error.stderr, error.reason, `the token cannot do this (${app ?? 'this app'}): use an org token (flyctl tokens create org <org>) where one app's deploy token is not enough`)
  }
  if (/could not find image/i.test(stderr)) {
    return new CommandError(error.command, error.status, error.stderr, error.reason, `the image is not in Fly's registry for this organization: pick one from flyctl releases --app ${app ?? '<app>'} --json, or deploy staging first`)
  }
  return error
}

/** flyctl's long error texts as one short line for tables (the full text is printed above them). */
export function shortFlyError(text: string): string {
  const health = /timeout reached waiting for health checks to pass for machine (\w+)/.exec(text)
  if (health) return `machine ${health[1]} failed its health checks; flyctl stopped the rolling deploy there`
  const release = /release command failed - aborting deployment\. machine \w+ exited with non-zero status of (\d+)/.exec(text)
  if (release) return `the release command exited ${release[1]}: no machine was changed`
  const outlived = /error waiting for release_command machine (\w+) to finish running: timeout reached/.exec(text)
  if (outlived) return `the release command outlived its timeout and may still be running on machine ${outlived[1]}: no machine was changed`
  const unstarted = /error waiting for release_command machine (\w+) to start: timeout reached/.exec(text)
  if (unstarted) return `the release command's machine ${unstarted[1]} never started: no machine was changed`
  const state = /timeout reached waiting for machine's state to change/.exec(text)
  if (state) return 'a machine never reached the started state'
  const image = /could not find image "([^"]+)"/i.exec(text)
  if (image) return `Fly's registry has no image ${image[1]}`
  return text.replace(/^Error:\s*/, '').replace(/\s*\(Request ID: [^)]*\)/, '')
}
