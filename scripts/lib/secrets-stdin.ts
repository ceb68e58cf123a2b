// How a value travels to `flyctl secrets import` on stdin. flyctl's parser
// (internal/command/secrets/parser.go) removes one surrounding pair of double quotes and reads
// `"""…"""` as a multi-line value; it has no escapes, so JSON-style quoting would corrupt a value
// holding `"` or `\`. The few values the format cannot carry are refused before any write.
import { UserError } from './errors.js'

/** The stdin line(s) that give exactly `value`, or why the format cannot carry it. */
export function encodeSecret(name: string, value: string): { line: string } | { problem: string } {
  if (value.includes('\r')) return { problem: 'contains a carriage return' }
  if (!value.includes('\n')) {
    if (value.startsWith('""')) return { problem: 'starts with two double quotes, which flyctl reads as the start of a multi-line value' }
    const hash = value.indexOf(' #')
    // flyctl versions that strip a trailing ` # comment` do so when the quotes before it balance.
    if (hash >= 0 && (1 + (value.slice(0, hash).split('"').length - 1)) % 2 === 0) return { problem: 'has " #" after an odd number of double quotes, which flyctl reads as a comment' }
    return { line: `${name}="${value}"` }
  }
  const lines = value.split('\n')
  if (lines.slice(0, -1).some((line) => line.endsWith('"""'))) return { problem: 'has a line ending in """, which ends a multi-line value early' }
  return { line: `${name}="""${value}"""` }
}

/** The stdin line(s) for one secret; a value the format cannot carry is a user error (`where`
 * names the file it came from). */
export function secretLine(name: string, value: string, where = ''): string {
  const encoded = encodeSecret(name, value)
  if ('problem' in encoded) throw new UserError(`${where}the value of ${name} ${encoded.problem}: flyctl secrets import cannot take it, change the value`)
  return encoded.line
}
