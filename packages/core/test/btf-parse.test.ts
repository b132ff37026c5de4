import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { BtfError, InvalidArgumentError, NotFoundError } from '../src/errors.js'
import { Btf, loadKernelBtf, parseBtf, readElfBtf, type BtfType } from '../src/btf/index.js'
import { BtfBuilder } from './fixtures/btf/builder.js'
import { bpftoolRaw, buildFixture, findTool, isCI, toolGate, type Fixture, type RawType } from './fixtures/btf/toolchain.js'

const gate = toolGate('BTF parse tests', {
  clang: ['clang'],
  objcopy: ['llvm-objcopy'],
  bpftool: ['bpftool'],
})
if (!gate.ok && isCI()) {
  it('has the BPF toolchain (clang, llvm-objcopy, bpftool)', () => {
    throw new Error(gate.reason)
  })
}

const KIND_UPPER_TO_LOWER: Record<string, string> = {
  int: 'int',
  ptr: 'ptr',
  array: 'array',
  struct: 'struct',
  union: 'union',
  enum: 'enum',
  enum64: 'enum64',
  fwd: 'fwd',
  typedef: 'typedef',
  volatile: 'volatile',
  const: 'const',
  restrict: 'restrict',
  func: 'func',
  func_proto: 'func_proto',
  var: 'var',
  datasec: 'datasec',
  float: 'float',
  decl_tag: 'decl_tag',
  type_tag: 'type_tag',
}

/** Differences between our parse of a type and bpftool's raw dump of it. */
function diffType(btf: Btf, r: RawType): string[] {
  const t: BtfType = btf.typeById(r.id)
  const errs: string[] = []
  const eq = (what: string, ours: unknown, theirs: unknown) => {
    if (String(ours) !== String(theirs)) errs.push(`[${r.id}] ${what}: ours=${String(ours)} bpftool=${String(theirs)}`)
  }
  eq('kind', t.kind, KIND_UPPER_TO_LOWER[r.kind] ?? r.kind)
  eq('name', t.name, r.name)
  const a = r.attrs
  switch (t.kind) {
    case 'int': {
      eq('size', t.size, a.size)
      eq('bits_offset', t.bitOffset, a.bits_offset)
      eq('nr_bits', t.bits, a.nr_bits)
      const enc = t.signed ? 'SIGNED' : t.char ? 'CHAR' : t.bool ? 'BOOL' : '(none)'
      eq('encoding', enc, a.encoding)
      break
    }
    case 'ptr':
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
      eq('type_id', t.type, a.type_id)
      break
    case 'array':
      eq('type_id', t.type, a.type_id)
      eq('index_type_id', t.indexType, a.index_type_id)
      eq('nr_elems', t.nelems, a.nr_elems)
      break
    case 'struct':
    case 'union':
      eq('size', t.size, a.size)
      eq('vlen', t.members.length, a.vlen)
      t.members.forEach((m, i) => {
        const rm = r.members[i]
        if (!rm) return errs.push(`[${r.id}] member ${i} missing in bpftool output`)
        eq(`member ${i} name`, m.name, rm.name)
        eq(`member ${i} type`, m.type, rm.type)
        eq(`member ${i} bits_offset`, m.bitOffset, rm.bitsOffset)
        eq(`member ${i} bitfield_size`, m.bitfieldSize, rm.bitfieldSize ?? 0)
      })
      break
    case 'enum':
    case 'enum64':
      eq('size', t.size, a.size)
      eq('encoding', t.signed ? 'SIGNED' : 'UNSIGNED', a.encoding)
      eq('vlen', t.values.length, a.vlen)
      t.values.forEach((v, i) => {
        eq(`value ${i} name`, v.name, r.members[i]?.name)
        eq(`value ${i}`, BigInt(v.value), r.members[i]?.val)
      })
      break
    case 'fwd':
      eq('fwd_kind', t.union ? 'union' : 'struct', a.fwd_kind)
      break
    case 'func':
      eq('type_id', t.type, a.type_id)
      eq('linkage', t.linkage, a.linkage)
      break
    case 'func_proto': {
      eq('ret_type_id', t.returnType, a.ret_type_id)
      eq('vlen', t.params.length + (t.variadic ? 1 : 0), a.vlen)
      t.params.forEach((p, i) => {
        eq(`param ${i} name`, p.name, r.members[i]?.name)
        eq(`param ${i} type`, p.type, r.members[i]?.type)
      })
      if (t.variadic) eq('variadic marker type', 0, r.members[t.params.length]?.type)
      break
    }
    case 'var':
      eq('type_id', t.type, a.type_id)
      eq('linkage', t.linkage, a.linkage)
      break
    case 'datasec':
      eq('size', t.size, a.size)
      eq('vlen', t.vars.length, a.vlen)
      t.vars.forEach((v, i) => {
        eq(`var ${i} type`, v.type, r.members[i]?.type)
        eq(`var ${i} offset`, v.offset, r.members[i]?.offset)
        eq(`var ${i} size`, v.size, r.members[i]?.size)
      })
      break
    case 'float':
      eq('size', t.size, a.size)
      break
    case 'decl_tag':
      eq('type_id', t.type, a.type_id)
      eq('component_idx', t.componentIdx, a.component_idx)
      break
    case 'void':
      break
  }
  return errs
}

