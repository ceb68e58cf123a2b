// Reads one env file (dotenv format) so that each value is exactly what is written: the text after
// `=`, less one pair of surrounding quotes. dotenv reads the same file for the applications and
// for operators' tools, so its reading is checked against the written text: wherever it would
// differ (an unquoted '#' it cuts as a comment, whitespace it trims, \n it expands inside double
// quotes, …) the value is refused with the key, the reason and the fix, never silently changed.
import dotenv from 'dotenv'

export interface EnvFileProblem {
  line: number // 1-based; 0 for a problem of the whole file
  key?: string
  message: string // one line, starting with `${path} line N` or `${path}:`
}

interface Assignment {
  key: string
  line: number
  lines: [first: number, end: number] // the lines it spans, as indexes (end excluded)
  value: string // the text as written, less the quotes
  quote: string // the quote character, or '' for an unquoted value
  checked: boolean // false when a problem of its quotes was already reported
}

const ASSIGNMENT = /^\s*(?:export\s+)?([\w.-]+)\s*=(.*)$/
const BLANK_OR_COMMENT = /^\s*(?:#.*)?$/
const QUOTES = ['\'', '"', '`']
const QUOTE_NAMES: Record<string, string> = { "'": 'single quotes', '"': 'double quotes', '`': 'backquotes' }

/** Where a quoted value may end on a line: each `quote` after `from` that only whitespace or a
 * `# comment` follows (BLANK_OR_COMMENT, evaluated from the end of the line in one pass). */
function closings(line: string, quote: string, from: number): number[] {
  const found: number[] = []
  let tailIsBlankOrComment = true // for line.slice(at + 1)
  let terminatorAfter = false // whether a \u2028 or \u2029, which `.` does not match, follows
  for (let at = line.length - 1; at >= from; at--) {
    const char = line[at]
    if (char === quote && tailIsBlankOrComment) found.push(at)
    if (char === '#') tailIsBlankOrComment = !terminatorAfter
    else if (!/\s/.test(char)) tailIsBlankOrComment = false
    if (char === '\u2028' || char === '\u2029') terminatorAfter = true
  }
  return found.reverse()
}

function analyse(path: string, text: string, suggestFixes: boolean): { values: Record<string, string>; problems: EnvFileProblem[] } {
  const problems: EnvFileProblem[] = []
  const report = (line: number, key: string | undefined, message: string) => problems.push({ line, ...(key === undefined ? {} : { key }), message })

  // A carriage return that does not end a line is invisible in most editors and dotenv reads it
  // as a line break: refuse it. For the rest of the checks it stands in as a character absent
  // from the text, so that each line is read (by this file and by dotenv) as the editor shows it.
  let stand = 0xe000
  while (text.includes(String.fromCharCode(stand))) stand++
  const standIn = String.fromCharCode(stand)
  const lines = text.replace(/\r\n/g, '\n').split('\n')
  lines.forEach((line, i) => {
    if (line.includes('\r')) report(i + 1, undefined, `${path} line ${i + 1} has a carriage return that does not end the line (dotenv reads it as a line break): remove it`)
  })
  const normalized = lines.map((line) => line.replaceAll('\r', standIn))
  const restore = (value: string) => value.replaceAll(standIn, '\r')

  const assignments: Assignment[] = []
  const firstLine = new Map<string, number>()
  for (let i = 0; i < normalized.length; i++) {
    const line = normalized[i]
    const n = i + 1
    if (BLANK_OR_COMMENT.test(line)) continue
    const match = ASSIGNMENT.exec(line)
    if (!match) {
      report(n, undefined, `${path} line ${n} is not NAME=VALUE: fix or remove that line`)
      continue
    }
    const [, key, rest] = match
    if (firstLine.has(key)) report(n, key, `${path} line ${n} sets ${key} again (first on line ${firstLine.get(key)}): keep one`)
    else firstLine.set(key, n)
    const one: [number, number] = [i, i + 1]
    // Whitespace between `=` and an opening quote is not part of the value (and unambiguous).
    const body = rest.trimStart()
    const quote = QUOTES.find((q) => body.startsWith(q))
    if (!quote) {
      assignments.push({ key, line: n, lines: one, value: rest, quote: '', checked: true })
      continue
    }
    const ends = closings(body, quote, 1)
    if (ends.length > 1) {
      report(n, key, ambiguousEnd(path, n, key))
      assignments.push({ key, line: n, lines: one, value: body.slice(1, ends.at(-1)), quote, checked: false })
    } else if (ends.length === 1) {
      assignments.push({ key, line: n, lines: one, value: body.slice(1, ends[0]), quote, checked: true })
    } else if (body.includes(quote, 1)) {
      // Quotes inside, but text after the last one: no surrounding pair, the text is the value.
      assignments.push({ key, line: n, lines: one, value: rest, quote: '', checked: true })
    } else {
      // A value spanning lines ends at the next line holding the quote, which only whitespace or
      // a comment may follow; otherwise the quote is never closed and the next lines are read as
      // lines of their own (as dotenv does).
      let end = i + 1
      while (end < normalized.length && !normalized[end].includes(quote)) end++
      const close = end < normalized.length ? normalized[end].indexOf(quote) : -1
      if (close < 0 || !BLANK_OR_COMMENT.test(normalized[end].slice(close + 1))) {
        report(n, key, `${path} line ${n}: the quoted value of ${key} is never closed`)
        assignments.push({ key, line: n, lines: one, value: rest, quote: '', checked: false })
        continue
      }
      const value = [body.slice(1), ...normalized.slice(i + 1, end), normalized[end].slice(0, close)].join('\n')
      const ambiguous = closings(normalized[end], quote, close + 1).length > 0
      if (ambiguous) report(n, key, ambiguousEnd(path, n, key))
      assignments.push({ key, line: n, lines: [i, end + 1], value, quote, checked: !ambiguous })
      i = end
    }
  }

  // dotenv's reading of the whole text, compared key by key; it keeps the last of a repeated key,
  // so an earlier one is compared with dotenv's reading of its own lines.
  const parsed = dotenv.parse(normalized.join('\n'))
  const last = new Map(assignments.map((a) => [a.key, a]))
  for (const a of assignments) {
    const read = last.get(a.key) === a ? parsed[a.key] : dotenv.parse(normalized.slice(...a.lines).join('\n'))[a.key]
    if (!a.checked || read === a.value) continue
    const fix = suggestFixes ? quotingFix(a.value) : undefined
    report(a.line, a.key, `${path} line ${a.line}: ${a.key} ${difference(a)}: ${fixText(a, fix)}`)
  }
  for (const key of Object.keys(parsed)) {
    if (!last.has(key)) report(0, key, `${path}: dotenv reads a value for ${key} from lines that do not set it as NAME=VALUE: check the quotes and line breaks around it`)
  }

  problems.sort((a, b) => a.line - b.line)
  const values: Record<string, string> = Object.fromEntries([...last.values()].map((a) => [a.key, restore(a.value)]))
  return { values, problems }
}

const ambiguousEnd = (path: string, line: number, key: string) =>
  `${path} line ${line}: ${key} has a comment after its closing quote that ends with the same quote, so where the value ends is ambiguous: remove that comment`

/** Why dotenv reads the value differently from its text. */
function difference(a: Assignment): string {
  if (!a.quote && a.value.includes('#')) return "has an unquoted '#' (dotenv would cut the value there)"
  if (!a.quote && a.value !== a.value.trim()) return 'has whitespace around its value (dotenv would drop it)'
  if (a.quote === '"' && /\\[nr]/.test(a.value)) return 'has \\n or \\r inside double quotes (dotenv would turn it into a line break)'
  if (a.quote && a.value.includes(a.quote)) return `has ${a.quote} inside its ${QUOTE_NAMES[a.quote]} (dotenv would end the value there)`
  return 'is read differently by dotenv than it is written'
}

/** The first quotes in which dotenv reads `value` exactly as written, if any. */
function quotingFix(value: string): string | undefined {
  return QUOTES.find((quote) => {
    const { values, problems } = analyse('', `KEY=${quote}${value}${quote}`, false)
    return problems.length === 0 && values.KEY === value
  })
}

function fixText(a: Assignment, quote: string | undefined): string {
  if (!quote) return 'no quoting makes dotenv read it as written: change the value'
  const quotes = QUOTE_NAMES[quote]
  if (!a.quote && a.value.includes('#')) return `put the value in ${quotes} (a comment may follow the closing quote)`
  if (!a.quote && a.value !== a.value.trim()) return `remove it, or put the value in ${quotes} if it belongs to the value`
  return `put the value in ${quotes}`
}

/** Reads the text of one env file; `values` holds each key's value as written (the last, for a
 * repeated key), `problems` every problem found, in line order. */
export function parseEnvText(path: string, text: string): { values: Record<string, string>; problems: EnvFileProblem[] } {
  return analyse(path, text, true)
}
