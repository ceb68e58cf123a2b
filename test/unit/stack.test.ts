import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'
import { REPO, tempDir } from '../support/toolkit.ts'

// The scripts run compiled, without --enable-source-maps (it costs every start 25 ms): a bug's stack
// is mapped to the TypeScript sources only when report() prints it.

test('a bug compiled as the scripts are is reported at its TypeScript line, run without --enable-source-maps', async () => {
  const dir = tempDir()
  const source = join(dir, 'buggy.ts')
  writeFileSync(
    source,
    [
      `import { report } from ${JSON.stringify(join(REPO, 'scripts/lib/core/cli.ts'))}`,
      'function explode(value: { name?: { first: string } }): string {',
      '  return value.name!.first',
      '}',
      'try {',
      '  explode({})',
      '} catch (error) {',
      '  process.exitCode = report(error)',
      '}',
      '',
    ].join('\n'),
  )
  await build({ entryPoints: [source], outfile: join(dir, 'buggy.mjs'), bundle: true, platform: 'node', format: 'esm', sourcemap: 'linked', logLevel: 'silent', banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" } })
  let stderr = ''
  try {
    execFileSync(process.execPath, [join(dir, 'buggy.mjs')], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (error) {
    stderr = String((error as { stderr: Buffer }).stderr)
  }
  assert.match(stderr, /^bug: TypeError: Cannot read properties of undefined \(reading 'first'\)/m)
  assert.match(stderr, /at explode \(buggy\.ts:3:22\)/)
  assert.not.match(stderr, /buggy\.mjs:\d+/)
})

test.run()
