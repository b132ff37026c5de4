/**
 * `bpfkit` command line. Each command lives in its own module; this file only
 * dispatches and turns errors into one readable line plus an exit code:
 *   0 ok · 1 runtime error · 2 usage error · 3 permission denied · 4 not supported
 */
import { BpfError, NotSupportedError, PermissionError } from '../errors.js'
import { featuresCommand } from './features.js'
import { genTypesCommand } from './gen-types.js'
import { loadCommand } from './load.js'
import { replayCommand } from './replay.js'
import { traceProcessCommand } from './trace-process.js'
import { traceHttpCommand, traceTlsCommand } from './trace-tls.js'
import { traceLlmCommand } from './llm.js'
import { UsageError, type Command } from './command.js'

const commands: Command[] = [featuresCommand, traceProcessCommand, traceTlsCommand, traceHttpCommand, traceLlmCommand, loadCommand, replayCommand, genTypesCommand]

export const EXIT = { ok: 0, error: 1, usage: 2, permission: 3, notSupported: 4 } as const

function topHelp(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(14)} ${c.summary}`)
  return `usage: bpfkit <command> [options]

commands:
${lines.join('\n')}

Run 'bpfkit <command> --help' for a command's options.
exit codes: 0 ok, 1 error, 2 usage error, 3 permission denied, 4 kernel feature not supported`
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(topHelp())
    return argv.length === 0 ? EXIT.usage : EXIT.ok
  }
  // commands may have two words ("gen types", "trace process")
  const cmd = commands.find((c) => {
    const words = c.name.split(' ')
    return words.every((w, i) => argv[i] === w)
  })
  if (!cmd) {
    // "bpfkit trace" or "bpfkit gen": name the commands that start with that word
    const family = commands.filter((c) => c.name.startsWith(`${argv[0]} `)).map((c) => `'${c.name}'`)
    const hint = family.length ? ` '${argv[0]}' needs one of: ${family.join(', ')}.` : ''
    console.error(`bpfkit: unknown command '${argv.slice(0, 2).join(' ')}'.${hint} Run 'bpfkit --help'.`)
    return EXIT.usage
  }
  const rest = argv.slice(cmd.name.split(' ').length)
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.help)
    return EXIT.ok
  }
  try {
    return (await cmd.run(rest)) ?? EXIT.ok
  } catch (err) {
    return reportError(err)
  }
}

/** One readable line with a hint, and the matching exit code. */
export function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    console.error(`bpfkit: ${err.message}`)
    return EXIT.usage
  }
  if (err instanceof PermissionError || (err instanceof BpfError && (err.code === 'EPERM' || err.code === 'EACCES') && process.getuid?.() !== 0)) {
    console.error(`bpfkit: not root: run as root or grant CAP_BPF+CAP_PERFMON (${err.message})`)
    return EXIT.permission
  }
  if (err instanceof NotSupportedError) {
    console.error(`bpfkit: ${err.message} (see 'bpfkit features')`)
    return EXIT.notSupported
  }
  if (err instanceof BpfError) {
    console.error(`bpfkit: ${err.message}`)
    return EXIT.error
  }
  console.error(`bpfkit: ${(err as Error)?.message ?? String(err)}`)
  return EXIT.error
}

const isMain = process.argv[1] && /(?:^|[\\/])(cli\.[cm]?js|main\.ts|bpfkit)$/.test(process.argv[1])
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => (process.exitCode = reportError(err)),
  )
}