function crossCheckAll(btf: Btf, raw: Map<number, RawType>): string[] {
  const errs: string[] = []
  expect(btf.typeCount - 1).toBe(raw.size)
  for (const r of raw.values()) {
    errs.push(...diffType(btf, r))
    if (errs.length > 20) break
  }
  return errs
}

describe.skipIf(!gate.ok)('BTF parser vs bpftool (fixture object)', () => {
  let fx: Fixture
  let btf: Btf
  beforeAll(() => {
    fx = buildFixture(gate.tools)
    btf = parseBtf(fx.raw)
  })

  it('matches bpftool for every type (names, kinds, sizes, members, offsets)', () => {
    const raw = bpftoolRaw(gate.tools.bpftool, fx.obj)
    expect(crossCheckAll(btf, raw)).toEqual([])
    // and the fixture really exercises the interesting kinds
    const kinds = new Set(btf.types.map((t) => t.kind))
    for (const k of ['int', 'ptr', 'array', 'struct', 'union', 'enum', 'typedef', 'volatile', 'const', 'func', 'func_proto', 'var', 'datasec', 'float'])
      expect(kinds, k).toContain(k)
  })

  it('extracts the same .BTF from the ELF object itself', () => {
    const elf = readElfBtf(readFileSync(fx.obj))
    expect(Buffer.compare(elf.btf, fx.raw)).toBe(0)
    expect(elf.btfExt?.length).toBeGreaterThan(0)
    expect(elf.sectionSizes.get('.data')).toBe(72)
  })

  it('finds types by name and kind, resolves qualifiers, computes sizes', () => {
    const outer = btf.findByName('outer', 'struct')
    expect(outer.kind).toBe('struct')
    expect(outer.size).toBe(208)
    expect(btf.sizeOf(outer.id)).toBe(208)
    expect(btf.findByName('outer')).toBe(outer)
    expect(btf.findAllByName('outer')).toEqual([outer])
    expect(btf.tryFindByName('nope')).toBeUndefined()
    expect(() => btf.findByName('nope')).toThrow(NotFoundError)
    expect(() => btf.findByName('outer', 'union')).toThrow(NotFoundError)

    const named = btf.findByName('named_t')
    expect(named.kind).toBe('typedef')
    const target = btf.resolve(named)
    expect(target.kind).toBe('struct')
    expect(target.name).toBe('')
    expect(btf.sizeOf(named.id)).toBe(20)

    // const named_t named -> CONST -> TYPEDEF -> STRUCT
    const member = outer.members.find((m) => m.name === 'named')!
    expect(btf.kindOf(member.type)).toBe('const')
    expect(btf.resolveId(member.type)).toBe(target.id)
    expect(btf.typeName(member.type)).toBe('const named_t')
    expect(btf.declaration(member.type, 'named')).toBe('const named_t named')

    const byName = new Map(outer.members.map((m) => [m.name, m]))
    expect(btf.declaration(byName.get('matrix')!.type, 'matrix')).toBe('char matrix[2][8]')
    expect(btf.declaration(byName.get('ptr')!.type, 'ptr')).toBe('void *ptr')
    expect(btf.declaration(byName.get('counter')!.type, 'counter')).toBe('volatile u64 counter')
    expect(btf.sizeOf(byName.get('matrix')!.type)).toBe(16)
    expect(btf.sizeOf(byName.get('ptr')!.type)).toBe(8)
    expect(byName.get('fl')!.bitOffset).toBe(1344)

    const flags = btf.findByName('flags', 'struct')
    const j = flags.members.find((m) => m.name === 'j')!
    expect([j.bitOffset, j.bitfieldSize]).toEqual([137, 45])

    const kind = btf.findByName('kind', 'enum')
    expect(kind.values.map((v) => [v.name, v.value])).toEqual([
      ['KIND_NONE', 0],
      ['KIND_EXEC', 1],
      ['KIND_EXIT', 2],
      ['KIND_NEG', 4294967293], // clang 14 marks the enum unsigned
    ])
    const fn = btf.findByName('handle_getpid', 'func')
    expect(fn.linkage).toBe('global')
    const proto = btf.typeById(fn.type)
    expect(proto.kind === 'func_proto' && proto.params.map((p) => p.name)).toEqual(['ctx'])

    expect(() => btf.sizeOf(fn.id)).toThrow(BtfError)
    expect(() => btf.typeById(btf.typeCount)).toThrow(InvalidArgumentError)
    expect(() => btf.typeById(-1)).toThrow(InvalidArgumentError)
    expect(btf.typeById(0).kind).toBe('void')
    expect(btf.types.length).toBe(btf.typeCount)
  })

  it('lists global variables of .data/.rodata/.bss and custom sections', () => {
    const vars = btf.variables()
    const summary = vars.map((v) => [v.section, v.name, v.size, btf.typeName(v.typeId)])
    expect(summary).toEqual([
      ['.bss', 'counter_bss', 8, 'u64'],
      ['.bss', 'bss_flags', 24, 'struct flags'],
      ['.bss', 'bss_packed', 20, 'struct packed'],
      ['.bss', 'bss_named', 20, 'named_t'],
      ['.bss', 'unused_event', 8, 'const struct event *'],
      ['.data', 'last_event', 64, 'struct event'],
      ['.data', 'data_value', 8, 'union value'],
      ['.data.custom', 'custom_val', 4, 'u32'],
      ['.rodata', 'cfg_pid', 4, 'const volatile u32'],
      ['.rodata', 'cfg_inner', 8, 'const volatile struct inner'],
      ['.rodata.custom', 'ro_custom', 8, 'const volatile u64'],
    ])
    // unlinked .o: clang leaves DATASEC offsets at 0 ...
    expect(vars.every((v) => v.offset === 0)).toBe(true)
    expect(btf.datasecs().find((d) => d.name === '.bss')!.size).toBe(0)
    // ... the ELF symbol table has the real ones (what libbpf uses)
    const elf = readElfBtf(readFileSync(fx.obj))
    const fixed = btf.variables({ symbolOffset: elf.symbolOffset })
    const data = fixed.filter((v) => v.section === '.data')
    expect(data.map((v) => [v.name, v.offset])).toEqual([
      ['last_event', 0],
      ['data_value', 64],
    ])
    const readelf = findTool('llvm-readelf')
    if (readelf) {
      const syms = execFileSync(readelf, ['-s', '--wide', fx.obj], { encoding: 'utf8' })
      for (const v of fixed) {
        const m = new RegExp(`^\\s*\\d+: ([0-9a-f]+)\\s+(\\d+) OBJECT .* ${v.name}$`, 'm').exec(syms)
        expect(m, v.name).not.toBeNull()
        expect(v.offset, v.name).toBe(parseInt(m![1], 16))
        expect(v.size, v.name).toBe(Number(m![2]))
      }
    }
    expect(btf.variable('cfg_inner').section).toBe('.rodata')
    expect(() => btf.variable('points')).toThrow(NotFoundError) // a map, not a variable
    const all = btf.variables({ allSections: true }).map((v) => v.name)
    expect(all).toContain('points')
    expect(all).toContain('LICENSE')
  })
})

