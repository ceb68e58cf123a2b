// Prisma 7 configuration. The CLI takes its connection from here (schema files no longer hold
// one). DATABASE_URL must be the direct, unpooled URL: migrate needs a real session for its
// advisory lock. `generate`, `validate` and `format` run without it.
import { defineConfig } from 'prisma/config'

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
})
