import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO, run, tempDir } from '../support/toolkit.ts'

// `make build` (scripts/build.mjs): the scripts as it lays them out, and when dist/ cannot be
// written, one line naming the folder and the cause, not an esbuild error per output file and a
// stack trace.

/** A copy of the scripts beside the repository's packages, to build where nothing else looks. */
function scriptsCopy(): string {
  const project = tempDir('mb-build-')
  cpSync(join(REPO, 'scripts'), join(project, 'scripts'), { recursive: true })
  symlinkSync(join(REPO, 'node_modules'), join(project, 'node_modules'))
  writeFileSync(join(project, 'package.json'), '{ "type": "module" }\n')
  return project
}

test('yaml is one vendored file that the scripts import where they use it, never from node_modules', async () => {
  const project = scriptsCopy()
  const built = await run(process.execPath, ['scripts/build.mjs'], { cwd: project })
  assert.is(built.code, 0, built.output)
  const dist = join(project, 'dist')
  const { parse, stringify } = await import(join(dist, 'vendor', 'yaml.mjs'))
  assert.equal(parse('app_secrets_minvers:\n  microbima-staging-web-admin: 4\n'), { app_secrets_minvers: { 'microbima-staging-web-admin': 4 } })
  assert.is(stringify({ a: [1] }), 'a:\n  - 1\n')
  for (const script of readdirSync(dist).filter((f) => f.endsWith('.mjs'))) assert.not.match(readFileSync(join(dist, script), 'utf8'), /from ["']yaml["']|import\(["']yaml["']\)/, script)
  // deploy reads flyctl's config.yml only once it needs a secrets version: a dynamic import.
  assert.match(readFileSync(join(dist, 'deploy.mjs'), 'utf8'), 'await import("./vendor/yaml.mjs")')
})

test('a dist/ that cannot be written is one line naming the folder and the cause, exit 1', async () => {
  const project = scriptsCopy()
  writeFileSync(join(project, 'dist'), 'a file where the folder should be\n')
  const result = await run(process.execPath, ['scripts/build.mjs'], { cwd: project })
  assert.is(result.code, 1)
  assert.equal(result.output.trim().split('\n'), ['error: cannot build into dist/ (EEXIST: a file stands where the folder should be): make the folder writable (or free some space) and run make again'])
})

test.run()
