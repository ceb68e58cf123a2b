import { createHash } from 'node:crypto'

// Prisma stores sha256 over the script's UTF-8 text as 64 lowercase hex characters.
export function checksumOf(script: string | Buffer): string {
  return createHash('sha256').update(script).digest('hex')
}

// Prisma accepts a stored checksum that matches the script as-is, with CRLF turned into LF,
// or with LF turned into CRLF ("because git messes with line endings").
export function scriptMatchesChecksum(script: string, checksum: string): boolean {
  const variants = [script, script.replace(/\r\n/g, '\n'), script.replace(/\r?\n/g, '\r\n')]
  return variants.some((variant) => checksumOf(variant) === checksum)
}
