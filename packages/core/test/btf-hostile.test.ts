/**
 * Corrupt and hostile BTF: whatever the bytes, only BtfError may escape from
 * parsing and from everything done with the result, and it must be quick.
 */
import { describe, expect, it } from 'vitest'
import { BtfError } from '../src/errors.js'
import { codecForType, generateTypes, parseBtf, type Btf } from '../src/btf/index.js'
import { BtfBuilder } from './fixtures/btf/builder.js'
import { buildFixture, toolGate } from './fixtures/btf/toolchain.js'

/** Run fn; a BtfError is fine, anything else (or an internal error) fails the test. */
function onlyBtfError(label: string, fn: () => unknown): boolean {
  try {
    fn()
    return true
  } catch (e) {
    if (!(e instanceof BtfError)) throw new Error(`${label}: ${(e as Error)?.constructor?.name} escaped: ${(e as Error)?.message}`, { cause: e })
    if (/internal error/.test(e.message)) throw new Error(`${label}: ${e.message}`, { cause: e })
    return false
  }
}

/** Parse and then poke at everything the API offers. */
function exercise(raw: Uint8Array, label: string, deep = true): Btf | undefined {
  let btf: Btf | undefined
  if (!onlyBtfError(`${label} parse`, () => (btf = parseBtf(raw)))) return undefined
  const b = btf!
  onlyBtfError(`${label} types`, () => b.types)
  onlyBtfError(`${label} variables`, () => b.variables({ allSections: true }))
  let codecs = 0
  for (let id = 0; id < Math.min(b.typeCount, 400); id++) {
    onlyBtfError(`${label} sizeOf ${id}`, () => b.sizeOf(id))
    onlyBtfError(`${label} resolve ${id}`, () => b.resolve(id))
    onlyBtfError(`${label} typeName ${id}`, () => b.typeName(id))
    const name = b.nameOf(id)
    if (name) onlyBtfError(`${label} findByName ${id}`, () => b.findByName(name))
    const k = b.kindOf(id)
    if (deep && codecs < 40 && (k === 'struct' || k === 'union' || k === 'datasec' || k === 'typedef' || k === 'array')) {
      codecs++
      onlyBtfError(`${label} codec ${id}`, () => {
        const c = codecForType(b, id)
        if (c.size > 1 << 20) return
        const view = new DataView(new ArrayBuffer(c.size))
        const v = c.decode(view, 0)
        c.encode(v, view, 0)
      })
    }
  }
  if (deep) onlyBtfError(`${label} gen`, () => generateTypes(b, { all: true }))
  return b
}

/** A BTF blob with most kinds, used as the seed for mutations. */
function seedBtf(): Buffer {
  const b = new BtfBuilder()
  const int = b.int('int', 4, { signed: true })
  const u8 = b.int('unsigned char', 1)
  const ch = b.int('char', 1, { signed: true, char: true })
  const u64 = b.int('unsigned long long', 8)
  const td = b.typedef('u64', u64)
  const arr = b.array(ch, 16)
  const e = b.enum('kind', 4, [
    ['A', 0],
    ['B', 7],
  ])
  const e64 = b.enum64('big', 8, [['H', 2n ** 40n]])
  const inner = b.struct('inner', 8, [
    { name: 'x', type: int, bitOffset: 0 },
    { name: 'f', type: u8, bitOffset: 32, bitfieldSize: 3 },
    { name: 'g', type: int, bitOffset: 35, bitfieldSize: 9 },
  ])
  const un = b.union('un', 8, [
    { name: 'a', type: td, bitOffset: 0 },
    { name: 'b', type: inner, bitOffset: 0 },
  ])
  const innerArr = b.array(inner, 2)
  const c = b.const(b.volatile(td))
  const ptr = b.ptr(inner)
  const fl = b.float('double', 8)
  const outer = b.struct('outer', 80, [
    { name: 'id', type: td, bitOffset: 0 },
    { name: 'name', type: arr, bitOffset: 64 },
    { name: 'k', type: e, bitOffset: 192 },
    { name: 'in', type: innerArr, bitOffset: 256 },
    { name: 'u', type: un, bitOffset: 384 },
    { name: 'c', type: c, bitOffset: 448 },
    { name: 'p', type: ptr, bitOffset: 512 },
    { name: 'd', type: fl, bitOffset: 576 },
  ])
  b.struct('holder', 8, [{ name: 'e', type: e64, bitOffset: 0 }])
  const proto = b.funcProto(int, [['ctx', ptr]])
  b.func('prog', proto)
  const v1 = b.var('glob', outer)
  const v2 = b.var('cnt', td)
  b.datasec('.bss', 88, [
    [v1, 0, 80],
    [v2, 80, 8],
  ])
  b.declTag('tag', outer, 1)
  b.typeTag('user', int)
  b.fwd('opaque')
  return b.build()
}

