/**
 * Layout IR: what a BTF type looks like in memory and which JS value it maps
 * to. Built once per (type, options); both the runtime codec compiler
 * (codec.ts) and the static TypeScript generator (gen.ts) emit code from it.
 *
 * JS mapping (little-endian target data):
 *   - 1/2/4-byte ints, enums, floats          → number
 *   - 8-byte ints                              → bigint (int64: 'bigint', default) or number (int64: 'number';
 *                                                decoding a value beyond ±MAX_SAFE_INTEGER throws InvalidArgumentError)
 *   - 16-byte ints (__int128)                  → bigint
 *   - _Bool                                    → boolean
 *   - pointers                                 → bigint (address)
 *   - ENUM64                                   → bigint (number when its size is ≤ 4)
 *   - 8-byte ENUM (values are 32-bit)          → number
 *   - bitfields ≤ 32 bits                      → number (boolean for _Bool)
 *   - bitfields > 32 bits                      → like 8-byte ints (int64 option)
 *   - char arrays                              → string (up to the first NUL; UTF-8) or Uint8Array (charArrays: 'bytes')
 *   - other arrays of numeric scalars          → typed array of the element type (Uint8Array, Int16Array, Uint32Array,
 *                                                Float64Array, BigUint64Array, ...; Float64Array for 8-byte ints when
 *                                                int64: 'number'); always a copy, never a view of the record
 *   - arrays of anything else                  → plain JS array
 *   - struct                                   → object with one property per member, in member order
 *   - union                                    → object with every member decoded from the same bytes
 *   - anonymous struct/union members           → their members are merged into the parent object (C11 semantics)
 *
 * "char arrays" are arrays whose element is a 1-byte INT reached either
 * directly as `char` / `signed char` / `unsigned char`, or through a typedef
 * whose name contains "char" (e.g. `uchar_t`); `u8` / `__u8` arrays are bytes
 * (Uint8Array) and `s8` arrays Int8Array.
 */
import { BtfError } from '../errors.js'
import type { Btf, BtfType } from './parse.js'

export interface CodecOptions {
  /** how 8-byte integers (and bitfields wider than 32 bits) map to JS. Default 'bigint'. */
  int64?: 'bigint' | 'number'
  /** char arrays as strings (default) or as Uint8Array */
  charArrays?: 'string' | 'bytes'
}

export interface NumNode {
  readonly t: 'num'
  readonly size: number
  /** value representation in memory */
  readonly repr: 'int' | 'float' | 'bool'
  readonly signed: boolean
  /** JS value type */
  readonly out: 'number' | 'bigint' | 'boolean'
  /** enums: accept both the signed and unsigned range on encode */
  readonly lenient: boolean
  /** ENUM / ENUM64 type id, for documentation and generated enum objects */
  readonly enumId?: number
  /** 'u32', 'i64', 'f32', 'bool', 'ptr', 'enum' ... for messages */
  readonly what: string
}
export interface BitsNode {
  readonly t: 'bits'
  /** bytes this node occupies, rounded up (for bounds checks) */
  readonly size: number
  /** bit offset of the value from the node's first byte (0..7 for struct members) */
  readonly shift: number
  readonly bits: number
  readonly signed: boolean
  readonly out: 'number' | 'bigint' | 'boolean'
  readonly enumId?: number
}
export interface StrNode {
  readonly t: 'str'
  readonly size: number
}
export interface BytesNode {
  readonly t: 'bytes'
  readonly size: number
}
export type TypedArrayName =
  | 'Int8Array'
  | 'Uint8Array'
  | 'Int16Array'
  | 'Uint16Array'
  | 'Int32Array'
  | 'Uint32Array'
  | 'Float32Array'
  | 'Float64Array'
  | 'BigInt64Array'
  | 'BigUint64Array'
export interface TypedArrayNode {
  readonly t: 'tarr'
  readonly size: number
  readonly n: number
  readonly elem: NumNode
  readonly ctor: TypedArrayName
}
export interface ArrayNode {
  readonly t: 'arr'
  readonly size: number
  readonly n: number
  readonly stride: number
  readonly elem: Node
}
export interface Field {
  /** JS property name (the C member name) */
  readonly key: string
  /** byte offset from the start of the enclosing struct node */
  readonly off: number
  /** bit offset from the start of the enclosing struct node (documentation) */
  readonly bitOffset: number
  readonly node: Node
  /** union member (or inside one): written on encode only when present in the value */
  readonly optional: boolean
  /** C declaration, e.g. `char pad[40]`, `u32 a:1` */
  readonly cdecl: string
  /** BTF type id of the member (before flattening) */
  readonly typeId: number
}
export interface StructNode {
  readonly t: 'struct'
  readonly size: number
  readonly union: boolean
  /** BTF type id of the struct/union (or DATASEC) */
  readonly typeId: number
  /** struct tag, or the typedef name it was reached through ('' if neither) */
  readonly cname: string
  /** C spelling for docs, e.g. 'struct event' */
  readonly ctype: string
  readonly fields: readonly Field[]
}
export type Node = NumNode | BitsNode | StrNode | BytesNode | TypedArrayNode | ArrayNode | StructNode

