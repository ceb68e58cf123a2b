import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from '../../scripts/sandbox/files.ts'
import { encodeSecret, secretLine } from '../../scripts/lib/secrets/stdin.ts'
import { UserError } from '../../scripts/lib/core/errors.ts'
import { type ParseOutcome, parseSecrets, parseSecretsBytes } from '../../scripts/lib/secrets/flyctl-parser.ts'

const MAX_LINE = 65_535
const x = (n: number) => 'x'.repeat(n)
const invalid = (line: string) => ({ error: `Secrets must be provided as NAME=VALUE pairs (${line} is invalid)` })
const PANIC = 'panic'

type Expected = Record<string, string> | { error: string } | typeof PANIC

function outcome(stdin: string | Buffer): Record<string, string> | { error: string } | typeof PANIC {
  const result: ParseOutcome = parseSecrets(Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin))
  if (result.kind === 'panic') {
    assert.is(result.message, 'runtime error: slice bounds out of range [1:0]')
    return PANIC
  }
  if (result.kind === 'error') return { error: result.message }
  return Object.fromEntries(result.secrets)
}

// Tricky inputs and what flyctl v0.4.87 stores for each, as its own parser answers them.
const TABLE: [stdin: string, expected: Expected][] = [
  ['K=a"b#c\n', { K: 'a"b#c' }],
  ['K="a"b#c"\n', { K: '"a"b' }],
  ['K=tok#en\n', { K: 'tok' }],
  ['K="tok#en"\n', { K: 'tok#en' }],
  ["K='tok#en'\n", { K: "'tok" }],
  ['K=x #y\n', { K: 'x' }],
  ['K=x#y\n', { K: 'x' }],
  ['K=#abc\n', { K: '' }],
  ['K=#\n', { K: '' }],
  ['K="x y" # note\n', { K: 'x y' }],
  ['K="a#b" # note\n', { K: '"a#b" # note' }],
  ['K="a # b" # c\n', { K: '"a # b" # c' }],
  ['K=" # "\n', { K: ' # ' }],
  ['K=ab#c"d #e\n', { K: 'ab' }],
  ['K="a"#"b"\n', { K: 'a' }],
  ['K=value   \n', { K: 'value   ' }],
  ['K="x"   \n', { K: '"x"   ' }],
  ['K=  "q"  \n', { K: '"q"  ' }],
  ['K=   value\n', { K: 'value' }],
  ['K=\tvalue\n', { K: '\tvalue' }],
  ['\tK\t=\tv\n', { K: '\tv' }],
  ['K="a" "b"\n', { K: 'a" "b' }],
  ["K='single'\n", { K: 'single' }],
  ['K=""\n', { K: '' }],
  ['K="\n', PANIC],
  ["K='\n", PANIC],
  ["K=' # note\n", PANIC],
  ['K="""\nline1\n"""\n', { K: '\nline1\n' }],
  ['K=""""\nx"""\n', { K: '"\nx' }],
  ['K=""""""\n', { K: '' }],
  ['K="""abc"""\n', { K: 'abc' }],
  ['K="""  """\n', { K: '  ' }],
  ['K=""""a""""\n', { K: '"a"' }],
  ['K="""multi\nline2\nend"""\n', { K: 'multi\nline2\nend' }],
  ['K="""a\n\n#x\n  y\nb"""\n', { K: 'a\n\n#x\n  y\nb' }],
  ['K="""multi\nline2\n', {}],
  ['K="""a\nb""" # c\n', {}],
  ['K="""x"""y\n', {}],
  ['K="""a"#b\nc"""\n', { K: 'a"\nc' }],
  ['K="""a # b\nc"""\n', { K: 'a # b\nc' }],
  ['K="""first"#x\nsecond"""\n', { K: 'first"\nsecond' }],
  ['K=v1\nK=v2\n', { K: 'v2' }],
  ['K=v\r\nL=w\r\n', { K: 'v', L: 'w' }],
  ['K="""a\r\nb"""\r\n', { K: 'a\nb' }],
  ['K=a\rb\n', { K: 'a\rb' }],
  ['K=a=b\n', { K: 'a=b' }],
  ['=foo\n', { '': 'foo' }],
  ['export FOO=bar\n', { 'export FOO': 'bar' }],
  ['MY KEY=v\n', { 'MY KEY': 'v' }],
  ['\uFEFFK=v\n', { '\uFEFFK': 'v' }],
  ['  # comment\n', invalid('  # comment')],
  ['  # a=b\n', { '# a': 'b' }],
  ['K=abc\nnoequals\n', invalid('noequals')],
  [`K=${x(70_000)}\n`, {}],
  [`A=1\nK=${x(70_000)}\nB=2\n`, { A: '1' }],
  [`A=1\nK="""x\n${x(70_000)}\ny"""\nB=2\n`, { A: '1' }],
  [`A=${x(65_533)}\nB=2\n`, { A: x(65_533), B: '2' }],
  [`A=${x(65_534)}\nB=2\n`, {}],
  [`A=${x(65_532)}\r\nB=2\n`, { A: x(65_532), B: '2' }],
]

