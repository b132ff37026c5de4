/**
 * The ELF reader on hostile input: every malformed file must produce an
 * ElfError (or, for lookups, NotFoundError) with a useful message, or a
 * consistent result — never another error type, never a hang.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ElfError, NotFoundError } from '../src/errors.js'
import { openElf, symbolFileOffset, type ElfFile } from '../src/elf/index.js'

const SRC = String.raw`
#include <stdio.h>
__attribute__((noinline)) int exported_add(int a, int b) { return a + b; }
static __attribute__((noinline)) int static_helper(int x) { return x * 3; }
__thread int tls_var;
int main(int argc, char **argv) { printf("%d\n", exported_add(argc, static_helper(argc)) + tls_var); return 0; }
`

let dir: string
let seed: Buffer

/** Minimal independent section-header reader, so patches do not depend on the code under test. */
function sectionHeaders(buf: Buffer): { name: string; at: number; offset: number; size: number; type: number }[] {
  const shoff = Number(buf.readBigUInt64LE(40))
  const shnum = buf.readUInt16LE(60)
  const shstrndx = buf.readUInt16LE(62)
  const strOff = Number(buf.readBigUInt64LE(shoff + shstrndx * 64 + 24))
  const out = []
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * 64
    const n = strOff + buf.readUInt32LE(at)
    out.push({
      name: buf.toString('latin1', n, buf.indexOf(0, n)),
      at,
      type: buf.readUInt32LE(at + 4),
      offset: Number(buf.readBigUInt64LE(at + 24)),
      size: Number(buf.readBigUInt64LE(at + 32)),
    })
  }
  return out
}

function shdr(buf: Buffer, name: string) {
  const s = sectionHeaders(buf).find((x) => x.name === name)
  if (!s) throw new Error(`no ${name}`)
  return s
}

/** A successful offset must lie inside the file (plain check: expect() is slow in a hot loop). */
function checkOffset(elf: ElfFile, off: number): void {
  if (!(Number.isSafeInteger(off) && off >= 0 && off < elf.size)) throw new Error(`inconsistent offset ${off} (file is ${elf.size} bytes)`)
}

/** Run every public operation; return the error thrown, if any. */
function exercise(input: Buffer | string): unknown {
  try {
    const elf: ElfFile = openElf(input)
    void elf.sections.length
    void elf.programHeaders.length
    elf.buildId()
    elf.section('.text')
    const syms = elf.symbols()
    for (const name of ['exported_add', 'static_helper', 'printf', 'tls_var', 'main', 'foo@@V1']) {
      try {
        elf.findSymbol(name)
        checkOffset(elf, symbolFileOffset(elf, name))
      } catch (err) {
        if (!(err instanceof ElfError || err instanceof NotFoundError)) throw err
      }
    }
    for (const s of syms.slice(0, 50)) {
      try {
        checkOffset(elf, symbolFileOffset(elf, s))
      } catch (err) {
        if (!(err instanceof ElfError || err instanceof NotFoundError)) throw err
      }
    }
    return undefined
  } catch (err) {
    return err
  }
}

function expectTyped(err: unknown, what: string): void {
  if (err === undefined) return
  if (!(err instanceof ElfError || err instanceof NotFoundError)) {
    throw new Error(`${what}: unexpected ${(err as Error)?.constructor?.name}: ${(err as Error)?.stack ?? String(err)}`)
  }
  if ((err as Error).message.length < 10) throw new Error(`${what}: unhelpful message ${(err as Error).message}`)
}

function elfError(input: Buffer | string): ElfError {
  const err = exercise(input)
  expect(err, 'expected an ElfError').toBeInstanceOf(ElfError)
  return err as ElfError
}

