// Backups that hold data, and the databases restored from them. The sandbox's databases are PGlite
// instances (or a real server) that sandbox.json's `postgres` map names as the backend of a database
// app or Managed Postgres cluster. When a volume snapshot or an MPG backup is taken, the simulator
// copies the database behind it (model/pgcopy.ts) into the state directory (copies/<id>.json): the
// backup is that data, whatever is written afterwards. A restore starts a new PGlite instance in
// this process (the sandbox owner's: the simulator runs there), loads the copy, and registers it as
// the backend of the new app or cluster; destroying that app or cluster stops it, and so does the
// simulator's close. A restore never creates anything on the server the live database runs on
// (a real server in TEST_DATABASE_URL stays untouched): the copy always goes into a new instance.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type LogicalCopy, type SqlTarget, loadCopy, speaksPostgres, takeCopy } from './pgcopy.ts'
import type { Backend } from './network.ts'
import { updateSandbox } from '../state.ts'

const copyPath = (dir: string, id: string) => join(dir, 'copies', `${id.replace(/[^\w-]/g, '_')}.json`)

/** How the simulator itself reads the database behind a backend: its `url`, or (a PGlite instance
 * answers any user and database name) postgres@host:port. */
const readUrl = (backend: Backend) => backend.url ?? `postgres://postgres:postgres@${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}/postgres`

/** Copies the database behind `backend` as the content of backup `id`; false when there is none to
 * copy (no backend, or nothing that speaks Postgres there): that backup then restores no data. */
export async function copyForBackup(dir: string, id: string, backend: Backend | undefined): Promise<boolean> {
  if (!backend || !(await speaksPostgres(backend.host, backend.port))) return false
  let copy: LogicalCopy
  try {
    copy = await takeCopy(readUrl(backend))
  } catch {
    return false
  }
  mkdirSync(join(dir, 'copies'), { recursive: true })
  writeFileSync(copyPath(dir, id), JSON.stringify(copy))
  return true
}

export function hasCopy(dir: string, id: string): boolean {
  return existsSync(copyPath(dir, id))
}

export function dropCopy(dir: string, id: string): void {
  rmSync(copyPath(dir, id), { force: true })
}

type StartPglite = (options: { unref: boolean }) => Promise<{ port: number; db: SqlTarget; stop(): Promise<void> }>

interface Restored {
  /** Resolves once the instance accepts connections (its backend registered); rejects if the load failed. */
  ready: Promise<{ port: number; stop(): Promise<void> }>
}

/** Restored instances of each state directory, by the app or cluster name they serve. */
const restored = new Map<string, Map<string, Restored>>()

/** Starts a PGlite instance holding backup `id`'s copy as `name`'s backend. The returned promise
 * resolves when it accepts connections (its backend registered); it rejects if the copy did not load. */
export function startRestored(dir: string, name: string, id: string): Promise<void> {
  const copy = JSON.parse(readFileSync(copyPath(dir, id), 'utf8')) as LogicalCopy
  const mine = restored.get(dir) ?? new Map<string, Restored>()
  restored.set(dir, mine)
  const ready = (async () => {
    // Loaded only when a restore happens: PGlite is large, and most calls never need it.
    // @ts-expect-error plain ESM module shared with the test runner
    const { startPglite } = (await import('../../postgres.mjs')) as { startPglite: StartPglite }
    const instance = await startPglite({ unref: true })
    try {
      await loadCopy(instance.db, copy)
    } catch (error) {
      await instance.stop()
      throw error
    }
    updateSandbox(dir, (sandbox) => void ((sandbox.postgres ??= {})[name] = { host: '127.0.0.1', port: instance.port }))
    return instance
  })()
  ready.catch(() => undefined)
  mine.set(name, { ready })
  return ready.then(() => undefined)
}

/** Whether `name` is served by an instance the simulator restored. */
export const isRestored = (dir: string, name: string): boolean => Boolean(restored.get(dir)?.has(name))

/** Stops the restored instance serving `name` (waiting for one still loading) and forgets its backend. */
export async function stopRestored(dir: string, name: string): Promise<void> {
  const entry = restored.get(dir)?.get(name)
  if (!entry) return
  restored.get(dir)!.delete(name)
  const instance = await entry.ready.catch(() => undefined)
  await instance?.stop()
  if (existsSync(join(dir, 'sandbox.json'))) updateSandbox(dir, (sandbox) => void delete sandbox.postgres?.[name])
}

/** Stops every instance restored for this state directory (the simulator closes). */
export async function stopAllRestored(dir: string): Promise<void> {
  await Promise.all([...(restored.get(dir)?.keys() ?? [])].map((name) => stopRestored(dir, name)))
  restored.delete(dir)
}
