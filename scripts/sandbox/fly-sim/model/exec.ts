// A command run inside a machine of an image: the release command's temporary machine
// (machines_releasecommand.go: init.cmd split shell-style, no shell) and `ssh console -C`
// (hallpass: shell-words, no shell). Neither has `&&`, `cd` or `$VAR` unless the command is
// `sh -c '…'`; then the simulator understands the scripts the toolkit needs:
// `cd DIR && npx prisma migrate deploy` and `… migrate resolve --applied|--rolled-back NAME`.
import { existsSync } from 'node:fs'
import { join, posix } from 'node:path'
import { KILLED, datasourceUrl, killableWait, migrateDeploy, migrateResolve, prismaProject, type StandinResult } from '../prisma-standin.ts'
import { resolveBackend } from './network.ts'
import type { Sandbox, SimImage, SimState } from '../state.ts'

/** hallpass / shlex: words with quotes and backslashes, no shell. */
export function shellWords(command: string): string[] {
  const words: string[] = []
  let current = ''
  let quote: string | null = null
  let has = false
  for (let i = 0; i < command.length; i++) {
    const c = command[i]
    if (quote) {
      if (c === quote) quote = null
      else if (c === '\\' && quote === '"' && i + 1 < command.length) current += command[++i]
      else current += c
    } else if (c === "'" || c === '"') {
      quote = c
      has = true
    } else if (c === '\\' && i + 1 < command.length) {
      current += command[++i]
      has = true
    } else if (/\s/.test(c)) {
      if (has || current) words.push(current)
      current = ''
      has = false
    } else current += c
  }
  if (has || current) words.push(current)
  return words
}

export interface ExecContext {
  state: SimState
  sandbox: Sandbox
  image: SimImage | undefined
  env: Record<string, string>
  slowMs?: number
  /** Aborted when the machine is destroyed with kill=true: the command dies where it is. */
  signal?: AbortSignal
}

/** Remote processes a session left behind go on until they end, or until their simulator closes:
 * its machines go with it, and a sleeping remote process must not keep a finished test alive. */
const machinesOn = new Map<string, AbortController>()

export function machinesPower(stateDir: string): AbortSignal {
  let power = machinesOn.get(stateDir)
  if (!power) machinesOn.set(stateDir, (power = new AbortController()))
  return power.signal
}

export function powerOffMachines(stateDir: string): void {
  machinesOn.get(stateDir)?.abort()
  machinesOn.delete(stateDir)
}

const notFound = (word: string): StandinResult => ({ status: 127, stdout: '', stderr: `exec: "${word}": executable file not found in $PATH\n` })

async function prisma(ctx: ExecContext, cwd: string, args: string[]): Promise<StandinResult> {
  if (!ctx.image) return notFound('npx')
  const root = join(ctx.image.fsDir, cwd)
  const project = prismaProject(root)
  if (!existsSync(join(root, 'prisma.config.ts')) && !existsSync(project.schemaPath)) {
    return { status: 1, stdout: '', stderr: 'Error: Could not find Prisma Schema that is required for this command.\nYou can either provide it with `--schema` argument, set it in your Prisma Config file, or put it into the default location (`./prisma/schema.prisma`, `./schema.prisma`.\n' }
  }
  const url = datasourceUrl(root, ctx.env)
  if (!url) return { status: 1, stdout: '', stderr: 'Error: Failed to load config file "/app/prisma.config.ts" as a TypeScript/JavaScript module. Error: PrismaConfigEnvError: Cannot resolve environment variable: DATABASE_URL.\n' }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { status: 1, stdout: '', stderr: 'Error: P1013: The provided database string is invalid.\n' }
  }
  const shownHost = `${parsed.hostname}:${parsed.port || 5432}`
  const backend = resolveBackend(ctx.state, ctx.sandbox, parsed.hostname.replace(/^\[|\]$/g, ''), Number(parsed.port || 5432))
  if ('error' in backend) return { status: 1, stdout: '', stderr: `Error: P1001: Can't reach database server at \`${shownHost}\`\n\nPlease make sure your database server is running at \`${shownHost}\`.\n` }
  const connection = { ...backend, user: decodeURIComponent(parsed.username) || undefined, password: decodeURIComponent(parsed.password) || undefined, database: decodeURIComponent(parsed.pathname.slice(1)) || 'postgres' }
  if (args[0] === 'migrate' && args[1] === 'deploy') return migrateDeploy(project, connection, shownHost, { slowMs: ctx.slowMs, signal: ctx.signal })
  if (args[0] === 'migrate' && args[1] === 'resolve' && (args[2] === '--applied' || args[2] === '--rolled-back') && args[3]) {
    return migrateResolve(project, connection, shownHost, args[2] === '--applied' ? 'applied' : 'rolled-back', args[3])
  }
  return { status: 1, stdout: '', stderr: `! Unknown or unsupported command \`${args.join(' ')}\` (simulated Prisma CLI)\n` }
}

