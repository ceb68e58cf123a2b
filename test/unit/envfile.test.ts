import { test } from 'uvu'
import * as assert from 'uvu/assert'
import dotenv from 'dotenv'
import { parseEnvText } from '../../scripts/lib/secrets/envfile.ts'
import { encodeSecret, secretLine } from '../../scripts/lib/secrets/stdin.ts'
import { UserError } from '../../scripts/lib/core/errors.ts'
import { parseSecrets } from '../../scripts/lib/secrets/flyctl-parser.ts'

const PATH = 'env/staging/web-admin.env'
const read = (text: string) => parseEnvText(PATH, text)
const messages = (text: string) => read(text).problems.map((p) => p.message)

/** What flyctl stores for `name` when the toolkit sends `value` (through the simulator's port). */
function flyStores(name: string, value: string): string | undefined {
  const result = parseSecrets(Buffer.from(secretLine(name, value) + '\n'))
  return result.kind === 'ok' ? result.secrets.get(name) : undefined
}

test('the interface examples: an unquoted # is refused with the key named, quoted it is kept whole', () => {
  assert.equal(messages('SESSION_SECRET=tok#en\n'), [
    `${PATH} line 1: SESSION_SECRET has an unquoted '#' (dotenv would cut the value there): put the value in single quotes (a comment may follow the closing quote)`,
  ])
  assert.equal(read('SESSION_SECRET=tok#en\n').problems[0].key, 'SESSION_SECRET')
  for (const text of ["K='tok#en'", 'K="tok#en"', 'K=`tok#en`', "K='tok#en' # a comment", 'K="tok#en"# a comment', "K= 'tok#en'   "]) {
    assert.equal(read(text), { values: { K: 'tok#en' }, problems: [] }, text)
  }
  assert.equal(messages('K=a"b#c').length, 1)
  assert.equal(messages('K=x #y').length, 1)
  for (const [text, value] of [["K='a\"b#c'", 'a"b#c'], ['K="x #y"', 'x #y'], ["K='\"'", '"'], ['K="\'"', "'"]]) {
    assert.equal(read(text), { values: { K: value }, problems: [] }, text)
    assert.is(flyStores('K', value), value, text)
  }
  assert.equal(messages('K="\n'), [`${PATH} line 1: the quoted value of K is never closed`])
})

test('a 70,000-byte value is read whole, and then refused by the stdin encoder with the reason', () => {
  const value = 'v'.repeat(70_000)
  assert.equal(read(`BIG=${value}\n`), { values: { BIG: value }, problems: [] })
  try {
    secretLine('BIG', value, `${PATH}: `)
    assert.unreachable('should refuse')
  } catch (error) {
    assert.instance(error, UserError)
    assert.match((error as Error).message, `${PATH}: the value of BIG is 70000 bytes long; flyctl secrets import silently drops any line of 64 KiB or more`)
  }
})

test('values are the text after = less one pair of quotes: inner quotes, backslashes, = and tabs stay', () => {
  const text = [
    'A=plain',
    'B="a"b"',
    "C='it''s'",
    'D=pa"ss\\word',
    'E=a=b=c',
    'F="x" "y"',
    "G='x' y",
    'H=tab\tinside',
    'I=',
    "J=''",
    'export K=exported',
    '   L=indented',
    'M="a#b" # comment',
    "N='multi # in quotes'",
  ].join('\n')
  assert.equal(read(text), {
    values: { A: 'plain', B: 'a"b', C: "it''s", D: 'pa"ss\\word', E: 'a=b=c', F: 'x" "y', G: "'x' y", H: 'tab\tinside', I: '', J: '', K: 'exported', L: 'indented', M: 'a#b', N: 'multi # in quotes' },
    problems: [],
  })
  assert.equal(read(text).values, { ...dotenv.parse(text) }) // and dotenv agrees on each
})

test('multi-line quoted values keep their lines, blank and # lines included', () => {
  const key = '-----BEGIN KEY-----\nMIIB#abc\n\n# not a comment\n  indented\n-----END KEY-----'
  for (const quote of ['"', "'", '`']) {
    const text = `A=1\nPRIVATE_KEY=${quote}${key}${quote} # the signing key\nB=2\n`
    assert.equal(read(text), { values: { A: '1', PRIVATE_KEY: key, B: '2' }, problems: [] }, quote)
  }
  assert.is(flyStores('PRIVATE_KEY', key), key)
  // Never closed: the lines after it are read as lines of their own, as dotenv does.
  assert.equal(messages('A="one\ntwo\nB=3\n'), [`${PATH} line 1: the quoted value of A is never closed`, `${PATH} line 2 is not NAME=VALUE: fix or remove that line`])
  // A quote that closes the value must end its line (or come before a comment).
  assert.equal(messages('A="one\ntwo" and more\nB=3\n'), [`${PATH} line 1: the quoted value of A is never closed`, `${PATH} line 2 is not NAME=VALUE: fix or remove that line`])
})

test('CRLF files read like LF files; a carriage return inside a line is refused', () => {
  const lf = 'A=1\nB="x #y"\nC="one\ntwo"\n# comment\n\nD=\'d\'\n'
  const crlf = lf.replace(/\n/g, '\r\n')
  assert.equal(read(crlf), read(lf))
  assert.equal(read(crlf), { values: { A: '1', B: 'x #y', C: 'one\ntwo', D: 'd' }, problems: [] })
  assert.equal(read('A=1\r\nB=x\ry\r\nC=3\r\r\n'), {
    values: { A: '1', B: 'x\ry', C: '3\r' },
    problems: [
      { line: 2, message: `${PATH} line 2 has a carriage return that does not end the line (dotenv reads it as a line break): remove it` },
      { line: 3, message: `${PATH} line 3 has a carriage return that does not end the line (dotenv reads it as a line break): remove it` },
    ],
  })
})

