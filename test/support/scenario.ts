import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { createSandbox, type Sandbox } from '../../scripts/sandbox/sandbox.ts'
import { loadCopy, takeCopy, type LogicalCopy } from '../../scripts/sandbox/fly-sim/model/pgcopy.ts'
import { freshDatabases, type TestDatabases } from './pg.ts'
import { defaultEnvFiles, runScript, tempDir, writeEnvDir, type EnvFiles } from './toolkit.ts'

// Ready-made starting points for pipeline tests: a sandbox whose six apps exist, whose internal
// APIs hold their DATABASE_URL, whose production database app has a volume, and (optionally)
// whose staging already runs the current code.

export interface Scenario {
  dbs: TestDatabases
  sandbox: Sandbox
  files: EnvFiles
  envDir: string
  env: Record<string, string>
}

export const STAGING = ['internal-api', 'public-api', 'web-admin'].map((a) => `microbima-staging-${a}`)
export const PRODUCTION = ['internal-api', 'public-api', 'web-admin'].map((a) => `microbima-production-${a}`)

/** Where a staging deploy left things: the simulator's files and both databases. */
interface Deployed {
  /** A copy of the simulator's state directory, and the directory it was copied from. */
  files: string
  from: string
  staging: LogicalCopy
  production: LogicalCopy
}

// A staging deploy in setup costs 2-3 s of CPU, and some thirty tests start from one. Each file
// process runs it once per sandbox setting; later scenarios with that setting start from a copy of
// what it left: the simulator's files (its paths moved to the new state directory) and both
// databases, copied and loaded as the simulator's own backups do (sandbox/fly-sim/model/pgcopy.ts).
const deployed = new Map<string, Deployed>()

async function remember(key: string, s: Scenario): Promise<void> {
  const files = tempDir('mb-deployed-')
  cpSync(s.sandbox.stateDir, files, { recursive: true })
  const [staging, production] = await Promise.all([takeCopy(s.dbs.staging), takeCopy(s.dbs.production)])
  deployed.set(key, { files, from: s.sandbox.stateDir, staging, production })
}

async function restore(from: Deployed, dbs: TestDatabases, sandbox: Sandbox): Promise<void> {
  for (const [url, copy] of [[dbs.staging, from.staging], [dbs.production, from.production]] as const) {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await loadCopy({ exec: (sql) => client.query(sql), query: (sql, params) => client.query(sql, params) }, copy)
    } finally {
      await client.end()
    }
  }
  // Everything but what belongs to the new sandbox itself (its settings, its port, its call log).
  for (const name of readdirSync(from.files)) {
    if (['sandbox.json', 'flyctl.port', 'calls.jsonl', 'state.lock'].includes(name)) continue
    cpSync(join(from.files, name), join(sandbox.stateDir, name), { recursive: true })
  }
  const state = join(sandbox.stateDir, 'state.json')
  writeFileSync(state, readFileSync(state, 'utf8').replaceAll(JSON.stringify(from.from).slice(1, -1), JSON.stringify(sandbox.stateDir).slice(1, -1)))
}

// ALLOW_DIRTY: the tests run in whatever checkout they find; the git rule has tests of its own.
// REBUILD: every staging deploy builds new images, whether the checkout is clean (CI) or not; a
// clean commit's second deploy building nothing has tests of its own.
const toolkitEnv = (sandbox: Sandbox, envDir: string) => ({ ...sandbox.env, ENV_DIR: envDir, LOCK_WAIT: '2', ALLOW_DIRTY: '1', REBUILD: '1' })

