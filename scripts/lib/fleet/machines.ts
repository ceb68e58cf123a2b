import { commitOf } from '../deploy/label.js'
import { shortRef } from '../core/log.js'
import type { FlyMachine, FlyStatus } from '../fly/types.js'

// An app's machines as the everyday verbs show them (make status, make console, make releases):
// the image by its label, the commit the label names, the release each machine runs, and which
// machine an operator's console lands on.

/** An image by its label (the tag: `git-0123456789ab`, `deployment-01K7…WXYZ`); the repository
 * too when it is neither the app's nor its twin's in the other environment; the full reference
 * with VERBOSE=1 or JSON=1. */
export function labelShown(ref: string | undefined, app: string): string {
  return shortRef(ref, app).replace(/^…:/, '')
}

/** The commit an image's label names (`0123456789ab`, `…-dirty` for a build of uncommitted
 * changes), or `-` for a label the toolkit did not make. */
export function commitShown(ref: string | undefined): string {
  return commitOf(ref) ?? '-'
}

/** The release a machine runs (its `fly_release_version` metadata), when Fly says. */
export function releaseOf(m: FlyMachine): number | undefined {
  const raw = m.config?.metadata?.fly_release_version
  return raw && /^\d+$/.test(raw) ? Number(raw) : undefined
}

/** `passing/total` of a started machine's checks; `-` for a machine that is not started (its
 * checks are the last ones it had, and say nothing now) or has none. */
export function checksShown(m: FlyMachine): string {
  const checks = m.checks ?? []
  if (m.state !== 'started' || !checks.length) return '-'
  return `${checks.filter((c) => c.status === 'passing').length}/${checks.length}`
}

const passing = (m: FlyMachine) => (m.checks ?? []).every((c) => c.status === 'passing')
const time = (at: string | undefined) => (at ? Date.parse(at) || 0 : 0)

export type ConsoleChoice =
  | { machine: FlyMachine; warning?: string }
  | { machine?: undefined; problem: string }

/** The machine a console opens on: a started one (flyctl ssh console only reaches those), one
 * that passes its checks if any does, the newest (latest release, then most recently updated). */
export function pickConsoleMachine(status: FlyStatus, fix: { deploy: string }): ConsoleChoice {
  const machines = status.Machines ?? []
  const app = status.Name
  if (!machines.length) return { problem: `${app} has no machines: deploy it first (${fix.deploy})` }
  const newestFirst = (a: FlyMachine, b: FlyMachine) => (releaseOf(b) ?? 0) - (releaseOf(a) ?? 0) || time(b.updated_at) - time(a.updated_at) || (a.id < b.id ? 1 : -1)
  const started = machines.filter((m) => m.state === 'started').sort(newestFirst)
  if (!started.length) {
    const [wake] = [...machines].sort(newestFirst)
    const states = [...new Set(machines.map((m) => m.state))].join(', ')
    return { problem: `${app} has no started machine (${machines.length} ${states}): start one with flyctl machine start ${wake.id} --app ${app}, then run this again` }
  }
  const healthy = started.find(passing)
  if (healthy) return { machine: healthy }
  const [machine] = started
  const failing = (machine.checks ?? []).filter((c) => c.status !== 'passing').map((c) => `${c.name} ${c.status}`)
  return { machine, warning: `no started machine of ${app} passes its checks; using ${machine.id} (${failing.join(', ')})` }
}
