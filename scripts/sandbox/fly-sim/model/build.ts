// A remote build as flyctl starts it (fly-platform.md §7; flyctl internal/command/deploy/
// deploy_build.go resolveDockerfilePath, internal/build/imgsrc/depot.go, dockerfile_builder.go):
// the build context is the working directory; the Dockerfile comes from fly.toml [build]
// (relative to the fly.toml's folder), else --dockerfile, else <context>/Dockerfile; on Depot
// (the default builder) BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile, else
// <context>/.dockerignore. Every file not ignored is uploaded. Then the simulator plays BuildKit
// as far as it can without running anything: each COPY/ADD source must exist in what was
// uploaded (else BuildKit's "not found"), and the final stage's files that came from the context
// (directly, or through a COPY --from of a stage that copied them from the context) are
// materialised as the image's files. RUN steps cannot be followed.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, posix, relative, resolve } from 'node:path'
import { createRequire } from 'node:module'
import { DockerfileParser, type Instruction } from 'dockerfile-ast'
import { FlyError, out } from '../cli.ts'
import { hex } from './fleet.ts'

// A CommonJS module whose typings declare an ES default export: load it as CommonJS.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default
import type { AppConfig } from './flytoml.ts'
import type { SimImage } from '../state.ts'

export interface BuildInput {
  /** The working directory: the build context. */
  context: string
  configPath: string
  config: AppConfig
  dockerfileFlag?: string
  ignorefileFlag?: string
  buildArgs: Record<string, string>
  /** `depot` (flyctl's default) or `docker` (remote builder / local daemon): they read ignore files differently. */
  builder: 'depot' | 'docker'
  imageDir: string
}

export interface BuildResult {
  dockerfile: string
  ignorefile?: string
  uploaded: string[]
  fsDir: string
  entrypoint?: string[]
  cmd?: string[]
  /** The Dockerfile's instructions, as BuildKit's progress names its steps (`RUN pnpm install`). */
  steps: string[]
}

function buildError(message: string): FlyError {
  return new FlyError(`failed to fetch an image or build from source: error building: failed to solve: ${message}`)
}

function resolveDockerfile(input: BuildInput): string {
  const fromConfig = input.config.build.dockerfile
  const candidates = [join(input.context, 'Dockerfile'), join(input.context, 'dockerfile')]
  if (fromConfig) {
    const path = resolve(dirname(input.configPath), fromConfig)
    const local = candidates.find((c) => existsSync(c))
    // deploy_build.go multipleDockerfile → terminal.Warnf: stdout, and that logger always keeps ANSI.
    if (local && local !== path) out(`\x1b[33mWARN\x1b[0m ignoring ${local}, and using ${path} (from ${input.configPath})\n`)
    if (!existsSync(path)) throw new FlyError(`dockerfile '${path}' not found`)
    return path
  }
  if (input.dockerfileFlag) {
    const path = resolve(input.context, input.dockerfileFlag)
    if (!existsSync(path)) throw new FlyError(`dockerfile '${path}' not found`)
    return path
  }
  const found = candidates.find((c) => existsSync(c))
  if (!found) throw new FlyError('app does not have a Dockerfile or buildpacks configured. See https://fly.io/docs/reference/configuration/#the-build-section')
  return found
}

function resolveIgnorefile(input: BuildInput, dockerfile: string): string | undefined {
  if (input.builder === 'depot') {
    const beside = `${dockerfile}.dockerignore`
    if (existsSync(beside)) return beside
    const root = join(input.context, '.dockerignore')
    return existsSync(root) ? root : undefined
  }
  if (input.config.build.ignorefile) return resolve(dirname(input.configPath), input.config.build.ignorefile)
  if (input.ignorefileFlag) return resolve(input.context, input.ignorefileFlag)
  const root = join(input.context, '.dockerignore')
  return existsSync(root) ? root : undefined
}

/** Next to an image's files (`fsDir`): every path of its build context that was uploaded. */
const contextList = (fsDir: string) => join(dirname(fsDir), 'context.txt')

/** Every path of the build context that was uploaded to the builder for this image. */
export function uploadedPaths(image: Pick<SimImage, 'fsDir'>): string[] {
  return readFileSync(contextList(image.fsDir), 'utf8').split('\n').filter(Boolean)
}

