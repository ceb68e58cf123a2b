import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import type { Context } from '../core/cli.js'
import { Refusal } from '../core/errors.js'
import { flag } from '../core/knobs.js'
import type { Environment } from '../core/names.js'

// What is being deployed, from git's point of view. Staging deploys from the `staging` branch and
// production from `main` (the strategy document's §4.2); a working tree with uncommitted changes
// deploys code nobody can find again. Staging warns; production refuses (exit 3) unless
// ALLOW_DIRTY=1 says the operator means it.

export const BRANCH: Record<Environment, string> = { staging: 'staging', production: 'main' }

export interface TreeState {
  repo: boolean
  branch?: string
  /** The commit checked out (40 hex digits). */
  commit?: string
  /** Changed, staged and untracked (not ignored) paths: what a build would take that no commit has. */
  dirty: string[]
}

/** git's output, or undefined when it failed (no repository, no git). Run without a shell: a
 * shell's start would double the cost of a call made on every deploy. */
function git(args: string[], cwd?: string): Promise<string | undefined> {
  return new Promise((done) => execFile('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => done(error ? undefined : stdout)))
}

let commit: Promise<string | null> | undefined

/** The commit checked out in this folder (HEAD), or null outside a repository. */
export function gitCommit(): Promise<string | null> {
  commit ??= process.env.GITHUB_SHA ? Promise.resolve(process.env.GITHUB_SHA) : git(['rev-parse', 'HEAD']).then((out) => out?.trim() || null)
  return commit
}

/** What the tree check read already (git status's branch.oid): HEAD of this folder. */
function knowCommit(oid: string | null): void {
  commit ??= Promise.resolve(process.env.GITHUB_SHA ?? oid)
}

export async function treeState(dir: string): Promise<TreeState> {
  // One git process, not three: this runs before the first flyctl call, on every deploy.
  // Untracked files count: a build's context takes them (a stray .env, a debug patch) though no
  // commit has them.
  const status = await git(['status', '--porcelain=v2', '--branch', '--untracked-files=normal'], dir)
  if (status === undefined) return { repo: false, dirty: [] }
  const lines = status.split('\n').filter(Boolean)
  const head = lines.find((l) => l.startsWith('# branch.head '))?.slice('# branch.head '.length)
  const oid = lines.find((l) => l.startsWith('# branch.oid '))?.slice('# branch.oid '.length)
  // CI checks out a commit (detached HEAD): GitHub names the branch in GITHUB_REF_NAME.
  const branch = head === undefined || head === '(detached)' ? process.env.GITHUB_REF_NAME || undefined : head
  // Porcelain v2 entries: "1" ordinary (path after 8 fields), "2" renamed (9, then a tab and the
  // old path), "u" unmerged (10), "?" untracked (1).
  const fieldsBeforePath: Record<string, number> = { '1': 8, '2': 9, u: 10, '?': 1 }
  const dirty = lines.filter((l) => l[0] in fieldsBeforePath).map((l) => l.split(' ').slice(fieldsBeforePath[l[0]]).join(' ').split('\t')[0])
  const commit = oid && /^[0-9a-f]{40}$/.test(oid) ? oid : undefined
  // The ledger's commit is this one when the toolkit runs in this folder: no second git call.
  if (resolve(dir) === process.cwd()) knowCommit(commit ?? null)
  return { repo: true, branch, commit, dirty }
}

/** Warns (staging) or refuses (production) a deploy from a dirty tree or another branch. */
export async function checkTree(ctx: Context, dir: string): Promise<TreeState> {
  const state = await treeState(dir)
  if (!state.repo) return state
  const problems: string[] = []
  if (state.dirty.length) problems.push(`the working tree has ${state.dirty.length} uncommitted or untracked file${state.dirty.length === 1 ? '' : 's'} (${state.dirty.slice(0, 3).join(', ')}${state.dirty.length > 3 ? ', …' : ''})`)
  const wanted = BRANCH[ctx.env]
  if (state.branch && state.branch !== wanted) problems.push(`this is branch ${state.branch}, not ${wanted}`)
  if (!problems.length) return state
  if (ctx.env === 'staging' || flag('ALLOW_DIRTY')) {
    const goesOn = ctx.dryRun ? 'a deploy would go on anyway' : 'deploying it anyway'
    for (const problem of problems) ctx.log.warn(`${problem}: ${goesOn}${ctx.env === 'production' ? ' (ALLOW_DIRTY=1)' : ''}`)
    return state
  }
  throw new Refusal(`production deploys a clean ${wanted} branch: ${problems.join('; ')}`, [`commit and switch to ${wanted}, or run again with ALLOW_DIRTY=1 if you mean to deploy this tree`])
}
