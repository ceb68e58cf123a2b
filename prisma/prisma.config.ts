// Prisma 7 configuration for the toolkit's own use of the Prisma CLI (make studio-*, make
// migration): the schema and migrations are the application's, where infra/fly/settings.json says
// (read from the toolkit's folder, where make runs). The connection comes from the environment:
// the toolkit passes the environment's direct URL (DIRECT_DATABASE_URL, else DATABASE_URL), never
// on a command line. `generate`, `validate` and `format` run without one.
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { defineConfig } from 'prisma/config'

const settings = JSON.parse(readFileSync(resolve('infra/fly/settings.json'), 'utf8'))
const workspace = join(resolve(settings.root ?? '.'), settings.workspace ?? '.')
const api = settings.apps?.['internal-api']?.source ?? 'apps/api'

export default defineConfig({
  schema: join(workspace, settings.prisma?.schema ?? `${api}/prisma/schema.prisma`),
  migrations: { path: join(workspace, settings.prisma?.migrations ?? `${api}/prisma/migrations`) },
  datasource: { url: process.env.DIRECT_DATABASE_URL ?? process.env.DATABASE_URL ?? '' },
})
