// Every secret value the toolkit learns is registered here, and every line it prints or records
// passes through mask(), so a value that slips into a command's stderr is still never shown.

const secrets = new Set<string>()

export function registerSecret(value: string | undefined): void {
  // Very short values would mask ordinary words (ports, flags); flyctl never echoes values anyway.
  if (value && value.length >= 6) secrets.add(value)
}

export function mask(text: string): string {
  let out = text
  for (const value of secrets) out = out.split(value).join('****')
  return out.replace(/(postgres(?:ql)?:\/\/[^:\s/@]+:)[^@\s]+@/g, '$1****@')
}
