import { seconds } from '../../core/knobs.js'
import type { Flyctl } from '../flyctl.js'
import type { FlySnapshot, FlyVolume } from '../types.js'

/** Fly Postgres (unmanaged) and its volume snapshots (flyctl.md §8). */
export class Postgres {
  constructor(private readonly flyctl: Flyctl) {}

  /** `snapshotId`: a new app whose first volume is made from that snapshot (flypg/launcher.go). */
  create(options: { name: string; region: string; org: string; vmSize: string; volumeSizeGb: number; clusterSize: number; snapshotId?: string; timeoutMs?: number }) {
    return this.flyctl.run(
      ['postgres', 'create', '--name', options.name, ...(options.snapshotId ? ['--snapshot-id', options.snapshotId] : []), '--region', options.region, '--org', options.org, '--initial-cluster-size', String(options.clusterSize), '--vm-size', options.vmSize, '--volume-size', String(options.volumeSizeGb)],
      { write: true, timeoutMs: options.timeoutMs ?? seconds('FLY_DEPLOY_TIMEOUT') },
    )
  }

  attach(dbApp: string, app: string, databaseUser?: string) {
    return this.flyctl.run(['postgres', 'attach', dbApp, '--app', app, ...(databaseUser ? ['--database-user', databaseUser] : []), '--yes'], { write: true })
  }

  volumes(app: string): Promise<FlyVolume[]> {
    return this.flyctl.json<FlyVolume[]>(['volumes', 'list', '--app', app, '--json'], 'volumes list', [])
  }

  snapshots(volumeId: string, app: string): Promise<FlySnapshot[]> {
    return this.flyctl.json<FlySnapshot[]>(['volumes', 'snapshots', 'list', volumeId, '--app', app, '--json'], 'volumes snapshots list', [])
  }

  async snapshot(volumeId: string, app: string): Promise<void> {
    await this.flyctl.run(['volumes', 'snapshots', 'create', volumeId, '--app', app], { write: true })
  }
}
