import { createInterface } from 'node:readline/promises'
import { Refusal } from './errors.js'
import type { Context } from './cli.js'

// Every production write asks the operator to type the environment's name. --yes answers it;
// with no terminal (CI, closed stdin) and no --yes, refuse before any change: a prompt on a
// closed stdin would otherwise hang or exit 13 without a word.

export async function confirmProduction(ctx: Context, what: string): Promise<void> {
  if (ctx.env !== 'production' || ctx.dryRun || ctx.yes) return
  if (!process.stdin.isTTY) {
    throw new Refusal(`${what} changes production and needs confirmation: run it from a terminal, or pass YES=1 (--yes)`)
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = await rl.question(`${what} will change PRODUCTION. Type "production" to continue: `)
    if (answer.trim() !== 'production') throw new Refusal(`not confirmed (typed "${answer.trim()}"): nothing was changed`)
  } finally {
    rl.close()
  }
}
