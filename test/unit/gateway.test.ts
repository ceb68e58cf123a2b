import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { posix } from 'node:path'
import { DockerfileParser } from 'dockerfile-ast'
import { parse as parseYaml } from 'yaml'
import { loadGateway } from '../../scripts/sandbox/gateway.ts'

// Issue 12: one image per app for every environment. The public API's Kong configuration is rendered
// from the environment when the container starts (the real renderer runs here, under sh), and the
// Dockerfiles build the pnpm workspace from what the build context really sends.

const WORKSPACE = 'examples/microbima'
const RENDERER = `${WORKSPACE}/apps/public-api/docker-entrypoint.sh`
const TEMPLATE = `${WORKSPACE}/apps/public-api/kong.yml.template`

// What the deploy passes (flyctl --build-arg), per app, in this repository.
const IMAGES = {
  'internal-api': { WORKSPACE, APP_DIR: 'apps/api', APP_PACKAGE: '@microbima/api' },
  'public-api': { WORKSPACE, APP_DIR: 'apps/public-api', APP_PACKAGE: '@microbima/public-api' },
  'web-admin': { WORKSPACE, APP_DIR: 'apps/web-admin', APP_PACKAGE: '@microbima/web-admin' },
} as const
const dockerfile = (app: string) => `infra/docker/${app}.Dockerfile`

// Docker's own .dockerignore semantics. Loaded with require: the package's types declare an ES default
// export, but the CommonJS module exports the function itself.
const ignore: typeof import('@balena/dockerignore').default = createRequire(import.meta.url)('@balena/dockerignore')

const STAGING = { KONG_UPSTREAM_URL: 'http://microbima-staging-internal-api.flycast', KONG_PARTNER_API_KEY: 'stg-partner-7f3a' }
const PRODUCTION = {
  KONG_UPSTREAM_URL: 'http://microbima-production-internal-api.flycast',
  KONG_PARTNER_API_KEY: 'prd-partner-91c2',
  KONG_PARTNER_KEYS: 'prd-partner-second, prd-partner-third',
}

