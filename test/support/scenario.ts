import { createSandbox, type Sandbox } from '../../scripts/sandbox/sandbox.ts'
import { freshDatabases, type TestDatabases } from './pg.ts'
import { defaultEnvFiles, runScript, writeEnvDir, type EnvFiles } from './toolkit.ts'

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

export async function scenario(options: { stagingDeployed?: boolean; sandbox?: Parameters<typeof createSandbox>[0] } = {}): Promise<Scenario> {
  const dbs = await freshDatabases()
  // timeScale: flyctl's 5-minute waits for health checks pass in 1.5 s.
  const sandbox = await createSandbox({ timeScale: 0.005, ...options.sandbox })
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
  // ALLOW_DIRTY: the tests run in whatever checkout they find; the git rule has tests of its own.
  const env = { ...sandbox.env, ENV_DIR: envDir, LOCK_WAIT: '2', ALLOW_DIRTY: '1' }
  if (options.stagingDeployed) {
    const result = await runScript('deploy', ['staging'], { env })
    if (result.code !== 0) throw new Error(`staging deploy failed in setup:\n${result.output}`)
  }
  sandbox.clearCalls()
  return { dbs, sandbox, files, envDir, env }
}

/** A third machine for an app, as `fly scale count 3` would add. */
export function addMachine(s: Scenario, app: string): void {
  s.sandbox.update((state) => {
    const [first] = state.apps[app].machines
    state.apps[app].machines.push({ ...structuredClone(first), id: `${first.id.slice(0, 12)}ff`, name: 'third-machine-1' })
  })
}
