import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { phaseOf } from '../../scripts/lib/deploy/builds.ts'
import { buildLabel, commitOf, uniqueLabel } from '../../scripts/lib/deploy/label.ts'

// A build's label (the commit it holds) and its progress as one line per phase.

const at = new Date('2026-12-07T06:50:01.234Z')
const commit = '0123456789abcdef0123456789abcdef01234567'

test('the label names the commit; a dirty tree or REBUILD=1 adds the time to the ms; outside git, the time only', () => {
  assert.is(buildLabel({ repo: true, branch: 'main', commit, dirty: [] }, false, at), 'git-0123456789ab')
  assert.is(buildLabel({ repo: true, branch: 'main', commit, dirty: ['a.ts'] }, false, at), 'git-0123456789ab-dirty-20261207t065001234z')
  assert.is(buildLabel({ repo: true, branch: 'main', commit, dirty: [] }, true, at), 'git-0123456789ab-rebuild-20261207t065001234z')
  assert.is(buildLabel({ repo: false, branch: undefined, commit: undefined, dirty: [] }, false, at), 'local-20261207t065001234z')
  assert.equal(['git-0123456789ab', 'git-0123456789ab-dirty-20261207t065001234z', 'local-20261207t065001234z'].map((l) => uniqueLabel(`registry.fly.io/a:${l}`)), [false, true, true])
  assert.equal(['registry.fly.io/a:git-0123456789ab', 'registry.fly.io/a:git-0123456789ab-dirty-20261207t065001234z', 'registry.fly.io/a:deployment-01K7ABCDEFGHJKMNPQRSTVWXYZ'].map(commitOf), ['0123456789ab', '0123456789ab-dirty', undefined])
})

test('a build line says its phase: BuildKit steps (no base digest), flyctl\'s phases, the push; the rest is not news', () => {
  assert.is(phaseOf('#3 [1/9] FROM node:26-slim@sha256:662933cf47f013bc8e4beb31a6116448427a82057ba7c42c97e4c5ba766504c2 AS build'), 'step 1/9: FROM node:26-slim AS build')
  assert.is(phaseOf('==> Building image with Depot'), 'Building image with Depot')
  assert.is(phaseOf('image: registry.fly.io/a:git-0123456789ab'), 'pushed')
  for (const line of ['==> Verifying app config', '--> Verified app config', '--> build:  (\u200bhttps://depot.dev/orgs/x/builds/1)', '#3 DONE 0.1s', 'Waiting for depot builder...']) assert.is(phaseOf(line), undefined, line)
})

test.run()
