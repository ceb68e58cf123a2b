#!/usr/bin/env node
// Runs every test file (uvu suites, one node process per file, five at a time on two cores) and
// ends with the line CI reads: "N passed, N failed". uvu prints no such line and can exit 0 after
// a hook threw, so a file counts as failed when its process exits non-zero, prints no totals, or
// passes fewer tests than it ran; the run fails when anything failed or nothing ran.
//
//   node test/run.mjs [pattern…]   (patterns are substrings of test file paths)
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { cpus, tmpdir } from 'node:os'
import { build, transform } from 'esbuild'
import { readFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'

const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT ?? 600) * 1000
const patterns = process.argv.slice(2)

function alive(pid) {
  try {
    return process.kill(pid, 0)
  } catch (error) {
    return error.code === 'EPERM'
  }
}

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'support' || name === 'fixtures' ? [] : findTests(path)
    return name.endsWith('.test.ts') ? [path] : []
  })
}

// Slowest first (as the last run measured them), so the workers finish together.
const TIMES = 'node_modules/.cache/microbima-test-times.json'
const LAST_RUN = 'node_modules/.cache/microbima-test-run.json'
const runStarted = Date.now()
// A clean clone has no record yet: it takes the times bench/results.md keeps (its "The test suite"
// table, written by make bench), so CI also starts the slowest files first.
const lastTimes = (() => {
  try {
    return JSON.parse(readFileSync(TIMES, 'utf8'))
  } catch {
    try {
      const table = readFileSync('bench/results.md', 'utf8').split('## The test suite')[1] ?? ''
      return Object.fromEntries([...table.matchAll(/^\| ([\w/.-]+\.test\.ts) \| ([\d.]+) \|$/gm)].map((m) => [`test/${m[1]}`, Number(m[2]) * 1000]))
    } catch {
      return {}
    }
  }
})()
const files = findTests('test')
  .filter((file) => patterns.length === 0 || patterns.some((p) => file.includes(p)))
  .sort((a, b) => (lastTimes[b] ?? 0) - (lastTimes[a] ?? 0) || a.localeCompare(b))
// Three workers more than cores (at most eight): some 40% of a file's time is waiting (timeouts,
// health waits, simulated latency), which the other files fill. On two cores, five files at a time
// took 165-170 s where four took 174-178 s, with no more CPU (two runs each, interleaved); four had
// beaten three (167 s against 182 s).
const workers = Math.max(1, Math.min(Number(process.env.TEST_WORKERS ?? Math.min(8, cpus().length + 3)), files.length))

// Each file runs as one bundle of plain JavaScript, made here by esbuild in one go (packages stay in
// node_modules): loading a file's TypeScript through tsx cost each file 0.5-1.3 s of CPU, 1.6 s
// for the ones that import the sandbox, against 0.3 s bundled. Each module keeps its own
// import.meta.url, dirname and filename (a module that runs only as a script compares its URL with
// process.argv[1]; files are found next to it). `node --import tsx test/x.test.ts` still runs one
// file as written.
/** Each module of the repository with its own import.meta values, put in by esbuild's define (code
 * only: a string that mentions import.meta.url stays as it is). */
const ownImportMeta = {
  name: 'own-import-meta',
  setup(plugin) {
    plugin.onLoad({ filter: /\.(ts|mjs|js)$/ }, async ({ path }) => {
      if (path.includes('/node_modules/')) return undefined
      const define = { 'import.meta.url': JSON.stringify(pathToFileURL(path).href), 'import.meta.dirname': JSON.stringify(dirname(path)), 'import.meta.filename': JSON.stringify(path) }
      const loader = path.endsWith('.ts') ? 'ts' : 'js'
      const { code } = await transform(await readFile(path, 'utf8'), { loader, define, format: 'esm', sourcefile: path, sourcemap: 'inline', target: 'node20' })
      return { contents: code, loader: 'js' }
    })
  },
}

