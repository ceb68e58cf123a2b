// The release command (machines_releasecommand.go runReleaseCommand, createOrUpdateReleaseCmdMachine,
// waitForReleaseCommandToFinish; flyctl.md §4.1, flyctl-facts item 6): a temporary machine with the
// new image, [env] plus the app's secrets, init.cmd split shell-style (no shell), auto_destroy and
// restart policy `no`, waited for; a non-zero exit fails the deploy before any machine is touched
// and shows the last log lines (buffered, each `<faint time> <message>`) on stderr.
//
// The machine is the platform's, not flyctl's: flyctl waits for it to be destroyed at most
// release_command_timeout, then gives up, and the command goes on running (a migration holding
// Prisma's advisory lock). Until it ends, `machine list` shows the machine; the next deploy that
// runs a release command destroys it first (kill=true, silently), killing the command where it is.
// The state-wait lines flyctl logs for the machine in between depend on timing and are not reproduced.
import { existsSync } from 'node:fs'
import { call } from '../call.ts'
import { FlyError, err, out } from '../cli.ts'
import { machineJson, newMachine } from '../model/fleet.ts'
import { runCommand, shellWords } from '../model/exec.ts'
import { dir, sandbox } from '../runtime.ts'
import { readState, updateState, type SimImage, type SimMachine, type SimState } from '../state.ts'
import { logLine } from '../model/logs.ts'
import type { StandinResult } from '../prisma-standin.ts'

export interface ReleaseCommand {
  app: string
  command: string
  image: SimImage | undefined
  /** What the command runs with: [env], the app's secrets, RELEASE_COMMAND and the rest. */
  env: Record<string, string>
  /** What the machine's config shows (secrets are injected by the platform, never in config.env). */
  configEnv: Record<string, string>
  secretsVersion: number
  release: { ID: string; Version: number }
  injectedFailure: boolean
  /** Fault `release-command-slow`: the migration holds its started row this long (a long migration). */
  slowMs?: number
  /** Infinity: `none` or 0, wait for ever. */
  timeoutMs: number
  region: string
}

/** Release commands still running in this server, by state directory and machine: what a
 * destroy with kill=true stops, and the promise that settles once it has stopped. */
const running = new Map<string, { kill: AbortController; ended: Promise<unknown> }>()
const runningKey = (stateDir: string, id: string) => `${stateDir}\n${id}`

/** The sandbox stops: its platform goes, and with it every release command still running. */
export async function stopReleaseCommands(stateDir: string): Promise<void> {
  const mine = [...running].filter(([key]) => key.startsWith(`${stateDir}\n`)).map(([, run]) => run)
  for (const run of mine) run.kill.abort()
  await Promise.all(mine.map((run) => run.ended))
}

/** The machine's log lines as the release command buffers them: `<faint RFC3339 time> <message>`. */
const logged = (lines: string[]) => lines.map((l) => `\x1b[2m${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}\x1b[0m ${l}\n`).join('')

/** fly.Machine of a release_command machine as `machine list --json` shows it (ToReleaseMachineConfig). */
export function releaseMachineJson(state: SimState, machine: SimMachine) {
  const json = machineJson(state, machine)
  const { services: _none, ...config } = json.config
  return { ...json, config: { ...config, init: { cmd: machine.config.init?.cmd ?? [] }, restart: { policy: 'no' }, auto_destroy: true, dns: { skip_registration: true } } }
}

/**
 * createOrUpdateReleaseCmdMachine: NewMachineDeployment keeps the last release_command machine
 * flaps lists; it is destroyed with kill=true before the new one is created. Nothing is printed
 * and errors are ignored, so a migration still running is killed without a word.
 */
async function destroyLeftover(stateDir: string, app: string): Promise<void> {
  const leftover = readState(stateDir).apps[app]?.releaseCommandMachines?.at(-1)
  if (!leftover) return
  const run = running.get(runningKey(stateDir, leftover.id))
  run?.kill.abort()
  await run?.ended
  updateState(stateDir, (state) => {
    const a = state.apps[app]
    if (a) a.releaseCommandMachines = (a.releaseCommandMachines ?? []).filter((m) => m.id !== leftover.id)
  })
}

/** Resolves with the command's result, or 'timeout' after ms; rejects when the call is interrupted. */
function waitUntilDestroyed(ended: Promise<StandinResult>, ms: number): Promise<StandinResult | 'timeout'> {
  const { interrupted } = call()
  return new Promise((resolve, reject) => {
    if (interrupted.aborted) return reject(interrupted.reason)
    const timer = Number.isFinite(ms) ? setTimeout(() => settle('timeout'), Math.min(ms, 2 ** 31 - 1)) : undefined
    const stop = () => (clearTimeout(timer), reject(interrupted.reason))
    const settle = (value: StandinResult | 'timeout') => {
      clearTimeout(timer)
      interrupted.removeEventListener('abort', stop)
      resolve(value)
    }
    interrupted.addEventListener('abort', stop, { once: true })
    ended.then(settle, () => settle({ status: 1, stdout: '', stderr: '' }))
  })
}

