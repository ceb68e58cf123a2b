import { hostname, userInfo } from 'node:os'

// Who is doing an operation and from where: for the deploy lock and the ledger (the commit: git.ts).

export function who(): string {
  if (process.env.GITHUB_ACTOR) return `${process.env.GITHUB_ACTOR} (GitHub Actions)`
  return process.env.USER || userInfo().username
}

/** The machine (or CI run) and the process: which run holds a lock. */
export function where(): string {
  return process.env.GITHUB_RUN_ID ? machine() : `${hostname()} pid ${process.pid}`
}

/** The machine or CI run alone: for what outlives the process (a hold by hand). */
export function machine(): string {
  const { GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID } = process.env
  if (GITHUB_RUN_ID) return `${GITHUB_SERVER_URL ?? 'https://github.com'}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}`
  return hostname()
}
