import type { Flyctl } from '../flyctl.js'
import type { FlyApp, FlyRelease, FlyStatus } from '../types.js'

/** flyctl apps, status and releases (flyctl.md §1, §3.3, §5.1; flyctl facts 8). */
export class Apps {
  constructor(private readonly flyctl: Flyctl) {}

  list(): Promise<FlyApp[]> {
    return this.flyctl.json<FlyApp[]>(['apps', 'list', '--json'], 'apps list', [])
  }

  /** Destroys an app (--yes: flyctl refuses without a terminal otherwise). Only ever called on an
   * app the run created itself; `cleanup`: it runs even once the run is stopping. */
  async destroy(name: string, options: { cleanup?: boolean } = {}): Promise<void> {
    await this.flyctl.run(['apps', 'destroy', name, '--yes'], { write: true, cleanup: options.cleanup })
  }

  async create(name: string, org: string): Promise<void> {
    await this.flyctl.run(['apps', 'create', name, '--org', org], { write: true })
  }

  status(app: string): Promise<FlyStatus> {
    return this.flyctl.json<FlyStatus>(['status', '--app', app, '--json'], 'status')
  }

  releases(app: string): Promise<FlyRelease[]> {
    return this.flyctl.json<FlyRelease[]>(['releases', '--app', app, '--json'], 'releases', [])
  }

  /** The current release's fly.toml as flyctl normalises it (`config show`, JSON by default;
   * fails for an app never deployed). `local`: the given fly.toml through the same serialiser. */
  deployedConfig(app: string, local?: string): Promise<unknown> {
    return this.flyctl.json<unknown>(['config', 'show', ...(local ? ['--local', '--config', local] : []), '--app', app], 'config show')
  }
}