/** Every file of the context that is sent, as context-relative POSIX paths. */
function contextFiles(context: string, ignored: (path: string) => boolean): string[] {
  const files: string[] = []
  // Entry types come with the listing (no lstat per file); a symlink is a file, as lstat says.
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, entry.name)
      const rel = relative(context, abs).split('\\').join('/')
      if (ignored(rel)) {
        // A pattern may re-include something below an ignored folder (`!`); only descend then.
        if (entry.isDirectory() && !ignored(`${rel}/`)) walk(abs)
        continue
      }
      if (entry.isDirectory()) walk(abs)
      else files.push(rel)
      if (files.length > 300_000) throw new FlyError('build context is too large (over 300000 files): add a .dockerignore')
    }
  }
  walk(context)
  return files
}

/** ${VAR}, $VAR, ${VAR:-default}, ${VAR:+alt}: Dockerfile variable substitution. */
function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)/g, (_, braced, op, word, bare) => {
    const name = braced ?? bare
    const value = vars[name]
    if (op === '-') return value ? value : word
    if (op === '+') return value ? word : ''
    return value ?? ''
  })
}

const isGlob = (p: string) => /[*?[]/.test(p)
function globToRegExp(pattern: string): RegExp {
  let re = ''
  for (const c of pattern) re += c === '*' ? '[^/]*' : c === '?' ? '[^/]' : /[.+^${}()|\\]/.test(c) ? `\\${c}` : c
  return new RegExp(`^${re}$`)
}

function argsOf(instruction: Instruction, vars: Record<string, string>): { flags: Record<string, string>; args: string[] } {
  const flags: Record<string, string> = {}
  for (const flag of (instruction as unknown as { getFlags?: () => { getName(): string; getValue(): string | null }[] }).getFlags?.() ?? []) flags[flag.getName()] = flag.getValue() ?? ''
  const raw = instruction.getArgumentsContent() ?? ''
  const jsonForm = raw.replace(/^(--\S+\s+)*/, '').trim()
  let args: string[]
  if (jsonForm.startsWith('[')) {
    try {
      args = JSON.parse(jsonForm) as string[]
    } catch {
      args = instruction.getArguments().map((a) => a.getValue())
    }
  } else args = instruction.getArguments().map((a) => a.getValue())
  return { flags, args: args.map((a) => substitute(a, vars)) }
}

export function build(input: BuildInput): BuildResult {
  const dockerfile = resolveDockerfile(input)
  const ignorefile = resolveIgnorefile(input, dockerfile)
  const matcher = dockerignore({ ignorecase: false })
  if (ignorefile) matcher.add(readFileSync(ignorefile, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')))
  else if (input.builder === 'docker') matcher.add('fly.toml')
  const keep = new Set([relative(input.context, dockerfile), ignorefile ? relative(input.context, ignorefile) : ''].filter((p) => p && !p.startsWith('..')))
  const ignored = (rel: string) => !keep.has(rel.replace(/\/$/, '')) && matcher.ignores(rel)
  const uploaded = contextFiles(input.context, ignored)
  const sent = new Set(uploaded)
  const dirs = new Set(uploaded.flatMap((f) => f.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))

  const parsed = DockerfileParser.parse(readFileSync(dockerfile, 'utf8'))
  // Per stage: image path → the context file it came from (what the simulator can trace).
  const stages: { name?: string; workdir: string; vars: Record<string, string>; files: Map<string, string>; entrypoint?: string[]; cmd?: string[] }[] = []
  const globalArgs: Record<string, string> = {}
  const steps: string[] = []
  for (const instruction of parsed.getInstructions()) {
    const keyword = instruction.getKeyword()
    steps.push(`${keyword} ${(instruction.getArgumentsContent() ?? '').replace(/\s+/g, ' ').trim()}`)
    const stage = stages.at(-1)
    const vars = stage ? stage.vars : globalArgs
    if (keyword === 'ARG') {
      for (const arg of instruction.getArguments().map((a) => a.getValue())) {
        const [name, ...rest] = arg.split('=')
        const fallback = rest.length ? substitute(rest.join('='), vars) : stage ? globalArgs[name] : undefined
        const value = input.buildArgs[name] ?? fallback
        if (value !== undefined) vars[name] = value
      }
      continue
    }
    if (keyword === 'FROM') {
      const { args } = argsOf(instruction, globalArgs)
      const from = args[0]
      const parent = stages.find((s) => s.name && s.name === from)
      stages.push({ name: args[1]?.toUpperCase() === 'AS' ? args[2] : undefined, workdir: parent?.workdir ?? '/', vars: {}, files: new Map(parent?.files ?? []) })
      continue
    }
    if (!stage) continue
    if (keyword === 'ENV') {
      const text = instruction.getArgumentsContent() ?? ''
      for (const [, k, v] of text.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.vars[k] = substitute(v.replace(/^"|"$/g, ''), stage.vars)
      continue
    }
    if (keyword === 'WORKDIR') {
      stage.workdir = posix.resolve(stage.workdir, argsOf(instruction, stage.vars).args[0] ?? '/')
      continue
    }
    if (keyword === 'ENTRYPOINT' || keyword === 'CMD') {
      const { args } = argsOf(instruction, stage.vars)
      const raw = (instruction.getArgumentsContent() ?? '').trim()
      const value = raw.startsWith('[') ? args : ['/bin/sh', '-c', raw]
      if (keyword === 'ENTRYPOINT') stage.entrypoint = value
      else stage.cmd = value
      continue
    }
    if (keyword !== 'COPY' && keyword !== 'ADD') continue
    const { flags, args } = argsOf(instruction, stage.vars)
    if (args.length < 2) throw buildError(`dockerfile parse error: ${keyword} requires at least two arguments`)
    const destRaw = args.at(-1)!
    const sources = args.slice(0, -1)
    const dest = posix.resolve(stage.workdir, destRaw)
    const intoDir = destRaw.endsWith('/') || sources.length > 1 || sources.some(isGlob)
    if (flags.from !== undefined) {
      const from = stages.find((s) => s.name === flags.from) ?? stages[Number(flags.from)]
      for (const src of sources) {
        const root = posix.resolve('/', src)
        for (const [path, origin] of from?.files ?? []) {
          if (path !== root && !path.startsWith(`${root}/`)) continue
          const under = path === root ? posix.basename(path) : posix.relative(root, path)
          const target = path === root ? (intoDir ? posix.join(dest, under) : dest) : posix.join(intoDir && sources.length > 1 ? posix.join(dest, posix.basename(root)) : dest, under)
          stage.files.set(target, origin)
        }
      }
      continue
    }
    for (const src of sources) {
      const clean = posix.normalize(src.replace(/^\/+/, '')).replace(/\/$/, '') || '.'
      if (clean.startsWith('..')) throw buildError(`failed to compute cache key: "${src}": forbidden path outside the build context`)
      const matches = isGlob(clean) ? uploaded.filter((f) => globToRegExp(clean).test(f)) : sent.has(clean) ? [clean] : dirs.has(clean) || clean === '.' ? [clean] : []
      if (!matches.length) throw buildError(`failed to compute cache key: failed to calculate checksum of ref ${hex(16)}::${hex(12)}: "/${clean}": not found`)
      for (const match of matches) {
        if (sent.has(match)) stage.files.set(intoDir ? posix.join(dest, posix.basename(match)) : dest, match)
        else for (const f of uploaded) if (match === '.' || f.startsWith(`${match}/`)) stage.files.set(posix.join(dest, match === '.' ? f : f.slice(match.length + 1)), f)
      }
    }
  }
  const final = stages.at(-1)
  if (!final) throw buildError('dockerfile parse error: no FROM instruction')

  // Materialise the final stage's traceable files.
  const fsDir = join(input.imageDir, 'fs')
  mkdirSync(fsDir, { recursive: true })
  writeFileSync(contextList(fsDir), uploaded.map((f) => `${f}\n`).join(''))
  for (const [path, origin] of final.files) {
    const to = join(fsDir, path)
    mkdirSync(dirname(to), { recursive: true })
    cpSync(join(input.context, origin), to)
  }
  return { dockerfile, ignorefile, uploaded, fsDir, entrypoint: final.entrypoint, cmd: final.cmd, steps }
}
