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

/** Whether a write has reached Fly in this run: after one, a failure is an operation failure (1). */
let changed = false

/** Called after each write flyctl made. */
export function markChanged(): void {
  changed = true
}

/** One line and the command that fixes it, for flyctl's failures that have a known way out. */
export function translate(error: CommandError, args: string[]): Error {
  const stderr = error.stderr
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
    return new CommandError(error.command, error.status, stderr, error.reason, `the token cannot do this (${app ?? 'this app'}): use an org token (flyctl tokens create org <org>) where one app's deploy token is not enough`)
  }
  if (/could not find image/i.test(stderr)) {
    return new CommandError(error.command, error.status, stderr, error.reason, `the image is not in Fly's registry for this organization: pick one from flyctl releases --app ${app ?? '<app>'} --json, or deploy staging first`)
  }
  return error
}

/** flyctl's long error texts as one short line for tables (the full text is printed above them). */
export function shortFlyError(text: string): string {
  const health = /timeout reached waiting for health checks to pass for machine (\w+)/.exec(text)
  if (health) return `machine ${health[1]} failed its health checks; flyctl stopped the rolling deploy there`
  const release = /release command failed - aborting deployment\. machine \w+ exited with non-zero status of (\d+)/.exec(text)
  if (release) return `the release command exited ${release[1]}: no machine was changed`
  const state = /timeout reached waiting for machine's state to change/.exec(text)
  if (state) return 'a machine never reached the started state'
  const image = /could not find image "([^"]+)"/i.exec(text)
  if (image) return `Fly's registry has no image ${image[1]}`
  return text.replace(/^Error:\s*/, '').replace(/\s*\(Request ID: [^)]*\)/, '')
}
