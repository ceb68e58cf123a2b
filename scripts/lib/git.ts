import { $ } from 'zx/core'
import type { Context } from './cli.js'
import { Refusal } from './errors.js'
import { flag } from './knobs.js'
import type { Environment } from './names.js'

// What is being deployed, from git's point of view. Staging deploys from the `staging` branch and
// production from `main` (the strategy document's §4.2); a working tree with uncommitted changes
// deploys code nobody can find again. Staging warns; production refuses (exit 3) unless
// ALLOW_DIRTY=1 says the operator means it.

export const BRANCH: Record<Environment, string> = { staging: 'staging', production: 'main' }

export interface TreeState {
  repo: boolean
  branch?: string
  dirty: string[]
}

export async function treeState(dir: string): Promise<TreeState> {
  const git = $({ quiet: true, nothrow: true, prefix: '', cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const inside = await git`git rev-parse --is-inside-work-tree`
  if (inside.exitCode !== 0) return { repo: false, dirty: [] }
  const [branch, status] = await Promise.all([git`git rev-parse --abbrev-ref HEAD`, git`git status --porcelain --untracked-files=no`])
  // CI checks out a commit (detached HEAD): GitHub names the branch in GITHUB_REF_NAME.
  const name = branch.stdout.trim() === 'HEAD' ? process.env.GITHUB_REF_NAME || undefined : branch.stdout.trim()
  return { repo: true, branch: name, dirty: status.stdout.split('\n').filter(Boolean).map((l) => l.slice(3)) }
}

/** Warns (staging) or refuses (production) a deploy from a dirty tree or another branch. */
export async function checkTree(ctx: Context, dir: string): Promise<void> {
  const state = await treeState(dir)
  if (!state.repo) return
  const problems: string[] = []
  if (state.dirty.length) problems.push(`the working tree has ${state.dirty.length} uncommitted change${state.dirty.length === 1 ? '' : 's'} (${state.dirty[0]}${state.dirty.length > 1 ? ', …' : ''})`)
  const wanted = BRANCH[ctx.env]
  if (state.branch && state.branch !== wanted) problems.push(`this is branch ${state.branch}, not ${wanted}`)
  if (!problems.length) return
  if (ctx.env === 'staging' || flag('ALLOW_DIRTY')) {
    for (const problem of problems) ctx.log.warn(`${problem}: deploying it anyway${ctx.env === 'production' ? ' (ALLOW_DIRTY=1)' : ''}`)
    return
  }
  throw new Refusal(`production deploys a clean ${wanted} branch: ${problems.join('; ')}`, [`commit and switch to ${wanted}, or run again with ALLOW_DIRTY=1 if you mean to deploy this tree`])
}
