// The release command (machines_releasecommand.go; flyctl.md §4.1): a temporary machine with the
// new image, [env] plus the app's secrets, init.cmd split shell-style (no shell), waited for; a
// non-zero exit fails the deploy before any machine is touched and shows the last log lines.
import { FlyError, err } from '../cli.ts'
import { hex } from '../model/fleet.ts'
import { runCommand, shellWords } from '../model/exec.ts'
import { dir, sandbox } from '../runtime.ts'
import { readState, type SimImage } from '../state.ts'

export interface ReleaseCommand {
  app: string
  command: string
  image: SimImage | undefined
  env: Record<string, string>
  injectedFailure: boolean
  timeoutMs: number
}

export async function runReleaseCommand(r: ReleaseCommand): Promise<void> {
  const machineId = hex(7)
  err(`Running ${r.app} release_command: ${r.command}\n`)
  const run = r.injectedFailure
    ? Promise.resolve({ status: 1, stdout: '', stderr: 'Error: P3018\n\nA migration failed to apply (injected fault)\n' })
    : runCommand({ state: readState(dir), sandbox, image: r.image, env: r.env }, shellWords(r.command))
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([run, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), r.timeoutMs)))])
  clearTimeout(timer)
  if (result === 'timeout') {
    throw new FlyError(`release command failed - aborting deployment. error waiting for release_command machine ${machineId} to finish running: context deadline exceeded`, 1, '', 'You can increase the timeout with the --release-command-timeout flag\n')
  }
  err(`Starting machine ${machineId}\n`)
  if (result.status !== 0) {
    err(`Error release_command failed running on machine ${machineId} with exit code ${result.status}.\nChecking logs: fetching the last 100 lines below:\n`)
    err((result.stdout + result.stderr).split('\n').filter(Boolean).slice(-100).map((l) => `  ${l}\n`).join(''))
    throw new FlyError(`release command failed - aborting deployment. machine ${machineId} exited with non-zero status of ${result.status}`)
  }
  err(`${result.stdout.split('\n').filter(Boolean).map((l) => `  ${l}\n`).join('')}✔ release_command ${machineId} completed successfully\n`)
}
