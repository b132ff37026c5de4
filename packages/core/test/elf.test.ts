/**
 * ELF reader + symbol → file offset, checked against binutils (readelf,
 * objdump) on binaries compiled here with gcc, and on the real node binary
 * and libssl.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync, statSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ElfError, InvalidArgumentError, NotFoundError } from '../src/errors.js'
import {
  addressToFileOffset,
  displayName,
  openElf,
  PT_LOAD,
  resolveLibrary,
  symbolFileOffset,
  type ElfFile,
} from '../src/elf/index.js'

const MAIN_C = String.raw`
#include <stdio.h>
__asm__(
  ".text\n"
  ".globl magic_fn\n"
  ".type magic_fn, @function\n"
  "magic_fn:\n"
  "  .byte 0x48, 0xc7, 0xc0, 0x44, 0x33, 0x22, 0x11\n"   /* mov $0x11223344, %rax */
  "  ret\n"
  ".size magic_fn, .-magic_fn\n");
long magic_fn(void);
__attribute__((noinline)) int exported_add(int a, int b) { return a + b * 7; }
static __attribute__((noinline)) int static_helper(int x) { return x * 3 + 1; }
static __attribute__((noinline)) int dup_helper(int x) { return x - 1; }
int other_dup(int);
int global_counter = 5;
__thread int tls_var = 1;
static char big_bss[65536];
int main(int argc, char **argv) {
  big_bss[argc] = 1;
  printf("%d %d %ld %d %d\n", exported_add(argc, 2), static_helper(argc), magic_fn(),
         tls_var + global_counter + big_bss[1], dup_helper(argc) + other_dup(argc));
  return 0;
}
`
const OTHER_C = String.raw`
static __attribute__((noinline)) int dup_helper(int x) { return x + 100; }
int other_dup(int x) { return dup_helper(x); }
`
const LIB_C = String.raw`
__asm__(".text\n.globl lib_magic\n.type lib_magic,@function\nlib_magic:\n"
        " .byte 0x48,0xc7,0xc0,0x78,0x56,0x34,0x12\n ret\n.size lib_magic,.-lib_magic\n");