test('escapes: \\n and \\r inside double quotes are refused (dotenv expands them); single quotes keep them', () => {
  assert.equal(messages('CERT="line1\\nline2"'), [
    `${PATH} line 1: CERT has \\n or \\r inside double quotes (dotenv would turn it into a line break): put the value in single quotes`,
  ])
  assert.equal(read("CERT='line1\\nline2'"), { values: { CERT: 'line1\\nline2' }, problems: [] })
  assert.equal(read('CERT=line1\\nline2'), { values: { CERT: 'line1\\nline2' }, problems: [] })
  assert.equal(read('Q="say \\"hi\\""'), { values: { Q: 'say \\"hi\\"' }, problems: [] }) // dotenv does not unescape \"
})

test('whitespace: around an unquoted value it is refused, before an opening quote or after a closing one it is fine', () => {
  const fix = 'remove it, or put the value in single quotes if it belongs to the value'
  assert.equal(messages('A= value'), [`${PATH} line 1: A has whitespace around its value (dotenv would drop it): ${fix}`])
  assert.equal(messages('A=value  '), [`${PATH} line 1: A has whitespace around its value (dotenv would drop it): ${fix}`])
  assert.equal(messages('A=value\u00A0'), [`${PATH} line 1: A has whitespace around its value (dotenv would drop it): ${fix}`])
  assert.equal(read("A=  ' value '  \nB =2"), { values: { A: ' value ', B: '2' }, problems: [] })
  assert.equal(messages('B = 2').length, 1)
})

test('quotes dotenv cannot read as written are refused with a quoting that works, if one does', () => {
  assert.equal(messages("A='it's#1'"), [`${PATH} line 1: A has ' inside its single quotes (dotenv would end the value there): put the value in double quotes`])
  assert.equal(read('A="it\'s#1"'), { values: { A: "it's#1" }, problems: [] })
  assert.equal(messages('A="x" # comment that ends in "'), [
    `${PATH} line 1: A has a comment after its closing quote that ends with the same quote, so where the value ends is ambiguous: remove that comment`,
  ])
  assert.equal(messages('A=`\'"#\\n`x'), [`${PATH} line 1: A has an unquoted '#' (dotenv would cut the value there): no quoting makes dotenv read it as written: change the value`])
})

test('every problem of the file is reported, in line order, and no value is echoed', () => {
  const text = [
    'GOOD=fine', //                   1
    'SESSION_SECRET=s3cr3t#tail', //  2 unquoted #
    'not a pair', //                  3
    'GOOD=again', //                  4 repeated
    'TOKEN= padded-s3cr3t', //        5 whitespace
    'CERT="a\\nb-s3cr3t"', //         6 escape
    'OPEN="s3cr3t', //                7 never closed
    'LAST=ok', //                     8
  ].join('\n')
  const { values, problems } = read(text)
  assert.equal(
    problems.map((p) => [p.line, p.key]),
    [[2, 'SESSION_SECRET'], [3, undefined], [4, 'GOOD'], [5, 'TOKEN'], [6, 'CERT'], [7, 'OPEN']],
  )
  assert.is(problems[1].message, `${PATH} line 3 is not NAME=VALUE: fix or remove that line`)
  assert.is(problems[2].message, `${PATH} line 4 sets GOOD again (first on line 1): keep one`)
  assert.is(problems[5].message, `${PATH} line 7: the quoted value of OPEN is never closed`)
  for (const problem of problems) {
    assert.ok(problem.message.startsWith(`${PATH} line ${problem.line}`), problem.message)
    assert.not.match(problem.message, 's3cr3t')
  }
  assert.is(values.LAST, 'ok')
})

test('a value dotenv reads for a key that no line sets is reported', () => {
  // dotenv lets a key run on into the next line; this file only reads NAME=VALUE lines.
  const { problems } = read('A\n=x\n')
  assert.ok(problems.some((p) => p.message === `${PATH}: dotenv reads a value for A from lines that do not set it as NAME=VALUE: check the quotes and line breaks around it`))
})

test('property: a value read without problems is what dotenv reads, and what flyctl stores when it can be sent', () => {
  let seed = 3
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const atoms = ['a', '"', "'", '`', '#', ' ', '\n', '\\n', '\\', '=', '\t', 'é']
  let accepted = 0
  for (let i = 0; i < 3000; i++) {
    let value = ''
    for (let n = Math.floor(rand() * 8); n > 0; n--) value += atoms[Math.floor(rand() * atoms.length)]
    for (const quote of ['', "'", '"', '`']) {
      for (const after of ['', ' # note', '\nB=1']) {
        const text = `A=${quote}${value}${quote}${after}`
        const { values, problems } = read(text)
        if (problems.length) continue
        accepted++
        assert.equal(values, { ...dotenv.parse(text) }, JSON.stringify(text))
        if (quote && !value.includes(quote)) assert.is(values.A, value, JSON.stringify(text))
        if ('line' in encodeSecret('A', values.A)) assert.is(flyStores('A', values.A), values.A, JSON.stringify(text))
      }
    }
  }
  assert.ok(accepted > 10_000)
})

test.run()