/** Nesting depth limit for structs/arrays (hostile BTF can describe cycles). */
export const MAX_LAYOUT_DEPTH = 64
/** Node budget per layout: stops exponential blow-up from shared sub-types in hostile BTF. */
export const MAX_LAYOUT_NODES = 250_000

interface Ctx {
  readonly btf: Btf
  readonly int64: 'bigint' | 'number'
  readonly charArrays: 'string' | 'bytes'
  nodes: number
}

function normalizeOptions(o: CodecOptions | undefined): { int64: 'bigint' | 'number'; charArrays: 'string' | 'bytes' } {
  const int64 = o?.int64 ?? 'bigint'
  const charArrays = o?.charArrays ?? 'string'
  if (int64 !== 'bigint' && int64 !== 'number') throw new BtfError(`invalid int64 option '${String(int64)}'`)
  if (charArrays !== 'string' && charArrays !== 'bytes') throw new BtfError(`invalid charArrays option '${String(charArrays)}'`)
  return { int64, charArrays }
}

export function optionsKey(o: CodecOptions | undefined): string {
  const n = normalizeOptions(o)
  return `${n.int64}|${n.charArrays}`
}

/** Build the layout IR for a BTF type id. Throws BtfError for types a codec cannot represent. */
export function buildLayout(btf: Btf, typeId: number, options?: CodecOptions): Node {
  const ctx: Ctx = { btf, ...normalizeOptions(options), nodes: 0 }
  return build(ctx, typeId, 0)
}

interface Peeled {
  t: BtfType
  /** outermost typedef name in the chain ('' if none) */
  alias: string
  /** typedef names seen, outermost first */
  typedefs: string[]
}

function peel(btf: Btf, id: number): Peeled {
  let cur = id
  let alias = ''
  const typedefs: string[] = []
  for (let depth = 0; depth <= MAX_LAYOUT_DEPTH; depth++) {
    const t = btf.typeById(cur)
    switch (t.kind) {
      case 'typedef':
        if (!alias) alias = t.name
        typedefs.push(t.name)
        cur = t.type
        continue
      case 'const':
      case 'volatile':
      case 'restrict':
      case 'type_tag':
        cur = t.type
        continue
      case 'var':
        cur = t.type
        continue
      default:
        return { t, alias, typedefs }
    }
  }
  throw new BtfError(`type id ${id}: typedef/qualifier chain longer than ${MAX_LAYOUT_DEPTH} (cycle?)`)
}

function intWhat(size: number, signed: boolean): string {
  return `${signed ? 'i' : 'u'}${size * 8}`
}

function numNode(ctx: Ctx, size: number, signed: boolean, repr: NumNode['repr'], lenient: boolean, what: string, enumId?: number, forceOut?: NumNode['out']): NumNode {
  let out: NumNode['out']
  if (forceOut) out = forceOut
  else if (repr === 'bool') out = 'boolean'
  else if (repr === 'float') out = 'number'
  else if (size <= 4) out = 'number'
  else if (size === 8) out = ctx.int64
  else out = 'bigint'
  const n: NumNode = enumId === undefined ? { t: 'num', size, repr, signed, out, lenient, what } : { t: 'num', size, repr, signed, out, lenient, what, enumId }
  return n
}

function describe(btf: Btf, id: number): string {
  try {
    return `type id ${id} (${btf.typeName(id)})`
  } catch {
    return `type id ${id}`
  }
}