/** Seeded PRNG (mulberry32) so failures reproduce. */
function rng(seedValue: number): () => number {
  let a = seedValue >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A hand-built ELF64 x86-64 executable: one PT_LOAD covering the file, .text,
 * .strtab, .symtab (nsyms entries named by nameOff), .shstrtab.
 */
function buildElf(opts: { strtab: Buffer; nsyms: number; nameOff: (i: number) => number }): Buffer {
  const align8 = (n: number) => (n + 7) & ~7
  const textOff = 128
  const strOff = textOff + 16
  const symOff = align8(strOff + opts.strtab.length)
  const shstr = Buffer.from('\0.text\0.strtab\0.symtab\0.shstrtab\0', 'latin1')
  const shstrOff = symOff + opts.nsyms * 24
  const shOff = align8(shstrOff + shstr.length)
  const size = shOff + 5 * 64
  const b = Buffer.alloc(size)
  b.writeUInt32BE(0x7f454c46, 0)
  b[4] = 2
  b[5] = 1
  b[6] = 1
  b.writeUInt16LE(2, 16) // ET_EXEC
  b.writeUInt16LE(62, 18) // x86-64
  b.writeUInt32LE(1, 20)
  b.writeBigUInt64LE(0x400000n + BigInt(textOff), 24)
  b.writeBigUInt64LE(64n, 32)
  b.writeBigUInt64LE(BigInt(shOff), 40)
  b.writeUInt16LE(64, 52)
  b.writeUInt16LE(56, 54)
  b.writeUInt16LE(1, 56)
  b.writeUInt16LE(64, 58)
  b.writeUInt16LE(5, 60)
  b.writeUInt16LE(4, 62)
  // PT_LOAD r-x covering the whole file at 0x400000
  b.writeUInt32LE(1, 64)
  b.writeUInt32LE(5, 68)
  b.writeBigUInt64LE(0n, 72)
  b.writeBigUInt64LE(0x400000n, 80)
  b.writeBigUInt64LE(0x400000n, 88)
  b.writeBigUInt64LE(BigInt(size), 96)
  b.writeBigUInt64LE(BigInt(size), 104)
  b.writeBigUInt64LE(0x1000n, 112)
  b.fill(0xc3, textOff, textOff + 16)
  opts.strtab.copy(b, strOff)
  for (let i = 1; i < opts.nsyms; i++) {
    const o = symOff + i * 24
    b.writeUInt32LE(opts.nameOff(i), o)
    b[o + 4] = (1 << 4) | 2 // GLOBAL FUNC
    b.writeUInt16LE(1, o + 6)
    b.writeBigUInt64LE(0x400000n + BigInt(textOff), o + 8)
    b.writeBigUInt64LE(16n, o + 16)
  }
  shstr.copy(b, shstrOff)
  const sec = (i: number, name: number, type: number, off: number, sz: number, link = 0, entsize = 0, addr = 0) => {
    const o = shOff + i * 64
    b.writeUInt32LE(name, o)
    b.writeUInt32LE(type, o + 4)
    b.writeBigUInt64LE(BigInt(addr), o + 16)
    b.writeBigUInt64LE(BigInt(off), o + 24)
    b.writeBigUInt64LE(BigInt(sz), o + 32)
    b.writeUInt32LE(link, o + 40)
    b.writeBigUInt64LE(BigInt(entsize), o + 56)
  }
  sec(1, 1, 1, textOff, 16, 0, 0, 0x400000 + textOff) // .text PROGBITS
  sec(2, 7, 3, strOff, opts.strtab.length) // .strtab
  sec(3, 15, 2, symOff, opts.nsyms * 24, 2, 24) // .symtab -> .strtab
  sec(4, 23, 3, shstrOff, shstr.length) // .shstrtab
  return b
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfkit-elf-hostile-'))
  writeFileSync(join(dir, 'seed.c'), SRC)
  execFileSync('gcc', ['-O0', '-rdynamic', '-fPIE', '-pie', join(dir, 'seed.c'), '-o', join(dir, 'seed')])
  seed = readFileSync(join(dir, 'seed'))
  expect(exercise(seed)).toBeUndefined()
})

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('not ELF / unsupported ELF', () => {
  it('empty file, random bytes, short garbage', () => {
    writeFileSync(join(dir, 'empty'), '')
    expect(elfError(join(dir, 'empty')).message).toMatch(/empty/)
    const r = rng(1)
    const random = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(r() * 256)))
    expect(elfError(random).message).toMatch(/not an ELF file/)
    expect(elfError(Buffer.from([0x7f, 0x45])).message).toMatch(/not an ELF/)
    expect(elfError(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2])).message).toMatch(/truncated ELF header/)
  })

  it('names the class, endianness, machine and type it rejects', () => {
    const patch = (at: number, bytes: number[]) => {
      const b = Buffer.from(seed)
      Buffer.from(bytes).copy(b, at)
      return b
    }
    expect(elfError(patch(4, [1])).message).toMatch(/32-bit ELF \(ELFCLASS32\)/)
    expect(elfError(patch(4, [9])).message).toMatch(/invalid ELF class 9/)
    expect(elfError(patch(5, [2])).message).toMatch(/big-endian/)
    expect(elfError(patch(18, [3, 0])).message).toMatch(/unsupported machine i386 \(e_machine 3\)/)
    expect(elfError(patch(18, [0x14, 0])).message).toMatch(/unsupported machine PowerPC/)
    expect(elfError(patch(18, [247, 0])).message).toMatch(/BPF/)
    expect(elfError(patch(16, [1, 0])).message).toMatch(/REL \(relocatable object\)/)
    expect(elfError(patch(16, [4, 0])).message).toMatch(/CORE/)
    expect(openElf(patch(18, [183, 0])).machine).toBe('aarch64')
    // a real 32-bit binary, if gcc can make one; otherwise the patched header above covers it
    const elf32 = Buffer.alloc(52)
    seed.copy(elf32, 0, 0, 16)
    elf32[4] = 1
    expect(elfError(elf32).message).toMatch(/32-bit/)
  })
})

