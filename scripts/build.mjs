// Compiles every script once into dist/ (one bundled ESM file each), so a make target starts
// node on plain JavaScript instead of loading a TypeScript loader at every start.
import { build } from 'esbuild'
import { chmodSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'

const entries = readdirSync('scripts')
  .filter((file) => file.endsWith('.ts'))
  .map((file) => ({ in: `scripts/${file}`, out: file.replace(/\.ts$/, '') }))

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
// The sandbox's flyctl: an executable that hands each call to the simulator's server.
await build({
  entryPoints: ['scripts/sandbox/fly-sim/client.ts'],
  outfile: 'dist/flyctl',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
})
chmodSync('dist/flyctl', 0o755)
writeFileSync('dist/.built', `${new Date().toISOString()}\n`)
