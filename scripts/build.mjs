// Compiles every script once into dist/ (one bundled file each, its small dependencies inside), so a
// make target starts node on one plain JavaScript file: no TypeScript loader, no module resolution
// through node_modules at every start (about 45 ms of each start).
//
// The operations (deploy, health, rollback, …) are CommonJS files, dist/<name>.cjs: Node starts a
// CommonJS file 12-15 ms cheaper than an ES module (no module loader to start, no module wrapper
// for each of Node's own modules), on each of the many short runs a pipeline makes. CommonJS has no
// top-level await, so they call main() without awaiting it (scripts/lib/core/cli.ts says so if a
// run ends before its work), and their import()s become lazy require()s. The sandbox's hosts
// (demo, sandbox, runbook, bench, write-env-files) stay ES modules, dist/<name>.mjs: they load
// PGlite, an ES module only, which a CommonJS file cannot require on Node 20; they run long enough
// for the start not to matter.
//
// Over make test's 600 runs of the operations: 9 s of CPU less (3%), 4 s of wall time (four runs
// each, interleaved both ways round).
//
// node-postgres is inside, evaluated only when a script first opens a database: loaded from
// node_modules it cost each such run 20-30 ms of resolving its forty files. yaml, read once a deploy
// (flyctl's config.yml) and by the sandbox, is one file of its own, dist/vendor/yaml.cjs, loaded
// only where used (dist/vendor/yaml.mjs for the hosts): 9 ms of CPU where its forty files took 55
// ms, and no weight for the scripts that never read YAML. The large or native packages (PGlite,
// Prisma) stay in node_modules; pg-native is pg's optional native driver, never installed.
import { build } from 'esbuild'
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { HOST, OPERATION, SANDBOX_HOSTS } from './build-kinds.mjs'

const entries = readdirSync('scripts')
  .filter((file) => file.endsWith('.ts'))
  .map((file) => ({ in: `scripts/${file}`, out: file.replace(/\.ts$/, '') }))
const operations = entries.filter((entry) => !SANDBOX_HOSTS.includes(entry.out))
const hosts = entries.filter((entry) => SANDBOX_HOSTS.includes(entry.out))

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

/** Every import of yaml, from any script, is the vendored file beside the scripts: the CommonJS one
 * for an operation, the ES module for a host. */
const vendoredYaml = {
  name: 'vendored-yaml',
  setup(plugin) {
    const file = plugin.initialOptions.format === 'cjs' ? './vendor/yaml.cjs' : './vendor/yaml.mjs'
    plugin.onResolve({ filter: /^yaml$/ }, () => ({ path: file, external: true }))
  },
}

const common = {
  outdir: 'dist',
  bundle: true,
  external: ['pg-native', '@electric-sql/*', 'prisma', '@prisma/*', 'esbuild'],
  plugins: [vendoredYaml],
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Whitespace and syntax only (the names stay): a third less source for V8 to parse at every
  // start, 6 ms of each script's 150 ms; a bug's stack is still mapped to the TypeScript lines.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'silent',
}

try {
  // yaml's own ES module build (its package's default export condition; the node condition is
  // forty CommonJS files), bundled whole: one CommonJS file for the operations, one ES module for
  // the hosts (Node finds no named exports in the CommonJS one).
  for (const format of ['cjs', 'esm']) {
    await build({ entryPoints: { 'vendor/yaml': 'yaml' }, outdir: 'dist', outExtension: { '.js': format === 'cjs' ? '.cjs' : '.mjs' }, bundle: true, platform: 'neutral', format, target: 'node20', logLevel: 'silent' })
  }
  await build({ ...common, ...OPERATION, entryPoints: operations, outExtension: { '.js': '.cjs' } })
  await build({ ...common, ...HOST, entryPoints: hosts, outExtension: { '.js': '.mjs' } })
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
