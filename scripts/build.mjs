// Compiles every script once into dist/ (one bundled ESM file each, its small dependencies inside),
// so a make target starts node on one plain JavaScript file: no TypeScript loader, no module
// resolution through node_modules at every start (about 45 ms of each start). node-postgres is inside
// too, evaluated only when a script first opens a database (its dynamic import): loaded from
// node_modules it cost each such run 20-30 ms of resolving its forty files. yaml, read once a deploy
// (flyctl's config.yml) and by the sandbox, is one file of its own, dist/vendor/yaml.mjs, imported
// only where used: 9 ms of CPU where its forty CommonJS files took 55 ms, and no weight for the
// scripts that never read YAML. The large or native packages (PGlite, Prisma) stay in node_modules;
// pg-native is pg's optional native driver, never installed.
import { build } from 'esbuild'
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'

const entries = readdirSync('scripts')
  .filter((file) => file.endsWith('.ts'))
  .map((file) => ({ in: `scripts/${file}`, out: file.replace(/\.ts$/, '') }))

// A folder that cannot be written (read-only, a full disk, owned by someone else) is one line, not
// an error per output file.
try {
  mkdirSync('dist', { recursive: true })
  writeFileSync('dist/.write-test', 'x'.repeat(64 * 1024))
  rmSync('dist/.write-test')
} catch (error) {
  const reason = { EACCES: 'permission denied', EROFS: 'read-only file system', ENOSPC: 'no space left on the disk', EPERM: 'not permitted', ENOTDIR: 'a file stands where the folder should be', EEXIST: 'a file stands where the folder should be' }[error.code] ?? error.message
  console.error(`error: cannot build into dist/ (${error.code ?? 'error'}: ${reason}): make the folder writable (or free some space) and run make again`)
  process.exit(1)
}

/** Every import of yaml, from any script, is the one vendored file beside the scripts. */
const vendoredYaml = {
  name: 'vendored-yaml',
  setup(plugin) {
    plugin.onResolve({ filter: /^yaml$/ }, () => ({ path: './vendor/yaml.mjs', external: true }))
  },
}

try {
  // yaml's own ES module build (its package's default export condition; the node condition is
  // CommonJS), bundled whole.
  await build({ entryPoints: { 'vendor/yaml': 'yaml' }, outdir: 'dist', outExtension: { '.js': '.mjs' }, bundle: true, platform: 'neutral', format: 'esm', target: 'node20', logLevel: 'silent' })
  await build({
    entryPoints: entries,
    outdir: 'dist',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    external: ['pg-native', '@electric-sql/*', 'prisma', '@prisma/*', 'esbuild'],
    plugins: [vendoredYaml],
    // Bundled CommonJS dependencies (dotenv) call require for Node's own modules.
    banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" },
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    // Whitespace and syntax only (the names stay): a third less source for V8 to parse at every
    // start, 6 ms of each script's 150 ms; a bug's stack is still mapped to the TypeScript lines.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'silent',
  })
} catch (error) {
  // A write that failed half-way (the disk filled up) is one line; a compile error shows esbuild's
  // own messages, the first few of them.
  const messages = error.errors ?? []
  const write = messages.find((m) => /write|ENOSPC|EACCES|EROFS/i.test(m.text))
  if (write) console.error(`error: cannot build into dist/ (${write.text.split('\n')[0]}): make the folder writable (or free some space) and run make again`)
  else for (const m of messages.slice(0, 5)) console.error(`error: ${m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : ''}${m.text}`)
  if (!messages.length) console.error(`error: the build failed: ${error.message.split('\n')[0]}`)
  process.exit(1)
}
writeFileSync('dist/.built', `${new Date().toISOString()}\n`)
