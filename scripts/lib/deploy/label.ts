import type { TreeState } from '../safety/git.js'

// The image label of a build: the commit it was built from, so an image says what code it holds
// (make history, make diff and the plan show it). `git-<first 12 hex digits>`: a commit's images are
// built once, and a second deploy of it builds nothing. A dirty tree (only staging deploys one) adds
// `-dirty-<UTC time to the ms>`, so two builds of different uncommitted code never share a label; REBUILD=1
// builds a commit again (a new base image) as `-rebuild-<UTC time>`. Outside git (a copy of the
// project) there is no commit to name: `local-<UTC time>`.

const LABEL = /^git-([0-9a-f]{12})(-(dirty|rebuild)-\d{8}t\d{9}z)?$/

export function buildLabel(tree: TreeState, rebuild: boolean, now = new Date()): string {
  // To the millisecond: two builds of one minute (a test, a quick fix) still differ.
  const stamp = now.toISOString().replace(/[-:.]/g, '').toLowerCase()
  if (!tree.commit) return `local-${stamp}`
  const commit = tree.commit.slice(0, 12)
  if (tree.dirty.length) return `git-${commit}-dirty-${stamp}`
  return rebuild ? `git-${commit}-rebuild-${stamp}` : `git-${commit}`
}

/** Whether a label names a build that no other build shares (dirty or rebuilt). */
export const uniqueLabel = (label: string) => /-(dirty|rebuild)-|(^|:)local-/.test(label)

/** The commit (12 hex digits) an image ref was built from, if its label says; `-dirty` marks a
 * build of uncommitted changes. */
export function commitOf(ref: string | undefined): string | undefined {
  const tag = ref?.slice(ref.lastIndexOf(':') + 1)
  const match = tag ? LABEL.exec(tag) : null
  return match ? `${match[1]}${match[3] === 'dirty' ? '-dirty' : ''}` : undefined
}
