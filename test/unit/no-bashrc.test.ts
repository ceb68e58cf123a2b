import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO, leftovers, run, tempDir, until } from '../support/toolkit.ts'

// bash -c whose stdin is a socket (a Node parent's pipes are socket pairs) and whose environment
// has no SHLVL (cron, some CI runners) takes itself for an ssh session and runs ~/.bashrc first. An
// operator's ~/.bashrc (pyenv init, a banner) must never run inside make's recipes or the toolkit's
// watchdog: it is slow, may print, and would still be starting when the watchdog is needed.

function home(): { dir: string; ran: string } {
  const dir = tempDir('mb-home-')
  const ran = join(dir, 'bashrc-ran')
  writeFileSync(join(dir, '.bashrc'), `touch ${ran}\n`)
  return { dir, ran }
}
const withoutShlvl = (extra: Record<string, string>) => ({ ...extra, SHLVL: undefined })

test("make's recipes do not run ~/.bashrc", async () => {
  const { dir, ran } = home()
  const result = await run('make', ['-s', 'help'], { env: withoutShlvl({ HOME: dir }) })
  assert.is(result.code, 0, result.output)
  // Debian's /etc/bash.bashrc comes first, and under the recipes' -u it fails on PS1.
  assert.not.match(result.stderr, /bashrc/)
  assert.not.ok(existsSync(ran), 'a recipe ran ~/.bashrc')
})

test("the toolkit's watchdog does not run ~/.bashrc", async () => {
  const { dir, ran } = home()
  const fly = join(dir, 'flyctl')
  writeFileSync(fly, '#!/bin/sh\ntouch "$(dirname "$0")/called"\necho "{}"\n')
  chmodSync(fly, 0o755)
  // Any flyctl call starts the watchdog (with the first child); its answer does not matter here.
  const result = await run(process.execPath, [join(REPO, 'dist', 'status.cjs'), 'staging'], { env: withoutShlvl({ HOME: dir, FLY_BIN: fly, FLY_API_TOKEN: 'FlyV1 x' }) })
  assert.ok(result.code !== null, result.output)
  // Proof that a child (and so the watchdog) started: otherwise nothing below would test anything.
  assert.ok(existsSync(join(dir, 'called')), `flyctl was never called:\n${result.output}`)
  // The watchdog reads its stdin until the toolkit is gone, then ends: a ~/.bashrc it ran has run.
  await until('the watchdog to end', () => leftovers(result.marker).length === 0)
  assert.not.ok(existsSync(ran), 'the watchdog ran ~/.bashrc')
})

test.run()
