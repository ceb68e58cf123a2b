import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build, type BuildOptions } from 'esbuild'
// @ts-expect-error plain ESM module shared with scripts/build.mjs
import { HOST, OPERATION } from '../../scripts/build-kinds.mjs'
import { REPO, tempDir } from '../support/toolkit.ts'

// The scripts run compiled, without --enable-source-maps (it costs every start 25 ms): a bug's stack
// is mapped to the TypeScript sources only when report() prints it. The operations are CommonJS
// (dist/<name>.cjs), the sandbox's hosts ES modules (dist/<name>.mjs): scripts/build.mjs.

/** esbuild's options for each kind, as scripts/build.mjs sets them. */
const KINDS = { cjs: OPERATION, mjs: HOST } as Record<'cjs' | 'mjs', BuildOptions>

/** Compiles `lines` (TypeScript) as a script of that kind and runs it: its exit code and stderr. */
async function compileAndRun(kind: 'cjs' | 'mjs', name: string, lines: string[]): Promise<{ status: number | null; stderr: string }> {
  // A folder with a space: a CommonJS script's stack names it as it is, an ES module's as %20.
  const dir = join(tempDir(), 'a checkout')
  mkdirSync(dir)
  const source = join(dir, `${name}.ts`)
  writeFileSync(source, [...lines, ''].join('\n'))
  await build({ entryPoints: [source], outfile: join(dir, `${name}.${kind}`), bundle: true, platform: 'node', sourcemap: 'linked', minifyWhitespace: true, minifySyntax: true, logLevel: 'silent', external: ['pg-native'], ...KINDS[kind] })
  const { status, stderr } = spawnSync(process.execPath, [join(dir, `${name}.${kind}`)], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' }, encoding: 'utf8' })
  return { status, stderr }
}

const CLI = JSON.stringify(join(REPO, 'scripts/lib/core/cli.ts'))

for (const kind of ['cjs', 'mjs'] as const) {
  test(`a bug compiled as the scripts are (.${kind}, in a folder with a space) is reported at its TypeScript line, run without --enable-source-maps`, async () => {
    const { status, stderr } = await compileAndRun(kind, 'buggy', [
      `import { report } from ${CLI}`,
      'function explode(value: { name?: { first: string } }): string {',
      '  return value.name!.first',
      '}',
      'try {',
      '  explode({})',
      '} catch (error) {',
      '  process.exitCode = report(error)',
      '}',
    ])
    assert.is(status, 1)
    assert.match(stderr, /^bug: TypeError: Cannot read properties of undefined \(reading 'first'\)/m)
    assert.match(stderr, /at explode \(buggy\.ts:3:22\)/)
    assert.not.match(stderr, /buggy\.[cm]js:\d+/)
  })
}

test('an operation whose work never settles (nothing left to wait for) ends with a bug line and exit 1, not a quiet 0', async () => {
  const { status, stderr } = await compileAndRun('cjs', 'stuck', [`import { main } from ${CLI}`, "void main({ name: 'stuck', usage: 'stuck', environment: false }, () => new Promise(() => undefined))"])
  assert.is(status, 1, stderr)
  assert.equal(stderr.trim().split('\n'), ['bug: the run ended before its work did (a promise that never settles): it did not finish'])
})

test('an operation that finishes says nothing more: the guard is gone once main() has ended', async () => {
  const { status, stderr } = await compileAndRun('cjs', 'done', [`import { main } from ${CLI}`, "void main({ name: 'done', usage: 'done', environment: false }, async () => 0)"])
  assert.is(status, 0, stderr)
  assert.is(stderr, '')
})

test.run()