test('every tricky input of the table gives what flyctl stores', () => {
  for (const [stdin, expected] of TABLE) {
    const label = JSON.stringify(stdin.length > 60 ? `${stdin.slice(0, 60)}… (${stdin.length} chars)` : stdin)
    assert.equal(outcome(stdin), expected, label)
  }
})

test('the secrets keep the order of their first line, and a later line overwrites in place', () => {
  const result = parseSecrets(Buffer.from('B=1\nA=2\nB=3\n'))
  assert.equal(result.kind === 'ok' && [...result.secrets], [['B', '3'], ['A', '2']])
})

test('keys are trimmed of Unicode whitespace as Go does, byte sequences left as they are', () => {
  assert.equal(outcome('\u00A0K\u3000=v'), { K: 'v' })
  assert.equal(outcome('K\u0085=v'), { K: 'v' })
  assert.equal(outcome('\u200BK=v'), { '\u200BK': 'v' }) // zero-width space is not White_Space
  assert.equal(outcome('\u00A0\n\u3000 \nK=v'), { K: 'v' }) // lines of Unicode whitespace are blank
  const bytes = parseSecretsBytes(Buffer.from([0x4b, 0xc2, 0x3d, 0xff, 0x80]))
  assert.equal(bytes.kind === 'ok' && bytes.secrets.map(([k, v]) => [[...k], [...v]]), [[[0x4b, 0xc2], [0xff, 0x80]]])
})

// Outcomes of flyctl's own parseSecrets on generated inputs (see the file's "about").
interface OracleCase {
  input?: string
  pieces?: [string, number][]
  kind: 'ok' | 'error' | 'panic'
  message?: string
  pairs?: [string, string | { bytes: number; sha256: string }][]
}
const oracle = JSON.parse(readFileSync(join(REPO, 'test/fixtures/secrets-parser-oracle.json'), 'utf8')) as { short: OracleCase[]; long: OracleCase[] }

function asOracle(input: Buffer): OracleCase {
  const result = parseSecretsBytes(input)
  if (result.kind !== 'ok') return { kind: result.kind, message: result.message }
  const digest = (value: Buffer) => (value.length < 100 ? value.toString('base64') : { bytes: value.length, sha256: createHash('sha256').update(value).digest('hex') })
  const pairs = [...result.secrets].sort(([a], [b]) => Buffer.compare(a, b)).map(([k, v]) => [k.toString('base64'), digest(v)] as [string, string | { bytes: number; sha256: string }])
  return { kind: 'ok', pairs }
}

test("the port agrees with flyctl's own parser on every recorded input", () => {
  assert.ok(oracle.short.length >= 1000 && oracle.long.length >= 50)
  for (const { input, pieces, ...expected } of [...oracle.short, ...oracle.long]) {
    const bytes = input !== undefined ? Buffer.from(input, 'base64') : Buffer.concat(pieces!.map(([text, n]) => Buffer.from(text.repeat(n))))
    const want = expected.kind === 'ok' ? { kind: 'ok', pairs: expected.pairs ?? [] } : expected
    assert.equal(asOracle(bytes), want, input ?? JSON.stringify(pieces!.map(([text, n]) => [text.slice(0, 12), n])))
  }
})

// ── the encoder ──────────────────────────────────────────────────────────────────────────────

function storedBy(line: string): Record<string, string> | { error: string } | typeof PANIC {
  return outcome(Buffer.from(line + '\n'))
}

test('the interface examples are encoded so that flyctl stores them exactly', () => {
  assert.equal(encodeSecret('K', 'a"b#c'), { line: `K='a"b#c'` })
  assert.equal(encodeSecret('K', 'tok#en'), { line: 'K="""tok#en"""' })
  assert.equal(encodeSecret('K', 'x #y'), { line: 'K="""x #y"""' })
  assert.equal(encodeSecret('K', '"'), { line: `K='"'` })
  assert.equal(encodeSecret('K', "'"), { line: "K='''" })
  assert.equal(encodeSecret('K', 'pa"ss\\word'), { line: `K='pa"ss\\word'` })
  assert.equal(encodeSecret('K', 'one\ntwo'), { line: 'K="""one\ntwo"""' })
  for (const value of ['a"b#c', 'tok#en', 'x #y', '"', "'", '', ' lead', 'trail ', '""x', '"""', '#', 'one\ntwo', 'a\r\nb\r\n', 'end\r']) {
    const encoded = encodeSecret('K', value)
    assert.ok('line' in encoded, JSON.stringify(value))
    if ('line' in encoded) assert.equal(storedBy(encoded.line), { K: value }, JSON.stringify(value))
  }
})

