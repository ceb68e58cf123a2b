import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO, run, tempDir } from '../support/toolkit.ts'

// `make build` (scripts/build.mjs) when dist/ cannot be written: one line naming the folder and
// the cause, not an esbuild error per output file and a stack trace.

test('a dist/ that cannot be written is one line naming the folder and the cause, exit 1', async () => {
  const project = tempDir('mb-build-')
  cpSync(join(REPO, 'scripts'), join(project, 'scripts'), { recursive: true })
  symlinkSync(join(REPO, 'node_modules'), join(project, 'node_modules'))
  writeFileSync(join(project, 'package.json'), '{ "type": "module" }\n')
  writeFileSync(join(project, 'dist'), 'a file where the folder should be\n')
  const result = await run(process.execPath, ['scripts/build.mjs'], { cwd: project })
  assert.is(result.code, 1)
  assert.equal(result.output.trim().split('\n'), ['error: cannot build into dist/ (EEXIST: a file stands where the folder should be): make the folder writable (or free some space) and run make again'])
})

test.run()