describe('BTF parser on hand-built BTF', () => {
  it('parses every kind, legacy bitfields, ENUM64 and variadic protos', () => {
    const b = new BtfBuilder()
    const int = b.int('int', 4, { signed: true })
    const u8 = b.int('unsigned char', 1)
    const legacy = b.int('int', 4, { signed: true, bits: 3, offset: 2 })
    const s = b.struct('legacy', 4, [
      { name: 'a', type: legacy, bitOffset: 0 },
      { name: 'b', type: u8, bitOffset: 8 },
    ])
    const e64 = b.enum64('big', 8, [
      ['BIG_NEG', -2n],
      ['BIG_HUGE', 0x7fffffffffffffffn],
    ], true)
    const e = b.enum('small', 1, [['S_A', -1]], true)
    const fwd = b.fwd('opaque', true)
    const proto = b.funcProto(int, [
      ['x', int],
      ['', 0],
    ])
    const f = b.func('vararg', proto, 2)
    const tag = b.declTag('my_tag', s, 0)
    const tt = b.typeTag('user', int)
    const p = b.ptr(tt)
    const fl = b.float('double', 8)
    const r = b.restrict(p)
    const v = b.var('glob', s, 0)
    const ds = b.datasec('.data.mine', 4, [[v, 0, 4]])
    const btf = parseBtf(b.build())
    expect(btf.typeCount).toBe(ds + 1)
    const ls = btf.typeById(s)
    expect(ls.kind === 'struct' && ls.members.map((m) => [m.name, m.bitOffset, m.bitfieldSize])).toEqual([
      ['a', 0, 0],
      ['b', 8, 0],
    ])
    const li = btf.typeById(legacy)
    expect(li.kind === 'int' && [li.bits, li.bitOffset, li.signed]).toEqual([3, 2, true])
    const big = btf.typeById(e64)
    expect(big.kind === 'enum64' && big.values.map((x) => x.value)).toEqual([-2n, 0x7fffffffffffffffn])
    const sm = btf.typeById(e)
    expect(sm.kind === 'enum' && sm.values[0].value).toBe(-1)
    expect(btf.typeById(fwd)).toMatchObject({ kind: 'fwd', union: true, name: 'opaque' })
    const pr = btf.typeById(proto)
    expect(pr.kind === 'func_proto' && [pr.params.length, pr.variadic]).toEqual([1, true])
    expect(btf.typeById(f)).toMatchObject({ kind: 'func', linkage: 'extern' })
    expect(btf.typeById(tag)).toMatchObject({ kind: 'decl_tag', componentIdx: 0, type: s })
    expect(btf.resolve(tt).id).toBe(int)
    expect(btf.typeName(r)).toBe('int *restrict')
    expect(btf.sizeOf(fl)).toBe(8)
    expect(btf.variables().map((x) => [x.name, x.section, x.size, x.linkage])).toEqual([['glob', '.data.mine', 4, 'static']])
    expect(btf.findByName('opaque').kind).toBe('fwd')
    expect(btf.typeName(f)).toBe('int vararg(int x, ...)')
  })

  it('parses big-endian BTF the same way', () => {
    const mk = (bigEndian: boolean) => {
      const b = new BtfBuilder()
      const u32 = b.int('unsigned int', 4)
      const arr = b.array(u32, 7)
      b.struct('s', 32, [
        { name: 'x', type: u32, bitOffset: 0 },
        { name: 'y', type: arr, bitOffset: 32 },
      ])
      return parseBtf(b.build({ bigEndian }))
    }
    const le = mk(false)
    const be = mk(true)
    expect(be.byteOrder).toBe('big')
    expect(le.byteOrder).toBe('little')
    expect(be.types).toEqual(le.types)
  })

  it('prefers complete definitions over forward declarations', () => {
    const b = new BtfBuilder()
    b.fwd('thing')
    const int = b.int('int', 4, { signed: true })
    const s = b.struct('thing', 4, [{ name: 'v', type: int, bitOffset: 0 }])
    const btf = parseBtf(b.build())
    expect(btf.findByName('thing').id).toBe(s)
    expect(btf.findAllByName('thing').map((t) => t.kind)).toEqual(['fwd', 'struct'])
  })
})

