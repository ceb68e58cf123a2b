// Compiles every script once into dist/ (one bundled ESM file each, its small dependencies inside),
// so a make target starts node on one plain JavaScript file: no TypeScript loader, no module
// resolution through node_modules at every start (about 45 ms of each start). Packages loaded only
// when needed (pg, yaml) or large and native (PGlite, Prisma) stay in node_modules.
import { build } from 'esbuild'
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs'

const entries = readdirSync('scripts')
  .filter((file) => file.endsWith('.ts'))
  .map((file) => ({ in: `scripts/${file}`, out: file.replace(/\.ts$/, '') }))

mkdirSync('dist', { recursive: true })
await build({
  entryPoints: entries,
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  external: ['pg', 'yaml', '@electric-sql/*', 'prisma', '@prisma/*', 'esbuild'],
  // Bundled CommonJS dependencies (dotenv) call require for Node's own modules.
  banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" },
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
})
writeFileSync('dist/.built', `${new Date().toISOString()}\n`)
