import { seconds } from '../../core/knobs.js'
import type { Flyctl } from '../flyctl.js'

/** flyctl deploy (flyctl.md §3): builds, image deploys, rollbacks. Each returns the image ref
 * flyctl deployed (FLY_EMIT_RELEASE_JSON's line, or the build's `image:` line). */
export class Deploys {
  constructor(private readonly flyctl: Flyctl) {}

  /** Builds remotely from the build context `cwd` and deploys. Returns the new image ref. */
  build(app: string, config: string, buildArgs: Record<string, string>, cwd: string, showCwd?: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--config', config, '--app', app, '--remote-only', ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])], { cwd, showCwd })
  }

  /** Builds remotely from the build context `cwd` and pushes registry.fly.io/<app>:<label>; deploys
   * nothing (flyctl.md §3.1: --build-only pushes only with --push). Output goes to `onOutput`. */
  async buildOnly(app: string, config: string, label: string, buildArgs: Record<string, string>, where: { cwd: string; showCwd?: string; onOutput: (line: string) => void; abort: AbortSignal }): Promise<void> {
    const args = ['deploy', '--build-only', '--push', '--app', app, '--config', config, '--remote-only', '--image-label', label, ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])]
    await this.flyctl.run(args, { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT'), together: true, cwd: where.cwd, showCwd: where.showCwd, onOutput: where.onOutput, abort: where.abort })
  }

  /** Deploys an existing image (promotion of the staging image to production). */
  image(app: string, config: string, image: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--app', app, '--config', config, '--image', image])
  }

  /** The interface's rollback command line: the old image, without re-running the release command. */
  rollback(app: string, config: string, image: string): Promise<string | undefined> {
    return this.deploy(['deploy', '--app', app, '--config', config, '--image', image, '--skip-release-command'])
  }

  private async deploy(args: string[], where: { cwd?: string; showCwd?: string } = {}): Promise<string | undefined> {
    const out = await this.flyctl.run(args, { write: true, timeoutMs: seconds('FLY_DEPLOY_TIMEOUT'), env: { FLY_EMIT_RELEASE_JSON: '1' }, stream: true, ...where })
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
