import { parseArgs, type ParseArgsConfig } from 'node:util'

/** The shape of a CLI command, and the error for bad command lines (exit code 2). */
export interface Command {
  /** one or two words, e.g. 'features' or 'gen types' */
  name: string
  summary: string
  help: string
  run(args: string[]): Promise<number | void> | number | void
}

export class UsageError extends Error {}

/** Wraps node:util parseArgs so unknown flags become UsageErrors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}
