/**
 * Virtual address → file offset, which is what the kernel's uprobe API takes
 * (uprobes are keyed by inode + file offset, not by address; see
 * cilium/ebpf#399 for what goes wrong when a symbol's address is passed).
 *
 * The mapping goes through the PT_LOAD segment that contains the address:
 * `offset = vaddr - p_vaddr + p_offset`. This is exactly how the loader maps
 * the file, so it is right for ET_EXEC (non-PIE), ET_DYN (PIE executables and
 * shared libraries) and for files whose sections and segments disagree.
 */
import { ElfError, InvalidArgumentError } from '../errors.js'
import { hex, notFound } from './internal.js'
import { type ElfFile, type ElfProgramHeader, PT_LOAD } from './reader.js'
import { displayName, type ElfSymbol } from './symbols.js'

export interface SymbolOffsetOptions {
  /** bytes into the function to probe (default 0); must be < the symbol size when that is known */
  offset?: number
}

type Located =
  | { ok: true; fileOffset: number; segment: ElfProgramHeader }
  | { ok: false; reason: 'outside' | 'bss'; segment?: ElfProgramHeader }

/** The PT_LOAD segment whose file-backed part contains `vaddr`. */
function locate(elf: ElfFile, vaddr: number): Located {
  let bss: ElfProgramHeader | undefined
  for (const p of elf.programHeaders) {
    if (p.type !== PT_LOAD || vaddr < p.vaddr) continue
    const rel = vaddr - p.vaddr
    if (rel < p.filesz) {
      const fileOffset = p.offset + rel
      // p_offset + p_filesz past EOF: a truncated file, not a usable probe point
      if (fileOffset >= elf.size) {
        throw new ElfError(`${elf.name}: segment at ${hex(p.vaddr)} extends past the end of the file; the file is truncated`)
      }
      return { ok: true, fileOffset, segment: p }
    }
    if (rel < p.memsz) bss ??= p
  }
  return bss ? { ok: false, reason: 'bss', segment: bss } : { ok: false, reason: 'outside' }
}

/** The PT_LOAD segment (program header) containing `vaddr` in its file-backed part, if any. */
export function segmentFor(elf: ElfFile, vaddr: number): ElfProgramHeader | undefined {
  const r = locate(elf, vaddr)
  return r.ok ? r.segment : undefined
}

/**
 * File offset of virtual address `vaddr` (as in the ELF file, i.e. before any
 * load bias). InvalidArgumentError if no loadable segment has file bytes
 * there (unmapped, or in the zero-filled .bss part of a segment).
 */
export function addressToFileOffset(elf: ElfFile, vaddr: number): number {
  if (!Number.isSafeInteger(vaddr) || vaddr < 0) throw new InvalidArgumentError(`invalid address ${vaddr}`)
  const r = locate(elf, vaddr)
  if (r.ok) return r.fileOffset
  throw new InvalidArgumentError(
    r.reason === 'bss'
      ? `address ${hex(vaddr)} is in the zero-filled (.bss) part of a segment of ${elf.name}; it has no file offset`
      : `address ${hex(vaddr)} is not inside any loadable segment of ${elf.name}`,
  )
}

/**
 * File offset of `symbol` (a name, versioned name, or a symbol from
 * elf.symbols()) plus `options.offset`, ready for a uprobe.
 *
 * - NotFoundError if the symbol does not exist, or exists only as an undefined
 *   (imported) reference: probe the library that defines it instead.
 * - ElfError if the symbol has no address in the file (thread-local, in .bss,
 *   outside every segment).
 * - InvalidArgumentError if `offset` is negative, not an integer, or not
 *   inside the symbol.
 *
 * Note: for an IFUNC symbol (type 'IFUNC', e.g. glibc's memcpy) the address
 * is the resolver that picks an implementation at load time, not the
 * implementation itself.
 */
export function symbolFileOffset(elf: ElfFile, symbol: string | ElfSymbol, options: SymbolOffsetOptions = {}): number {
  const extra = options.offset ?? 0
  if (!Number.isSafeInteger(extra) || extra < 0) {
    throw new InvalidArgumentError(`offset must be a non-negative integer, got ${extra}`)
  }
  const sym = typeof symbol === 'string' ? elf.findSymbol(symbol) : symbol
  const label = typeof symbol === 'string' ? symbol : displayName(symbol)
  if (!sym) {
    const { dynsym, symtab } = elf.symbolTableSizes()
    const searched = [
      dynsym ? `.dynsym (${dynsym} entries)` : 'no .dynsym',
      symtab ? `.symtab (${symtab} entries)` : 'no .symtab (stripped?)',
    ].join(', ')
    throw notFound('symbol', label, `symbol '${label}' not found in ${elf.name} (searched ${searched})`)
  }
  if (!sym.defined) {
    const from = sym.library ? ` from ${sym.library}` : ''
    throw notFound(
      'symbol',
      label,
      `symbol ${label} is undefined in ${elf.name} (imported${from}, not defined); probe the library that defines it`,
    )
  }
  if (sym.type === 'TLS') {
    throw new ElfError(`symbol ${label} in ${elf.name} is thread-local (STT_TLS); its value is an offset in the TLS block, not an address`)
  }
  if (sym.size > 0 && extra >= sym.size) {
    throw new InvalidArgumentError(`offset ${extra} is outside symbol ${label} (size ${sym.size}) in ${elf.name}`)
  }
  const vaddr = sym.value + extra
  const r = locate(elf, vaddr)
  if (r.ok) return r.fileOffset
  throw new ElfError(
    r.reason === 'bss'
      ? `symbol ${label}${extra ? `+${extra}` : ''} at ${hex(vaddr)} is in the zero-filled (.bss) part of a segment of ${elf.name}; it has no file offset`
      : `symbol ${label}${extra ? `+${extra}` : ''} at ${hex(vaddr)} is not inside any loadable segment of ${elf.name}`,
  )
}
