/**
 * ELF64 little-endian reader for x86-64 and aarch64 executables and shared
 * libraries: just enough to find symbols and map them to file offsets for
 * uprobes.
 *
 * Headers are read eagerly and validated (every offset and count is checked
 * against the file size before anything is allocated); symbol tables, string
 * tables and notes are read lazily, only when asked for, and only the bytes
 * they occupy. A corrupt file raises ElfError naming the file and the bad
 * structure; nothing here throws RangeError/TypeError or loops unboundedly.
 */
import { ElfError, InvalidArgumentError } from '../errors.js'
import { hex, notFound } from './internal.js'
import { findBuildId } from './notes.js'
import { BufferSource, type ByteSource, FileSource } from './source.js'
import { StringTable } from './strtab.js'
import {
  describeSymbol,
  type ElfSymbol,
  MAX_SYMBOLS,
  parseSymbolQuery,
  parseVerdef,
  parseVerneed,
  SYM_ENTRY_SIZE,
  SymbolTable,
  type VersionInfo,
} from './symbols.js'

export type ElfType = 'EXEC' | 'DYN'
export type ElfMachine = 'x86_64' | 'aarch64'

export const EM_X86_64 = 62
export const EM_AARCH64 = 183

export const PT_LOAD = 1
export const PT_DYNAMIC = 2
export const PT_NOTE = 4
export const PT_TLS = 7
export const PF_X = 1
export const PF_W = 2
export const PF_R = 4

export const SHT_NULL = 0
export const SHT_SYMTAB = 2
export const SHT_STRTAB = 3
export const SHT_NOTE = 7
export const SHT_NOBITS = 8
export const SHT_DYNSYM = 11
export const SHT_GNU_VERDEF = 0x6ffffffd
export const SHT_GNU_VERNEED = 0x6ffffffe
export const SHT_GNU_VERSYM = 0x6fffffff

export interface ElfSection {
  readonly index: number
  readonly name: string
  /** sh_type (SHT_*) */
  readonly type: number
  readonly flags: number
  readonly addr: number
  readonly offset: number
  readonly size: number
  readonly link: number
  readonly info: number
  readonly addralign: number
  readonly entsize: number
}

export interface ElfProgramHeader {
  /** p_type (PT_*) */
  readonly type: number
  /** p_flags (PF_R | PF_W | PF_X) */
  readonly flags: number
  readonly offset: number
  readonly vaddr: number
  readonly paddr: number
  readonly filesz: number
  readonly memsz: number
  readonly align: number
}

const EHDR_SIZE = 64
const PHDR_SIZE = 56
const SHDR_SIZE = 64
/** e_phnum is 16-bit; PN_XNUM moves larger counts to section 0. Cap either way. */
const MAX_PHDRS = 1 << 16
/** Executables and shared libraries have dozens; extended numbering allows more. */
const MAX_SECTIONS = 1 << 18
/** .shstrtab is a few hundred bytes in practice. */
const MAX_SHSTRTAB = 16 * 1024 * 1024
/** Notes read when looking for a build ID. */
const MAX_NOTE_BYTES = 1024 * 1024

const MACHINES: Record<number, string> = {
  0: 'none',
  2: 'SPARC',
  3: 'i386',
  8: 'MIPS',
  20: 'PowerPC',
  21: 'PowerPC64',
  22: 's390',
  40: 'ARM (32-bit)',
  43: 'SPARC v9',
  50: 'IA-64',
  62: 'x86-64',
  183: 'AArch64',
  243: 'RISC-V',
  247: 'BPF',
  258: 'LoongArch',
}
const TYPES: Record<number, string> = { 0: 'NONE', 1: 'REL (relocatable object)', 2: 'EXEC', 3: 'DYN', 4: 'CORE (core dump)' }

function u64(buf: Buffer, off: number, what: string, file: string): number {
  const lo = buf.readUInt32LE(off)
  const hi = buf.readUInt32LE(off + 4)
  if (hi >= 0x200000) {
    throw new ElfError(`${file}: ${what} is ${hex(buf.readBigUInt64LE(off))}, too large for this file`)
  }
  return hi * 0x100000000 + lo
}

/** An opened ELF file. Cheap to keep: it holds no file descriptor (see source.ts). */
export class ElfFile {
  /** path given to openElf, or undefined for an in-memory buffer */
  readonly path: string | undefined
  readonly type: ElfType
  readonly machine: ElfMachine
  /** e_entry */
  readonly entry: number
  /** file size in bytes */
  readonly size: number
  readonly sections: readonly ElfSection[]
  readonly programHeaders: readonly ElfProgramHeader[]

