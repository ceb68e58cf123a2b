// The two kinds of compiled script, for scripts/build.mjs and for the tests that compile or run
// scripts as it does (why two kinds: scripts/build.mjs).
import { join } from 'node:path'

/** The sandbox's hosts, compiled as ES modules (dist/<name>.mjs): they load PGlite. Every other
 * script is an operation, compiled as CommonJS (dist/<name>.cjs). */
export const SANDBOX_HOSTS = ['demo', 'sandbox', 'runbook', 'bench', 'write-env-files']

/** esbuild's options for an operation. */
export const OPERATION = {
  format: 'cjs',
  // import() becomes a lazy require() (of a builtin, or of dist/vendor/yaml.cjs): an import()
  // would start the ES module loader after all.
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': 'importMetaUrl', 'import.meta.dirname': 'importMetaDirname', 'import.meta.filename': 'importMetaFilename' },
  inject: [join(import.meta.dirname, 'build-import-meta.mjs')],
}

/** esbuild's options for a host. */
export const HOST = {
  format: 'esm',
  // Bundled CommonJS dependencies (dotenv) call require for Node's own modules.
  banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" },
}
