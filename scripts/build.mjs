// Compiles every script once into dist/ (one bundled ESM file each), so a make target starts
// node on plain JavaScript instead of loading a TypeScript loader at every start.
import { build } from 'esbuild'
import { readdirSync, existsSync, writeFileSync, mkdirSync } from 'node:fs'

const entries = readdirSync('scripts')
  .filter((file) => file.endsWith('.ts'))
  .map((file) => ({ in: `scripts/${file}`, out: file.replace(/\.ts$/, '') }))
entries.push({ in: 'scripts/sandbox/fly-sim/main.ts', out: 'fly-sim' })

mkdirSync('dist', { recursive: true })
await build({
  entryPoints: entries,
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
})
writeFileSync('dist/.built', `${new Date().toISOString()}\n`)