function render(env: Record<string, string>) {
  // Only the given settings: a KONG_* variable of the caller must not leak into the render.
  const r = spawnSync('sh', [RENDERER, 'render'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function gatewayFor(env: Record<string, string>) {
  const r = render(env)
  assert.is(r.status, 0, r.stderr)
  return loadGateway(r.stdout)
}

const get = (path: string, headers: Record<string, string> = {}) => ({ method: 'GET', path, headers })

test('each environment renders its own upstream from the same template', () => {
  const staging = gatewayFor(STAGING).handle(get('/v1/whoami', { 'x-api-key': STAGING.KONG_PARTNER_API_KEY }))
  const production = gatewayFor(PRODUCTION).handle(get('/v1/whoami', { 'x-api-key': PRODUCTION.KONG_PARTNER_API_KEY }))
  assert.is(staging.upstream?.url, 'http://microbima-staging-internal-api.flycast/v1/whoami')
  assert.is(production.upstream?.url, 'http://microbima-production-internal-api.flycast/v1/whoami')
  const stagingYaml = render(STAGING).stdout
  assert.not.match(stagingYaml, 'production')
  assert.not.match(render(PRODUCTION).stdout, 'staging')
  assert.not.match(stagingYaml, '{{')
})

test("a key opens only its own environment's gateway, and never reaches the internal API", () => {
  const staging = gatewayFor(STAGING)
  const production = gatewayFor(PRODUCTION)
  const invalid = JSON.stringify({ message: 'Invalid authentication credentials' })
  const ok = production.handle(get('/v1/policies?page=2', { 'X-API-Key': PRODUCTION.KONG_PARTNER_API_KEY, accept: 'application/json' }))
  assert.is(ok.consumer, 'partner-1')
  assert.is(ok.upstream?.path, '/v1/policies')
  assert.is(ok.upstream?.url, 'http://microbima-production-internal-api.flycast/v1/policies?page=2')
  assert.is(ok.upstream?.headers['x-api-key'], undefined, 'hide_credentials')
  assert.is(ok.upstream?.headers.accept, 'application/json')
  assert.is(staging.handle(get('/v1/policies', { 'x-api-key': PRODUCTION.KONG_PARTNER_API_KEY })).status, 401)
  assert.is(staging.handle(get('/v1/policies', { 'x-api-key': PRODUCTION.KONG_PARTNER_API_KEY })).body, invalid)
  assert.is(staging.handle(get('/v1/policies', { 'x-api-key': STAGING.KONG_PARTNER_API_KEY })).consumer, 'partner-1')
  assert.is(production.handle(get('/v1/policies', { 'x-api-key': STAGING.KONG_PARTNER_API_KEY })).body, invalid)
  // KONG_PARTNER_KEYS adds consumers; blanks around the commas are not part of a key.
  assert.is(production.handle(get('/v1/x', { 'x-api-key': 'prd-partner-third' })).consumer, 'partner-3')
  // Keys in the query string would be logged: the gateway does not take them.
  assert.is(production.handle(get(`/v1/x?x-api-key=${PRODUCTION.KONG_PARTNER_API_KEY}`)).status, 401)
})

test('without a key: 401; /health is answered by Kong; /internal-health reaches the API without one', () => {
  for (const env of [STAGING, PRODUCTION]) {
    const gateway = gatewayFor(env)
    const missing = gateway.handle(get('/v1/whoami'))
    assert.is(missing.status, 401)
    assert.is(missing.body, JSON.stringify({ message: 'No API key found in request' }))
    assert.is(missing.upstream, undefined)
    const health = gateway.handle(get('/health'))
    assert.equal([health.status, health.body, health.upstream], [200, '{"status":"ok"}', undefined])
    const probe = gateway.handle(get('/internal-health'))
    assert.is(probe.upstream?.url, `${env.KONG_UPSTREAM_URL}/health`)
    assert.is(probe.upstream?.path, '/health')
    assert.is(gateway.handle(get('/elsewhere')).status, 404)
  }
})

test('keys holding quotes, backslashes, #, colons and spaces survive the YAML whole', () => {
  const key = `it's a "k\\ey": #1 {x}, & more`
  const extra = `two\\\\ 'quoted' # not a comment: really`
  const gateway = gatewayFor({ ...STAGING, KONG_PARTNER_API_KEY: key, KONG_PARTNER_KEYS: extra })
  assert.is(gateway.handle(get('/v1/whoami', { 'x-api-key': key })).consumer, 'partner-1')
  assert.is(gateway.handle(get('/v1/whoami', { 'x-api-key': extra })).consumer, 'partner-2')
  assert.is(gateway.handle(get('/v1/whoami', { 'x-api-key': 'it' })).status, 401)
  const url = `http://api.flycast:8080/it's "odd": #1 \\`
  const services = parseYaml(render({ ...STAGING, KONG_UPSTREAM_URL: url }).stdout).services
  assert.equal(services.slice(0, 2).map((s: { url: string }) => s.url), [url, `${url}/health`])
})

test('the renderer refuses missing or unusable settings with one line and no configuration', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ KONG_PARTNER_API_KEY: 'k' }, /KONG_UPSTREAM_URL/],
    [{ KONG_UPSTREAM_URL: STAGING.KONG_UPSTREAM_URL }, /KONG_PARTNER_API_KEY/],
    [{}, /KONG_UPSTREAM_URL.*KONG_PARTNER_API_KEY/],
    [{ ...STAGING, KONG_PARTNER_API_KEY: '' }, /KONG_PARTNER_API_KEY/],
    [{ ...STAGING, KONG_UPSTREAM_URL: 'microbima-staging-internal-api.flycast' }, /http:\/\//],
    [{ ...STAGING, KONG_PARTNER_KEYS: `x,${STAGING.KONG_PARTNER_API_KEY}` }, /twice/],
    [{ ...STAGING, KONG_PARTNER_API_KEY: 'a\nb' }, /control character/],
  ]
  for (const [env, reason] of cases) {
    const r = render(env)
    assert.is(r.status, 1, JSON.stringify(env))
    assert.is(r.stdout, '')
    assert.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, reason)
  }
})

