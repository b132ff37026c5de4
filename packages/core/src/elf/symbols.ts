/**
 * Symbol tables (.symtab and .dynsym) and GNU symbol versioning
 * (.gnu.version, .gnu.version_d, .gnu.version_r).
 *
 * Symbols are decoded on demand from the raw table bytes: looking up one name
 * compares bytes in place and decodes only the matches, so finding `SSL_write`
 * among the ~75k dynamic symbols of `node` allocates almost nothing.
 */
import { ElfError } from '../errors.js'
import { hex } from './internal.js'
import type { StringTable } from './strtab.js'

export type SymbolType = 'NOTYPE' | 'OBJECT' | 'FUNC' | 'SECTION' | 'FILE' | 'COMMON' | 'TLS' | 'IFUNC' | 'OTHER'
export type SymbolBinding = 'LOCAL' | 'GLOBAL' | 'WEAK' | 'UNIQUE' | 'OTHER'
export type SymbolVisibility = 'DEFAULT' | 'INTERNAL' | 'HIDDEN' | 'PROTECTED'

export interface ElfSymbol {
  /** name without any `@VERSION` suffix */
  readonly name: string
  /** symbol version (from .gnu.version, or a literal `name@VER` in .symtab) */
  readonly version?: string
  /** with `version`: true for `name@@VER` (what unversioned references bind to), false for `name@VER` */
  readonly defaultVersion?: boolean
  /** for an undefined versioned symbol: the library its version is required from (e.g. libc.so.6) */
  readonly library?: string
  /** st_value: a virtual address for defined symbols of executables and shared libraries */
  readonly value: number
  /** st_size in bytes (0 when unknown) */
  readonly size: number
  readonly type: SymbolType
  readonly bind: SymbolBinding
  readonly visibility: SymbolVisibility
  /** st_shndx: section index, or SHN_UNDEF (0) / SHN_ABS (0xfff1) / SHN_COMMON (0xfff2) */
  readonly shndx: number
  /** false for SHN_UNDEF: the symbol is imported from another object */
  readonly defined: boolean
  /** table the symbol was read from */
  readonly table: '.dynsym' | '.symtab'
  /** index in that table */
  readonly index: number
}

export const SHN_UNDEF = 0
export const SHN_ABS = 0xfff1
export const SHN_COMMON = 0xfff2
export const SYM_ENTRY_SIZE = 24
/** Per-table cap; far above real binaries (chromium: ~2M), bounds memory for hostile counts. */
export const MAX_SYMBOLS = 1 << 23

const TYPES: SymbolType[] = ['NOTYPE', 'OBJECT', 'FUNC', 'SECTION', 'FILE', 'COMMON', 'TLS']
const BINDS: SymbolBinding[] = ['LOCAL', 'GLOBAL', 'WEAK']
const VISIBILITIES: SymbolVisibility[] = ['DEFAULT', 'INTERNAL', 'HIDDEN', 'PROTECTED']

function symbolType(t: number): SymbolType {
  if (t < TYPES.length) return TYPES[t]
  return t === 10 ? 'IFUNC' : 'OTHER'
}

function symbolBinding(b: number): SymbolBinding {
  if (b < BINDS.length) return BINDS[b]
  return b === 10 ? 'UNIQUE' : 'OTHER'
}

/** Version names by version index, from .gnu.version_d and .gnu.version_r. */
export interface VersionInfo {
  /** .gnu.version: one u16 per .dynsym entry (bit 15 = hidden, i.e. not the default version) */
  versym: Buffer | undefined
  names: Map<number, { name: string; library?: string }>
}

/** Bound on verdef/verneed entries walked; real files have a few dozen. */
const MAX_VERSION_ENTRIES = 1 << 16

/** Parse .gnu.version_d (Elf64_Verdef/Elf64_Verdaux chains) into `names`. */
export function parseVerdef(buf: Buffer, count: number, strtab: StringTable, names: VersionInfo['names'], label: string): void {
  let off = 0
  const max = Math.min(count > 0 ? count : MAX_VERSION_ENTRIES, MAX_VERSION_ENTRIES)
  for (let i = 0; i < max; i++) {
    if (off + 20 > buf.length) throw new ElfError(`${label}: version definition ${i} at offset ${off} is past the end of the section`)
    const version = buf.readUInt16LE(off)
    if (version !== 1) throw new ElfError(`${label}: version definition ${i} has unsupported vd_version ${version}`)
    const flags = buf.readUInt16LE(off + 2)
    const ndx = buf.readUInt16LE(off + 4)
    const cnt = buf.readUInt16LE(off + 6)
    const aux = buf.readUInt32LE(off + 12)
    const next = buf.readUInt32LE(off + 16)
    if (cnt > 0) {
      const a = off + aux
      if (a + 8 > buf.length) throw new ElfError(`${label}: version definition ${i} has its name past the end of the section`)
      const name = strtab.get(buf.readUInt32LE(a), `version definition ${i}`)
      // VER_FLG_BASE names the file itself (its soname), not a symbol version
      if ((flags & 1) === 0) names.set(ndx, { name })
    }
    if (next === 0) break
    off += next
  }
}