describe('truncation', () => {
  it('every 64 bytes of the first 4 KiB and cuts further in (buffer)', () => {
    const cuts: number[] = []
    for (let c = 0; c <= 4096; c += 64) cuts.push(c)
    for (let c = 4096; c < seed.length; c += 509) cuts.push(c)
    cuts.push(seed.length - 1)
    for (const c of cuts) {
      const err = exercise(seed.subarray(0, c))
      // the section header table sits at the end, so every cut loses it
      expect(err, `cut at ${c}`).toBeInstanceOf(ElfError)
      expectTyped(err, `cut at ${c}`)
    }
  })

  it('through the file reader too', () => {
    for (const c of [0, 16, 63, 64, 200, 1000, 4096, seed.length - 64]) {
      const p = join(dir, `cut-${c}`)
      writeFileSync(p, seed.subarray(0, c))
      expect(exercise(p), `cut at ${c}`).toBeInstanceOf(ElfError)
    }
  })
})

describe('corrupt headers and tables', () => {
  it('section header table past EOF', () => {
    const b = Buffer.from(seed)
    b.writeBigUInt64LE(BigInt(b.length + 4096), 40)
    expect(elfError(b).message).toMatch(/section header 0 .* extends past the end of the file/)
    b.writeBigUInt64LE(0xffffffffffffff00n, 40)
    expect(elfError(b).message).toMatch(/e_shoff is 0xffffffffffffff00, too large/)
    const c = Buffer.from(seed)
    c.writeUInt16LE(0xfff0, 60)
    expect(elfError(c).message).toMatch(/section header table \(65520 entries\).*past the end/)
  })

  it('program header table past EOF, wrong entry sizes, bad shstrndx', () => {
    const b = Buffer.from(seed)
    b.writeBigUInt64LE(BigInt(b.length - 10), 32)
    expect(elfError(b).message).toMatch(/program header table/)
    const c = Buffer.from(seed)
    c.writeUInt16LE(32, 54)
    expect(elfError(c).message).toMatch(/e_phentsize is 32/)
    const d = Buffer.from(seed)
    d.writeUInt16LE(40, 58)
    expect(elfError(d).message).toMatch(/e_shentsize is 40/)
    const e = Buffer.from(seed)
    e.writeUInt16LE(999, 62)
    expect(elfError(e).message).toMatch(/e_shstrndx 999/)
  })

  it('extended section numbering (e_shnum = 0, count in section 0) parses the same', () => {
    const b = Buffer.from(seed)
    const shoff = Number(b.readBigUInt64LE(40))
    const n = b.readUInt16LE(60)
    b.writeUInt16LE(0, 60)
    b.writeBigUInt64LE(BigInt(n), shoff + 32)
    const elf = openElf(b)
    expect(elf.sections.map((s) => s.name)).toEqual(openElf(seed).sections.map((s) => s.name))
    // and an absurd extended count is rejected, not allocated
    b.writeBigUInt64LE(0xfffffffffn, shoff + 32)
    expect(elfError(b).message).toMatch(/sections is more than/)
  })

  it('section contents past EOF', () => {
    const b = Buffer.from(seed)
    const dynsym = shdr(b, '.dynsym')
    b.writeBigUInt64LE(BigInt(b.length), dynsym.at + 24)
    expect(elfError(b).message).toMatch(/section \d+ \(\.dynsym\).*past the end of the file/)
  })

  it('string table offsets out of range', () => {
    const b = Buffer.from(seed)
    const dynsym = shdr(b, '.dynsym')
    b.writeUInt32LE(0xfffffff0, dynsym.offset + 24 * 2)
    expect(elfError(b).message).toMatch(/\.dynsym symbol 2 has name offset 4294967280, outside the string table/)
    const c = Buffer.from(seed)
    const shoff = Number(c.readBigUInt64LE(40))
    c.writeUInt32LE(0x7fffffff, shoff + 64 * 3)
    expect(elfError(c).message).toMatch(/section 3 has name offset/)
  })

  it('symbol table with absurd sizes, wrong entsize, bad sh_link', () => {
    const b = Buffer.from(seed)
    const symtab = shdr(b, '.symtab')
    b.writeBigUInt64LE(24n * 0x7ffffffn, symtab.at + 32)
    expect(elfError(b).message).toMatch(/symbols is more than the \d+ supported/)
    b.writeBigUInt64LE(24n * 1000000n, symtab.at + 32)
    expect(elfError(b).message).toMatch(/past the end of the file/)
    b.writeBigUInt64LE(0x7fffffffffffffffn, symtab.at + 32)
    expect(elfError(b).message).toMatch(/sh_size is 0x7fffffffffffffff, too large/)
    const c = Buffer.from(seed)
    c.writeBigUInt64LE(16n, shdr(c, '.symtab').at + 56)
    expect(elfError(c).message).toMatch(/entry size is 16, expected 24/)
    const d = Buffer.from(seed)
    d.writeUInt32LE(0, shdr(d, '.symtab').at + 40)
    expect(elfError(d).message).toMatch(/sh_link 0 does not point to a string table/)
  })

  it('corrupt version sections', () => {
    const b = Buffer.from(seed)
    const vr = shdr(b, '.gnu.version_r')
    b.writeUInt16LE(7, vr.offset) // vn_version
    expect(elfError(b).message).toMatch(/unsupported vn_version 7/)
    const c = Buffer.from(seed)
    const vr2 = shdr(c, '.gnu.version_r')
    c.writeUInt32LE(0xfffff, vr2.offset + 8) // vn_aux far away
    expect(elfError(c).message).toMatch(/version requirement 0\.0 is past the end/)
    const d = Buffer.from(seed)
    d.writeBigUInt64LE(2n, shdr(d, '.gnu.version').at + 32)
    expect(elfError(d).message).toMatch(/\.gnu\.version: has 1 entries but \.dynsym has/)
  })

  it('a symbol outside every segment, and a segment past EOF', () => {
    const elf = buildElf({ strtab: Buffer.from('\0alpha\0beta\0', 'latin1'), nsyms: 3, nameOff: (i) => (i === 1 ? 1 : 7) })
    expect(symbolFileOffset(openElf(elf), 'beta')).toBe(128)
    const b = Buffer.from(elf)
    const symtab = shdr(b, '.symtab')
    b.writeBigUInt64LE(0x900000n, symtab.offset + 24 * 2 + 8)
    expect(() => symbolFileOffset(openElf(b), 'beta')).toThrow(/at 0x900000 is not inside any loadable segment/)
    const c = Buffer.from(elf)
    c.writeBigUInt64LE(0x10n, 72) // p_offset shifted: filesz now reaches past EOF
    expect(() => symbolFileOffset(openElf(c), 'beta')).not.toThrow()
    c.writeBigUInt64LE(BigInt(c.length), 72)
    expect(() => symbolFileOffset(openElf(c), 'beta')).toThrow(/extends past the end of the file/)
  })
})