export async function scenario(options: { stagingDeployed?: boolean; sandbox?: Parameters<typeof createSandbox>[0] } = {}): Promise<Scenario> {
  const dbs = await freshDatabases()
  // timeScale: flyctl's 5-minute waits for health checks pass in 1.5 s.
  const sandbox = await createSandbox({ timeScale: 0.005, ...options.sandbox })
  const key = options.stagingDeployed ? JSON.stringify(options.sandbox ?? {}) : undefined
  const earlier = key === undefined ? undefined : deployed.get(key)
  if (earlier) {
    await restore(earlier, dbs, sandbox)
    const files = defaultEnvFiles(dbs)
    const envDir = writeEnvDir(files)
    sandbox.clearCalls()
    return { dbs, sandbox, files, envDir, env: toolkitEnv(sandbox, envDir) }
  }
  sandbox.seedApps()
  const files = defaultEnvFiles(dbs)
  const envDir = writeEnvDir(files)
  // As make set-secrets would have left them: every env file's values on its app, staged.
  for (const env of ['staging', 'production'] as const) {
    for (const [key, values] of Object.entries(files[env]!)) {
      const lines = [`NODE_ENV='${env}'`, ...Object.entries(values!).map(([k, v]) => `${k}='${v}'`)]
      await sandbox.direct(['secrets', 'import', '--app', `microbima-${env}-${key}`, '--stage'], `${lines.join('\n')}\n`)
    }
  }
  for (const db of ['microbima-staging-db', 'microbima-prod-db']) {
    await sandbox.direct(['postgres', 'create', '--name', db, '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10'])
  }
  const env = toolkitEnv(sandbox, envDir)
  if (options.stagingDeployed) {
    const result = await runScript('deploy', ['staging'], { env })
    if (result.code !== 0) throw new Error(`staging deploy failed in setup:\n${result.output}`)
  }
  sandbox.clearCalls()
  const s = { dbs, sandbox, files, envDir, env }
  if (key !== undefined) await remember(key, s)
  return s
}

/** A third machine for an app, as `fly scale count 3` would add. */
export function addMachine(s: Scenario, app: string): void {
  s.sandbox.update((state) => {
    const [first] = state.apps[app].machines
    state.apps[app].machines.push({ ...structuredClone(first), id: `${first.id.slice(0, 12)}ff`, name: 'third-machine-1' })
  })
}

/** A build's image label (git-<commit>, with a marker in a dirty checkout or a REBUILD=1 run;
 * local-<time> outside git). */
export const LABEL = /(?:git-[0-9a-f]{12}(?:-(?:dirty|rebuild)-\d{8}t\d{9}z)?|local-\d{8}t\d{9}z)/
/** A label as tables show it. */
export const SHOWN_LABEL = /(?:git-[0-9a-f]{12}(?:-(?:dirty|rebuild)…\w{6})?|local-\d{8}t\d{9}z)/
const SOURCE: Record<string, string> = { 'internal-api': 'api', 'public-api': 'public-api', 'web-admin': 'web-admin' }
export const BUILD_ARGS = (key: string) => ['--build-arg', 'WORKSPACE=examples/microbima', '--build-arg', `APP_DIR=apps/${SOURCE[key]}`, '--build-arg', `APP_PACKAGE=@microbima/${SOURCE[key]}`]
const shortEnv = (env: 'staging' | 'production') => (env === 'production' ? 'prod' : 'staging')
/** The build of one app, as deploy-staging runs it (builds run together). */
export const buildArgv = (env: 'staging' | 'production', key: string, label: string) => ['deploy', '--build-only', '--push', '--app', `microbima-${env}-${key}`, '--config', `infra/fly/${key}-${shortEnv(env)}/fly.toml`, '--remote-only', '--image-label', label, ...BUILD_ARGS(key)]
/** The rollout of one app's image. */
export const rolloutArgv = (env: 'staging' | 'production', key: string, image: string) => ['deploy', '--app', `microbima-${env}-${key}`, '--config', `infra/fly/${key}-${shortEnv(env)}/fly.toml`, '--image', image, '--deploy-retries', '0']
/** The label the builds of a call log used. */
export function labelOf(calls: { argv: string[] }[]): string {
  const build = calls.find((c) => c.argv[0] === 'deploy' && c.argv.includes('--build-only'))
  if (!build) throw new Error(`no build in ${calls.map((c) => c.argv.join(' ')).join('\n')}`)
  return build.argv[build.argv.indexOf('--image-label') + 1]
}
/** A deploy that changes machines (not a build: `--build-only`). */
export const isRollout = (argv: string[]) => argv[0] === 'deploy' && !argv.includes('--build-only')
/** The apps rolled out, in order, by a call log. */
export const rolledOut = (calls: { argv: string[] }[]) => calls.filter((c) => isRollout(c.argv)).map((c) => c.argv[c.argv.indexOf('--app') + 1])
/** An image's label as the toolkit's tables show it: a dirty or rebuilt label cut to its commit,
 * its marker and the last 6 characters of its time. */
export function shownLabel(image: string): string {
  const tag = image.slice(image.lastIndexOf(':') + 1)
  const unique = /^(git-[0-9a-f]{12}-(?:dirty|rebuild))-\d{8}t\d{9}z$/.exec(tag)
  return unique ? `${unique[1]}…${tag.slice(-6)}` : tag
}
