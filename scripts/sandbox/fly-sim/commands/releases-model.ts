// Release records (fly-platform.md §3.6): created `running` before anything else, then set to
// exactly one of complete, failed (release command, health timeout) or interrupted (Ctrl-C).
import { hex, nowIso } from '../model/fleet.ts'
import type { SimApp, SimRelease } from '../state.ts'

export function addRelease(app: SimApp, status: SimRelease['Status'], image: string, description = 'Release'): SimRelease {
  const release: SimRelease = { ID: `rel_${hex(6)}`, Version: Math.max(0, ...app.releases.map((r) => r.Version)) + 1, Status: status, Description: description, ImageRef: image, CreatedAt: nowIso(), createdMs: Date.now(), UserName: process.env.FLY_SIM_USER ?? 'sim' }
  app.releases.push(release)
  return release
}

export function finishRelease(app: SimApp, version: number, status: SimRelease['Status']): void {
  const release = app.releases.find((r) => r.Version === version)
  if (release) release.Status = status
}
