// Section 3.2 of the deployment strategy, as Prisma 7 driver-adapter options: the runtime
// connects through @prisma/adapter-pg, whose options are pg's pool settings.
//
// Fixes the document's mistake: development never falls back to a remote database, and staging
// and production refuse to start without DATABASE_URL instead of connecting to `undefined`.
import { PrismaPg } from '@prisma/adapter-pg'
import type { PoolConfig } from 'pg'

export type RuntimeEnvironment = 'development' | 'staging' | 'production'

const SETTINGS: Record<RuntimeEnvironment, { max: number; timeoutMs: number }> = {
  development: { max: 5, timeoutMs: 10_000 },
  staging: { max: 10, timeoutMs: 30_000 },
  production: { max: 20, timeoutMs: 60_000 },
}

export const DEVELOPMENT_URL = 'postgresql://localhost:5432/microbima_dev'

/** TLS follows the URL: Fly's private network (.flycast/.internal, sslmode=disable) has none. */
function sslFor(url: URL): PoolConfig['ssl'] {
  const mode = url.searchParams.get('sslmode')
  if (mode === 'disable' || url.hostname.endsWith('.flycast') || url.hostname.endsWith('.internal') || url.hostname === 'localhost') return false
  return { rejectUnauthorized: mode === 'verify-full' }
}

export function getDatabaseConfig(nodeEnv = process.env.NODE_ENV, env: NodeJS.ProcessEnv = process.env): PoolConfig {
  const name: RuntimeEnvironment = nodeEnv === 'staging' || nodeEnv === 'production' ? nodeEnv : 'development'
  const raw = env.DATABASE_URL
  if (!raw && name !== 'development') throw new Error(`DATABASE_URL is not set for ${name}: refusing to start without a database`)
  const url = new URL(raw || DEVELOPMENT_URL)
  if (name === 'development' && url.hostname.split('.').includes('microbima-prod-db')) {
    throw new Error('development must not use the production database (microbima-prod-db)')
  }
  const { max, timeoutMs } = SETTINGS[name]
  return {
    connectionString: url.toString(),
    max,
    connectionTimeoutMillis: timeoutMs,
    idleTimeoutMillis: timeoutMs,
    statement_timeout: timeoutMs,
    ssl: sslFor(url),
  }
}

export function createPrismaAdapter(nodeEnv = process.env.NODE_ENV): PrismaPg {
  return new PrismaPg(getDatabaseConfig(nodeEnv))
}
