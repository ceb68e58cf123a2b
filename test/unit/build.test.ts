import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
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

test('the operations are CommonJS files, the sandbox hosts ES modules; yaml is vendored beside them, never loaded from node_modules', async () => {
  const project = scriptsCopy()
  const built = await run(process.execPath, ['scripts/build.mjs'], { cwd: project })
  assert.is(built.code, 0, built.output)
  const dist = join(project, 'dist')
  const files = readdirSync(dist)
  for (const host of ['demo', 'sandbox', 'runbook', 'bench', 'write-env-files']) assert.ok(files.includes(`${host}.mjs`) && !files.includes(`${host}.cjs`), host)
  for (const operation of ['deploy', 'health', 'rollback', 'set-secrets', 'migrate', 'create-apps']) assert.ok(files.includes(`${operation}.cjs`) && !files.includes(`${operation}.mjs`), operation)
  const { parse, stringify } = await import(join(dist, 'vendor', 'yaml.mjs'))
  assert.equal(parse('app_secrets_minvers:\n  microbima-staging-web-admin: 4\n'), { app_secrets_minvers: { 'microbima-staging-web-admin': 4 } })
  assert.is(stringify({ a: [1] }), 'a:\n  - 1\n')
  const { parse: parseCjs } = createRequire(import.meta.url)(join(dist, 'vendor', 'yaml.cjs'))
  assert.equal(parseCjs('a: [1]'), { a: [1] })
  for (const script of files.filter((f) => /\.[cm]js$/.test(f))) {
    const code = readFileSync(join(dist, script), 'utf8')
    assert.not.match(code, /from ["']yaml["']|import\(["']yaml["']\)|require\(["']yaml["']\)/, script)
    // An import() in an operation would start the ES module loader after all.
    if (script.endsWith('.cjs')) assert.not.match(code, /\bimport\(["'`]/, script)
  }
  // deploy reads flyctl's config.yml only once it needs a secrets version: a lazy require.
  assert.match(readFileSync(join(dist, 'deploy.cjs'), 'utf8'), /Promise\.resolve\(\)\.then\(\(\)=>__toESM\(require\("\.\/vendor\/yaml\.cjs"\)/)
})

test('a dist/ that cannot be written is one line naming the folder and the cause, exit 1', async () => {
  const project = scriptsCopy()
  writeFileSync(join(project, 'dist'), 'a file where the folder should be\n')
  const result = await run(process.execPath, ['scripts/build.mjs'], { cwd: project })
  assert.is(result.code, 1)
  assert.equal(result.output.trim().split('\n'), ['error: cannot build into dist/ (EEXIST: a file stands where the folder should be): make the folder writable (or free some space) and run make again'])
})

test.run()
