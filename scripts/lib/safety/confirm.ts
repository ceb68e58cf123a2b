import { createInterface } from 'node:readline'
import { Refusal } from '../core/errors.js'
import type { Context } from '../core/cli.js'

// Every production write asks the operator to type the environment's name. --yes (YES=1 on the
// make command line; a YES exported in the shell does not count) answers it. With no terminal
// (CI, closed stdin) and no --yes, or when the operator ends the input (Ctrl-D), refuse before any
// change: a prompt on a closed stdin would otherwise hang or end the process without a word.

export async function confirmProduction(ctx: Context, what: string): Promise<void> {
  if (ctx.env !== 'production' || ctx.dryRun || ctx.yes) return
  if (!process.stdin.isTTY) {
    throw new Refusal(`make ${what} changes production and needs confirmation: run it from a terminal, or add YES=1 to the make command line (make ${what} YES=1)`)
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.once('close', () => resolve(undefined))
      rl.question(`make ${what} will change PRODUCTION. Type "production" to continue: `, resolve)
    })
    if (answer === undefined) throw new Refusal('no answer (the input ended): nothing was changed')
    if (answer.trim() !== 'production') throw new Refusal(`not confirmed (typed "${answer.trim()}"): nothing was changed`)
  } finally {
    rl.close()
  }
}
