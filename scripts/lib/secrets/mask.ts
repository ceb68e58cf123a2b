// Every secret value the toolkit can know of is registered here: values from the env files of
// both environments, values it reads back (a database URL printed by `postgres attach`, an MPG
// password), and values it derives (a direct URL built from a pooled one). Every line the
// toolkit prints, logs or records passes through mask(), including what flyctl and the apps
// print (logs, health evidence), so a value that slips into any output is shown as ****.
//
// Two traps are avoided. A short value that is also an ordinary word ("staging") would turn every
// app name into `microbima-****-web-admin` and so give the value away: the toolkit's own names
// (environments, apps, database apps, the organisation, the region) are protected from masking,
// and short values are masked only as whole tokens. And URLs carry credentials even when their
// value was never registered: the password of any postgres:// URL is masked.

const secrets = new Set<string>()
const protectedWords = new Set<string>()

/** Values shorter than this are masked only as whole tokens; below MIN_LENGTH not at all. */
const SUBSTRING_LENGTH = 8
const MIN_LENGTH = 4

export function registerSecret(value: string | undefined): void {
  // A placeholder left from the .env.example is not a secret (and is named in error messages).
  if (!value || value.includes('CHANGE_ME')) return
  for (const part of [value, ...value.split(/\r?\n/)]) {
    const trimmed = part.trim()
    if (trimmed.length < MIN_LENGTH) continue
    // As apps and tools print it: as is, URL-encoded, inside a JSON string (a JSON logger escapes
    // " and \\), HTML-escaped (an error page in health evidence).
    for (const form of [trimmed, encodeURIComponent(trimmed), JSON.stringify(trimmed).slice(1, -1), escapeHtml(trimmed)]) secrets.add(form)
  }
}

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => HTML[c])

/** The toolkit's own vocabulary, never masked (app names, environments, …). */
export function protect(words: Iterable<string>): void {
  for (const word of words) if (word) protectedWords.add(word)
  namesPattern = undefined
}

/** The protected words, longest first, as one pattern: built once, not for every line masked. */
let namesPattern: RegExp | undefined
const protectedPattern = () => (namesPattern ??= new RegExp([...protectedWords].sort((a, b) => b.length - a.length).map(escape).join('|'), 'g'))

/** Whether a value cannot be hidden everywhere: it is short or part of a name the toolkit prints. */
export function unmaskable(value: string): string | undefined {
  if (value.length < MIN_LENGTH) return `is only ${value.length} characters long`
  const inName = [...protectedWords].find((word) => word.includes(value))
  if (inName) return `also appears in "${inName}", which the toolkit prints`
  // "verified", "changed", a variable's own name: where **** stands in the toolkit's output shows it.
  if (value.length <= 24 && /^[A-Za-z]+(?:[_ .-][A-Za-z]+)*$/.test(value)) return 'is a plain word, which the toolkit\'s own output may contain'
  return undefined
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const TOKEN = '[A-Za-z0-9_]'

export function mask(text: string): string {
  if (!text) return text
  // Where the toolkit's own names stand: a secret found only inside one of them is a word of the
  // name, not the secret shown (a value that merely contains a name, such as a URL naming
  // microbima-staging-db, is still masked whole).
  // Found only when a secret is (most lines hold none).
  let names: Array<[number, number]> | undefined
  const inName = (from: number, to: number) =>
    (names ??= protectedWords.size ? [...text.matchAll(protectedPattern())].map((m): [number, number] => [m.index!, m.index! + m[0].length]) : []).some(([a, b]) => a <= from && to <= b)
  const hidden: Array<[number, number]> = []
  for (const value of secrets) {
    if (!text.includes(value)) continue
    const pattern = value.length >= SUBSTRING_LENGTH ? new RegExp(escape(value), 'g') : new RegExp(`(?<!${TOKEN})${escape(value)}(?!${TOKEN})`, 'g')
    for (const m of text.matchAll(pattern)) if (!inName(m.index!, m.index! + value.length)) hidden.push([m.index!, m.index! + value.length])
  }
  let out = text
  if (hidden.length) {
    // Overlapping matches (a value and a longer one that starts with it) are one masked stretch.
    hidden.sort((a, b) => a[0] - b[0] || b[1] - a[1])
    out = ''
    let at = 0
    for (const [from, to] of hidden) {
      if (from < at) at = Math.max(at, to)
      else {
        out += `${text.slice(at, from)}****`
        at = to
      }
    }
    out += text.slice(at)
  }
  // (PASSWORD is the toolkit's own placeholder in hints: postgres://USER:PASSWORD@HOST…)
  return out.replace(/((?:postgres(?:ql)?|redis|mysql|https?):\/\/[^:\s/@]+:)(?!PASSWORD@)[^@\s]+@/g, '$1****@')
}