describe('huge counts and pathological names stay fast', () => {
  it('200k symbols all naming one 60 KB string: ElfError, quickly', () => {
    const strtab = Buffer.alloc(60002, 0x41)
    strtab[0] = 0
    strtab[60001] = 0
    const b = buildElf({ strtab, nsyms: 200000, nameOff: () => 1 })
    const t0 = performance.now()
    const elf = openElf(b)
    expect(() => elf.symbols()).toThrow(/names overlap far more than any linker produces/)
    expect(elf.findSymbol('B')).toBeUndefined()
    expect(() => elf.findSymbol('A'.repeat(60000))).toThrow(ElfError)
    expect(performance.now() - t0).toBeLessThan(5000)
  })

  it('200k symbols at distinct offsets of one long unterminated run', () => {
    const strtab = Buffer.alloc(300000, 0x42)
    strtab[0] = 0
    const b = buildElf({ strtab, nsyms: 200000, nameOff: (i) => i })
    const t0 = performance.now()
    expect(elfError(b).message).toMatch(/not NUL-terminated/)
    expect(performance.now() - t0).toBeLessThan(5000)
  })

  it('names longer than 64 KiB are rejected', () => {
    const strtab = Buffer.alloc(70002, 0x43)
    strtab[0] = 0
    strtab[70001] = 0
    expect(elfError(buildElf({ strtab, nsyms: 2, nameOff: () => 1 })).message).toMatch(/longer than 65536 bytes/)
  })

  it('many real symbols are fine', () => {
    const names = Array.from({ length: 50000 }, (_, i) => `sym_${i}`)
    const strtab = Buffer.from(`\0${names.join('\0')}\0`, 'latin1')
    const offs: number[] = []
    let o = 1
    for (const n of names) {
      offs.push(o)
      o += n.length + 1
    }
    const elf = openElf(buildElf({ strtab, nsyms: names.length + 1, nameOff: (i) => offs[i - 1] }))
    expect(elf.symbols()).toHaveLength(names.length)
    expect(symbolFileOffset(elf, 'sym_49999')).toBe(128)
    // all share one address: not ambiguous
    expect(elf.findSymbol('sym_1')?.value).toBe(0x400080)
  })
})

