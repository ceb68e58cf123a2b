// What happens when a machine boots its image, as far as the simulator can know: an image whose
// entrypoint it traced (the gateway's renderer) runs that entrypoint's `render` step with the
// machine's environment and secrets; if it fails, the entrypoint exits 1 before Kong starts (its
// `rendered=$(render) || exit 1`): the process crashes, and flyd restarts it as the machine's
// restart policy says (model/fleet.ts). Images the simulator cannot look into are taken to boot.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { secretsAt } from './fleet.ts'
import type { SimApp, SimImage, SimMachine } from '../state.ts'

export function entrypointScript(image: SimImage | undefined): string | undefined {
  const words = image?.entrypoint ?? []
  const script = words[0] === 'sh' || words[0] === '/bin/sh' ? words[1] : words[0]
  return image && script && existsSync(join(image.fsDir, script)) ? join(image.fsDir, script) : undefined
}

/** Boots the machine's image: the lines its start step printed when it failed, else undefined. */
export function bootFailure(app: SimApp, machine: SimMachine, image: SimImage | undefined): string[] | undefined {
  const script = entrypointScript(image)
  if (!script) return undefined
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...machine.config.env, ...secretsAt(app, machine.secretsVersion) }
  const run = spawnSync('sh', [script, 'render'], { env, encoding: 'utf8', timeout: 10_000 })
  if (run.status === 0) return undefined
  return (run.stderr || `exited with status ${run.status}`).trim().split('\n')
}
