import { createSandbox, type Sandbox } from './sandbox.ts'
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
  const sandbox = await createSandbox(options.sandbox)
  sandbox.seedApps()
  const files = defaultEnvFiles(dbs)
  const envDir = writeEnvDir(files)
  for (const [env, app] of [['staging', STAGING[0]], ['production', PRODUCTION[0]]] as const) {
    await sandbox.fly(['secrets', 'import', '--app', app, '--stage'], `DATABASE_URL=${files[env]!['internal-api']!.DATABASE_URL}\n`)
  }
  for (const db of ['microbima-staging-db', 'microbima-prod-db']) {
    await sandbox.fly(['postgres', 'create', '--name', db, '--region', 'jnb', '--org', 'microbima', '--initial-cluster-size', '1', '--vm-size', 'shared-cpu-1x', '--volume-size', '10'])
  }
  const env = { ...sandbox.env, ENV_DIR: envDir, LOCK_WAIT: '2' }
  if (options.stagingDeployed) {
    const result = await runScript('deploy', ['staging'], { env })
    if (result.code !== 0) throw new Error(`staging deploy failed in setup:\n${result.output}`)
  }
  sandbox.clearCalls()
  return { dbs, sandbox, files, envDir, env }
}