/** Parse .gnu.version_r (Elf64_Verneed/Elf64_Vernaux chains) into `names`. */
export function parseVerneed(buf: Buffer, count: number, strtab: StringTable, names: VersionInfo['names'], label: string): void {
  let off = 0
  let budget = MAX_VERSION_ENTRIES
  const max = Math.min(count > 0 ? count : MAX_VERSION_ENTRIES, MAX_VERSION_ENTRIES)
  for (let i = 0; i < max; i++) {
    if (off + 16 > buf.length) throw new ElfError(`${label}: version requirement ${i} at offset ${off} is past the end of the section`)
    const version = buf.readUInt16LE(off)
    if (version !== 1) throw new ElfError(`${label}: version requirement ${i} has unsupported vn_version ${version}`)
    const cnt = buf.readUInt16LE(off + 2)
    const library = strtab.get(buf.readUInt32LE(off + 4), `version requirement ${i}`)
    let a = off + buf.readUInt32LE(off + 8)
    for (let j = 0; j < cnt; j++) {
      if (--budget < 0) throw new ElfError(`${label}: too many version requirements`)
      if (a + 16 > buf.length) throw new ElfError(`${label}: version requirement ${i}.${j} is past the end of the section`)
      const other = buf.readUInt16LE(a + 6)
      const name = strtab.get(buf.readUInt32LE(a + 8), `version requirement ${i}.${j}`)
      names.set(other & 0x7fff, { name, library })
      const next = buf.readUInt32LE(a + 12)
      if (next === 0) break
      a += next
    }
    const next = buf.readUInt32LE(off + 12)
    if (next === 0) break
    off += next
  }
}

/** A query name split into base name and optional version (`foo@@V` / `foo@V`). */
export interface SymbolQuery {
  base: string
  version?: string
  /** `@@`: only the default version matches */
  defaultOnly: boolean
}

export function parseSymbolQuery(name: string): SymbolQuery {
  const at = name.indexOf('@')
  if (at <= 0) return { base: name, defaultOnly: false }
  const dbl = name[at + 1] === '@'
  const version = name.slice(at + (dbl ? 2 : 1))
  if (!version) return { base: name, defaultOnly: false }
  return { base: name.slice(0, at), version, defaultOnly: dbl }
}

/** One symbol table section with its string table and (for .dynsym) version info. */
export class SymbolTable {
  readonly count: number

  constructor(
    readonly table: '.dynsym' | '.symtab',
    private readonly entries: Buffer,
    private readonly strtab: StringTable,
    private readonly versions: VersionInfo | undefined,
  ) {
    this.count = Math.floor(entries.length / SYM_ENTRY_SIZE)
  }

  /**
   * Decode entry `i`. Returns undefined for entries that cannot name an
   * address: the null entry, empty names, and values or sizes that do not
   * fit in 2^53 (impossible for user-space code on x86-64/aarch64).
   */
  decode(i: number): ElfSymbol | undefined {
    if (i <= 0 || i >= this.count) return undefined
    const e = this.entries
    const o = i * SYM_ENTRY_SIZE
    const valueHi = e.readUInt32LE(o + 12)
    const sizeHi = e.readUInt32LE(o + 20)
    if (valueHi >= 0x200000 || sizeHi >= 0x200000) return undefined
    const rawName = this.strtab.get(e.readUInt32LE(o), `${this.table} symbol ${i}`)
    if (!rawName) return undefined
    const info = e[o + 4]
    const shndx = e.readUInt16LE(o + 6)
    const defined = shndx !== SHN_UNDEF
    let name = rawName
    let version: string | undefined
    let defaultVersion: boolean | undefined
    let library: string | undefined
    if (rawName.includes('@')) {
      const q = parseSymbolQuery(rawName)
      name = q.base
      version = q.version
      defaultVersion = q.version === undefined ? undefined : q.defaultOnly
    }
    if (version === undefined && this.versions?.versym && 2 * i + 2 <= this.versions.versym.length) {
      const v = this.versions.versym.readUInt16LE(2 * i)
      const entry = this.versions.names.get(v & 0x7fff)
      // index 0 = local, 1 = global (unversioned); unknown indices are ignored
      if ((v & 0x7fff) >= 2 && entry) {
        version = entry.name
        defaultVersion = defined && (v & 0x8000) === 0
        if (!defined) library = entry.library
      }
    }
    // one object shape for every symbol (optional fields present as undefined)
    return {
      name,
      version,
      defaultVersion,
      library,
      value: valueHi * 0x100000000 + e.readUInt32LE(o + 8),
      size: sizeHi * 0x100000000 + e.readUInt32LE(o + 16),
      type: symbolType(info & 0xf),
      bind: symbolBinding(info >> 4),
      visibility: VISIBILITIES[e[o + 5] & 3],
      shndx,
      defined,
      table: this.table,
      index: i,
    }
  }

  /** Indices of entries whose name is `base` (or `base@...`), found by comparing bytes in place. */
  indicesNamed(base: Buffer): number[] {
    const out: number[] = []
    if (base.length === 0) return out
    this.strtab.resetBudget()
    const e = this.entries
    for (let i = 1; i < this.count; i++) {
      if (this.strtab.matches(e.readUInt32LE(i * SYM_ENTRY_SIZE), base)) out.push(i)
    }
    return out
  }

  /** Every decodable symbol, in table order. */
  all(): ElfSymbol[] {
    const out: ElfSymbol[] = []
    this.strtab.resetBudget()
    for (let i = 1; i < this.count; i++) {
      const s = this.decode(i)
      if (s) out.push(s)
    }
    return out
  }
}

/** `name@@VER` / `name@VER` / `name` as readelf prints it. */
export function displayName(s: ElfSymbol): string {
  return s.version === undefined ? s.name : `${s.name}${s.defaultVersion ? '@@' : '@'}${s.version}`
}

/** Short description for ambiguity messages. */
export function describeSymbol(s: ElfSymbol): string {
  return `${displayName(s)} (${s.bind} ${s.type} at ${hex(s.value)} in ${s.table})`
}