function build(ctx: Ctx, id: number, depth: number): Node {
  if (depth > MAX_LAYOUT_DEPTH) throw new BtfError(`${describe(ctx.btf, id)}: nesting deeper than ${MAX_LAYOUT_DEPTH} (cycle?)`)
  if (++ctx.nodes > MAX_LAYOUT_NODES) throw new BtfError(`${describe(ctx.btf, id)}: layout has more than ${MAX_LAYOUT_NODES} nodes`)
  const btf = ctx.btf
  const { t, alias } = peel(btf, id)
  switch (t.kind) {
    case 'int': {
      if (t.bitOffset !== 0 || t.bits !== t.size * 8) {
        // legacy bitfield-style INT used as a plain value
        return bitsNode(ctx, t.bitOffset, t.bits, t.signed, t.bool, t.size, undefined, id)
      }
      if (t.size !== 1 && t.size !== 2 && t.size !== 4 && t.size !== 8 && t.size !== 16)
        throw new BtfError(`${describe(btf, id)}: unsupported integer size ${t.size}`)
      if (t.bool) return numNode(ctx, t.size, false, 'bool', false, 'bool')
      return numNode(ctx, t.size, t.signed, 'int', false, intWhat(t.size, t.signed))
    }
    case 'ptr':
      return numNode(ctx, 8, false, 'int', false, 'pointer', undefined, 'bigint')
    case 'float':
      if (t.size !== 4 && t.size !== 8) throw new BtfError(`${describe(btf, id)}: unsupported float size ${t.size}`)
      return numNode(ctx, t.size, true, 'float', false, `f${t.size * 8}`)
    case 'enum':
    case 'enum64': {
      if (t.size !== 1 && t.size !== 2 && t.size !== 4 && t.size !== 8) throw new BtfError(`${describe(btf, id)}: unsupported enum size ${t.size}`)
      const what = `enum ${t.name || alias || '(anon)'}`
      // ENUM values are 32-bit even when the storage is 8 bytes: keep them numbers.
      const out = t.size <= 4 || t.kind === 'enum' ? 'number' : 'bigint'
      return numNode(ctx, t.size, t.signed, 'int', true, what, t.id, out)
    }
    case 'array': {
      const n = t.nelems
      const stride = btf.sizeOf(t.type)
      const size = n * stride
      if (size > 0xffffffff) throw new BtfError(`${describe(btf, id)}: array larger than 4 GiB`)
      const el = peel(btf, t.type)
      const et = el.t
      if (et.kind === 'int' && et.size === 1 && !et.bool && et.bits === 8 && et.bitOffset === 0) {
        const charish =
          el.typedefs.some((n) => /char/i.test(n)) ||
          et.name === 'char' ||
          et.char ||
          (el.typedefs.length === 0 && (et.name === 'signed char' || et.name === 'unsigned char'))
        if (charish) {
          ctx.nodes++
          return ctx.charArrays === 'string' ? { t: 'str', size } : { t: 'bytes', size }
        }
        if (!et.signed) {
          ctx.nodes++
          return { t: 'bytes', size }
        }
      }
      const elem = build(ctx, t.type, depth + 1)
      if (elem.size !== stride) throw new BtfError(`${describe(btf, id)}: element layout is ${elem.size} bytes but the element size is ${stride}`)
      if (elem.t === 'num' && elem.out !== 'boolean' && elem.size <= 8) {
        const ctor = typedArrayFor(elem)
        if (ctor) return { t: 'tarr', size, n, elem, ctor }
      }
      return { t: 'arr', size, n, stride, elem }
    }
    case 'struct':
    case 'union':
      return structNode(ctx, t, alias, depth)
    case 'datasec': {
      const fields: Field[] = []
      let size = t.size
      for (const vi of t.vars) {
        const v = btf.typeById(vi.type)
        if (v.kind !== 'var') continue
        const node = build(ctx, v.type, depth + 1)
        if (t.size !== 0 && vi.offset + node.size > t.size)
          throw new BtfError(`${describe(btf, id)}: variable '${v.name}' at ${vi.offset}+${node.size} exceeds section size ${t.size}`)
        if (t.size === 0) size = Math.max(size, vi.offset + node.size)
        fields.push({ key: v.name, off: vi.offset, bitOffset: vi.offset * 8, node, optional: false, cdecl: btf.declaration(v.type, v.name), typeId: v.type })
      }
      return { t: 'struct', size, union: false, typeId: t.id, cname: t.name, ctype: `SEC("${t.name}")`, fields: dedupe(fields) }
    }
    case 'fwd':
      throw new BtfError(`${describe(btf, id)}: incomplete type (forward declaration only) has no layout`)
    default:
      throw new BtfError(`${describe(btf, id)}: a ${t.kind} cannot be encoded or decoded`)
  }
}