/** A folder of this run under root, named prefix + pid, removed when the run ends. Two runs may
 * overlap, so only the folders of runs no longer alive (killed ones) are removed at the start. */
function folderOfThisRun(root, prefix) {
  mkdirSync(root, { recursive: true })
  for (const name of readdirSync(root)) {
    const pid = new RegExp(`^${prefix}(\\d+)$`).exec(name)?.[1]
    if (pid && !alive(Number(pid))) rmSync(join(root, name), { recursive: true, force: true })
  }
  const folder = join(root, `${prefix}${process.pid}`)
  mkdirSync(folder, { recursive: true })
  process.on('exit', () => rmSync(folder, { recursive: true, force: true }))
  return folder
}

const BUNDLES = folderOfThisRun('node_modules/.cache/microbima-tests', '')

// The files' throwaway files (simulator state rewritten at every flyctl call, env folders, scratch
// repositories) go to TMPDIR, by default a folder of this run on /dev/shm, a memory filesystem,
// when it has room: on a disk mounted with online discard, as these machines' is, creating,
// renaming and removing them costs CPU at every call. TEST_TMPDIR names another place.
const SCRATCH_ROOT = (() => {
  if (process.env.TEST_TMPDIR) {
    if (!existsSync(process.env.TEST_TMPDIR) || !statSync(process.env.TEST_TMPDIR).isDirectory()) {
      console.error(`error: TEST_TMPDIR=${process.env.TEST_TMPDIR} is not a folder: create it or unset TEST_TMPDIR`)
      console.log('0 passed, 1 failed')
      process.exit(1)
    }
    return process.env.TEST_TMPDIR
  }
  try {
    const { bavail, bsize } = statfsSync('/dev/shm')
    if (bavail * bsize >= 2 ** 30) return '/dev/shm'
  } catch {
    // no /dev/shm: not Linux
  }
  return tmpdir()
})()
const SCRATCH = folderOfThisRun(SCRATCH_ROOT, 'microbima-tests-')
try {
  await build({
    entryPoints: files,
    outdir: BUNDLES,
    outbase: '.',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'silent',
    plugins: [ownImportMeta],
  })
} catch (error) {
  for (const m of (error.errors ?? [{ text: error.message }]).slice(0, 10)) console.error(`error: ${m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : ''}${m.text}`)
  console.log('0 passed, 1 failed')
  process.exit(1)
}
const bundleOf = (file) => join(BUNDLES, file.replace(/\.ts$/, '.mjs'))

// One staging and one production database per worker, unless a real server was given or every
// file is a unit test (test/unit/ runs nothing against a database). Each worker starts its first
// file as soon as its own pair is up.
// Each pair runs in a process of its own (startEnvironmentDatabasesProcess): in threads of this
// process, every test file it starts (a fork) copied the page tables of eight PGlite instances,
// 160 ms each time. Not in one thread either: one file's queries would wait behind another's.
const withDatabases = !process.env.TEST_DATABASE_URL && !files.every((file) => file.startsWith('test/unit/'))
const { makeEmptyClusters, startEnvironmentDatabasesProcess } = withDatabases ? await import('../scripts/sandbox/postgres.mjs') : {}
// A fresh clone has no empty clusters yet: made once here, not by every database process at once.
if (withDatabases) {
  try {
    await makeEmptyClusters()
  } catch (error) {
    console.error(`error: ${error.message}`)
    console.log('0 passed, 1 failed')
    process.exit(1)
  }
}
const databases = Array.from({ length: workers }, () => (withDatabases ? startEnvironmentDatabasesProcess() : undefined))

