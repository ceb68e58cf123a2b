import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { run } from '../support/toolkit.ts'

// The scripts are bundled by esbuild, which strips types without checking them: tsc does.
test('the TypeScript of scripts, simulator and tests type-checks (tsc --noEmit)', async () => {
  const result = await run('npx', ['--no-install', 'tsc', '--noEmit', '-p', '.'], { timeoutMs: 240_000 })
  assert.is(result.code, 0, result.output.slice(-4000))
})

test.run()