export async function runReleaseCommand(r: ReleaseCommand): Promise<void> {
  // The flyctl call may end before the command does: everything after it names its state dir.
  const stateDir = dir()
  // runReleaseCommand: the header on stderr, then one status line (statuslogger.SingleLine, no index) on stdout.
  err(`Running ${r.app} release_command: ${r.command}\n`)
  await destroyLeftover(stateDir, r.app)
  const machine = updateState(stateDir, (state) => {
    const app = state.apps[r.app]
    // inferReleaseCommandGuest: the largest machine of the app's group, shared-cpu-2x for a new app.
    const guest = app.machines.map((m) => m.config.guest).sort((a, b) => b.memory_mb - a.memory_mb)[0] ?? { cpu_kind: 'shared', cpus: 2, memory_mb: 512 }
    const metadata = { fly_platform_version: 'v2', fly_process_group: 'fly_app_release_command', fly_release_id: r.release.ID, fly_release_version: String(r.release.Version), fly_flyctl_version: '0.4.87' }
    const m = newMachine(app, { image: r.image?.ref ?? '', env: r.configEnv, services: [], checks: [], metadata, mounts: [], guest, init: { cmd: shellWords(r.command) } }, r.region, r.secretsVersion)
    m.releaseVersion = r.release.Version
    m.state = 'started'
    app.releaseCommandMachines = [...(app.releaseCommandMachines ?? []), m]
    return m
  })
  out(`> Created release_command machine ${machine.id}\n`)
  err('Starting machine\n')

  const kill = new AbortController()
  const result: Promise<StandinResult> = r.injectedFailure
    ? Promise.resolve({ status: 1, stdout: '', stderr: 'Error: P3018\n\nA migration failed to apply (injected fault)\n' })
    : runCommand({ state: readState(stateDir), sandbox: sandbox(), image: r.image, env: r.env, slowMs: r.slowMs, signal: kill.signal }, shellWords(r.command))
  // Whatever flyctl does meanwhile, the command ends (or is killed): its output reaches the app's
  // logs, as every machine's does (flyctl logs), and the machine destroys itself (auto_destroy).
  const ended = result
    .then((done) => {
      const lines = (done.stdout + done.stderr).split('\n').filter(Boolean)
      if (!existsSync(stateDir)) return done // the sandbox is gone
      updateState(stateDir, (state) => {
        const app = state.apps[r.app]
        if (!app) return
        app.logs.push(...lines.map((line) => logLine(machine.id, r.region, 'info', line)))
        app.releaseCommandMachines = (app.releaseCommandMachines ?? []).filter((m) => m.id !== machine.id)
      })
      return done
    })
    .finally(() => running.delete(runningKey(stateDir, machine.id)))
  running.set(runningKey(stateDir, machine.id), { kill, ended: ended.catch(() => undefined) })

  const outcome = await waitUntilDestroyed(ended, r.timeoutMs)
  if (outcome === 'timeout') {
    // waitForReleaseCommandToFinish: WaitForState(destroyed) times out with machine.WaitTimeoutErr,
    // which suggestChangeWaitTimeout turns into a GenericErr with a description and a suggestion
    // (exit 1). flyctl neither stops nor destroys the machine: the command goes on.
    const error = `error waiting for release_command machine ${machine.id} to finish running: timeout reached waiting for machine's state to change`
    out(`✖ Failed: ${error}\n`)
    throw new FlyError(`release command failed - aborting deployment. ${error}`, 1, '', 'Your machine never reached the state "destroyed".\n\nYou can try increasing the timeout with the --release-command-timeout flag\n\n')
  }
  const lines = (outcome.stdout + outcome.stderr).split('\n').filter(Boolean).slice(-100)
  if (outcome.status !== 0) {
    const error = `machine ${machine.id} exited with non-zero status of ${outcome.status}`
    out('✖ release_command failed\n')
    err(`Error release_command failed running on machine ${machine.id} with exit code ${outcome.status}.\nChecking logs: fetching the last 100 lines below:\n${logged(lines)}`)
    out(`✖ Failed: ${error}\n`)
    throw new FlyError(`release command failed - aborting deployment. ${error}`)
  }
  out(`✔ release_command ${machine.id} completed successfully\n`)
}
