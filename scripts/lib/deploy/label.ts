import type { TreeState } from '../safety/git.js'

// The image label of a build: the commit it was built from, so an image says what code it holds
// (make history, make diff and the plan show it). `git-<first 12 hex digits>`; a dirty tree (only
// staging deploys one) adds `-dirty-<UTC time>`, so two builds of different uncommitted code never
// share a label.

const LABEL = /^git-([0-9a-f]{12})(-dirty-\d{8}t\d{6}z)?$/

export function buildLabel(tree: TreeState, now = new Date()): string {
  const commit = tree.commit?.slice(0, 12) ?? '000000000000'
  if (tree.commit && !tree.dirty.length) return `git-${commit}`
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'z').toLowerCase()
  return `git-${commit}-dirty-${stamp}`
}

/** The commit (12 hex digits) an image ref was built from, if its label says; `-dirty` marks a
 * build of uncommitted changes. */
export function commitOf(ref: string | undefined): string | undefined {
  const tag = ref?.slice(ref.lastIndexOf(':') + 1)
  const match = tag ? LABEL.exec(tag) : null
  return match ? `${match[1]}${match[2] ? '-dirty' : ''}` : undefined
}
