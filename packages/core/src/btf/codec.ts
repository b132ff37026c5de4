/**
 * BTF-derived codecs. `codecForType()` compiles a specialised decode/encode
 * pair for one type (straight-line DataView accesses at constant offsets,
 * built as source text and compiled with `new Function`, the way bpf2go
 * generates Go), so decoding a record does no per-field interpretation.
 *
 * The JS value mapping is documented in layout.ts (summary: ≤32-bit ints,
 * enums, floats and narrow bitfields → number; 64-bit ints → bigint or,
 * with `int64: 'number'`, number (throwing InvalidArgumentError beyond
 * MAX_SAFE_INTEGER); pointers → bigint; _Bool → boolean; char arrays →
 * string; numeric arrays → typed arrays; structs → objects; unions → objects
 * with every member decoded; anonymous members merged into the parent).
 *
 * Encoding writes every byte of the value: padding, bitfield storage and
 * union bodies are zeroed first, missing fields are written as zero, and
 * values that do not fit their field (range, type, string length) throw
 * InvalidArgumentError rather than being truncated. For a union, every
 * member present in the value is written in member order (so the last one
 * present wins where they overlap).
 *
 * Data is little-endian (what the BPF target uses on x86-64 / arm64).
 */
import type { Codec } from '../codec.js'
import { BtfError, InvalidArgumentError } from '../errors.js'
import { emitCodec, helperClosure, HELPERS } from './emit.js'
import { buildLayout, optionsKey, type CodecOptions, type Node } from './layout.js'
import type { Btf, BtfVariable } from './parse.js'

export type { CodecOptions } from './layout.js'

export type DecodeFn<T> = (view: DataView, offset: number) => T
export type EncodeFn<T> = (value: T, view: DataView, offset: number) => void

/** A Codec compiled from BTF, with the layout it was built from. */
export interface BtfCodec<T = any> extends Codec<T> {
  /** BTF type id the codec was built for */
  readonly typeId: number
  /** layout IR (see layout.ts) */
  readonly layout: Node
  /** generated source of the decode/encode bodies, for debugging */
  readonly source: { readonly decode: string; readonly encode: string }
}

type HelperTable = Record<string, unknown>
let helperTable: HelperTable | undefined

/** Compile every helper once; generated functions pull the ones they use out of this table. */
function helpers(): HelperTable {
  if (helperTable) return helperTable
  const names = helperClosure(Object.keys(HELPERS))
  const src = names.map((n) => HELPERS[n].js).join('\n') + `\nreturn { ${names.join(', ')} }`
  helperTable = new Function('InvalidArgumentError', src)(InvalidArgumentError) as HelperTable
  return helperTable
}

const cache = new WeakMap<Btf, Map<string, BtfCodec>>()

function typeIdOf(btf: Btf, typeIdOrName: number | string): number {
  if (typeof typeIdOrName === 'number') {
    btf.typeById(typeIdOrName) // range check
    return typeIdOrName
  }
  // prefer struct/union/enum tags, then typedefs, then anything
  const name = typeIdOrName.replace(/^(struct|union|enum)\s+/, '')
  const tag = /^(struct|union|enum)\s/.exec(typeIdOrName)?.[1] as 'struct' | 'union' | 'enum' | undefined
  if (tag) return btf.findByName(name, tag).id
  for (const k of ['struct', 'union', 'typedef', 'enum', 'enum64', 'int', 'float'] as const) {
    const t = btf.tryFindByName(name, k)
    if (t) return t.id
  }
  return btf.findByName(name).id
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_$]/g, '_').slice(0, 60) || 'anon'
}

function compile(btf: Btf, id: number, options: CodecOptions | undefined): BtfCodec {
  const layout = buildLayout(btf, id, options)
  let label: string
  try {
    label = btf.typeName(id)
  } catch {
    label = `type ${id}`
  }
  const src = emitCodec(layout, 'value', false)
  const used = helperClosure(src.helpers)
  const fname = safeName(label)
  const body =
    `const { ${used.join(', ')} } = h\n` +
    `return [function decode_${fname}(view, offset) {\n${src.decode}\n}, function encode_${fname}(value, view, offset) {\n${src.encode}\n}]`
  let decode: DecodeFn<any>
  let encode: EncodeFn<any>
  try {
    ;[decode, encode] = new Function('h', body)(helpers()) as [DecodeFn<any>, EncodeFn<any>]
  } catch (e) {
    // a bug in the emitter, never expected
    throw new BtfError(`internal error compiling codec for ${label}: ${(e as Error).message}`)
  }
  return Object.freeze({ size: layout.size, decode, encode, typeId: id, layout, source: Object.freeze({ decode: src.decode, encode: src.encode }) })
}