test('nothing environment-specific is baked into an image', () => {
  for (const path of [...Object.keys(IMAGES).map(dockerfile), TEMPLATE, RENDERER]) {
    const text = readFileSync(path, 'utf8')
    for (const word of [/staging/i, /production/i, /microbima-/i]) assert.not.match(text, word, `${path} names ${word}`)
  }
  for (const app of Object.keys(IMAGES)) {
    const text = readFileSync(dockerfile(app), 'utf8')
    assert.not.match(text, /^\s*(ENV|ARG)\b.*NODE_ENV/m, `${app}: NODE_ENV comes from fly.toml, not the image`)
    assert.not.match(text, /kong\.yml(?!\.template)\S*\s+\//, `${app}: no rendered kong.yml is copied in`)
  }
})

// ---- Dockerfiles against the build context (the repository root) ----

function ignoreRules(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
}
// BuildKit (Depot) reads the Dockerfile's own ignore file; Docker-daemon builders the context's.
const ignoreFiles = (app: string) => [`${dockerfile(app)}.dockerignore`, '.dockerignore']
const matcher = (path: string) => ignore().add(ignoreRules(path))

/** Files the repository has under a path: tracked, or new and not ignored by git. */
function repoFiles(path: string): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', path], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && existsSync(f))
}

interface Source {
  line: number
  raw: string
  path: string
}

/** Every COPY/ADD source taken from the build context, with the deploy's build args expanded. */
function contextSources(app: keyof typeof IMAGES): Source[] {
  const args: Record<string, string> = IMAGES[app]
  const file = DockerfileParser.parse(readFileSync(dockerfile(app), 'utf8'))
  const sources: Source[] = []
  // An ARG is visible only in the stage that (re)declares it after its FROM: track them per stage.
  let declared = new Map<string, string | undefined>()
  for (const instruction of file.getInstructions()) {
    const line = instruction.getRange().start.line
    if (instruction.getKeyword() === 'FROM') declared = new Map()
    if (instruction.getKeyword() === 'ARG') {
      for (const a of instruction.getArguments()) {
        const [name = '', ...value] = a.getValue().split('=')
        declared.set(name, value.length ? value.join('=') : undefined)
      }
      continue
    }
    for (const variable of instruction.getVariables()) {
      const name = variable.getName()
      if (name in args) assert.ok(declared.has(name), `${app} line ${line + 1}: ARG ${name} is not declared in this stage`)
    }
    const keyword = instruction.getKeyword()
    if (keyword !== 'COPY' && keyword !== 'ADD') continue
    const copy = instruction as unknown as { getFlags(): { getName(): string }[]; getArguments(): { getValue(): string }[] }
    if (copy.getFlags().some((f) => f.getName() === 'from')) continue
    const values = copy.getArguments().map((a) => a.getValue())
    for (const raw of values.slice(0, -1)) {
      const expanded = raw.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced: string, bare: string) => {
        const name = braced ?? bare
        assert.ok(declared.has(name), `${app} line ${line + 1}: ${name} is not declared in this stage`)
        return args[name] ?? declared.get(name) ?? ''
      })
      const path = posix.normalize(expanded).replace(/\/+$/, '').replace(/^\.\//, '') || '.'
      sources.push({ line: line + 1, raw, path })
    }
  }
  return sources
}

for (const app of Object.keys(IMAGES) as (keyof typeof IMAGES)[]) {
  test(`${dockerfile(app)}: every COPY source exists in the build context and is sent by both ignore files`, () => {
    const sources = contextSources(app)
    assert.ok(sources.length > 0)
    for (const ignoreFile of ignoreFiles(app)) {
      const rules = matcher(ignoreFile)
      for (const { line, raw, path } of sources) {
        assert.ok(existsSync(path), `line ${line}: ${raw} → ${path} does not exist`)
        if (path !== '.') assert.not.ok(rules.ignores(path), `line ${line}: ${path} is excluded by ${ignoreFile}`)
        const dropped = repoFiles(path).filter((f) => rules.ignores(f))
        assert.equal(dropped, [], `line ${line}: ${ignoreFile} drops files the build needs`)
      }
    }
  })
}