test('a carriage return that ends a line of the value gets one more, which flyctl drops', () => {
  assert.equal(encodeSecret('K', 'a\r\nb'), { line: 'K="""a\r\r\nb"""' })
  assert.equal(encodeSecret('K', 'a\n\r\nb'), { line: 'K="""a\n\r\r\nb"""' })
  assert.equal(storedBy('K="""a\r\r\nb"""'), { K: 'a\r\nb' })
})

test('a value no stdin line can carry is refused with the reason, never the value', () => {
  const refusals: [string, string][] = [
    [x(70_000), 'is 70000 bytes long; flyctl secrets import silently drops any line of 64 KiB or more'],
    ['"#\nsecond', "spans several lines and its first line has a '#' after an odd number of '\"'"],
    ['first"""\nsecond', 'spans several lines and its first line ends with """'],
    ['a\nb"""\nc', 'spans several lines and its line 2 ends with """'],
    [`a\n${x(MAX_LINE + 1)}\nc`, `spans several lines and its line 2 is ${MAX_LINE + 1} bytes long; flyctl secrets import silently drops any line of 64 KiB or more`],
    ['\uD800', 'is not valid Unicode text'],
  ]
  for (const [value, problem] of refusals) {
    const encoded = encodeSecret('SESSION_SECRET', value)
    assert.ok('problem' in encoded && encoded.problem.startsWith(problem), `${JSON.stringify(value.slice(0, 40))} → ${JSON.stringify(encoded).slice(0, 200)}`)
  }
  try {
    secretLine('SESSION_SECRET', `secret-${x(70_000)}`, 'env/staging/web-admin.env: ')
    assert.unreachable('should refuse')
  } catch (error) {
    assert.instance(error, UserError)
    const message = (error as Error).message
    assert.match(message, /^env\/staging\/web-admin\.env: the value of SESSION_SECRET is 70007 bytes long; flyctl secrets import silently drops any line of 64 KiB or more .*: flyctl secrets import cannot take it, change the value$/)
    assert.not.match(message, 'secret-')
  }
})

test('names flyctl would misread are refused', () => {
  for (const [name, problem] of [['#K', "starts with '#'"], ['A=B', "contains '='"], [' K', 'whitespace'], ['K\u00A0', 'whitespace'], ['', 'is empty'], ['A\nB', 'line break']]) {
    const encoded = encodeSecret(name, 'v')
    assert.ok('problem' in encoded && encoded.problem.includes(problem), `${JSON.stringify(name)} → ${JSON.stringify(encoded)}`)
    try {
      secretLine(name, 'v')
      assert.unreachable('should refuse')
    } catch (error) {
      assert.instance(error, UserError)
      assert.match((error as Error).message, `the secret name ${JSON.stringify(name)} `)
    }
  }
  assert.equal(encodeSecret('DATABASE_URL', 'postgres://u:p#w@h/db'), { line: 'DATABASE_URL="""postgres://u:p#w@h/db"""' })
})