function typedArrayFor(e: NumNode): TypedArrayName | undefined {
  if (e.repr === 'float') return e.size === 4 ? 'Float32Array' : 'Float64Array'
  switch (e.size) {
    case 1:
      return e.signed ? 'Int8Array' : 'Uint8Array'
    case 2:
      return e.signed ? 'Int16Array' : 'Uint16Array'
    case 4:
      return e.signed ? 'Int32Array' : 'Uint32Array'
    case 8:
      if (e.out === 'number') return 'Float64Array'
      if (e.out === 'bigint') return e.signed ? 'BigInt64Array' : 'BigUint64Array'
      return undefined
    default:
      return undefined
  }
}

/**
 * `storage` 0: a struct member bitfield; the field offset is the byte holding
 * its first bit and `shift` is 0..7. Otherwise a legacy INT used as a plain
 * value: `shift` is the INT's bit offset within its `storage` bytes.
 */
function bitsNode(ctx: Ctx, bitOff: number, bits: number, signed: boolean, bool: boolean, storage: number, enumId: number | undefined, id: number): BitsNode {
  if (bits < 1 || bits > 64) throw new BtfError(`${describe(ctx.btf, id)}: unsupported bitfield width ${bits}`)
  const shift = storage ? bitOff : bitOff & 7
  const out: BitsNode['out'] = bool ? 'boolean' : bits <= 32 ? 'number' : ctx.int64
  const size = storage || (shift + bits + 7) >> 3
  return enumId === undefined ? { t: 'bits', size, shift, bits, signed, out } : { t: 'bits', size, shift, bits, signed, out, enumId }
}

function dedupe(fields: Field[]): Field[] {
  const seen = new Set<string>()
  const out: Field[] = []
  for (const f of fields) {
    if (seen.has(f.key)) continue
    seen.add(f.key)
    out.push(f)
  }
  return out
}

function structNode(ctx: Ctx, t: Extract<BtfType, { kind: 'struct' | 'union' }>, alias: string, depth: number): StructNode {
  const btf = ctx.btf
  const size = t.size
  const union = t.kind === 'union'
  const fields: Field[] = []
  const where = () => `${t.kind} ${t.name || alias || `(anon, id ${t.id})`}`
  for (const m of t.members) {
    const { t: mt } = peel(btf, m.type)
    let bitfield = m.bitfieldSize
    let bitOff = m.bitOffset
    let signed = false
    let bool = false
    let enumId: number | undefined
    if (mt.kind === 'int') {
      signed = mt.signed
      bool = mt.bool
      if (bitfield === 0 && (mt.bitOffset !== 0 || mt.bits !== mt.size * 8)) {
        // legacy encoding: the INT carries the width and an extra offset
        bitfield = mt.bits
        bitOff += mt.bitOffset
      }
    } else if (mt.kind === 'enum' || mt.kind === 'enum64') {
      signed = mt.signed
      enumId = mt.id
    } else if (bitfield !== 0) {
      throw new BtfError(`${where()}: bitfield member '${m.name}' has non-integer type ${mt.kind}`)
    }
    if (bitfield !== 0) {
      if (!m.name) continue // unnamed padding bitfield
      if (bitOff + bitfield > size * 8)
        throw new BtfError(`${where()}: bitfield '${m.name}' (bits ${bitOff}+${bitfield}) exceeds the ${size}-byte size`)
      ctx.nodes++
      const node = bitsNode(ctx, bitOff, bitfield, signed, bool, 0, enumId, m.type)
      fields.push({ key: m.name, off: bitOff >> 3, bitOffset: bitOff, node, optional: union, cdecl: `${btf.declaration(m.type, m.name)}:${bitfield}`, typeId: m.type })
      continue
    }
    if (bitOff % 8 !== 0) throw new BtfError(`${where()}: member '${m.name}' at bit offset ${bitOff} is not byte-aligned`)
    const off = bitOff / 8
    const node = build(ctx, m.type, depth + 1)
    if (off + node.size > size)
      throw new BtfError(`${where()}: member '${m.name || '(anon)'}' at offset ${off} with size ${node.size} exceeds the ${size}-byte size`)
    if (!m.name) {
      if (node.t !== 'struct') continue // anonymous non-aggregate: padding
      for (const f of node.fields)
        fields.push({ ...f, off: f.off + off, bitOffset: f.bitOffset + bitOff, optional: f.optional || union || node.union })
      continue
    }
    fields.push({ key: m.name, off, bitOffset: bitOff, node, optional: union, cdecl: btf.declaration(m.type, m.name), typeId: m.type })
  }
  const cname = t.name || alias
  const ctype = t.name ? `${t.kind} ${t.name}` : alias ? `${alias} (anonymous ${t.kind})` : `anonymous ${t.kind}`
  return { t: 'struct', size, union, typeId: t.id, cname, ctype, fields: dedupe(fields) }
}