  private readonly src: ByteSource
  private tables = new Map<string, SymbolTable | null>()
  private allSymbols: readonly ElfSymbol[] | undefined

  /** @internal use openElf() */
  constructor(src: ByteSource, path: string | undefined) {
    this.src = src
    this.path = path
    const name = src.name
    if (src.size === 0) throw new ElfError(`${name} is empty, not an ELF file`)
    const head = src.read(0, Math.min(EHDR_SIZE, src.size), 'ELF header')
    if (head.length < 4 || head.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${name} is not an ELF file (bad magic)`)
    if (head.length < 6) throw new ElfError(`${name}: truncated ELF header (${src.size} bytes)`)
    const cls = head[4]
    if (cls !== 2) {
      throw new ElfError(
        cls === 1
          ? `${name} is a 32-bit ELF (ELFCLASS32); only 64-bit ELF is supported`
          : `${name}: invalid ELF class ${cls}; only 64-bit ELF is supported`,
      )
    }
    const data = head[5]
    if (data !== 1) {
      throw new ElfError(
        data === 2
          ? `${name} is big-endian (ELFDATA2MSB); only little-endian ELF (x86-64, aarch64) is supported`
          : `${name}: invalid ELF data encoding ${data}`,
      )
    }
    if (head.length < EHDR_SIZE) throw new ElfError(`${name}: truncated ELF header (${src.size} of ${EHDR_SIZE} bytes)`)
    if (head[6] !== 1) throw new ElfError(`${name}: unsupported ELF version ${head[6]}`)
    const machine = head.readUInt16LE(18)
    if (machine === EM_X86_64) this.machine = 'x86_64'
    else if (machine === EM_AARCH64) this.machine = 'aarch64'
    else {
      throw new ElfError(`${name}: unsupported machine ${MACHINES[machine] ?? 'unknown'} (e_machine ${machine}); only x86-64 and aarch64 are supported`)
    }
    const type = head.readUInt16LE(16)
    if (type === 2) this.type = 'EXEC'
    else if (type === 3) this.type = 'DYN'
    else {
      throw new ElfError(`${name}: ELF type ${TYPES[type] ?? type} is not supported; need an executable or shared library (EXEC/DYN)`)
    }
    this.size = src.size
    this.entry = u64(head, 24, 'e_entry', name)
    const phoff = u64(head, 32, 'e_phoff', name)
    const shoff = u64(head, 40, 'e_shoff', name)
    const phentsize = head.readUInt16LE(54)
    let phnum = head.readUInt16LE(56)
    const shentsize = head.readUInt16LE(58)
    let shnum = head.readUInt16LE(60)
    let shstrndx = head.readUInt16LE(62)

    // Section 0 carries the real counts when they overflow 16 bits.
    let sh0: Buffer | undefined
    if (shoff !== 0) {
      if (shentsize !== SHDR_SIZE) throw new ElfError(`${name}: e_shentsize is ${shentsize}, expected ${SHDR_SIZE}`)
      sh0 = src.read(shoff, SHDR_SIZE, 'section header 0')
      if (shnum === 0) shnum = u64(sh0, 32, 'extended section count', name)
      if (shstrndx === 0xffff) shstrndx = sh0.readUInt32LE(40)
      if (phnum === 0xffff) phnum = sh0.readUInt32LE(44)
    } else {
      shnum = 0
    }
    if (phnum > MAX_PHDRS) throw new ElfError(`${name}: ${phnum} program headers is more than the ${MAX_PHDRS} supported`)
    if (shnum > MAX_SECTIONS) throw new ElfError(`${name}: ${shnum} sections is more than the ${MAX_SECTIONS} supported`)

    const phdrs: ElfProgramHeader[] = []
    if (phnum > 0) {
      if (phentsize !== PHDR_SIZE) throw new ElfError(`${name}: e_phentsize is ${phentsize}, expected ${PHDR_SIZE}`)
      const table = src.read(phoff, phnum * PHDR_SIZE, `program header table (${phnum} entries)`)
      for (let i = 0; i < phnum; i++) {
        const o = i * PHDR_SIZE
        const what = `program header ${i}`
        phdrs.push({
          type: table.readUInt32LE(o),
          flags: table.readUInt32LE(o + 4),
          offset: u64(table, o + 8, `${what} p_offset`, name),
          vaddr: u64(table, o + 16, `${what} p_vaddr`, name),
          paddr: u64(table, o + 24, `${what} p_paddr`, name),
          filesz: u64(table, o + 32, `${what} p_filesz`, name),
          memsz: u64(table, o + 40, `${what} p_memsz`, name),
          align: u64(table, o + 48, `${what} p_align`, name),
        })
      }
    }
    this.programHeaders = phdrs

    const raw: Omit<ElfSection, 'name'>[] = []
    const nameOffsets: number[] = []
    if (shnum > 0) {
      const table = src.read(shoff, shnum * SHDR_SIZE, `section header table (${shnum} entries)`)
      for (let i = 0; i < shnum; i++) {
        const o = i * SHDR_SIZE
        const what = `section header ${i}`
        nameOffsets.push(table.readUInt32LE(o))
        raw.push({
          index: i,
          type: table.readUInt32LE(o + 4),
          flags: u64(table, o + 8, `${what} sh_flags`, name),
          addr: u64(table, o + 16, `${what} sh_addr`, name),
          offset: u64(table, o + 24, `${what} sh_offset`, name),
          size: u64(table, o + 32, `${what} sh_size`, name),
          link: table.readUInt32LE(o + 40),
          info: table.readUInt32LE(o + 44),
          addralign: u64(table, o + 48, `${what} sh_addralign`, name),
          entsize: u64(table, o + 56, `${what} sh_entsize`, name),
        })
      }
    }
    let names: StringTable | undefined
    if (shnum > 0 && shstrndx !== 0) {
      if (shstrndx >= shnum) throw new ElfError(`${name}: e_shstrndx ${shstrndx} is not a valid section index (${shnum} sections)`)
      const s = raw[shstrndx]
      if (s.type === SHT_NOBITS) throw new ElfError(`${name}: section name table (section ${shstrndx}) has no contents`)
      if (s.size > MAX_SHSTRTAB) throw new ElfError(`${name}: section name table is ${s.size} bytes, larger than the ${MAX_SHSTRTAB} supported`)
      names = new StringTable(src.read(s.offset, s.size, 'section name table'), `${name} section names`)
    }
    this.sections = raw.map((s, i) => ({ ...s, name: names && i > 0 ? names.get(nameOffsets[i], `section ${i}`) : '' }))
  }

  /** name used in messages: the path, or '<buffer>' */
  get name(): string {
    return this.src.name
  }

  /** bytes read from the file so far (diagnostics) */
  get bytesRead(): number {
    return this.src.bytesRead
  }

  /** the first section called `name`, if any */
  sectionHeader(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name)
  }

  /**
   * Contents of section `name` (undefined if there is no such section; empty
   * for SHT_NOBITS sections like .bss, which occupy no file bytes).
   */
  section(name: string): Buffer | undefined {
    const s = this.sectionHeader(name)
    return s && this.readSection(s)
  }

  /** contents of a section header from `sections` */
  readSection(s: ElfSection): Buffer {
    if (s.type === SHT_NOBITS || s.type === SHT_NULL) return Buffer.alloc(0)
    return this.src.read(s.offset, s.size, `section ${s.index} (${s.name || 'unnamed'})`)
  }

  /**
   * All symbols of .dynsym and .symtab, deduplicated: a .symtab entry that
   * repeats a .dynsym entry (same name, address and defined-ness) is dropped,
   * so the versioned .dynsym entry wins. Unnamed entries are skipped.
   * Decoded once and cached; for a quick single lookup use findSymbol().
   */
  symbols(): readonly ElfSymbol[] {
    if (this.allSymbols) return this.allSymbols
    return this.src.session(() => {
      const dyn = this.table('.dynsym')?.all() ?? []
      const out = dyn.slice()
      const sym = this.table('.symtab')?.all()
      if (sym?.length) {
        // addresses of .dynsym names, to drop the .symtab copies of the same symbols
        const byName = new Map<string, number | number[]>()
        for (const s of dyn) {
          const v = s.defined ? s.value : -1
          const prev = byName.get(s.name)
          if (prev === undefined) byName.set(s.name, v)
          else if (typeof prev === 'number') byName.set(s.name, [prev, v])
          else prev.push(v)
        }
        for (const s of sym) {
          const prev = byName.get(s.name)
          const v = s.defined ? s.value : -1
          if (prev === v || (Array.isArray(prev) && prev.includes(v))) continue
          out.push(s)
        }
      }
      this.allSymbols = out
      return out
    })
  }

  /**
   * The symbol called `name`, or undefined.
   *
   * `name` may carry a version: `SSL_write@@OPENSSL_3.0.0` matches the default
   * version, `foo@V1` matches version V1; when the file has no version
   * information the base name is matched. .dynsym is searched first; .symtab
   * only if .dynsym has no definition. Among several definitions at different
   * addresses, a global beats a local and the default version beats others;
   * if that still leaves more than one address, the name is ambiguous and a
   * NotFoundError ("no unique symbol") lists the candidates. Section and file
   * symbols never match. An undefined (imported) symbol is returned only when
   * no definition exists, with `defined: false`.
   */
  findSymbol(name: string): ElfSymbol | undefined {
    if (typeof name !== 'string') throw new InvalidArgumentError(`symbol name must be a string, got ${typeof name}`)
    if (!name) return undefined
    const q = parseSymbolQuery(name)
    const base = Buffer.from(q.base, 'utf8')
    return this.src.session(() => {
      let cands = this.lookup('.dynsym', base, q.base)
      if (!cands.some((s) => s.defined)) cands = cands.concat(this.lookup('.symtab', base, q.base))
      if (q.version !== undefined && cands.some((s) => s.version !== undefined)) {
        cands = cands.filter((s) => s.version === q.version && (!q.defaultOnly || s.defaultVersion))
      }
      return this.pick(name, cands)
    })
  }

  /** Number of entries in .dynsym and .symtab (0 if absent), for messages. */
  symbolTableSizes(): { dynsym: number; symtab: number } {
    return this.src.session(() => ({
      dynsym: this.table('.dynsym')?.count ?? 0,
      symtab: this.table('.symtab')?.count ?? 0,
    }))
  }

  /** GNU build ID as lowercase hex (from .note.gnu.build-id or any note), if present. */
  buildId(): string | undefined {
    return this.src.session(() => {
      const notes = this.sections.filter((s) => s.type === SHT_NOTE)
      notes.sort((a, b) => (a.name === '.note.gnu.build-id' ? -1 : 0) - (b.name === '.note.gnu.build-id' ? -1 : 0))
      for (const s of notes) {
        if (s.size > MAX_NOTE_BYTES) continue
        const id = findBuildId(this.readSection(s), s.addralign)
        if (id) return id
      }
      if (notes.length) return undefined
      // stripped of section headers: fall back to PT_NOTE segments
      for (const p of this.programHeaders) {
        if (p.type !== PT_NOTE || p.filesz > MAX_NOTE_BYTES) continue
        const id = findBuildId(this.src.read(p.offset, p.filesz, 'PT_NOTE segment'), p.align)
        if (id) return id
      }
      return undefined
    })
  }

  /** Drop cached tables. Holds no descriptor, so calling this is optional. */
  close(): void {
    this.tables.clear()
    this.allSymbols = undefined
  }

  private lookup(table: '.dynsym' | '.symtab', base: Buffer, baseName: string): ElfSymbol[] {
    const t = this.table(table)
    if (!t) return []
    const out: ElfSymbol[] = []
    for (const i of t.indicesNamed(base)) {
      const s = t.decode(i)
      if (s && s.name === baseName && s.type !== 'SECTION' && s.type !== 'FILE') out.push(s)
    }
    return out
  }

  private pick(query: string, cands: ElfSymbol[]): ElfSymbol | undefined {
    const defined = cands.filter((s) => s.defined)
    if (defined.length === 0) return cands[0]
    const unique = (list: ElfSymbol[]) => new Set(list.map((s) => s.value)).size === 1
    const globalFirst = (list: ElfSymbol[]) => list.find((s) => s.bind !== 'LOCAL') ?? list[0]
    if (unique(defined)) return globalFirst(defined)
    const globals = defined.filter((s) => s.bind !== 'LOCAL')
    if (globals.length && unique(globals)) return globals[0]
    const defaults = globals.filter((s) => s.version === undefined || s.defaultVersion)
    if (defaults.length && unique(defaults)) return defaults[0]
    const list = defined.slice(0, 10).map(describeSymbol).join(', ')
    throw notFound(
      'unique symbol',
      query,
      `symbol '${query}' is ambiguous in ${this.name}: ${defined.length} definitions at different addresses: ${list}${defined.length > 10 ? ', ...' : ''}; use a versioned name (name@@VERSION) or an address`,
    )
  }

  /** Load (once) the symbol table of that name, with its string table and versions. */
  private table(kind: '.dynsym' | '.symtab'): SymbolTable | undefined {
    const cached = this.tables.get(kind)
    if (cached !== undefined) return cached ?? undefined
    const type = kind === '.dynsym' ? SHT_DYNSYM : SHT_SYMTAB
    const sec = this.sections.find((s) => s.type === type)
    const t = sec ? this.loadTable(kind, sec) : undefined
    this.tables.set(kind, t ?? null)
    return t
  }

  private loadTable(kind: '.dynsym' | '.symtab', sec: ElfSection): SymbolTable {
    const file = this.name
    const label = `${file} ${kind}`
    if (sec.entsize !== SYM_ENTRY_SIZE) throw new ElfError(`${label}: entry size is ${sec.entsize}, expected ${SYM_ENTRY_SIZE}`)
    if (sec.size % SYM_ENTRY_SIZE !== 0) throw new ElfError(`${label}: size ${sec.size} is not a multiple of ${SYM_ENTRY_SIZE}`)
    const count = sec.size / SYM_ENTRY_SIZE
    if (count > MAX_SYMBOLS) throw new ElfError(`${label}: ${count} symbols is more than the ${MAX_SYMBOLS} supported`)
    const strSec = this.stringSection(sec, label)
    // read (and bounds-check) the entries before the possibly larger string table
    const entries = this.readSection(sec)
    const strtab = new StringTable(this.readSection(strSec), `${file} ${strSec.name || `section ${strSec.index}`}`)
    let versions: VersionInfo | undefined
    if (kind === '.dynsym') versions = this.loadVersions(sec, strtab)
    return new SymbolTable(kind, entries, strtab, versions)
  }

  private stringSection(of: ElfSection, label: string): ElfSection {
    const s = of.link > 0 && of.link < this.sections.length ? this.sections[of.link] : undefined
    if (!s || s.type !== SHT_STRTAB) {
      throw new ElfError(`${label}: sh_link ${of.link} does not point to a string table`)
    }
    return s
  }

  private loadVersions(dynsym: ElfSection, dynstr: StringTable): VersionInfo | undefined {
    const versym = this.sections.find((s) => s.type === SHT_GNU_VERSYM && s.link === dynsym.index)
    if (!versym) return undefined
    if (versym.size !== (2 * dynsym.size) / SYM_ENTRY_SIZE) {
      throw new ElfError(`${this.name} .gnu.version: has ${versym.size / 2} entries but .dynsym has ${dynsym.size / SYM_ENTRY_SIZE} symbols`)
    }
    const info: VersionInfo = { versym: this.readSection(versym), names: new Map() }
    for (const s of this.sections) {
      if (s.type !== SHT_GNU_VERDEF && s.type !== SHT_GNU_VERNEED) continue
      const label = `${this.name} ${s.name || `section ${s.index}`}`
      const strSec = this.stringSection(s, label)
      if (strSec.index !== dynsym.link) throw new ElfError(`${label}: uses a different string table than .dynsym`)
      if (s.size > MAX_NOTE_BYTES) throw new ElfError(`${label}: ${s.size} bytes of version data is more than supported`)
      const bytes = this.readSection(s)
      if (s.type === SHT_GNU_VERDEF) parseVerdef(bytes, s.info, dynstr, info.names, label)
      else parseVerneed(bytes, s.info, dynstr, info.names, label)
    }
    return info
  }
}

/**
 * Open an ELF64 executable or shared library from a path or from bytes in
 * memory. Reads only the ELF header, program headers, section headers and
 * section names; everything else is read on demand.
 */
export function openElf(pathOrBuffer: string | Uint8Array): ElfFile {
  if (typeof pathOrBuffer === 'string') {
    if (!pathOrBuffer || pathOrBuffer.includes('\0')) throw new InvalidArgumentError(`invalid ELF path ${JSON.stringify(pathOrBuffer)}`)
    const src = new FileSource(pathOrBuffer)
    return src.session(() => new ElfFile(src, pathOrBuffer))
  }
  if (pathOrBuffer instanceof Uint8Array) return new ElfFile(new BufferSource(pathOrBuffer), undefined)
  throw new InvalidArgumentError('openElf needs a file path or a Uint8Array')
}
