/**
 * Turns what a user names (a binary path or library name, a symbol, a pid)
 * into what the kernel's uprobe API wants: a host-visible file path and a file
 * offset. Kept apart from Program so TLS discovery can reuse it.
 */
import { existsSync } from 'node:fs'
import { InvalidArgumentError } from './errors.js'
import { notFound } from './elf/internal.js'
import { addressToFileOffset, openElf, resolveLibrary, symbolFileOffset } from './elf/index.js'

export interface UprobeTarget {
  /** path of an executable or shared library, or a library name such as 'libssl.so.3' */
  binary: string
  /** function symbol (from .dynsym or .symtab) */
  symbol?: string
  /** byte offset added to the symbol (or, with no symbol, a virtual address in the file) */
  offset?: number
  /** resolve `binary` inside this process's mount namespace (/proc/PID/root) */
  pid?: number
}

export interface ResolvedUprobeTarget {
  /** path the kernel can open from this process */
  path: string
  /** file offset of the probe point */
  offset: number
  /** symbol(+offset) for messages */
  label: string
}

export function resolveUprobeTarget(target: UprobeTarget): ResolvedUprobeTarget {
  const { binary, symbol, pid } = target
  if (pid !== undefined && (!Number.isInteger(pid) || pid <= 0)) throw new InvalidArgumentError(`invalid pid ${pid}`)
  if (!binary) throw new InvalidArgumentError('uprobe needs a binary path or library name')
  const path = hostPath(binary, pid)
  const elf = openElf(path)
  try {
    if (symbol) {
      const offset = symbolFileOffset(elf, symbol, { offset: target.offset ?? 0 })
      return { path, offset, label: target.offset ? `${symbol}+${target.offset}` : symbol }
    }
    if (target.offset === undefined) throw new InvalidArgumentError('uprobe needs a symbol or an offset')
    return { path, offset: addressToFileOffset(elf, target.offset), label: `0x${target.offset.toString(16)}` }
  } finally {
    elf.close?.()
  }
}

/**
 * A path the kernel can open from here, for a binary that may live in another
 * mount namespace. With a pid, the binary is the one that process sees: a
 * file of the same name on the host may be another file, whose probe would
 * never fire, so a missing one is an error, not a fallback.
 */
function hostPath(binary: string, pid: number | undefined): string {
  if (!binary.includes('/')) return resolveLibrary(binary, pid === undefined ? {} : { pid })
  if (pid === undefined || binary.startsWith('/proc/')) return binary
  if (!existsSync(`/proc/${pid}`)) throw notFound('process', String(pid), `no process with pid ${pid}`)
  const inside = `/proc/${pid}/root${binary.startsWith('/') ? '' : '/'}${binary}`
  if (!existsSync(inside)) throw notFound('file', inside, `process ${pid} has no ${binary} in its mount namespace (looked at ${inside})`)
  return inside
}