function rng(seed: number) {
  let s = seed >>> 0 || 1
  return (n: number) => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s % n
  }
}

describe('hostile BTF', () => {
  const seed = seedBtf()

  it('the seed itself is sound', () => {
    const btf = exercise(seed, 'seed')!
    expect(btf.typeCount).toBeGreaterThan(20)
    expect(codecForType(btf, 'outer').size).toBe(80)
  })

  it('random bytes', () => {
    const r = rng(1)
    for (let i = 0; i < 500; i++) {
      const len = r(300)
      const u8 = new Uint8Array(len)
      for (let j = 0; j < len; j++) u8[j] = r(256)
      // half of them get a plausible header
      if (i % 2 && len >= 24) {
        u8[0] = 0x9f
        u8[1] = 0xeb
        u8[2] = 1
        u8.set([24, 0, 0, 0], 4)
      }
      exercise(u8, `random#${i}`)
    }
  })

  it('every truncation is rejected', () => {
    for (let cut = 0; cut < seed.length; cut++) {
      let err: unknown
      try {
        parseBtf(seed.subarray(0, cut))
      } catch (e) {
        err = e
      }
      expect(err, `cut at ${cut}`).toBeInstanceOf(BtfError)
    }
  })

  it('header corruption: magic, version, lengths, alignment', () => {
    const bad = (patch: (dv: DataView) => void, re: RegExp) => {
      const copy = Buffer.from(seed)
      patch(new DataView(copy.buffer, copy.byteOffset, copy.byteLength))
      expect(() => parseBtf(copy)).toThrow(BtfError)
      expect(() => parseBtf(copy)).toThrow(re)
    }
    bad((dv) => dv.setUint16(0, 0x1234, true), /bad BTF magic 0x1234/)
    bad((dv) => dv.setUint8(2, 2), /unsupported BTF version 2/)
    bad((dv) => dv.setUint32(4, 8, true), /bad BTF header length 8/)
    bad((dv) => dv.setUint32(4, 0xffffffff, true), /bad BTF header length/)
    bad((dv) => dv.setUint32(12, 0xffffffff, true), /type section .* exceeds/)
    bad((dv) => dv.setUint32(8, 0xfffffff0, true), /type section .* exceeds/)
    bad((dv) => dv.setUint32(20, 0xffffffff, true), /string section .* exceeds/)
    bad((dv) => dv.setUint32(16, 0xffffffff, true), /string section .* exceeds/)
    bad((dv) => dv.setUint32(8, 2, true), /not 4-byte aligned/)
    bad((dv) => dv.setUint8(dv.byteLength - 1, 0x41), /not NUL-terminated/)
    expect(() => parseBtf(new Uint8Array(0))).toThrow(/too short/)
    expect(() => parseBtf(new Uint8Array(23))).toThrow(/too short/)
  })

  it('bad string offsets and type ids', () => {
    const b = new BtfBuilder()
    const int = b.int('int', 4, { signed: true })
    b.typedef('t', int)
    const good = b.build()
    const typeStart = 24
    const strLen = new DataView(good.buffer, good.byteOffset).getUint32(20, true)
    const typeLen = new DataView(good.buffer, good.byteOffset).getUint32(12, true)
    const patch = (at: number, v: number) => {
      const copy = Buffer.from(good)
      copy.writeUInt32LE(v >>> 0, at)
      return copy
    }
    // name_off of type 1 out of range
    expect(() => parseBtf(patch(typeStart, strLen))).toThrow(/type id 1: name string offset \d+ is outside/)
    expect(() => parseBtf(patch(typeStart, 0xffffffff))).toThrow(BtfError)
    // typedef pointing past the end (type 2's size_or_type is at 24 + 16 + 8)
    expect(() => parseBtf(patch(typeStart + 16 + 8, 3))).toThrow(/type id 2 refers to type id 3, but the last type id is 2/)
    expect(() => parseBtf(patch(typeStart + 16 + 8, 0xffffffff))).toThrow(BtfError)
    // unknown kind
    expect(() => parseBtf(patch(typeStart + 16 + 4, 20 << 24))).toThrow(/type id 2: unknown BTF kind 20/)
    expect(() => parseBtf(patch(typeStart + 16 + 4, 0))).toThrow(/unknown BTF kind 0/)
    // vlen far beyond the data
    expect(() => parseBtf(patch(typeStart + 16 + 4, (4 << 24) | 0xffff))).toThrow(/record needs \d+ bytes, only \d+ left/)
    // invalid INT encodings
    expect(() => parseBtf(patch(typeStart + 12, 200))).toThrow(/invalid INT/)
    expect(() => parseBtf(patch(typeStart + 8, 0))).toThrow(/invalid INT/)
    expect(typeLen).toBe(28)

    const m = new BtfBuilder()
    const i2 = m.int('int', 4)
    m.struct('s', 4, [{ name: 'x', type: i2, bitOffset: 0 }])
    const g2 = m.build()
    // member type id past the end: member record at 24 + 16 + 12, type at +4
    const c2 = Buffer.from(g2)
    c2.writeUInt32LE(99, 24 + 16 + 12 + 4)
    expect(() => parseBtf(c2)).toThrow(/type id 2 refers to type id 99/)
    const c3 = Buffer.from(g2)
    c3.writeUInt32LE(0xfffffff0, 24 + 16 + 12)
    expect(() => parseBtf(c3)).toThrow(/type id 2: member string offset/)
  })

  it('cycles and self-references are reported, not followed forever', () => {
    const b = new BtfBuilder()
    const self = b.nextId
    b.typedef('loop', self) // typedef loop loop;
    const a = b.nextId
    b.typedef('a', a + 1)
    b.const(a) // a -> const -> a
    const arr = b.nextId
    b.array(arr, 4) // int[4][4][4]... of itself
    const s1 = b.nextId
    b.struct('s1', 8, [{ name: 'next', type: s1 + 1, bitOffset: 0 }])
    b.struct('s2', 8, [{ name: 'prev', type: s1, bitOffset: 0 }])
    const me = b.nextId
    b.struct('me', 4, [{ name: 'me', type: me, bitOffset: 0 }])
    const v = b.var('v', self)
    b.datasec('.data', 4, [[v, 0, 4]])
    const btf = exercise(b.build(), 'cycles')!
    const t0 = performance.now()
    for (const id of [self, a, a + 1, arr, s1, s1 + 1, me]) {
      expect(() => codecForType(btf, id), String(id)).toThrow(BtfError)
    }
    expect(() => btf.resolve(self)).toThrow(/cycle/)
    expect(() => btf.sizeOf(a)).toThrow(/cycle/)
    expect(() => btf.sizeOf(arr)).toThrow(BtfError)
    expect(() => codecForType(btf, me)).toThrow(/nesting deeper than/)
    expect(() => generateTypes(btf, { types: ['loop'] })).toThrow(BtfError)
    expect(() => generateTypes(btf)).toThrow(BtfError)
    expect(btf.typeName(self)).toContain('loop')
    expect(performance.now() - t0).toBeLessThan(2000)
  })

  it('exponential type DAGs and huge arrays are cut off quickly', () => {
    const b = new BtfBuilder()
    let prev = b.int('int', 4, { signed: true })
    let size = 4
    for (let k = 0; k < 28; k++) {
      prev = b.struct(`s${k}`, size * 2, [
        { name: 'l', type: prev, bitOffset: 0 },
        { name: 'r', type: prev, bitOffset: size * 8 },
      ])
      size *= 2
    }
    const int = b.int('int', 4, { signed: true })
    const huge = b.array(int, 0xffffffff)
    const wide = b.int('int', 4, { signed: true })
    const beyond = b.struct('beyond', 4, [{ name: 'x', type: wide, bitOffset: 64 }])
    const badBits = b.struct('badbits', 4, [{ name: 'x', type: wide, bitOffset: 30, bitfieldSize: 8 }])
    const unaligned = b.struct('unaligned', 8, [{ name: 'x', type: wide, bitOffset: 3 }])
    const btf = parseBtf(b.build())
    const t0 = performance.now()
    expect(() => codecForType(btf, prev)).toThrow(/more than \d+ nodes/)
    expect(() => btf.sizeOf(huge)).toThrow(/larger than 4 GiB/)
    expect(() => codecForType(btf, huge)).toThrow(BtfError)
    expect(() => codecForType(btf, beyond)).toThrow(/exceeds the 4-byte size/)
    expect(() => codecForType(btf, badBits)).toThrow(/bitfield 'x'/)
    expect(() => codecForType(btf, unaligned)).toThrow(/not byte-aligned/)
    expect(performance.now() - t0).toBeLessThan(5000)
  })

  it('survives a seeded mutation fuzz (3000 mutants)', () => {
    const inputs: Buffer[] = [seed]
    const gate = toolGate('BTF fuzz (fixture seed)', { clang: ['clang'], objcopy: ['llvm-objcopy'] })
    if (gate.ok) inputs.push(buildFixture(gate.tools).raw)
    const r = rng(0xb7f)
    const specials = [0, 1, 2, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 24, 40, 64]
    let parsed = 0
    let worst = 0
    const t0 = performance.now()
    for (let i = 0; i < 3000; i++) {
      const base = inputs[i % inputs.length]
      const m = Buffer.from(base)
      const n = 1 + r(4)
      for (let k = 0; k < n; k++) {
        switch (r(5)) {
          case 0:
            m[r(m.length)] ^= 1 << r(8)
            break
          case 1:
            m[r(m.length)] = r(256)
            break
          case 2: {
            const at = r(m.length - 3) & ~3
            m.writeUInt32LE(r(3) ? specials[r(specials.length)] : r(0x10000), at)
            break
          }
          case 3: {
            // small type-ish numbers into the type section: ids, offsets, vlens
            const at = 24 + (r(Math.max(1, m.length - 28)) & ~3)
            m.writeUInt32LE(r(2) ? r(120) : (r(20) << 24) | r(8), Math.min(at, m.length - 4))
            break
          }
          default: {
            const a = 24 + r(m.length - 28)
            const bb = 24 + r(m.length - 28)
            const tmp = m.readUInt32LE(a)
            m.writeUInt32LE(m.readUInt32LE(bb), a)
            m.writeUInt32LE(tmp, bb)
          }
        }
      }
      const input = r(10) === 0 ? m.subarray(0, r(m.length)) : m
      const s = performance.now()
      if (exercise(input, `mutant#${i}`, i % 3 === 0)) parsed++
      worst = Math.max(worst, performance.now() - s)
    }
    const total = performance.now() - t0
    console.log(`fuzz: 3000 mutants, ${parsed} still parsed, worst ${worst.toFixed(1)} ms, total ${total.toFixed(0)} ms`)
    expect(parsed).toBeGreaterThan(100) // the mutations must not all die in the header check
    expect(worst).toBeLessThan(2000)
  }, 120_000)
})