test('internal-api: the final stage copies prisma.config.ts and prisma/ straight from the context', () => {
  const text = readFileSync(dockerfile('internal-api'), 'utf8')
  const finalStage = text.slice(text.lastIndexOf('\nFROM '))
  assert.match(finalStage, 'COPY ${WORKSPACE}/${APP_DIR}/prisma.config.ts ')
  assert.match(finalStage, 'COPY ${WORKSPACE}/${APP_DIR}/prisma ')
  assert.match(finalStage, /^WORKDIR \/app$/m)
  assert.match(finalStage, /^USER node$/m)
  const paths = contextSources('internal-api').map((s) => s.path)
  assert.ok(paths.includes(`${WORKSPACE}/apps/api/prisma.config.ts`))
  assert.ok(paths.includes(`${WORKSPACE}/apps/api/prisma`))
  for (const migration of ['20250101000000_init', '20250115000000_add_customer_beneficiaries', '20250201000000_add_premiums']) {
    assert.ok(existsSync(`${WORKSPACE}/apps/api/prisma/migrations/${migration}/migration.sql`), migration)
  }
})

test('secrets, history and local installs never enter the build context', () => {
  const excluded = [
    '.git',
    '.git/HEAD',
    'env/staging/x.env',
    'env/production/internal-api.env',
    `${WORKSPACE}/.env`,
    `${WORKSPACE}/apps/api/.env`,
    `${WORKSPACE}/apps/api/.env.production`,
    'backups',
    'backups/production-20250101.dump',
    'node_modules',
    'node_modules/prisma/package.json',
    `${WORKSPACE}/node_modules/.pnpm/lock.yaml`,
    `${WORKSPACE}/apps/api/node_modules/.bin/prisma`,
    `${WORKSPACE}/apps/api/dist/main.js`,
    'dist/deploy.cjs',
    '.sandbox/state.json',
    'bench/.runs/1/log.txt',
    'npm-debug.log',
  ]
  const kept = ['env/staging/public-api.env.example', `${WORKSPACE}/apps/api/.env.example`, `${WORKSPACE}/pnpm-lock.yaml`, `${WORKSPACE}/apps/api/prisma/schema.prisma`]
  const files = new Set(Object.keys(IMAGES).flatMap(ignoreFiles))
  for (const file of files) {
    const rules = matcher(file)
    for (const path of excluded) assert.ok(rules.ignores(path), `${file} sends ${path}`)
    for (const path of kept) assert.not.ok(rules.ignores(path), `${file} drops ${path}`)
  }
  // One set of rules whichever builder reads them.
  const [first, ...rest] = [...files].map((f) => JSON.stringify(ignoreRules(f)))
  for (const other of rest) assert.is(other, first)
})

// ---- Real builds, where this machine has a Docker engine ----

const docker = spawnSync('docker', ['info'], { stdio: 'ignore' })
const dockerReason = docker.error ? 'no docker command' : docker.status !== 0 ? '`docker info` failed (no engine reachable)' : ''

test('the three images build from the repository root with the deploy build args', () => {
  if (dockerReason) {
    console.log(`skipped: no Docker engine (${dockerReason}); the build was not run`)
    return
  }
  for (const app of Object.keys(IMAGES) as (keyof typeof IMAGES)[]) {
    const buildArgs = Object.entries(IMAGES[app]).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])
    execFileSync('docker', ['build', '--file', dockerfile(app), ...buildArgs, '--tag', `microbima-test/${app}`, '.'], { stdio: 'inherit', timeout: 15 * 60_000 })
  }
  const rendered = execFileSync('docker', ['run', '--rm', ...Object.entries(STAGING).flatMap(([k, v]) => ['-e', `${k}=${v}`]), 'microbima-test/public-api', 'render'], { encoding: 'utf8' })
  assert.is(loadGateway(rendered).handle(get('/internal-health')).upstream?.url, `${STAGING.KONG_UPSTREAM_URL}/health`)
})

test.run()
