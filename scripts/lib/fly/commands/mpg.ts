import { seconds } from '../../core/knobs.js'
import type { Flyctl } from '../flyctl.js'
import { parseJson } from '../json.js'
import type { MpgBackup, MpgCluster } from '../types.js'

/** Managed Postgres (fly-mpg.md): clusters, attach, the local proxy, backups and restores. */
export class Mpg {
  constructor(private readonly flyctl: Flyctl) {}

  /** `mpg list --json` prints plain text, not [], when there are no clusters. */
  async list(org: string): Promise<MpgCluster[]> {
    const out = await this.flyctl.run(['mpg', 'list', '--org', org, '--json'], { write: false })
    return out.stdout.trim().startsWith('[') ? parseJson<MpgCluster[]>(out.stdout, 'mpg list', []) : []
  }

  create(options: { name: string; org: string; region: string; plan: string; volumeSizeGb: number }) {
    return this.flyctl.run(['mpg', 'create', '--name', options.name, '--org', options.org, '--region', options.region, '--plan', options.plan, '--volume-size', String(options.volumeSizeGb)], { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT') })
  }

  attach(clusterId: string, app: string) {
    return this.flyctl.run(['mpg', 'attach', clusterId, '--app', app], { write: true })
  }

  proxy(clusterId: string, localPort: number, onLine: (line: string) => void) {
    return this.flyctl.start(['mpg', 'proxy', clusterId, '--local-port', String(localPort)], onLine)
  }

  async backupCreate(clusterId: string): Promise<void> {
    await this.flyctl.run(['mpg', 'backup', 'create', clusterId], { write: true })
  }

  /** Backups of the last 24 hours; plain text (no JSON) when there are none. */
  async backupList(clusterId: string): Promise<MpgBackup[]> {
    const out = await this.flyctl.run(['mpg', 'backup', 'list', clusterId, '--json'], { write: false })
    return out.stdout.trim().startsWith('[') ? parseJson<MpgBackup[]>(out.stdout, 'mpg backup list', []) : []
  }

  restore(clusterId: string, backupId: string, name: string) {
    return this.flyctl.run(['mpg', 'restore', clusterId, '--backup-id', backupId, '--name', name], { write: true })
  }
}
