// The release command (machines_releasecommand.go runReleaseCommand; flyctl.md §4.1): a temporary
// machine with the new image, [env] plus the app's secrets, init.cmd split shell-style (no shell),
// waited for; a non-zero exit fails the deploy before any machine is touched and shows the last
// log lines (buffered, each `<faint time> <message>`) on stderr. The state-wait lines flyctl logs
// for the machine in between depend on timing and are not reproduced.
import { FlyError, err, out } from '../cli.ts'
import { hex } from '../model/fleet.ts'
import { runCommand, shellWords } from '../model/exec.ts'
import { dir, sandbox } from '../runtime.ts'
import { readState, updateState, type SimImage } from '../state.ts'
import { logLine } from '../model/logs.ts'

export interface ReleaseCommand {
  app: string
  command: string
  image: SimImage | undefined
  env: Record<string, string>
  injectedFailure: boolean
  timeoutMs: number
  region: string
}

/** The machine's log lines as the release command buffers them: `<faint RFC3339 time> <message>`. */
const logged = (lines: string[]) => lines.map((l) => `\x1b[2m${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}\x1b[0m ${l}\n`).join('')

export async function runReleaseCommand(r: ReleaseCommand): Promise<void> {
  const machineId = hex(7)
  // runReleaseCommand: the header on stderr, then one status line (statuslogger.SingleLine, no index) on stdout.
  err(`Running ${r.app} release_command: ${r.command}\n`)
  out(`> Created release_command machine ${machineId}\n`)
  err('Starting machine\n')
  const run = r.injectedFailure
    ? Promise.resolve({ status: 1, stdout: '', stderr: 'Error: P3018\n\nA migration failed to apply (injected fault)\n' })
    : runCommand({ state: readState(dir()), sandbox: sandbox(), image: r.image, env: r.env }, shellWords(r.command))
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([run, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), r.timeoutMs)))])
  clearTimeout(timer)
  if (result === 'timeout') {
    // waitForReleaseCommandToFinish: WaitForState(destroyed) times out with machine.WaitTimeoutErr,
    // which suggestChangeWaitTimeout turns into a GenericErr with a description and a suggestion.
    const error = `error waiting for release_command machine ${machineId} to finish running: timeout reached waiting for machine's state to change`
    out(`✖ Failed: ${error}\n`)
    throw new FlyError(`release command failed - aborting deployment. ${error}`, 1, '', 'Your machine never reached the state "destroyed".\n\nYou can try increasing the timeout with the --release-command-timeout flag\n\n')
  }
  const lines = (result.stdout + result.stderr).split('\n').filter(Boolean).slice(-100)
  // Like every machine's output, the release command's reaches the app's logs (flyctl logs).
  updateState(dir(), (state) => void state.apps[r.app]?.logs.push(...lines.map((line) => logLine(machineId, r.region, 'info', line))))
  if (result.status !== 0) {
    const error = `machine ${machineId} exited with non-zero status of ${result.status}`
    out('✖ release_command failed\n')
    err(`Error release_command failed running on machine ${machineId} with exit code ${result.status}.\nChecking logs: fetching the last 100 lines below:\n${logged(lines)}`)
    out(`✖ Failed: ${error}\n`)
    throw new FlyError(`release command failed - aborting deployment. ${error}`)
  }
  out(`✔ release_command ${machineId} completed successfully\n`)
}