int lib_add(int a, int b) { return a + b; }
static __attribute__((noinline,used)) int lib_static(int x) { return x + 42; }
int foo_v1(void) { return 1; }
int foo_v2(void) { return 2; }
__asm__(".symver foo_v1, foo@VERS_1");
__asm__(".symver foo_v2, foo@@VERS_2");
`
const LIB_MAP = `VERS_1 { global: lib_add; lib_magic; foo; local: *; };\nVERS_2 { global: foo; } VERS_1;\n`

const MAGIC_MAIN = Buffer.from([0x48, 0xc7, 0xc0, 0x44, 0x33, 0x22, 0x11, 0xc3])
const MAGIC_LIB = Buffer.from([0x48, 0xc7, 0xc0, 0x78, 0x56, 0x34, 0x12, 0xc3])

let dir: string
const bin: Record<'pie' | 'nopie' | 'lib', string> = { pie: '', nopie: '', lib: '' }

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
}

interface RefSymbol {
  value: number
  size: number
  type: string
  bind: string
  ndx: string
  name: string
}

/** `readelf -sW` parsed per table: independent of the code under test. */
function readelfSymbols(path: string): Record<string, RefSymbol[]> {
  const out: Record<string, RefSymbol[]> = {}
  let table = ''
  for (const line of sh('readelf', ['-sW', path]).split('\n')) {
    const t = /^Symbol table '([^']+)'/.exec(line)
    if (t) {
      table = t[1]
      out[table] = []
      continue
    }
    const m = /^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\w+)\s+(\w+)\s+(\w+)\s+(\w+)\s+(\S+)(?:\s+\(\d+\))?\s*$/.exec(line)
    if (m && table) {
      out[table].push({ value: parseInt(m[1], 16), size: Number(m[2]), type: m[3], bind: m[4], ndx: m[6], name: m[7] })
    }
  }
  return out
}

/** PT_LOAD segments from `readelf -lW`. */
function readelfLoads(path: string): { offset: number; vaddr: number; filesz: number; memsz: number }[] {
  const loads = []
  for (const line of sh('readelf', ['-lW', path]).split('\n')) {
    const m = /^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)/.exec(line)
    if (m) loads.push({ offset: parseInt(m[1], 16), vaddr: parseInt(m[2], 16), filesz: parseInt(m[4], 16), memsz: parseInt(m[5], 16) })
  }
  return loads
}

function refOffset(path: string, vaddr: number): number {
  const seg = readelfLoads(path).find((l) => vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz)
  if (!seg) throw new Error(`no LOAD for ${vaddr.toString(16)} in ${path}`)
  return vaddr - seg.vaddr + seg.offset
}

/** First `n` instruction bytes of function `name` as disassembled by objdump. */
function objdumpBytes(path: string, name: string, n: number, range?: [number, number]): Buffer {
  const args = ['-d', '-w', path]
  if (range) args.unshift(`--start-address=0x${range[0].toString(16)}`, `--stop-address=0x${range[1].toString(16)}`)
  const lines = sh('objdump', args).split('\n')
  const start = lines.findIndex((l) => l.endsWith(`<${name}>:`) || (range !== undefined && l.includes(`<${name}@`) && l.endsWith('>:')))
  if (start < 0) throw new Error(`objdump: no ${name} in ${path}`)
  const bytes: number[] = []
  for (const l of lines.slice(start + 1)) {
    const m = /^\s*[0-9a-f]+:\t((?:[0-9a-f]{2} )+)/.exec(l)
    if (!m) break
    for (const b of m[1].trim().split(' ')) bytes.push(parseInt(b, 16))
    if (bytes.length >= n) break
  }
  return Buffer.from(bytes.slice(0, n))
}

function bytesAt(path: string, offset: number, n: number): Buffer {
  const fd = openSync(path, 'r')
  try {
    const b = Buffer.alloc(n)
    readSync(fd, b, 0, n, offset)
    return b
  } finally {
    closeSync(fd)
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfkit-elf-'))
  writeFileSync(join(dir, 'main.c'), MAIN_C)
  writeFileSync(join(dir, 'other.c'), OTHER_C)
  writeFileSync(join(dir, 'lib.c'), LIB_C)
  writeFileSync(join(dir, 'lib.map'), LIB_MAP)
  bin.pie = join(dir, 'prog-pie')
  bin.nopie = join(dir, 'prog-nopie')
  bin.lib = join(dir, 'libfx.so.1')
  const src = [join(dir, 'main.c'), join(dir, 'other.c')]
  sh('gcc', ['-O0', '-rdynamic', '-fPIE', '-pie', ...src, '-o', bin.pie])
  sh('gcc', ['-O0', '-rdynamic', '-no-pie', ...src, '-o', bin.nopie])
  sh('gcc', ['-O0', '-shared', '-fPIC', `-Wl,--version-script=${join(dir, 'lib.map')}`, '-Wl,-soname,libfx.so.1', join(dir, 'lib.c'), '-o', bin.lib])
})

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('openElf headers', () => {
  it('reads type, machine, segments and sections like readelf', () => {
    for (const [kind, path] of Object.entries(bin)) {
      const elf = openElf(path)
      expect(elf.machine).toBe('x86_64')
      expect(elf.type).toBe(kind === 'nopie' ? 'EXEC' : 'DYN')
      const loads = elf.programHeaders.filter((p) => p.type === PT_LOAD)
      expect(loads.map((p) => [p.offset, p.vaddr, p.filesz, p.memsz])).toEqual(
        readelfLoads(path).map((l) => [l.offset, l.vaddr, l.filesz, l.memsz]),
      )
      const names = sh('readelf', ['-SW', path])
        .split('\n')
        .map((l) => /^\s*\[\s*\d+\]\s+(\S+)/.exec(l)?.[1])
        .filter((n): n is string => !!n && n !== 'NULL' && n !== 'Name')
      expect(elf.sections.slice(1).map((s) => s.name)).toEqual(names)
      expect(elf.section('.text')?.length).toBe(elf.sectionHeader('.text')?.size)
      expect(elf.section('.bss')?.length).toBe(0)
      expect(elf.section('.no-such-section')).toBeUndefined()
    }
  })

  it('reads the GNU build ID', () => {
    for (const path of Object.values(bin)) {
      const ref = /Build ID: ([0-9a-f]+)/.exec(sh('readelf', ['-n', path]))?.[1]
      expect(ref).toBeTruthy()
      expect(openElf(path).buildId()).toBe(ref)
    }
  })

  it('accepts a Buffer as well as a path', () => {
    const fromFile = openElf(bin.pie)
    const fromBuf = openElf(bytesAt(bin.pie, 0, statSync(bin.pie).size))
    expect(fromBuf.path).toBeUndefined()
    expect(fromBuf.symbols().map(displayName)).toEqual(fromFile.symbols().map(displayName))
    expect(symbolFileOffset(fromBuf, 'exported_add')).toBe(symbolFileOffset(fromFile, 'exported_add'))
  })
})

describe('symbols', () => {
  it('matches readelf for .dynsym and .symtab, deduplicated', () => {
    for (const path of Object.values(bin)) {
      const ref = readelfSymbols(path)
      const elf = openElf(path)
      const syms = elf.symbols()
      for (const table of ['.dynsym', '.symtab'] as const) {
        for (const r of ref[table] ?? []) {
          if (!r.name || r.type === 'SECTION' || r.type === 'FILE') continue
          const name = r.name
          const found = syms.find(
            (s) => (displayName(s) === name || s.name === name) && s.value === r.value && s.defined === (r.ndx !== 'UND'),
          )
          expect(found, `${table} ${name} in ${path}`).toBeDefined()
          expect(found?.size).toBe(r.size)
        }
      }
      // no symbol listed twice with the same name, address and definedness across tables
      const dyn = new Set(syms.filter((s) => s.table === '.dynsym').map((s) => `${s.name}/${s.value}/${s.defined}`))
      for (const s of syms.filter((x) => x.table === '.symtab')) expect(dyn.has(`${s.name}/${s.value}/${s.defined}`)).toBe(false)
    }
  })

  it('finds exported symbols in .dynsym and static ones only in .symtab', () => {
    const elf = openElf(bin.pie)
    expect(elf.findSymbol('exported_add')).toMatchObject({ type: 'FUNC', bind: 'GLOBAL', defined: true, table: '.dynsym' })
    expect(elf.findSymbol('static_helper')).toMatchObject({ type: 'FUNC', bind: 'LOCAL', table: '.symtab' })
    expect(elf.findSymbol('nope_not_here')).toBeUndefined()
    expect(elf.findSymbol('')).toBeUndefined()
  })

  it('reports versions and resolves versioned names', () => {
    const elf = openElf(bin.lib)
    const ref = readelfSymbols(bin.lib)['.dynsym']
    const v1 = ref.find((r) => r.name === 'foo@VERS_1')!
    const v2 = ref.find((r) => r.name === 'foo@@VERS_2')!
    expect(elf.findSymbol('foo')).toMatchObject({ value: v2.value, version: 'VERS_2', defaultVersion: true })
    expect(elf.findSymbol('foo@@VERS_2')?.value).toBe(v2.value)
    expect(elf.findSymbol('foo@VERS_1')).toMatchObject({ value: v1.value, version: 'VERS_1', defaultVersion: false })
    expect(elf.findSymbol('foo@@VERS_1')).toBeUndefined()
    expect(elf.findSymbol('foo@VERS_9')).toBeUndefined()
    expect(elf.findSymbol('lib_add@@VERS_1')).toMatchObject({ name: 'lib_add', version: 'VERS_1' })
    const dynNames = elf.symbols().filter((s) => s.table === '.dynsym').map(displayName)
    expect(dynNames).toEqual(expect.arrayContaining(['foo@VERS_1', 'foo@@VERS_2', 'lib_add@@VERS_1', 'lib_magic@@VERS_1']))
    // a versioned query against a file without version info matches the base name
    expect(openElf(bin.pie).findSymbol('exported_add@@ANY')?.name).toBe('exported_add')
  })

  it('reports undefined imports with their version and library', () => {
    const elf = openElf(bin.pie)
    const p = elf.findSymbol('printf')
    expect(p).toMatchObject({ defined: false, version: 'GLIBC_2.2.5', library: 'libc.so.6' })
  })

  it('refuses to guess between two static functions of the same name', () => {
    const elf = openElf(bin.nopie)
    const both = elf.symbols().filter((s) => s.name === 'dup_helper')
    expect(both).toHaveLength(2)
    expect(() => elf.findSymbol('dup_helper')).toThrow(NotFoundError)
    expect(() => elf.findSymbol('dup_helper')).toThrow(/ambiguous.*dup_helper/)
  })
})

describe('symbolFileOffset', () => {
  it('equals readelf value - p_vaddr + p_offset and points at the function bytes (PIE, non-PIE, shared)', () => {
    const cases: [string, string[]][] = [
      [bin.pie, ['exported_add', 'static_helper', 'magic_fn', 'main', 'other_dup']],
      [bin.nopie, ['exported_add', 'static_helper', 'magic_fn', 'main', 'other_dup']],
      [bin.lib, ['lib_add', 'lib_static', 'lib_magic', 'foo@VERS_1', 'foo@@VERS_2']],
    ]
    for (const [path, names] of cases) {
      const elf = openElf(path)
      const ref = readelfSymbols(path)
      for (const name of names) {
        const r = [...(ref['.symtab'] ?? []), ...(ref['.dynsym'] ?? [])].find((x) => x.name === name)!
        expect(r, name).toBeDefined()
        const off = symbolFileOffset(elf, name)
        expect(off, `${name} in ${path}`).toBe(refOffset(path, r.value))
        const plain = name.replace(/@.*/, '')
        const want = objdumpBytes(path, plain.startsWith('foo') ? (name.includes('@@') ? 'foo@@VERS_2' : 'foo@VERS_1') : plain, 8)
        expect(bytesAt(path, off, 8).equals(want), `bytes of ${name} in ${path}`).toBe(true)
      }
    }
  })

  it('finds the known instruction sequence at the computed offset', () => {
    expect(bytesAt(bin.pie, symbolFileOffset(openElf(bin.pie), 'magic_fn'), 8)).toEqual(MAGIC_MAIN)
    expect(bytesAt(bin.nopie, symbolFileOffset(openElf(bin.nopie), 'magic_fn'), 8)).toEqual(MAGIC_MAIN)
    expect(bytesAt(bin.lib, symbolFileOffset(openElf(bin.lib), 'lib_magic'), 8)).toEqual(MAGIC_LIB)
  })

  it('adds an offset inside the function and checks it against the size', () => {
    const elf = openElf(bin.nopie)
    const base = symbolFileOffset(elf, 'magic_fn')
    expect(symbolFileOffset(elf, 'magic_fn', { offset: 7 })).toBe(base + 7)
    expect(bytesAt(bin.nopie, symbolFileOffset(elf, 'magic_fn', { offset: 7 }), 1)[0]).toBe(0xc3)
    expect(() => symbolFileOffset(elf, 'magic_fn', { offset: 8 })).toThrow(InvalidArgumentError)
    expect(() => symbolFileOffset(elf, 'magic_fn', { offset: -1 })).toThrow(InvalidArgumentError)
    expect(() => symbolFileOffset(elf, 'magic_fn', { offset: 1.5 })).toThrow(InvalidArgumentError)
    const sym = elf.findSymbol('exported_add')!
    expect(symbolFileOffset(elf, sym)).toBe(symbolFileOffset(elf, 'exported_add'))
  })

  it('addressToFileOffset maps addresses through PT_LOAD', () => {
    const elf = openElf(bin.nopie)
    const sym = elf.findSymbol('exported_add')!
    expect(addressToFileOffset(elf, sym.value)).toBe(refOffset(bin.nopie, sym.value))
    expect(() => addressToFileOffset(elf, 0x10)).toThrow(InvalidArgumentError)
    expect(() => addressToFileOffset(elf, elf.findSymbol('big_bss')!.value)).toThrow(/bss/)
  })

  it('gives clear errors for undefined, missing, thread-local and .bss symbols', () => {
    const elf = openElf(bin.pie)
    const undef = (() => {
      try {
        symbolFileOffset(elf, 'printf')
      } catch (e) {
        return e
      }
    })()
    expect(undef).toBeInstanceOf(NotFoundError)
    expect((undef as Error).message).toBe(
      `symbol printf is undefined in ${bin.pie} (imported from libc.so.6, not defined); probe the library that defines it`,
    )
    expect(() => symbolFileOffset(elf, 'no_such_fn')).toThrow(NotFoundError)
    expect(() => symbolFileOffset(elf, 'no_such_fn')).toThrow(/not found in .*\.dynsym \(\d+ entries\), \.symtab/)
    expect(() => symbolFileOffset(elf, 'tls_var')).toThrow(ElfError)
    expect(() => symbolFileOffset(elf, 'tls_var')).toThrow(/thread-local/)
    expect(() => symbolFileOffset(elf, 'big_bss')).toThrow(/zero-filled/)
  })

  it('works on a stripped binary through .dynsym', () => {
    const stripped = join(dir, 'stripped')
    sh('strip', ['-o', stripped, bin.pie])
    const elf = openElf(stripped)
    expect(elf.sections.some((s) => s.name === '.symtab')).toBe(false)
    expect(symbolFileOffset(elf, 'magic_fn')).toBe(symbolFileOffset(openElf(bin.pie), 'magic_fn'))
    expect(() => symbolFileOffset(elf, 'static_helper')).toThrow(/no \.symtab \(stripped\?\)/)
  })
})

describe('real binaries', () => {
  function ssLWriteRef(path: string): RefSymbol {
    const line = sh('readelf', ['--dyn-syms', '-W', path])
      .split('\n')
      .find((l) => /\sSSL_write(@@?\S+)?(\s+\(\d+\))?$/.test(l) && !/\sUND\s/.test(l))
    const m = /^\s*\d+:\s+([0-9a-f]+)\s+(\d+)\s+(\w+)/.exec(line ?? '')
    if (!m) throw new Error(`readelf: no SSL_write in ${path}`)
    return { value: parseInt(m[1], 16), size: Number(m[2]), type: m[3], bind: '', ndx: '', name: 'SSL_write' }
  }

  function checkLookup(path: string): ElfFile {
    const before = process.memoryUsage()
    const t0 = performance.now()
    const elf = openElf(path)
    const sym = elf.findSymbol('SSL_write')
    const off = symbolFileOffset(elf, 'SSL_write')
    const took = performance.now() - t0
    const after = process.memoryUsage()
    expect(took).toBeLessThan(1000)
    expect(sym).toMatchObject({ name: 'SSL_write', type: 'FUNC', defined: true, table: '.dynsym' })
    const ref = ssLWriteRef(path)
    expect(sym?.value).toBe(ref.value)
    expect(off).toBe(refOffset(path, ref.value))
    const size = statSync(path).size
    // read the headers, .dynsym and .dynstr only: a small part of the file
    expect(elf.bytesRead).toBeLessThan(Math.max(size / 4, 64 * 1024))
    expect(after.heapUsed + after.external - (before.heapUsed + before.external)).toBeLessThan(64 * 1024 * 1024)
    const want = objdumpBytes(path, 'SSL_write', 8, [ref.value, ref.value + 16])
    expect(bytesAt(path, off, 8).equals(want)).toBe(true)
    return elf
  }

  it('finds SSL_write in the node binary quickly, without reading the whole file', () => {
    const elf = checkLookup(process.execPath)
    expect(elf.bytesRead).toBeLessThan(statSync(process.execPath).size / 8)
  })

  it('finds SSL_write@@OPENSSL_3.0.0 in libssl.so.3', (ctx) => {
    let path: string
    try {
      path = resolveLibrary('libssl.so.3')
    } catch {
      ctx.skip()
      return
    }
    const elf = checkLookup(path)
    const ref = sh('readelf', ['--dyn-syms', '-W', path]).match(/\sSSL_write@@(\S+)/)?.[1]
    expect(elf.findSymbol('SSL_write')?.version).toBe(ref)
    expect(elf.findSymbol(`SSL_write@@${ref}`)?.value).toBe(elf.findSymbol('SSL_write')?.value)
  })

  it('handles libc IFUNCs and multiple versions of a symbol', () => {
    const libc = openElf(resolveLibrary('libc.so.6'))
    const dyn = sh('readelf', ['--dyn-syms', '-W', libc.path!])
    const def = /^\s*\d+:\s+([0-9a-f]+)\s+\d+\s+(\w+)\s+\w+\s+\w+\s+\d+\s+memcpy@@(\S+)/m.exec(dyn)
    expect(def).toBeTruthy()
    const sym = libc.findSymbol('memcpy')!
    expect(sym.value).toBe(parseInt(def![1], 16))
    expect(sym.type).toBe(def![2] === 'IFUNC' ? 'IFUNC' : 'FUNC')
    expect(sym.version).toBe(def![3])
    expect(symbolFileOffset(libc, 'memcpy')).toBe(refOffset(libc.path!, sym.value))
  })
})

describe('file handling', () => {
  it('does not hang on a FIFO and rejects non-files', () => {
    const fifo = join(dir, 'fifo')
    sh('mkfifo', [fifo])
    expect(() => openElf(fifo)).toThrow(/not a regular file/)
    expect(() => openElf(dir)).toThrow(ElfError)
    expect(() => openElf(join(dir, 'missing'))).toThrow(NotFoundError)
    expect(() => openElf('')).toThrow(InvalidArgumentError)
  })

  it('notices a binary replaced on disk between calls', () => {
    const sub = join(dir, 'replace')
    mkdirSync(sub)
    const p = join(sub, 'bin')
    writeFileSync(p, bytesAt(bin.pie, 0, statSync(bin.pie).size))
    const elf = openElf(p)
    writeFileSync(p, bytesAt(bin.nopie, 0, statSync(bin.nopie).size))
    expect(() => elf.symbols()).toThrow(/changed on disk/)
  })
})
