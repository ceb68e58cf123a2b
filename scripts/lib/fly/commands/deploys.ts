import { deployTimeout, seconds } from '../../core/knobs.js'
import { log } from '../../core/log.js'
import { deployWaits, flyctlDeployWorstCase } from '../deploy-time.js'
import { readFlyToml } from '../flytoml.js'
import type { Flyctl } from '../flyctl.js'

/** flyctl deploy (flyctl.md §3): builds, image deploys, rollbacks. Each returns the image ref
 * flyctl deployed (FLY_EMIT_RELEASE_JSON's line, or the build's `image:` line).
 *
 * Every deploy pins `--deploy-retries 0`: flyctl's default `auto` lets Fly's servers choose, and
 * above 0 flyctl updates machines in random order and words its failures differently
 * (fly-platform.md §3.1). Each call may run as long as flyctl itself may wait for that app (see
 * deploy-time.ts); `machines` is the app's machine count from flyctl status. */
export class Deploys {
  private readonly warned = new Set<string>()

  constructor(private readonly flyctl: Flyctl) {}

  /** Builds remotely from the build context `cwd` and pushes registry.fly.io/<app>:<label>; deploys
   * nothing (flyctl.md §3.1: --build-only pushes only with --push). Output goes to `onOutput`. */
  async buildOnly(app: string, config: string, label: string, buildArgs: Record<string, string>, where: { cwd: string; showCwd?: string; onOutput: (line: string) => void; abort: AbortSignal }): Promise<void> {
    const args = ['deploy', '--build-only', '--push', '--app', app, '--config', config, '--remote-only', '--image-label', label, ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])]
    await this.flyctl.run(args, { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT'), together: true, cwd: where.cwd, showCwd: where.showCwd, onOutput: where.onOutput, abort: where.abort })
  }

  /** Deploys an existing image: a build of this commit, or the staging image promoted to production. */
  image(app: string, config: string, image: string, machines: number): Promise<string | undefined> {
    return this.deploy(['deploy', '--app', app, '--config', config, '--image', image, '--deploy-retries', '0'], {}, this.limit(app, config, machines, true))
  }

  /** The interface's rollback command line: the old image, without re-running the release command. */
  rollback(app: string, config: string, image: string, machines: number): Promise<string | undefined> {
    return this.deploy(['deploy', '--app', app, '--config', config, '--image', image, '--skip-release-command', '--deploy-retries', '0'], {}, this.limit(app, config, machines, false))
  }

  /** The call's time limit: at least what flyctl may itself wait (a warning when FLY_DEPLOY_TIMEOUT is less). */
  private limit(app: string, configPath: string, machines: number, releaseCommand: boolean): number {
    const { ms, warning } = deployTimeout(flyctlDeployWorstCase(deployWaits(readFlyToml(configPath), machines, releaseCommand)), app)
    if (warning && !this.warned.has(app)) log.warn(warning)
    this.warned.add(app)
    return ms
  }

  private async deploy(args: string[], where: { cwd?: string; showCwd?: string }, timeoutMs: number): Promise<string | undefined> {
    const out = await this.flyctl.run(args, { write: true, timeoutMs, env: { FLY_EMIT_RELEASE_JSON: '1' }, stream: true, ...where })
    if (out.skipped) return undefined
    for (const line of out.stdout.split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const release = JSON.parse(line) as { image_ref?: string }
        if (release.image_ref) return release.image_ref
      } catch {
        // not the release line
      }
    }
    const image = args[args.indexOf('--image') + 1]
    return /^\s*image: (\S+)/m.exec(out.stderr)?.[1] ?? (args.includes('--image') ? image : undefined)
  }
}