/**
 * A codec for a BTF type, by id or name (`'event'`, `'struct event'`,
 * `'named_t'`). Codecs are cached per Btf and options. Throws NotFoundError
 * for unknown names and BtfError for types without a value layout (void,
 * functions, forward declarations, unsupported sizes).
 */
export function codecForType<T = any>(btf: Btf, typeIdOrName: number | string, options?: CodecOptions): BtfCodec<T> {
  const id = typeIdOf(btf, typeIdOrName)
  const key = `${id}|${optionsKey(options)}`
  let m = cache.get(btf)
  if (!m) cache.set(btf, (m = new Map()))
  let c = m.get(key)
  if (!c) m.set(key, (c = compile(btf, id, options)))
  return c as BtfCodec<T>
}

/** The compiled decode function alone (no method dispatch). */
export function decodeFn<T = any>(btf: Btf, typeIdOrName: number | string, options?: CodecOptions): DecodeFn<T> {
  return codecForType<T>(btf, typeIdOrName, options).decode
}

/** The compiled encode function alone. */
export function encodeFn<T = any>(btf: Btf, typeIdOrName: number | string, options?: CodecOptions): EncodeFn<T> {
  return codecForType<T>(btf, typeIdOrName, options).encode
}

/**
 * A codec for a global variable (see Btf.variables()). Its size is the
 * variable's size; decode/encode work at the variable's own offset within a
 * section buffer only if you pass that offset (`variable.offset`).
 */
export function codecForVariable<T = any>(btf: Btf, variable: BtfVariable | string, options?: CodecOptions): BtfCodec<T> {
  const v = typeof variable === 'string' ? btf.variable(variable) : variable
  const c = codecForType<T>(btf, v.typeId, options)
  if (v.size !== 0 && v.size !== c.size)
    throw new BtfError(`variable '${v.name}' is ${v.size} bytes in ${v.section} but its type is ${c.size} bytes`)
  return c
}

// ------------------------------------------------------------------ primitives

function intCodec(size: 1 | 2 | 4, signed: boolean): Codec<number> {
  const min = signed ? -(2 ** (size * 8 - 1)) : 0
  const max = signed ? 2 ** (size * 8 - 1) - 1 : 2 ** (size * 8) - 1
  const what = `${signed ? 'i' : 'u'}${size * 8}`
  const check = (v: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(`${String(v)} is not a valid ${what}`)
  }
  const short = (view: DataView, offset: number) => {
    if (!(offset >= 0 && offset + size <= view.byteLength)) throw new InvalidArgumentError(`need ${size} bytes at offset ${offset} but the buffer has ${view.byteLength} bytes`)
  }
  switch (size) {
    case 1:
      return signed
        ? { size, decode: (v, o) => (short(v, o), v.getInt8(o)), encode: (x, v, o) => (short(v, o), check(x), v.setInt8(o, x)) }
        : { size, decode: (v, o) => (short(v, o), v.getUint8(o)), encode: (x, v, o) => (short(v, o), check(x), v.setUint8(o, x)) }
    case 2:
      return signed
        ? { size, decode: (v, o) => (short(v, o), v.getInt16(o, true)), encode: (x, v, o) => (short(v, o), check(x), v.setInt16(o, x, true)) }
        : { size, decode: (v, o) => (short(v, o), v.getUint16(o, true)), encode: (x, v, o) => (short(v, o), check(x), v.setUint16(o, x, true)) }
    case 4:
      return signed
        ? { size, decode: (v, o) => (short(v, o), v.getInt32(o, true)), encode: (x, v, o) => (short(v, o), check(x), v.setInt32(o, x, true)) }
        : { size, decode: (v, o) => (short(v, o), v.getUint32(o, true)), encode: (x, v, o) => (short(v, o), check(x), v.setUint32(o, x, true)) }
  }
}