describe('seeded mutation fuzzing', () => {
  it('a few thousand mutations of a small valid ELF raise only typed errors', () => {
    const r = rng(Number(process.env.FUZZ_SEED ?? 0xb9f))
    const int = (n: number) => Math.floor(r() * n)
    const secs = sectionHeaders(seed)
    const shoff = Number(seed.readBigUInt64LE(40))
    const interesting = [0n, 1n, 2n, 24n, 0x7fn, 0xffn, 0xffffn, 0x7fffffffn, 0xffffffffn, BigInt(seed.length), BigInt(seed.length - 1), 1n << 53n, 0xffffffffffffffffn]
    // hot regions: headers, section header table, symbol/version/note sections
    const hot: [number, number][] = [
      [0, 64 + 56 * seed.readUInt16LE(56)],
      [shoff, shoff + 64 * secs.length],
      ...secs
        .filter((s) => /^\.(dynsym|dynstr|symtab|strtab|shstrtab|gnu\.version.*|note.*)$/.test(s.name))
        .map((s) => [s.offset, s.offset + s.size] as [number, number]),
    ]
    const stats = { ok: 0, elf: 0, notFound: 0 }
    const t0 = performance.now()
    const N = Number(process.env.FUZZ_N ?? 3000)
    for (let i = 0; i < N; i++) {
      let b = Buffer.from(seed)
      const kind = int(10)
      const [lo, hi] = hot[int(hot.length)]
      if (kind < 5) {
        for (let k = 1 + int(8); k > 0; k--) b[lo + int(hi - lo)] = int(256)
      } else if (kind < 8) {
        const at = (lo + int(hi - lo)) & ~3
        const v = interesting[int(interesting.length)]
        if (at + 8 <= b.length && r() < 0.5) b.writeBigUInt64LE(v, at & ~7)
        else if (at + 4 <= b.length) b.writeUInt32LE(Number(v & 0xffffffffn), at)
      } else if (kind < 9) {
        b[int(b.length)] ^= 1 << int(8)
      } else {
        b = b.subarray(0, int(b.length))
      }
      const err = exercise(b)
      expectTyped(err, `mutation ${i}`)
      if (err === undefined) stats.ok++
      else if (err instanceof ElfError) stats.elf++
      else stats.notFound++
    }
    const took = performance.now() - t0
    if (process.env.FUZZ_N) console.log(stats, took)
    expect(took).toBeLessThan(45000)
    // the mutations must actually hit both outcomes
    expect(stats.ok).toBeGreaterThan(N / 20)
    expect(stats.elf).toBeGreaterThan(N / 20)
  })
})
