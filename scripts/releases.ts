// make releases-<env>: each app's releases, newest first: version, status, image label, the commit
// the label names, who and when. Read-only: `flyctl releases --app <app> --json` for the apps at
// the same time. flyctl's JSON carries the image only as ImageRef (flyctl-facts 12); its tag is the
// label the toolkit built (`git-<12 hex>[-dirty-…]`), so the commit comes from there, and other
// tags (deployment-…, a hand-made --image-label) show `-`. LIMIT= releases per app (default 10;
// flyctl returns the last 25). JSON=1: one JSON object per release and line.
import chalk from 'chalk'
import { envFlag, main, report } from './lib/core/cli.js'
import { knob } from './lib/core/knobs.js'
import { formatWhen, publishTable } from './lib/core/log.js'
import { flyAppName } from './lib/core/names.js'
import { commitOf } from './lib/deploy/label.js'
import { commitShown, labelShown } from './lib/fleet/machines.js'

/** flyctl releases --json: `releasesUnprocessed(first: 25)` (flyctl.md §3.3). */
const FLYCTL_RELEASES = 25

void main(
  { name: 'releases', usage: 'releases <staging|production> [--app KEY] [--json] [--verbose]', environment: true, options: { json: { type: 'boolean' } } },
  async (ctx) => {
    const limit = knob('LIMIT')
    const json = Boolean(ctx.flags.json) || envFlag('JSON')
    if (limit > FLYCTL_RELEASES) ctx.log.warn(`LIMIT=${limit}: flyctl lists only the last ${FLYCTL_RELEASES} releases of an app`)
    const apps = ctx.apps.map((key) => ({ key, app: flyAppName(ctx.env, key) }))
    const reads = await Promise.allSettled(apps.map(({ app }) => ctx.fly().apps.releases(app)))
    const rows: string[][] = []
    const failures: unknown[] = []
    reads.forEach((read, i) => {
      const { key, app } = apps[i]
      if (read.status === 'rejected') {
        failures.push(read.reason)
        if (!json) rows.push([key, '', chalk.red('not read'), '', '', '', ''])
        return
      }
      const releases = [...read.value].sort((a, b) => b.Version - a.Version).slice(0, limit)
      if (!releases.length && !json) rows.push([key, '-', 'no releases', '', '', '', ''])
      for (const r of releases) {
        const who = r.User?.Name || r.User?.Email || '-'
        if (json) {
          const commit = commitOf(r.ImageRef)
          ctx.log.result(JSON.stringify({ app, key, version: r.Version, status: r.Status, image: r.ImageRef, label: r.ImageRef.slice(r.ImageRef.lastIndexOf(':') + 1), commit: commit?.slice(0, 12) ?? null, dirty: Boolean(commit?.endsWith('-dirty')), user: who, at: r.CreatedAt, description: r.Description }))
          continue
        }
        const status = r.Status === 'complete' ? r.Status : r.Status === 'failed' ? chalk.red(r.Status) : chalk.yellow(r.Status)
        rows.push([key, `v${r.Version}`, status, labelShown(r.ImageRef, app), commitShown(r.ImageRef), who, formatWhen(r.CreatedAt)])
      }
    })
    if (!json) publishTable(ctx.log, `releases of ${ctx.env}, newest first (${limit} per app at most; LIMIT= for more)`, ['app', 'version', 'status', 'image label', 'commit', 'who', 'when'], rows, [0, 1, 2, 4, 6])
    // Every app's releases that could be read are shown; then the run fails as its first failure says.
    for (const failure of failures.slice(1)) report(failure, ctx.log)
    if (failures.length) throw failures[0]
  },
)
