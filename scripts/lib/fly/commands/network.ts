import type { Flyctl } from '../flyctl.js'
import type { FlyIp, FlyRegion } from '../types.js'

/** IPs, the proxy into the private network, and regions (fly-platform.md §4; flyctl.md §8.3, §10). */
export class Network {
  constructor(private readonly flyctl: Flyctl) {}

  ips(app: string): Promise<FlyIp[]> {
    return this.flyctl.json<FlyIp[]>(['ips', 'list', '--app', app, '--json'], 'ips list', [])
  }

  async allocatePrivateV6(app: string): Promise<void> {
    await this.flyctl.run(['ips', 'allocate-v6', '--private', '--app', app], { write: true })
  }

  async release(app: string, address: string): Promise<void> {
    await this.flyctl.run(['ips', 'release', address, '--app', app], { write: true })
  }

  regions(): Promise<FlyRegion[]> {
    return this.flyctl.json<FlyRegion[]>(['platform', 'regions', '--json'], 'platform regions', [])
  }

  /** flyctl proxy LOCAL:REMOTE --app APP, started as a long-running child. */
  proxy(localPort: number, remotePort: number, app: string, onLine: (line: string) => void) {
    return this.flyctl.start(['proxy', `${localPort}:${remotePort}`, '--app', app], onLine)
  }
}
