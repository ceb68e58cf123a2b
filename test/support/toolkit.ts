import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
// @ts-expect-error plain ESM module shared with scripts/build.mjs
import { SANDBOX_HOSTS } from '../../scripts/build-kinds.mjs'
import { REPO, tempDir, writeEnvDir, type EnvFiles } from '../../scripts/sandbox/files.ts'

export { REPO, tempDir, writeEnvDir, type EnvFiles }

// Runs the toolkit the way an operator does (compiled scripts, or make targets) and builds the
// throwaway inputs tests need: env folders and project copies with their own migrations.

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
  /** stdout and stderr together, in arrival order. */
  output: string
  /** The MB_TEST_RUN value this run and every process it started carry (see leftovers()). */
  marker: string
}

export interface RunOptions {
  env?: Record<string, string | undefined>
  cwd?: string
  input?: string
  timeoutMs?: number
  /** Called with the child once started (to signal it mid-run). */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void
}

/** The environment minus what an outer `make test` adds, so a child `make` behaves as it does in an
 * operator's shell (no `make[1]:` prefixes, no inherited command-line variables). */
function operatorEnv(): NodeJS.ProcessEnv {
  const { MAKELEVEL, MAKEFLAGS, MFLAGS, MAKE_TERMOUT, MAKE_TERMERR, ...rest } = process.env
  return rest
}

/** Spawns asynchronously: the test process may be serving the databases the child talks to. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const marker = randomUUID()
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO,
      env: { ...operatorEnv(), FORCE_COLOR: '0', NO_COLOR: '1', ...options.env, MB_TEST_RUN: marker } as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    options.onSpawn?.(child)
    let stdout = ''
    let stderr = ''
    let output = ''
    child.stdout.on('data', (chunk) => ((stdout += chunk), (output += chunk)))
    child.stderr.on('data', (chunk) => ((stderr += chunk), (output += chunk)))
    // A child may exit before it reads its stdin (a refusal, say): that is its answer, not an error.
    child.stdin.on('error', () => undefined)
    child.stdin.end(options.input ?? '')
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolvePromise({ code, stdout, stderr, output, marker })
    })
  })
}

/** Command lines of processes still running that descend from the run with this marker: found by
 * the MB_TEST_RUN they inherited, so another checkout's tests running beside ours never count. */
export function leftovers(marker: string): string[] {
  // A process the run signalled as it ended may take a few milliseconds more to go (more on a
  // loaded machine): looked at again for up to 0.5 s before it counts as left behind.
  for (let waited = 0; ; waited += 50) {
    const found = processesOf(marker)
    if (!found.length || waited >= 500) return found
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
  }
}

function processesOf(marker: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`MB_TEST_RUN=${marker}`)) continue
      const args = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim()
      if (args) found.push(`${pid} ${args}`) // a zombie has no command line: it is already gone
    } catch {
      // the process ended while we looked, or is not ours to read
    }
  }
  return found
}

/** Polls fn (every 25 ms) until it gives a value, which it returns; throws after ms. */
export async function until<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = fn()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** The compiled script: dist/<name>.mjs for a sandbox host, dist/<name>.cjs for an operation (never
 * an operation's .mjs left by an older build). */
export function compiled(script: string, root = REPO): string {
  return join(root, 'dist', `${script}.${SANDBOX_HOSTS.includes(script) ? 'mjs' : 'cjs'}`)
}

/** node dist/<script>.cjs ARGS, with cwd the repository or a project copy. */
export function runScript(script: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [compiled(script), ...args], options)
}

/** make -s TARGET VAR=value… in the repository. */
export function runMake(target: string, vars: Record<string, string> = {}, options: RunOptions = {}): Promise<RunResult> {
  return run('make', ['-s', target, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], options)
}

/** Recognisable secret values: tests scan every output for them. */
export const SECRET = {
  stagingDbPassword: 'stg-PW-7c1e9a',
  productionDbPassword: 'prd-PW-4b8d2f',
  jwt: 'jwt-SECRET-91f3aa',
  mpesa: 'mpesa-SECRET-5e0c7b',
  kong: 'kong-SECRET-33d9e1',
  session: 'session-SECRET-a2b6c4',
}

/** Env files for both environments, pointing the internal API at the given database URLs. */
export function defaultEnvFiles(urls: { staging: string; production: string }): EnvFiles {
  const withPassword = (url: string, password: string) => {
    const u = new URL(url)
    // PGlite accepts any password; real servers in TEST_DATABASE_URL keep theirs.
    if (!process.env.TEST_DATABASE_URL) u.password = password
    return u.toString()
  }
  return {
    staging: {
      'internal-api': { DATABASE_URL: withPassword(urls.staging, SECRET.stagingDbPassword), JWT_SECRET: SECRET.jwt, MPESA_CONSUMER_SECRET: SECRET.mpesa },
      'public-api': { KONG_PARTNER_API_KEY: SECRET.kong },
      'web-admin': { SESSION_SECRET: SECRET.session, INTERNAL_API_URL: 'http://microbima-staging-internal-api.flycast' },
    },
    production: {
      'internal-api': { DATABASE_URL: withPassword(urls.production, SECRET.productionDbPassword), JWT_SECRET: SECRET.jwt + 'P', MPESA_CONSUMER_SECRET: SECRET.mpesa + 'P' },
      'public-api': { KONG_PARTNER_API_KEY: SECRET.kong + 'P' },
      'web-admin': { SESSION_SECRET: SECRET.session + 'P', INTERNAL_API_URL: 'http://microbima-production-internal-api.flycast' },
    },
  }
}

/** The sample app's migrations, relative to the repository (infra/fly/settings.json). */
export const MIGRATIONS = 'examples/microbima/apps/api/prisma/migrations'

/** A copy of the project's infra/, prisma/ and sample monorepo (for tests that add or break
 * migrations), without installed packages; scripts run with it as their directory. */
export function projectCopy(): string {
  const dir = tempDir('mb-project-')
  for (const part of ['infra', 'prisma', '.dockerignore']) cpSync(join(REPO, part), join(dir, part), { recursive: true })
  cpSync(join(REPO, 'examples'), join(dir, 'examples'), { recursive: true, filter: (src) => !src.includes('node_modules') })
  return dir
}

/** Adds a migration folder to a project copy. */
export function addMigration(project: string, name: string, sql: string, down?: string): void {
  const dir = join(project, MIGRATIONS, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'migration.sql'), sql)
  if (down !== undefined) writeFileSync(join(dir, 'down.sql'), down)
}