/** Runs one command line as Fly would: words, no shell unless `sh -c`. */
export async function runCommand(ctx: ExecContext, words: string[], cwd = '/'): Promise<StandinResult> {
  if (!words.length) return notFound('')
  if ((words[0] === 'sh' || words[0] === '/bin/sh' || words[0] === 'bash') && words[1] === '-c') return runScript(ctx, words[2] ?? '', cwd)
  if (words[0] === 'npx' && words[1] === 'prisma') return prisma(ctx, cwd, words.slice(2))
  if (words[0] === 'prisma' || words[0] === './node_modules/.bin/prisma') return prisma(ctx, cwd, words.slice(1))
  if (words[0] === 'true') return { status: 0, stdout: '', stderr: '' }
  if (words[0] === 'false') return { status: 1, stdout: '', stderr: '' }
  // coreutils printenv NAME…: each value set, on its own line; exit 1 when one is not set.
  if (words[0] === 'printenv' && words.length > 1) {
    const values = words.slice(1).map((name) => ctx.env[name])
    return { status: values.every((v) => v !== undefined) ? 0 : 1, stdout: values.filter((v) => v !== undefined).map((v) => `${v}\n`).join(''), stderr: '' }
  }
  if (words[0] === 'echo') return { status: 0, stdout: `${words.slice(1).join(' ')}\n`, stderr: '' }
  // coreutils sleep (every image has it): a long-running remote command for session tests.
  if (words[0] === 'sleep' && /^\d+(\.\d+)?$/.test(words[1] ?? '')) {
    const killed = await killableWait(Number(words[1]) * 1000, ctx.signal)
    return { status: killed ? KILLED : 0, stdout: '', stderr: '' }
  }
  return notFound(words[0])
}

/** A line of the simulated login shell (ssh console without -C): run as `sh -c` would, with the
 * working directory it leaves behind for the next line; `exit [N]` ends the shell. */
export async function runShellLine(ctx: ExecContext, line: string, cwd: string): Promise<StandinResult & { cwd: string; exit?: boolean }> {
  return runScript(ctx, line, cwd)
}

/** The few shell scripts the simulator understands: commands joined by `&&`, `cd` and `exit [N]`
 * included. */
async function runScript(ctx: ExecContext, script: string, cwd: string): Promise<StandinResult & { cwd: string; exit?: boolean }> {
  let dir = cwd
  let stdout = ''
  let stderr = ''
  for (const part of script.split('&&').map((p) => p.trim())) {
    if (ctx.signal?.aborted) return { status: KILLED, stdout, stderr, cwd: dir }
    const words = shellWords(part)
    if (words[0] === 'cd') {
      const target = posix.resolve(dir, words[1] ?? '/root')
      if (ctx.image && !existsSync(join(ctx.image.fsDir, target))) return { status: 2, stdout, stderr: `${stderr}sh: 1: cd: can't cd to ${words[1]}\n`, cwd: dir }
      dir = target
      continue
    }
    if (words[0] === 'exit' && (words.length === 1 || (words.length === 2 && /^\d+$/.test(words[1])))) {
      return { status: words[1] === undefined ? 0 : Number(words[1]) % 256, stdout, stderr, cwd: dir, exit: true }
    }
    if (/[|;><`$]/.test(part)) return { status: 2, stdout, stderr: `${stderr}sh: 1: the simulated shell does not support: ${part}\n`, cwd: dir }
    const result = await runCommand(ctx, words, dir)
    stdout += result.stdout
    stderr += result.stderr
    if (result.status !== 0) {
      const status = result.status === 127 ? 127 : result.status
      return { status, stdout, stderr: result.status === 127 ? `${stderr.replace(/exec: "([^"]*)": executable file not found in \$PATH\n$/, 'sh: 1: $1: not found\n')}` : stderr, cwd: dir }
    }
  }
  return { status: 0, stdout, stderr, cwd: dir }
}
