// fly status | checks list | machine list/start | releases (internal/command/status/*.go,
// checks/list.go, machine/list.go, machine/start.go, apps/releases.go; flyctl.md §3.3, §5).
import { APP_FLAG, FlyError, JSON_FLAG, appName, json, minimumArgs, out, parseFlags, unknownCommand } from '../cli.ts'
import { activeMachines, checkResults, machineJson, startMachine } from '../model/fleet.ts'
import { dir, fault, findApp, latency, timeScale } from '../runtime.ts'
import { type SimRelease, readState, updateState } from '../state.ts'
import { appJson } from './apps.ts'
import { releaseMachineJson } from './release-command.ts'

export async function status(args: string[]) {
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, watch: { value: false }, all: { value: false } })
  const name = appName(flags)
  await latency('status')
  await fault('status', name)
  if (flags.watch && flags.json) throw new FlyError('--watch and --json are not supported together')
  const state = readState(dir())
  const app = findApp(state, name)
  const machines = activeMachines(app)
  if (flags.json) {
    // The top-level object is a Go map: keys come out sorted (fly-platform.md §3.7).
    const { ID, Name, Deployed, Status, Hostname, Version, AppURL, Organization, PlatformVersion } = appJson(app)
    return json({ AppURL, Deployed, Hostname, ID, Machines: machines.map((m) => machineJson(state, m)), Name, Organization, PlatformVersion, Status, Version })
  }
  out(`App\n  Name     = ${app.name}\n  Owner    = ${app.org}\n  Hostname = ${app.name}.fly.dev\n  Platform = machines\n\n`)
  if (!machines.length) return out('No machines are available on this app\n')
  out(`Machines\nPROCESS\tID\tVERSION\tREGION\tSTATE\tCHECKS\n`)
  for (const m of machines) {
    const checks = checkResults(state, m)
    out(`app\t${m.id}\t${m.releaseVersion}\t${m.region}\t${m.state}\t${checks.length ? `${checks.length} total, ${checks.filter((c) => c.status === 'passing').length} passing` : ''}\n`)
  }
}

export async function checks(sub: string | undefined, args: string[]) {
  if (sub !== 'list') throw unknownCommand(sub, 'flyctl checks')
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, 'check-name': { value: true } })
  const name = appName(flags)
  await latency('checks')
  await fault('checks', name)
  const state = readState(dir())
  const byMachine = Object.fromEntries(activeMachines(findApp(state, name)).map((m) => [m.id, checkResults(state, m)]))
  if (flags.json) return json(byMachine)
  out(Object.entries(byMachine).map(([id, list]) => list.map((c) => `${c.name}\t${c.status}\t${id}`).join('\n')).join('\n') + '\n')
}

export async function machine(sub: string | undefined, args: string[]) {
  if (sub === 'list' || sub === 'ls') {
    const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, quiet: { short: 'q', value: false } })
    const name = appName(flags)
    await latency('machine')
    await fault('machine list', name)
    const state = readState(dir())
    const app = findApp(state, name)
    // flaps List: every machine, release-command and console ones included.
    const releaseMachines = app.releaseCommandMachines ?? []
    if (flags.json) return json([...app.machines.filter((m) => m.state !== 'destroyed').map((m) => machineJson(state, m)), ...releaseMachines.map((m) => releaseMachineJson(state, m))])
    if (!app.machines.length && !releaseMachines.length) return out(`No machines are available on this app ${name}\n`)
    return out([...app.machines, ...releaseMachines].map((m) => (flags.quiet ? m.id : `${m.id}\t${m.name}\t${m.state}\t${m.region}\t${m.image}`)).join('\n') + '\n')
  }
  if (sub === 'start') {
    const { flags, positionals } = parseFlags(args, { ...APP_FLAG, select: { short: 's', value: false } })
    const name = appName(flags)
    minimumArgs(positionals, 1)
    await latency('machine')
    await fault('machine start', name)
    for (const id of positionals) {
      updateState(dir(), (state) => {
        const m = findApp(state, name).machines.find((x) => x.id === id && x.state !== 'destroyed')
        if (!m) throw new FlyError(`machine ${id} was not found in app '${name}'`)
        if (m.state !== 'started') startMachine(state, m, 0, { app: findApp(state, name), scale: timeScale() })
      })
      out(`${id} has been started\n`)
    }
    return
  }
  throw unknownCommand(sub, 'flyctl machine')
}

/** fly.Release (GraphQL): the last 25, newest first by Version. */
export function releaseJson(r: SimRelease) {
  return { ID: r.ID, Version: r.Version, Stable: r.Status === 'complete', InProgress: false, Reason: '', Description: r.Description, Status: r.Status, DeploymentStrategy: '', Metadata: null, User: { ID: 'u_sim', Name: r.UserName, Email: 'ci@microbima.example', EnablePaidHobby: false }, EvaluationID: '', CreatedAt: r.CreatedAt, ImageRef: r.ImageRef }
}

export async function releases(args: string[]) {
  const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, image: { value: false } })
  const name = appName(flags)
  await latency('releases')
  const f = await fault('releases', name)
  // Fault `json-null`: Go renders a nil slice as null, not [].
  if (f?.kind === 'json-null' && flags.json) {
    findApp(readState(dir()), name)
    return out('null\n')
  }
  const list = [...findApp(readState(dir()), name).releases].sort((a, b) => b.Version - a.Version).slice(0, 25)
  if (flags.json) return json(list.map(releaseJson))
  out(`VERSION\tSTATUS\tDESCRIPTION\tUSER\tDATE${flags.image ? '\tDOCKER IMAGE' : ''}\n` + list.map((r) => `v${r.Version}\t${r.Status}\t${r.Description}\t${r.UserName}\t${r.CreatedAt}${flags.image ? `\t${r.ImageRef}` : ''}`).join('\n') + '\n')
}
