// A remote build as `fly deploy` shows it on the default builder (Depot) without a terminal
// (flyctl internal/build/imgsrc/depot.go, resolver.go BuildImage; internal/render TextBlock; the
// progress is BuildKit's plain progress): the phases on stderr, one BuildKit step per Dockerfile
// instruction, then the image's name and size. A build takes the sandbox's `build` latency, spread
// over its phases, so a toolkit that watches builds sees them move. Fault `build-fail` (command
// `build`) fails at a RUN step (`detail`: the step's text to fail at) with BuildKit's error, as
// flyctl reports it.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { env } from '../call.ts'
import { FlyError, err, sleep } from '../cli.ts'
import { build } from '../model/build.ts'
import { hex, nowIso } from '../model/fleet.ts'
import type { AppConfig } from '../model/flytoml.ts'
import { dir, latencyMs } from '../runtime.ts'
import { type Fault, updateState } from '../state.ts'

export interface RemoteBuild {
  app: string
  org: string
  ref: string
  context: string
  configPath: string
  config: AppConfig
  flags: Record<string, unknown>
  /** `--push` (or a deploy, which always publishes): the image reaches the registry. */
  publish: boolean
  fault?: Fault
}

export async function remoteBuild(b: RemoteBuild): Promise<void> {
  const imageDir = join(dir(), 'images', b.ref.replace(/[^\w.-]+/g, '_'))
  mkdirSync(imageDir, { recursive: true })
  const buildArgs = { ...Object.fromEntries(Object.entries(b.config.build.args).map(([k, v]) => [k, String(v)])) }
  for (const kv of (b.flags['build-arg'] as string[] | undefined) ?? []) {
    const eq = kv.indexOf('=')
    buildArgs[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? (env(kv) ?? '') : kv.slice(eq + 1)
  }
  const total = latencyMs('build')
  err('==> Building image\nWaiting for depot builder...\n\n')
  await sleep(total * 0.1)
  const str = (name: string) => (typeof b.flags[name] === 'string' ? (b.flags[name] as string) : undefined)
  const built = build({ context: b.context, configPath: b.configPath, config: b.config, dockerfileFlag: str('dockerfile'), ignorefileFlag: str('ignorefile'), buildArgs, builder: str('depot') === 'false' ? 'docker' : 'depot', imageDir })
  err(`==> Building image with Depot\n--> build:  (\u200bhttps://depot.dev/orgs/sim/projects/sim/builds/${hex(5)})\n`)
  err(`#1 [internal] load build definition from ${built.dockerfile.split('/').pop()}\n#1 DONE 0.0s\n#2 [internal] load build context (${built.uploaded.length} files)\n#2 DONE 0.1s\n`)
  const steps = built.steps.filter((s) => !/^(ARG|LABEL|EXPOSE|ENV|WORKDIR|USER|ENTRYPOINT|CMD|HEALTHCHECK|STOPSIGNAL|SHELL|VOLUME|ONBUILD)\b/.test(s))
  const failAt = b.fault?.kind === 'build-fail' ? (steps.findIndex((s) => b.fault!.detail ? s.includes(b.fault!.detail) : s.startsWith('RUN ')) + 1 || steps.length) : 0
  for (const [i, step] of steps.entries()) {
    const n = i + 3
    err(`#${n} [${i + 1}/${steps.length}] ${step}\n`)
    await sleep((total * 0.8) / Math.max(1, steps.length))
    if (failAt === i + 1) {
      const command = step.replace(/^RUN\s+/, '')
      err(`#${n} 0.912 ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL  build: \`${command}\`\n#${n} 0.913 Exit status 1\n#${n} ERROR: process "/bin/sh -c ${command}" did not complete successfully: exit code: 1\n`)
      throw new FlyError(`failed to fetch an image or build from source: error building: failed to solve: process "/bin/sh -c ${command}" did not complete successfully: exit code: 1`)
    }
    err(`#${n} DONE ${((total * 0.8) / Math.max(1, steps.length) / 1000).toFixed(1)}s\n`)
  }
  await sleep(total * 0.1)
  err(`--> Build Summary:  (\u200bhttps://depot.dev/orgs/sim/projects/sim/builds/summary)\n--> Building image done\nimage: ${b.ref}\nimage size: ${120 + (built.uploaded.length % 80)} MB\n`)
  const digest = `sha256:${hex(32)}`
  updateState(dir(), (state) => {
    // Without --push a build-only build stays on the builder: nothing reaches the registry.
    if (b.publish) state.images[b.ref] = { ref: b.ref, app: b.app, org: b.org, digest, createdAt: nowIso(), fsDir: built.fsDir, entrypoint: built.entrypoint, cmd: built.cmd }
  })
}
