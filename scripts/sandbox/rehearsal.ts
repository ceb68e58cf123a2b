// The sandbox a rehearsal runs in (make demo, make runbook, make bench): the Fly simulator with
// one embedded PostgreSQL instance per environment behind its database apps, as `flyctl proxy`
// reaches them on Fly. One PGlite instance is one database, hence two instances, not two names.
// @ts-expect-error plain ESM module shared with the test runner
import { startEnvironmentDatabases } from './postgres.mjs'
import { createSandbox, type Sandbox, type SandboxOptions, type Where } from './sandbox.ts'

export interface Rehearsal {
  sandbox: Sandbox
  databases: { staging: { port: number; url: string }; production: { port: number; url: string } }
  stop(): Promise<void>
}

export async function startRehearsal(options: Omit<SandboxOptions, 'postgres'> = {}, where: Where = {}): Promise<Rehearsal> {
  const databases = await startEnvironmentDatabases()
  const sandbox = await createSandbox({
    ...options,
    postgres: {
      'microbima-staging-db': { host: '127.0.0.1', port: databases.staging.port },
      'microbima-prod-db': { host: '127.0.0.1', port: databases.production.port },
    },
  }, where)
  return {
    sandbox,
    databases,
    async stop() {
      await sandbox.close()
      await databases.stop()
    },
  }
}