async function runFile(file, worker) {
  let database
  try {
    database = await databases[worker]
  } catch (error) {
    return { file, output: `[run] ${file} did not run: ${error.message}\n`, passed: 0, failed: 1, ms: 0 }
  }
  return new Promise((resolve) => {
    const env = { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', TMPDIR: SCRATCH }
    // Nothing in the suite speaks TLS, and an extra CA bundle (set on some CI machines) is read
    // and parsed by every node process at start: 80 ms each, over the suite's 760 processes.
    delete env.NODE_EXTRA_CA_CERTS
    if (database) {
      env.TEST_PG_STAGING_URL = database.staging.url
      env.TEST_PG_PRODUCTION_URL = database.production.url
    }
    const started = Date.now()
    // Source maps: a failed assertion's stack names the TypeScript line.
    const child = spawn(process.execPath, ['--enable-source-maps', bundleOf(file)], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    // uvu prints its totals once every test has run; a process still alive 5 s later holds an
    // open handle (a sandbox a failed test never closed) and would otherwise idle to the timeout.
    let lingering
    const collect = (chunk) => {
      output += chunk
      if (!lingering && /^\s*Duration:/m.test(output)) {
        lingering = setTimeout(() => {
          output += `\n[run] ${file} printed its totals but did not exit within 5 s (an open handle) and was killed\n`
          child.kill('SIGKILL')
        }, 5000)
      }
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const timer = setTimeout(() => {
      output += `\n[run] ${file} exceeded ${FILE_TIMEOUT_MS / 1000}s and was killed\n`
      child.kill('SIGKILL')
    }, FILE_TIMEOUT_MS)
    child.on('close', (code) => {
      clearTimeout(timer)
      clearTimeout(lingering)
      const total = [...output.matchAll(/^\s*Total:\s+(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
      const passed = [...output.matchAll(/^\s*Passed:\s+(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
      let failed = total - passed
      if ((code !== 0 || total === 0) && failed === 0) failed = 1
      resolve({ file, output, passed, failed, ms: Date.now() - started })
    })
  })
}

const queue = [...files]
let passed = 0
let failed = 0
const failures = []
const times = {}
await Promise.all(
  Array.from({ length: workers }, async (_, worker) => {
    while (queue.length) {
      const file = queue.shift()
      const result = await runFile(file, worker)
      process.stdout.write(`\n# ${file} (${(result.ms / 1000).toFixed(1)}s)\n${result.output.trimEnd()}\n`)
      passed += result.passed
      failed += result.failed
      times[file] = result.ms
      if (result.failed) failures.push(file)
    }
  }),
)
await Promise.all(databases.map(async (db) => (await db?.catch(() => undefined))?.stop()))

// The per-file times: printed (slowest first) and kept for the next run's order; TEST_TIMINGS=FILE
// also writes them as JSON (make bench puts them in bench/results.md).
const slowest = Object.entries(times).sort(([, a], [, b]) => b - a)
console.log(`\n${files.length} files in ${((Date.now() - runStarted) / 1000).toFixed(1)} s, ${workers} at a time`)
console.log(`\nper file (s): ${slowest.map(([file, ms]) => `${file.replace(/^test\//, '')} ${(ms / 1000).toFixed(1)}`).join(', ')}`)
try {
  mkdirSync('node_modules/.cache', { recursive: true })
  writeFileSync(TIMES, JSON.stringify({ ...lastTimes, ...times }))
} catch {
  // the order is only an optimisation
}
if (process.env.TEST_TIMINGS) writeFileSync(process.env.TEST_TIMINGS, JSON.stringify(times, null, 1))
// A whole run (make test) is kept for make bench, which writes it into bench/results.md.
if (patterns.length === 0) {
  try {
    writeFileSync(LAST_RUN, JSON.stringify({ at: new Date().toISOString(), wallMs: Date.now() - runStarted, workers, cpus: cpus().length, node: process.version, passed, failed, files: times }))
  } catch {
    // only a record
  }
}
if (failures.length) console.log(`\nfailed files:\n${failures.map((f) => `  ${f}`).join('\n')}`)
if (passed + failed === 0) {
  console.log('no test ran')
  failed = 1
}
console.log(`${passed} passed, ${failed} failed`)
process.exitCode = failed > 0 || passed === 0 ? 1 : 0
