// What happens when a machine boots its image, as far as the simulator can know: an image whose
// entrypoint it traced (the gateway's renderer) runs that entrypoint's `render` step with the
// machine's environment and secrets; if it fails, the entrypoint exits 1 before Kong starts (its
// `rendered=$(render) || exit 1`): the process crashes, and flyd restarts it as the machine's
// restart policy says (model/fleet.ts). Images the simulator cannot look into are taken to boot.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { secretsAt } from './fleet.ts'
import type { SimApp, SimImage, SimMachine } from '../state.ts'

export function entrypointScript(image: SimImage | undefined): string | undefined {
  const words = image?.entrypoint ?? []
  const script = words[0] === 'sh' || words[0] === '/bin/sh' ? words[1] : words[0]
  return image && script && existsSync(join(image.fsDir, script)) ? join(image.fsDir, script) : undefined
}

export interface Rendered {
  status: number | null
  stdout: string
  stderr: string
}

const rendered = new Map<string, Rendered>()

/** The image's entrypoint `render` step run with this environment. Its answer depends on nothing
 * else (the image's files are fixed by its digest), so each image and environment runs it once. */
export function renderEntrypoint(image: SimImage, env: Record<string, string>): Rendered {
  const key = createHash('sha256').update(JSON.stringify([image.ref, image.digest, env])).digest('hex')
  let answer = rendered.get(key)
  if (!answer) {
    const run = spawnSync('sh', [entrypointScript(image)!, 'render'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 10_000 })
    answer = { status: run.status, stdout: run.stdout ?? '', stderr: run.stderr ?? '' }
    rendered.set(key, answer)
  }
  return answer
}

/** Boots the machine's image: the lines its start step printed when it failed, else undefined. */
export function bootFailure(app: SimApp, machine: SimMachine, image: SimImage | undefined): string[] | undefined {
  if (!image || !entrypointScript(image)) return undefined
  const run = renderEntrypoint(image, { ...machine.config.env, ...secretsAt(app, machine.secretsVersion) })
  if (run.status === 0) return undefined
  return (run.stderr || `exited with status ${run.status}`).trim().split('\n')
}
