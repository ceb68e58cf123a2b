// flyctl v0.4.87's `fly secrets import` stdin parser (internal/command/secrets/parser.go
// `parseSecrets`, unchanged since v0.4.14), ported byte for byte: Go strings are bytes, so the
// port works on Buffers and decodes UTF-8 only when it hands the result back. Checked against the
// real Go function on a table of tricky inputs and on random ones (test/fixtures/secrets-parser-oracle.json).

export type ParseOutcome =
  | { kind: 'ok'; secrets: Map<string, string> } // insertion order = first appearance; later lines overwrite
  | { kind: 'error'; message: string }
  | { kind: 'panic'; message: string }

/** The same outcome with keys and values left as the bytes flyctl would store. */
export type ParseBytesOutcome =
  | { kind: 'ok'; secrets: Array<[key: Buffer, value: Buffer]> }
  | { kind: 'error'; message: string }
  | { kind: 'panic'; message: string }

// bufio.Scanner's default buffer: a token must fit in 64 KiB, and ScanLines needs the whole
// physical line (with its trailing \r) in the buffer before it finds the \n.
const MAX_LINE_BYTES = 65_535
const LF = 0x0a
const CR = 0x0d
const SPACE = 0x20
const HASH = 0x23
const EQUALS = 0x3d
const DQUOTE = 0x22
const SQUOTE = 0x27
const TRIPLE = Buffer.from('"""')

/** bufio.ScanLines: split on \n, drop one \r before it (or at EOF). A line that does not fit
 * stops the scan with ErrTooLong, which parseSecrets never checks: it reads as the end of input. */
function* scanLines(input: Buffer): Generator<Buffer> {
  let start = 0
  while (start < input.length) {
    const lf = input.indexOf(LF, start)
    const end = lf < 0 ? input.length : lf
    if (end - start > MAX_LINE_BYTES) return
    const line = input.subarray(start, end)
    yield line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line
    start = end + 1
  }
}

// unicode.IsSpace beyond ASCII (U+0085, U+00A0 and the Unicode White_Space runes), as UTF-8. A
// valid encoding is unique, so matching these byte sequences is what decoding runes would do;
// invalid bytes decode to U+FFFD, which is not a space. The BOM (U+FEFF) is not among them.
const WIDE_SPACES = [0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000].map((cp) =>
  Buffer.from(String.fromCodePoint(cp), 'utf8'),
)
const isAsciiSpace = (byte: number) => byte === SPACE || (byte >= 0x09 && byte <= 0x0d)

function wideSpaceAt(bytes: Buffer, start: number, end: number, fromEnd: boolean): number {
  for (const space of WIDE_SPACES) {
    const at = fromEnd ? end - space.length : start
    if (at >= start && at + space.length <= end && bytes.subarray(at, at + space.length).equals(space)) return space.length
  }
  return 0
}

/** strings.TrimSpace. */
function trimSpace(bytes: Buffer): Buffer {
  let start = 0
  let end = bytes.length
  while (start < end) {
    const width = isAsciiSpace(bytes[start]) ? 1 : wideSpaceAt(bytes, start, end, false)
    if (!width) break
    start += width
  }
  while (end > start) {
    const width = isAsciiSpace(bytes[end - 1]) ? 1 : wideSpaceAt(bytes, start, end, true)
    if (!width) break
    end -= width
  }
  return bytes.subarray(start, end)
}

function trimLeftSpaces(bytes: Buffer): Buffer {
  let start = 0
  while (start < bytes.length && bytes[start] === SPACE) start++
  return bytes.subarray(start)
}

function trimRightSpaces(bytes: Buffer): Buffer {
  let end = bytes.length
  while (end > 0 && bytes[end - 1] === SPACE) end--
  return bytes.subarray(0, end)
}

const startsWithTriple = (bytes: Buffer) => bytes.length >= 3 && bytes.subarray(0, 3).equals(TRIPLE)
const endsWithTriple = (bytes: Buffer) => bytes.length >= 3 && bytes.subarray(bytes.length - 3).equals(TRIPLE)

function countQuotes(bytes: Buffer): number {
  let count = 0
  for (const byte of bytes) if (byte === DQUOTE) count++
  return count
}

export function parseSecretsBytes(input: Buffer): ParseBytesOutcome {
  // Keyed by the key's bytes (latin1 keeps them distinct); a Map keeps first-appearance order.
  const secrets = new Map<string, [Buffer, Buffer]>()
  const store = (key: Buffer, value: Buffer) => secrets.set(key.toString('latin1'), [key, value])
  let multiKey: Buffer | undefined
  let multiValue: Buffer[] = []

  for (const line of scanLines(input)) {
    if (multiKey) {
      if (endsWithTriple(line)) {
        multiValue.push(line.subarray(0, -3))
        store(multiKey, Buffer.concat(multiValue))
        multiKey = undefined
        multiValue = []
      } else {
        multiValue.push(line, Buffer.from('\n'))
      }
      continue
    }
    if (line[0] === HASH || trimSpace(line).length === 0) continue
    const equals = line.indexOf(EQUALS)
    if (equals < 0) return { kind: 'error', message: `Secrets must be provided as NAME=VALUE pairs (${line.toString('utf8')} is invalid)` }
    const key = trimSpace(line.subarray(0, equals))
    let value = trimLeftSpaces(line.subarray(equals + 1))
    // A '#' starts a comment unless an odd number of '"' comes before it; single quotes do not count.
    const hash = value.indexOf(HASH)
    if (hash >= 0 && countQuotes(value.subarray(0, hash)) % 2 === 0) value = trimRightSpaces(value.subarray(0, hash))

    if (startsWithTriple(value) && endsWithTriple(value) && value.length >= 6) {
      store(key, value.subarray(3, -3))
    } else if (startsWithTriple(value)) {
      multiKey = key
      multiValue = [value.subarray(3), Buffer.from('\n')]
    } else {
      const first = value[0]
      if ((first === DQUOTE || first === SQUOTE) && value[value.length - 1] === first) {
        // Go's value[1:len(value)-1] on a one-byte value: the runtime panics (flyctl exits 3).
        if (value.length < 2) return { kind: 'panic', message: 'runtime error: slice bounds out of range [1:0]' }
        value = value.subarray(1, -1)
      }
      store(key, value)
    }
  }
  // A multi-line value still open here (EOF or a line too long) is dropped without a word.
  return { kind: 'ok', secrets: [...secrets.values()] }
}

export function parseSecrets(input: Buffer): ParseOutcome {
  const outcome = parseSecretsBytes(input)
  if (outcome.kind !== 'ok') return outcome
  return { kind: 'ok', secrets: new Map(outcome.secrets.map(([key, value]) => [key.toString('utf8'), value.toString('utf8')])) }
}