// When no encoding exists (q = the number of '"' before the first '#'):
// single-line values always have one ('…' when q is odd or there is no '#', """…""" when q is
// even), so only the 65,535-byte line limit refuses them, when even the shortest exact form
// ("…" or the bare value, where exact) is too long. A multi-line value must be K="""v""": refused
// when its first line has a '#' after an odd q, its first line or a middle line ends with """,
// or a physical line is too long. (A line of the value ending with \r is carried by one more \r,
// which flyctl drops; checked against flyctl's parser.)
function noEncodingExists(name: string, value: string): boolean {
  const bytes = (text: string) => Buffer.byteLength(text)
  const quotesBeforeHash = (text: string) => (text.includes('#') ? text.slice(0, text.indexOf('#')).split('"').length - 1 : undefined)
  const q = quotesBeforeHash(value.split('\n')[0])
  const oddOrNone = q === undefined || q % 2 === 1
  const evenOrNone = q === undefined || q % 2 === 0
  if (!value.includes('\n')) {
    const wrapped = /^"[^]*"$|^'[^]*'$|^["']$/.test(value)
    const lengths = [
      oddOrNone && bytes(name) + 3 + bytes(value),
      evenOrNone && bytes(name) + 7 + bytes(value),
      evenOrNone && !value.startsWith('""') && value !== '"' && bytes(name) + 3 + bytes(value),
      oddOrNone && !value.startsWith(' ') && !value.startsWith('"""') && !wrapped && bytes(name) + 1 + bytes(value) + (value.endsWith('\r') ? 1 : 0),
    ]
    return lengths.every((length) => length === false || length > MAX_LINE)
  }
  const lines = value.split('\n')
  const cr = (line: string) => (line.endsWith('\r') ? 1 : 0)
  if (!evenOrNone || lines[0].endsWith('"""') || lines.slice(1, -1).some((line) => line.endsWith('"""'))) return true
  const physical = lines.map((line, i) => (i === 0 ? bytes(name) + 4 + bytes(line) + cr(line) : i === lines.length - 1 ? bytes(line) + 3 : bytes(line) + cr(line)))
  return physical.some((length) => length > MAX_LINE)
}

function randomValues(count: number, seed: number): string[] {
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)]
  const atoms = ['a', '"', "'", '#', ' ', '\r', '\n', '\t', 'é', '€', '😀', '"""']
  return Array.from({ length: count }, () => {
    if (rand() < 0.08) {
      // Around the limit, in bytes: 65,533–65,540, with multi-byte characters and a multi-line tail.
      const fill = pick(['a', '#', '"', ' ', 'é', '😀'])
      const target = 65_533 + Math.floor(rand() * 8) - Math.floor(rand() * 6)
      const head = pick(['', '"', "'", '#', '"#', ' '])
      const body = fill.repeat(Math.max(0, Math.floor((target - Buffer.byteLength(head)) / Buffer.byteLength(fill))))
      return head + body + pick(['', 'a', '#', '"', '\r', '\nend', '€'])
    }
    let value = ''
    for (let n = Math.floor(rand() * 12); n > 0; n--) value += pick(atoms)
    return value
  })
}

test('property: each encoded value comes back exactly from the parser; only values without an encoding are refused', () => {
  let encoded = 0
  for (const value of randomValues(20_000, 11)) {
    for (const name of ['K', 'A_LONGER_SECRET_NAME']) {
      const result = encodeSecret(name, value)
      const label = `${name} ${JSON.stringify(value.length > 50 ? `${value.slice(0, 50)}… (${Buffer.byteLength(value)} bytes)` : value)}`
      if ('line' in result) {
        encoded++
        assert.equal(storedBy(result.line), { [name]: value }, label)
        for (const line of result.line.split('\n')) assert.ok(Buffer.byteLength(line) <= MAX_LINE, label)
      } else {
        assert.ok(noEncodingExists(name, value), `${label} refused: ${result.problem}`)
      }
      assert.is('problem' in result, noEncodingExists(name, value), label)
    }
  }
  assert.ok(encoded > 30_000)
})

test('property: many secrets in one stdin (as the toolkit sends them) are all stored exactly', () => {
  const values = randomValues(6_000, 23)
  for (let start = 0; start < values.length; start += 12) {
    const batch = new Map<string, string>()
    values.slice(start, start + 12).forEach((value, i) => {
      if ('line' in encodeSecret(`S${i}`, value)) batch.set(`S${i}`, value)
    })
    const stdin = [...batch].map(([name, value]) => secretLine(name, value)).join('\n') + '\n'
    assert.equal(outcome(stdin), Object.fromEntries(batch), `batch at ${start}`)
  }
})

test('near the limit the shortest exact form is used, to the byte', () => {
  const name = 'K'
  const fit = x(MAX_LINE - 4) // K='…' is 4 bytes more
  assert.equal(encodeSecret(name, fit), { line: `K='${fit}'` })
  assert.equal(encodeSecret(name, `${x(MAX_LINE - 2)}`), { line: `K=${x(MAX_LINE - 2)}` }) // bare value
  assert.ok('problem' in encodeSecret(name, x(MAX_LINE - 1)))
  const hashEven = `#${x(MAX_LINE - 5)}` // q = 0: """…""" is too long, "…" fits
  assert.equal(encodeSecret(name, hashEven), { line: `K="${hashEven}"` })
  assert.equal(storedBy(`K="${hashEven}"`), { K: hashEven })
  assert.ok('problem' in encodeSecret(name, `""#${x(MAX_LINE - 9)}`)) // "…" not exact, """…""" one byte too long
  const wide = 'é'.repeat((MAX_LINE - 4) / 2 - 0.5) + 'a' // bytes, not UTF-16 units
  assert.equal(encodeSecret(name, wide), { line: `K='${wide}'` })
  assert.equal(encodeSecret(name, wide + 'é'), { line: `K=${wide}é` })
  assert.ok('problem' in encodeSecret(name, wide + 'éé'))
})

test.run()