const haveVmlinux = existsSync('/sys/kernel/btf/vmlinux')
const bpftool = findTool('bpftool')
describe.skipIf(!haveVmlinux)('kernel BTF (/sys/kernel/btf/vmlinux)', () => {
  let btf: Btf
  let parseMs = 0
  beforeAll(() => {
    const raw = readFileSync('/sys/kernel/btf/vmlinux')
    const t0 = performance.now()
    btf = parseBtf(raw)
    parseMs = performance.now() - t0
  })

  it('parses quickly', () => {
    const t0 = performance.now()
    const ts = btf.findByName('task_struct', 'struct')
    const indexMs = performance.now() - t0
    console.log(`vmlinux: ${btf.typeCount - 1} types, parse ${parseMs.toFixed(1)} ms, name index ${indexMs.toFixed(1)} ms`)
    expect(ts.size).toBeGreaterThan(1000)
    expect(parseMs).toBeLessThan(1000)
    expect(loadKernelBtf()).toBe(loadKernelBtf())
  })

  it.skipIf(!bpftool)('task_struct and sk_buff match bpftool', () => {
    const text = execFileSync(bpftool!, ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'raw'], { encoding: 'utf8', maxBuffer: 256 << 20 })
    for (const name of ['task_struct', 'sk_buff']) {
      const m = new RegExp(`^\\[(\\d+)\\] STRUCT '${name}' size=(\\d+) vlen=(\\d+)$`, 'm').exec(text)
      expect(m, name).not.toBeNull()
      const t = btf.findByName(name, 'struct')
      expect(t.id).toBe(Number(m![1]))
      expect(t.size).toBe(Number(m![2]))
      expect(btf.sizeOf(t.id)).toBe(Number(m![2]))
      expect(t.members.length).toBe(Number(m![3]))
    }
  })

  it.skipIf(!bpftool)('every vmlinux type matches bpftool', () => {
    const t0 = performance.now()
    const raw = bpftoolRaw(bpftool!, '/sys/kernel/btf/vmlinux')
    const errs = crossCheckAll(btf, raw)
    expect(errs).toEqual([])
    console.log(`vmlinux cross-check of ${raw.size} types: ${(performance.now() - t0).toFixed(0)} ms`)
    // sizes of every sized type are computable
    let sized = 0
    for (const t of btf.types) {
      if (t.kind === 'struct' || t.kind === 'union' || t.kind === 'typedef' || t.kind === 'array') {
        try {
          btf.sizeOf(t.id)
          sized++
        } catch (e) {
          // only types that really have no size: function typedefs, opaque (fwd) structs, void
          expect(e).toBeInstanceOf(BtfError)
          let base = btf.resolve(t.id)
          while (base.kind === 'array') base = btf.resolve(base.type)
          expect(['func_proto', 'fwd', 'void'], btf.typeName(t.id)).toContain(base.kind)
        }
      }
    }
    expect(sized).toBeGreaterThan(10000)
  }, 120_000)
})
