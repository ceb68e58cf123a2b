// Prisma 7 configuration, read by `npx prisma migrate deploy` in the release_command (cwd /app).
// Migrations need a direct session (advisory lock), so DIRECT_DATABASE_URL wins when set: Managed
// Postgres gives the app a pooled DATABASE_URL. '' rather than env(): env() throws when unset, and
// commands that need no database (validate, --version) load this file too.
import { defineConfig } from 'prisma/config'

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DIRECT_DATABASE_URL ?? process.env.DATABASE_URL ?? '' },
})
