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
  if (!value) return
  for (const part of [value, ...value.split(/\r?\n/)]) {
    const trimmed = part.trim()
    if (trimmed.length < MIN_LENGTH) continue
    secrets.add(trimmed)
    const encoded = encodeURIComponent(trimmed)
    if (encoded !== trimmed) secrets.add(encoded)
  }
}

/** The toolkit's own vocabulary, never masked (app names, environments, …). */
export function protect(words: Iterable<string>): void {
  for (const word of words) if (word) protectedWords.add(word)
}

/** Whether a value cannot be hidden everywhere: it is short or part of a name the toolkit prints. */
export function unmaskable(value: string): string | undefined {
  if (value.length < MIN_LENGTH) return `is only ${value.length} characters long`
  const inName = [...protectedWords].find((word) => word.includes(value))
  if (inName) return `also appears in "${inName}", which the toolkit prints`
  return undefined
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const TOKEN = '[A-Za-z0-9_]'

export function mask(text: string): string {
  if (!text) return text
  // Protected names are set aside first, so masking never reaches into them.
  const kept: string[] = []
  let out = text
  if (protectedWords.size) {
    const words = [...protectedWords].sort((a, b) => b.length - a.length).map(escape)
    out = out.replace(new RegExp(words.join('|'), 'g'), (word) => `\u0000${kept.push(word) - 1}\u0000`)
  }
  for (const value of [...secrets].sort((a, b) => b.length - a.length)) {
    if (!out.includes(value)) continue
    out = value.length >= SUBSTRING_LENGTH ? out.split(value).join('****') : out.replace(new RegExp(`(?<!${TOKEN})${escape(value)}(?!${TOKEN})`, 'g'), '****')
  }
  out = out.replace(/((?:postgres(?:ql)?|redis|mysql|https?):\/\/[^:\s/@]+:)[^@\s]+@/g, '$1****@')
  return kept.length ? out.replace(/\u0000(\d+)\u0000/g, (_, i) => kept[Number(i)]) : out
}
