/**
 * Just enough ELF64 reading to pull the `.BTF` section and data-symbol
 * offsets out of a BPF object file (clang -target bpf output), so BTF tools
 * (gen types) can take a `.o` directly. Not a general ELF parser.
 */
import { ElfError } from '../errors.js'

const SHT_SYMTAB = 2
const SHT_NOBITS = 8
const STT_SECTION = 3

export interface ElfBtf {
  /** raw .BTF section */
  readonly btf: Buffer
  /** raw .BTF.ext section, if any */
  readonly btfExt?: Buffer
  /** st_value of a symbol defined in `section` (what libbpf uses to fix up DATASEC offsets) */
  symbolOffset(section: string, name: string): number | undefined
  /** section sizes by name (what libbpf uses to fix up DATASEC sizes) */
  readonly sectionSizes: ReadonlyMap<string, number>
}

/** true if the bytes start with the ELF magic */
export function isElf(raw: Uint8Array): boolean {
  return raw.length >= 4 && raw[0] === 0x7f && raw[1] === 0x45 && raw[2] === 0x4c && raw[3] === 0x46
}

/** Read the .BTF section and data symbols of an ELF64 BPF object. Throws ElfError. */
export function readElfBtf(raw: Uint8Array): ElfBtf {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
  if (!isElf(buf)) throw new ElfError('not an ELF file (bad magic)')
  if (buf.length < 64) throw new ElfError('ELF header truncated')
  if (buf[4] !== 2) throw new ElfError('only 64-bit ELF objects are supported')
  const le = buf[5] === 1
  if (!le && buf[5] !== 2) throw new ElfError(`bad ELF data encoding ${buf[5]}`)
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const u16 = (o: number) => dv.getUint16(o, le)
  const u32 = (o: number) => dv.getUint32(o, le)
  const u64 = (o: number) => {
    const v = dv.getBigUint64(o, le)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`ELF value ${v} out of range`)
    return Number(v)
  }
  const shoff = u64(40)
  const shentsize = u16(58)
  let shnum = u16(60)
  let shstrndx = u16(62)
  if (shentsize < 64) throw new ElfError(`bad section header size ${shentsize}`)
  if (shoff === 0 || shoff + 64 > buf.length) throw new ElfError('ELF has no section headers')
  if (shnum === 0) shnum = u64(shoff + 32)
  if (shstrndx === 0xffff) shstrndx = u32(shoff + 40)
  if (shnum > 65536 * 16 || shoff + shnum * shentsize > buf.length) throw new ElfError(`section header table (${shnum} entries) exceeds the file`)

  interface Sh {
    name: number
    type: number
    offset: number
    size: number
    link: number
    entsize: number
  }
  const sh: Sh[] = []
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize
    const s: Sh = { name: u32(o), type: u32(o + 4), offset: u64(o + 24), size: u64(o + 32), link: u32(o + 40), entsize: u64(o + 56) }
    if (s.type !== SHT_NOBITS && s.type !== 0 && (s.offset > buf.length || s.size > buf.length - s.offset))
      throw new ElfError(`section ${i} [${s.offset}, +${s.size}) exceeds the ${buf.length}-byte file`)
    sh.push(s)
  }
  if (shstrndx >= shnum) throw new ElfError(`bad section name table index ${shstrndx}`)
  const strAt = (sec: Sh, off: number): string => {
    if (off >= sec.size) throw new ElfError(`string offset ${off} outside string table`)
    const a = sec.offset + off
    let e = buf.indexOf(0, a)
    if (e < 0 || e > sec.offset + sec.size) e = sec.offset + sec.size
    return buf.toString('utf8', a, e)
  }
  const names = sh.map((s) => strAt(sh[shstrndx], s.name))
  const byName = (n: string) => {
    const i = names.indexOf(n)
    return i < 0 ? undefined : sh[i]
  }
  const btfSh = byName('.BTF')
  if (!btfSh) throw new ElfError('object has no .BTF section (compile with clang -g)')
  const btf = buf.subarray(btfSh.offset, btfSh.offset + btfSh.size)
  const extSh = byName('.BTF.ext')
  const btfExt = extSh ? buf.subarray(extSh.offset, extSh.offset + extSh.size) : undefined

  const sectionSizes = new Map<string, number>()
  sh.forEach((s, i) => {
    if (names[i]) sectionSizes.set(names[i], s.size)
  })

  const symbols = new Map<string, Map<string, number>>()
  const symSh = sh.find((s) => s.type === SHT_SYMTAB)
  if (symSh) {
    const entsize = symSh.entsize || 24
    if (entsize < 24) throw new ElfError(`bad symbol entry size ${entsize}`)
    if (symSh.link >= shnum) throw new ElfError(`bad symbol string table index ${symSh.link}`)
    const strtab = sh[symSh.link]
    const n = Math.floor(symSh.size / entsize)
    for (let i = 1; i < n; i++) {
      const o = symSh.offset + i * entsize
      const type = buf[o + 4] & 0xf
      const shndx = u16(o + 6)
      if (type === STT_SECTION || shndx === 0 || shndx >= shnum) continue
      const name = strAt(strtab, u32(o))
      if (!name) continue
      const sec = names[shndx]
      let m = symbols.get(sec)
      if (!m) symbols.set(sec, (m = new Map()))
      if (!m.has(name)) m.set(name, u64(o + 8))
    }
  }
  return {
    btf,
    ...(btfExt ? { btfExt } : {}),
    sectionSizes,
    symbolOffset: (section, name) => symbols.get(section)?.get(name),
  }
}
