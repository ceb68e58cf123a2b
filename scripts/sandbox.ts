// `make sandbox` / `make sandbox-stop`: a local sandbox that stays up between commands, to practise
// every target as on Fly: the Fly simulator, Fly Proxy and the staging and production databases
// (embedded PostgreSQL), in one background process. `make sandbox` prints the export lines that
// point every target at it (eval "$(make -s sandbox)"); run again, it prints them again.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PLACEHOLDER_DATABASE_URLS, REPO, sandboxEnvFiles, writeEnvDir } from './sandbox/files.ts'
import { startRehearsal } from './sandbox/rehearsal.ts'

// SANDBOX_DIR: another place for it (the default is .sandbox/ in the toolkit's folder, git-ignored).
const HOME = process.env.SANDBOX_DIR || join(REPO, '.sandbox')
const PID = join(HOME, 'sandbox.pid')
const EXPORTS = join(HOME, 'exports.sh')
const LOG = join(HOME, 'sandbox.log')
const say = (line: string) => process.stderr.write(`${line}\n`)

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function running(): number | undefined {
  const pid = existsSync(PID) ? Number(readFileSync(PID, 'utf8')) : NaN
  return Number.isInteger(pid) && alive(pid) ? pid : undefined
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The background process: everything the sandbox serves, until SIGTERM. */
async function serve(): Promise<void> {
  // flyctl's waits (5 minutes for health checks) pass in about 6 s here.
  const rehearsal = await startRehearsal({ timeScale: 0.02 }, { stateDir: join(HOME, 'fly') })
  // As an operator starts: the env files as copied from the .env.example files and filled in, their
  // DATABASE_URL still the placeholder that `make create-apps-<env> DB=1` replaces.
  const envDir = join(HOME, 'env')
  if (!existsSync(envDir)) writeEnvDir(sandboxEnvFiles(PLACEHOLDER_DATABASE_URLS, 'practice'), envDir)
  const exports = { ...rehearsal.sandbox.connection, ENV_DIR: envDir, HEALTH_TIMEOUT: '15', ALLOW_DIRTY: '1' }
  writeFileSync(EXPORTS, Object.entries(exports).map(([k, v]) => `export ${k}='${v}'`).join('\n') + '\n')
  writeFileSync(PID, `${process.pid}\n`)
  const stop = async () => {
    await rehearsal.stop()
    rmSync(PID, { force: true })
    process.exit(0)
  }
  process.on('SIGTERM', stop).on('SIGINT', stop)
}

async function start(): Promise<void> {
  if (!running()) {
    rmSync(EXPORTS, { force: true })
    mkdirSync(HOME, { recursive: true })
    const log = openSync(LOG, 'a')
    spawn(process.execPath, [process.argv[1], 'serve'], { detached: true, stdio: ['ignore', log, log], cwd: REPO }).unref()
    for (let waited = 0; !existsSync(EXPORTS); waited += 100) {
      if (waited > 60_000) throw new Error(`the sandbox did not start within 60 s: see ${LOG}`)
      await sleep(100)
    }
    say(`sandbox started (pid ${running()}): Fly simulator, Fly Proxy, staging and production PostgreSQL`)
  } else say(`the sandbox is running (pid ${running()})`)
  process.stdout.write(readFileSync(EXPORTS, 'utf8'))
  say('point this shell at it:  eval "$(make -s sandbox)"     practise a failure:  FLY_SIM_FAULT=unhealthy:web-admin REBUILD=1')
  say('start with:  make create-apps-staging DB=1 && make set-secrets-staging && make deploy-staging   end:  make sandbox-stop')
}

async function stop(): Promise<void> {
  const pid = running()
  if (pid) {
    process.kill(pid, 'SIGTERM')
    for (let waited = 0; alive(pid); waited += 100) {
      if (waited > 20_000) process.kill(pid, 'SIGKILL')
      await sleep(100)
    }
  }
  rmSync(HOME, { recursive: true, force: true })
  say(pid ? `sandbox stopped (pid ${pid}); its state is gone` : 'no sandbox was running')
}

const mode = process.argv[2] ?? 'start'
if (mode === 'serve') await serve()
else if (mode === 'stop') await stop()
else if (mode === 'start') await start()
else {
  say(`error: unknown mode ${mode}: use start, stop`)
  process.exitCode = 2
}
