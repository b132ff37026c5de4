/**
 * Go executables: recognise them, read the toolchain version from
 * .go.buildinfo, and find functions by name, in .symtab or, for stripped
 * binaries (-ldflags="-s -w"), in .gopclntab, which the runtime needs and
 * which therefore survives stripping (OBI does the same).
 *
 * Everything read from the file is bounds-checked; a malformed table gives
 * undefined, never an exception from a typed-array access.
 */
import type { ElfFile, ElfSection } from '../../elf/index.js'

/** .gopclntab is tens of MiB at most for the largest Go programs. */
const MAX_PCLNTAB = 256 << 20
const MAX_BUILDINFO = 1 << 20

export interface GoFunction {
  name: string
  /** virtual address of the entry */
  address: number
  /** bytes up to the next function (pclntab) or st_size (symtab) */
  size: number
  source: '.symtab' | '.gopclntab'
}

/** True for executables built by the Go toolchain. */
export function isGoBinary(elf: ElfFile): boolean {
  return elf.sectionHeader('.go.buildinfo') !== undefined || elf.sectionHeader('.gopclntab') !== undefined
}

/** Go version that built the binary ('go1.19.8'), if .go.buildinfo says. */
export function goVersion(elf: ElfFile): string | undefined {
  const sec = elf.sectionHeader('.go.buildinfo')
  if (!sec || sec.size < 32 || sec.size > MAX_BUILDINFO) return undefined
  const b = elf.readSection(sec)
  if (b.toString('latin1', 0, 14) !== '\xff Go buildinf:') return undefined
  const ptrSize = b[14]
  const flags = b[15]
  if ((flags & 2) !== 0) {
    // Go 1.18+: version and module info inline as varint-prefixed strings at 32
    const s = readVarintString(b, 32)
    return s?.value
  }
  // Go 1.13-1.17: pointers to Go string headers (ptr, len)
  if (ptrSize !== 8) return undefined
  const big = (flags & 1) !== 0
  const rd = (buf: Buffer, o: number) => Number(big ? buf.readBigUInt64BE(o) : buf.readBigUInt64LE(o))
  const hdr = readVirtual(elf, rd(b, 16), 16)
  if (!hdr) return undefined
  const len = rd(hdr, 8)
  if (len <= 0 || len > 64) return undefined
  return readVirtual(elf, rd(hdr, 0), len)?.toString('utf8')
}

/** Major.minor of a 'go1.x[.y]' version, e.g. [1, 19]. */
export function parseGoVersion(v: string | undefined): [number, number] | undefined {
  const m = v ? /^go(\d+)\.(\d+)/.exec(v) : null
  return m ? [Number(m[1]), Number(m[2])] : undefined
}

/** Finds function `name` via .symtab, else .gopclntab. */
export function findGoFunction(elf: ElfFile, name: string): GoFunction | undefined {
  let sym
  try {
    sym = elf.findSymbol(name)
  } catch {
    sym = undefined
  }
  if (sym && sym.defined && sym.type === 'FUNC' && sym.size > 0) {
    return { name, address: sym.value, size: sym.size, source: '.symtab' }
  }
  return findInPclntab(elf, [name]).get(name)
}

/**
 * Looks up several function names in .gopclntab (Go 1.16+ layouts: magic
 * 0xfffffffa, 0xfffffff0, 0xfffffff1). Returns those found.
 */
export function findInPclntab(elf: ElfFile, names: string[]): Map<string, GoFunction> {
  const out = new Map<string, GoFunction>()
  const sec = pclntabSection(elf)
  if (!sec || sec.size < 64 || sec.size > MAX_PCLNTAB) return out
  const t = elf.readSection(sec)
  const magic = t.readUInt32LE(0)
  const ptr = t[7]
  if (ptr !== 8 || t[4] !== 0 || t[5] !== 0) return out
  const word = (i: number) => {
    const o = 8 + i * 8
    return o + 8 <= t.length ? Number(t.readBigUInt64LE(o)) : -1
  }
  let nfunc: number
  let textStart = 0
  let funcnameOff: number
  let pclnOff: number
  let go118: boolean
  if (magic === 0xfffffff0 || magic === 0xfffffff1) {
    go118 = true
    nfunc = word(0)
    textStart = word(2)
    funcnameOff = word(3)
    pclnOff = word(7)
  } else if (magic === 0xfffffffa) {
    go118 = false
    nfunc = word(0)
    funcnameOff = word(2)
    pclnOff = word(6)
  } else {
    return out
  }
  if (nfunc <= 0 || nfunc > 1 << 24 || funcnameOff <= 0 || pclnOff <= 0 || funcnameOff >= t.length || pclnOff >= t.length) return out
  const entrySize = go118 ? 8 : 16
  if (pclnOff + (nfunc + 1) * entrySize > t.length) return out
  const wanted = new Map(names.map((n) => [n, Buffer.from(`${n}\0`, 'utf8')]))
  const entryAt = (i: number) => {
    const o = pclnOff + i * entrySize
    return go118 ? textStart + t.readUInt32LE(o) : Number(t.readBigUInt64LE(o))
  }
  for (let i = 0; i < nfunc && out.size < wanted.size; i++) {
    const o = pclnOff + i * entrySize
    const funcOff = go118 ? t.readUInt32LE(o + 4) : Number(t.readBigUInt64LE(o + 8))
    const f = pclnOff + funcOff
    const nameFieldAt = f + (go118 ? 4 : 8)
    if (nameFieldAt + 4 > t.length) continue
    const nameOff = t.readInt32LE(nameFieldAt)
    const n = funcnameOff + nameOff
    if (nameOff < 0 || n >= t.length) continue
    for (const [name, bytes] of wanted) {
      if (out.has(name) || n + bytes.length > t.length) continue
      if (t.compare(bytes, 0, bytes.length, n, n + bytes.length) === 0) {
        const address = entryAt(i)
        const size = entryAt(i + 1) - address
        if (address > 0 && size > 0) out.set(name, { name, address, size, source: '.gopclntab' })
      }
    }
  }
  return out
}

function pclntabSection(elf: ElfFile): ElfSection | undefined {
  // PIE and external linking put it in .data.rel.ro; the section name stays
  return elf.sectionHeader('.gopclntab') ?? elf.sectionHeader('.data.rel.ro.gopclntab')
}

function readVarintString(b: Buffer, at: number): { value: string; end: number } | undefined {
  let len = 0
  let shift = 0
  let o = at
  for (;;) {
    if (o >= b.length || shift > 28) return undefined
    const c = b[o++]
    len |= (c & 0x7f) << shift
    if ((c & 0x80) === 0) break
    shift += 7
  }
  if (len <= 0 || o + len > b.length) return undefined
  return { value: b.toString('utf8', o, o + len), end: o + len }
}

/** `len` bytes at virtual address `addr`, through the section that holds them. */
function readVirtual(elf: ElfFile, addr: number, len: number): Buffer | undefined {
  for (const s of elf.sections) {
    if (s.addr === 0 || s.type === 8 /* NOBITS */ || addr < s.addr || addr + len > s.addr + s.size) continue
    const data = elf.readSection(s)
    return data.subarray(addr - s.addr, addr - s.addr + len)
  }
  return undefined
}
