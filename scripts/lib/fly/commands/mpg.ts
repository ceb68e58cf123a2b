import { OperationError } from '../../core/errors.js'
import { seconds } from '../../core/knobs.js'
import { registerSecret } from '../../secrets/mask.js'
import type { Flyctl } from '../flyctl.js'
import { parseJson } from '../json.js'
import type { MpgBackup, MpgCluster, MpgStatus } from '../types.js'

/** Managed Postgres (fly-mpg.md): clusters, attach, the local proxy, backups and restores. */
export class Mpg {
  constructor(private readonly flyctl: Flyctl) {}

  /** `mpg list --json` prints plain text, not [], when there are no clusters. */
  async list(org: string, options: { cleanup?: boolean } = {}): Promise<MpgCluster[]> {
    const out = await this.flyctl.run(['mpg', 'list', '--org', org, '--json'], { write: false, cleanup: options.cleanup })
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

  /** Backups of the last 24 hours (`all`: every one). Even with --json, flyctl prints a sentence
   * instead of [] when the cluster has none, or none started in the last 24 hours
   * (v2/run_backup.go RunBackupList). */
  async backupList(clusterId: string, options: { all?: boolean } = {}): Promise<MpgBackup[]> {
    const out = await this.flyctl.run(['mpg', 'backup', 'list', clusterId, '--json', ...(options.all ? ['--all'] : [])], { write: false })
    const text = out.stdout.trim()
    if (text.startsWith('[') || text === 'null') return parseJson<MpgBackup[]>(out.stdout, 'mpg backup list', [])
    if (/^No backups found for cluster \S+( in the last 24 hours \(use --all to see all backups\))?$/.test(text)) return []
    throw new OperationError(`flyctl mpg backup list ${clusterId} --json printed neither JSON nor "No backups found": is this flyctl too old or too new? (flyctl version)`, [text.split('\n')[0].slice(0, 200)])
  }

  /** The cluster and its default user's credentials (`mpg status --json` prints the password:
   * it is registered with the masker before anything could show it). */
  async status(clusterId: string): Promise<MpgStatus> {
    const out = await this.flyctl.run(['mpg', 'status', clusterId, '--json'], { write: false })
    const status = parseJson<MpgStatus>(out.stdout, 'mpg status')
    for (const value of [status.credentials?.password, status.credentials?.pgbouncer_uri]) if (value) registerSecret(value)
    return status
  }

  restore(clusterId: string, backupId: string, name: string) {
    return this.flyctl.run(['mpg', 'restore', clusterId, '--backup-id', backupId, '--name', name], { write: true })
  }

  /** Destroys a cluster (--yes: flyctl refuses without a terminal otherwise). Only ever called on a
   * cluster the run created itself; `cleanup`: it runs even once the run is stopping. */
  destroy(clusterId: string, options: { cleanup?: boolean } = {}) {
    return this.flyctl.run(['mpg', 'destroy', clusterId, '--yes'], { write: true, cleanup: options.cleanup })
  }
}
