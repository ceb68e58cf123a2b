// How a value travels to `flyctl secrets import` on stdin. flyctl's parser
// (internal/command/secrets/parser.go, v0.4.14 and later) has no escapes: it cuts a value at the
// first '#' that follows an even number of '"', strips one pair of "…" or '…' or """…""", reads
// an unclosed """ as a multi-line value, drops one \r before each \n, and silently stops at the
// first physical line of 64 KiB or more. Each value gets the line(s) that make flyctl store exactly
// its bytes; the few values no line can carry are refused before any write, with the reason.
import { UserError } from '../core/errors.js'

// bufio.Scanner's limit: the longest physical line flyctl reads, in bytes, counting a trailing \r.
const MAX_LINE_BYTES = 65_535
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
// Go's unicode.IsSpace, which flyctl trims from both ends of a name.
const GO_SPACE = /^[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]|[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]$/
const TOO_LONG = 'flyctl secrets import silently drops any line of 64 KiB or more'

const bytes = (text: string) => Buffer.byteLength(text, 'utf8')

/** Whether flyctl's comment cut leaves `text` whole when it follows `quotesBefore` double quotes:
 * the cut happens at the first '#' when the number of '"' before it is even. */
function survivesCommentCut(text: string, quotesBefore: number): boolean {
  const hash = text.indexOf('#')
  return hash < 0 || (quotesBefore + text.slice(0, hash).split('"').length - 1) % 2 === 1
}

/** Why flyctl would read `NAME=` as another name (or no name), if it would. */
function nameProblem(name: string): string | undefined {
  if (name === '') return 'is empty'
  if (name.startsWith('#')) return "starts with '#', which makes the line a comment"
  if (name.includes('=')) return "contains '=', where flyctl splits the name from the value"
  if (/[\r\n]/.test(name)) return 'contains a line break'
  if (GO_SPACE.test(name)) return 'starts or ends with whitespace, which flyctl trims'
  if (LONE_SURROGATE.test(name)) return 'is not valid Unicode text'
  return undefined
}

/** A physical line: one \r more when the line ends with \r, since flyctl drops one before the \n. */
const physical = (line: string) => (line.endsWith('\r') ? line + '\r' : line)

/** The line for a value without \n: the first form that flyctl reads back exactly and that fits. */
function singleLine(name: string, value: string): { line: string } | { problem: string } {
  const forms = [
    // '…' keeps any '#' that an odd number of '"' precedes (single quotes do not count).
    survivesCommentCut(value, 0) && `${name}='${value}'`,
    // """…""" keeps a '#' that an even number of '"' precedes (the opening """ makes it odd).
    survivesCommentCut(value, 3) && `${name}="""${value}"""`,
    // Shorter forms, only for values near the line limit.
    survivesCommentCut(value, 1) && !value.startsWith('""') && value !== '"' && `${name}="${value}"`,
    survivesCommentCut(value, 0) && !value.startsWith(' ') && !value.startsWith('"""') && !/^(["']).*\1$|^["']$/s.test(value) && physical(`${name}=${value}`),
  ]
  const fits = forms.find((line) => line && bytes(line) <= MAX_LINE_BYTES)
  if (fits) return { line: fits }
  const shortest = Math.min(...forms.filter((line): line is string => Boolean(line)).map(bytes))
  const room = bytes(value) + MAX_LINE_BYTES - shortest
  return { problem: `is ${bytes(value)} bytes long; ${TOO_LONG} (at most ${room} bytes fit on the line with its name)` }
}

/** `NAME="""` + value + `"""`: the only way flyctl stores a \n. */
function multiLine(name: string, value: string): { line: string } | { problem: string } {
  const lines = value.split('\n')
  const last = lines.length - 1
  if (!survivesCommentCut(lines[0], 3)) {
    return { problem: "spans several lines and its first line has a '#' after an odd number of '\"', where flyctl cuts a comment" }
  }
  if (lines[0].endsWith('"""')) return { problem: 'spans several lines and its first line ends with """, which flyctl reads as the whole value' }
  const early = lines.findIndex((line, i) => i > 0 && i < last && line.endsWith('"""'))
  if (early >= 0) return { problem: `spans several lines and its line ${early + 1} ends with """, where flyctl ends the value` }
  const physicalLines = lines.map((line, i) => (i === 0 ? `${name}="""${physical(line)}` : i === last ? `${line}"""` : physical(line)))
  const long = physicalLines.findIndex((line) => bytes(line) > MAX_LINE_BYTES)
  if (long >= 0) return { problem: `spans several lines and its line ${long + 1} is ${bytes(lines[long])} bytes long; ${TOO_LONG}` }
  return { line: physicalLines.join('\n') }
}

/** The stdin line(s) that make flyctl store exactly `value` under `name`, or why none exists.
 * The line(s) end without \n; join several with \n. */
export function encodeSecret(name: string, value: string): { line: string } | { problem: string } {
  const badName = nameProblem(name)
  if (badName) return { problem: `cannot be sent because its name ${badName}` }
  // A lone surrogate has no UTF-8 form: Buffer.from would send U+FFFD instead.
  if (LONE_SURROGATE.test(value)) return { problem: 'is not valid Unicode text' }
  // A machine receives secrets as environment variables, which end at the first NUL byte.
  if (value.includes('\0')) return { problem: 'contains a NUL byte, where the environment variable on the machine would end' }
  return value.includes('\n') ? multiLine(name, value) : singleLine(name, value)
}

/** The stdin line(s) for one secret; a value the format cannot carry is a user error (`where`
 * names the file it came from). */
export function secretLine(name: string, value: string, where = ''): string {
  const badName = nameProblem(name)
  if (badName) throw new UserError(`${where}the secret name ${JSON.stringify(name)} ${badName}: flyctl secrets import would misread it, rename it`)
  const encoded = encodeSecret(name, value)
  if ('problem' in encoded) throw new UserError(`${where}the value of ${name} ${encoded.problem}: flyctl secrets import cannot take it, change the value`)
  return encoded.line
}