function int64Codec(signed: boolean): Codec<bigint> {
  const what = signed ? 'i64' : 'u64'
  const fits = (x: bigint) => (signed ? BigInt.asIntN(64, x) === x : BigInt.asUintN(64, x) === x)
  const short = (view: DataView, offset: number) => {
    if (!(offset >= 0 && offset + 8 <= view.byteLength)) throw new InvalidArgumentError(`need 8 bytes at offset ${offset} but the buffer has ${view.byteLength} bytes`)
  }
  return {
    size: 8,
    decode: (v, o) => (short(v, o), signed ? v.getBigInt64(o, true) : v.getBigUint64(o, true)),
    encode(x, v, o) {
      short(v, o)
      let b: bigint
      if (typeof x === 'bigint') b = x
      else if (typeof x === 'number' && Number.isInteger(x)) b = BigInt(x)
      else throw new InvalidArgumentError(`${String(x)} is not a valid ${what}`)
      if (!fits(b)) throw new InvalidArgumentError(`${b} is out of range for ${what}`)
      v.setBigUint64(o, BigInt.asUintN(64, b), true)
    },
  }
}

function int64NumberCodec(signed: boolean): Codec<number> {
  const big = int64Codec(signed)
  return {
    size: 8,
    decode(v, o) {
      const b = big.decode(v, o)
      if (b > 9007199254740991n || b < -9007199254740991n) throw new InvalidArgumentError(`${b} exceeds Number.MAX_SAFE_INTEGER`)
      return Number(b)
    },
    encode(x, v, o) {
      if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new InvalidArgumentError(`${String(x)} is not a safe integer`)
      big.encode(BigInt(x), v, o)
    },
  }
}

function floatCodec(size: 4 | 8): Codec<number> {
  const short = (view: DataView, offset: number) => {
    if (!(offset >= 0 && offset + size <= view.byteLength)) throw new InvalidArgumentError(`need ${size} bytes at offset ${offset} but the buffer has ${view.byteLength} bytes`)
  }
  const check = (x: number) => {
    if (typeof x !== 'number') throw new InvalidArgumentError(`${String(x)} is not a number`)
  }
  return size === 4
    ? { size, decode: (v, o) => (short(v, o), v.getFloat32(o, true)), encode: (x, v, o) => (short(v, o), check(x), v.setFloat32(o, x, true)) }
    : { size, decode: (v, o) => (short(v, o), v.getFloat64(o, true)), encode: (x, v, o) => (short(v, o), check(x), v.setFloat64(o, x, true)) }
}

/**
 * Little-endian primitive codecs for hand-written codecs. u64/i64 use
 * bigint; u64n/i64n use number and throw InvalidArgumentError for values
 * beyond Number.MAX_SAFE_INTEGER. All of them range-check on encode.
 */
export const primitives = Object.freeze({
  u8: intCodec(1, false),
  i8: intCodec(1, true),
  u16: intCodec(2, false),
  i16: intCodec(2, true),
  u32: intCodec(4, false),
  i32: intCodec(4, true),
  u64: int64Codec(false),
  i64: int64Codec(true),
  u64n: int64NumberCodec(false),
  i64n: int64NumberCodec(true),
  f32: floatCodec(4),
  f64: floatCodec(8),
  bool: {
    size: 1,
    decode(v: DataView, o: number): boolean {
      return v.getUint8(o) !== 0
    },
    encode(x: boolean, v: DataView, o: number): void {
      if (typeof x !== 'boolean') throw new InvalidArgumentError(`${String(x)} is not a boolean`)
      v.setUint8(o, x ? 1 : 0)
    },
  } satisfies Codec<boolean>,
})

/** A NUL-terminated string in a fixed `char[size]` (same rules as BTF char arrays). */
export function cStringCodec(size: number): Codec<string> {
  if (!Number.isInteger(size) || size < 0) throw new InvalidArgumentError(`invalid char array size ${size}`)
  const h = helpers() as Record<string, (...a: any[]) => any>
  const str = h.__str
  const enc = h.__encStr
  return {
    size,
    decode(view, offset) {
      if (!(offset >= 0 && offset + size <= view.byteLength)) throw new InvalidArgumentError(`need ${size} bytes at offset ${offset} but the buffer has ${view.byteLength} bytes`)
      return str(view, offset, size) as string
    },
    encode(value, view, offset) {
      if (!(offset >= 0 && offset + size <= view.byteLength)) throw new InvalidArgumentError(`need ${size} bytes at offset ${offset} but the buffer has ${view.byteLength} bytes`)
      enc(view, offset, size, value, 'value')
    },
  }
}
