/**
 * Pure-TypeScript BTF (BPF Type Format) parser.
 *
 * Input is the raw bytes of a `.BTF` ELF section or of
 * `/sys/kernel/btf/vmlinux`. Layout (include/uapi/linux/btf.h):
 *
 *   header  { u16 magic = 0xeB9F; u8 version = 1; u8 flags; u32 hdr_len;
 *             u32 type_off; u32 type_len; u32 str_off; u32 str_len }
 *   types   type_len bytes at hdr_len + type_off: btf_type records
 *           { u32 name_off; u32 info; u32 size_or_type } + kind-specific data
 *   strings str_len bytes at hdr_len + str_off, NUL-separated
 *
 * Type id 0 is `void`; the first record is id 1. Split BTF is not supported.
 *
 * Parsing is done in one validating pass that only records where each
 * record starts (cheap even for vmlinux, ~130k types); type objects and
 * names are materialised on first use. Every structural problem (bad magic,
 * truncation, out-of-range lengths, string offsets or type ids) throws
 * {@link BtfError}; nothing else escapes from parsing or from the query
 * methods on corrupt input.
 */
import { isAscii } from 'node:buffer'
import { readFileSync } from 'node:fs'
import { BtfError, InvalidArgumentError, NotFoundError } from '../errors.js'

export const BTF_MAGIC = 0xeb9f

/** Kind names, indexed by the numeric BTF_KIND_* value (0 is void). */
export const BTF_KINDS = [
  'void',
  'int',
  'ptr',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum64',
] as const

export type BtfKind = (typeof BTF_KINDS)[number]

/** Pointer size assumed for PTR types (BPF is a 64-bit target). */
export const BTF_POINTER_SIZE = 8

/** Hops allowed through typedef/const/volatile/... chains and array nesting before we call it a cycle. */
export const MAX_TYPE_DEPTH = 64

interface BtfTypeBase {
  /** type id (index in {@link Btf.types}) */
  readonly id: number
  /** '' for anonymous types */
  readonly name: string
}

export interface BtfVoid extends BtfTypeBase {
  readonly kind: 'void'
}
export interface BtfInt extends BtfTypeBase {
  readonly kind: 'int'
  /** storage size in bytes */
  readonly size: number
  /** BTF_INT_BITS: number of value bits */
  readonly bits: number
  /** BTF_INT_OFFSET: bit offset of the value within the storage (legacy bitfields) */
  readonly bitOffset: number
  readonly signed: boolean
  readonly char: boolean
  readonly bool: boolean
}
export interface BtfPtr extends BtfTypeBase {
  readonly kind: 'ptr'
  readonly type: number
}
export interface BtfArray extends BtfTypeBase {
  readonly kind: 'array'
  /** element type */
  readonly type: number
  readonly indexType: number
  readonly nelems: number
}
export interface BtfMember {
  /** '' for anonymous struct/union members */
  readonly name: string
  readonly type: number
  /** offset of the member from the start of the struct, in bits */
  readonly bitOffset: number
  /** bitfield width in bits (kind_flag encoding); 0 when not a bitfield or when the struct uses the legacy encoding */
  readonly bitfieldSize: number
}
export interface BtfStruct extends BtfTypeBase {
  readonly kind: 'struct'
  readonly size: number
  readonly members: readonly BtfMember[]
}
export interface BtfUnion extends BtfTypeBase {
  readonly kind: 'union'
  readonly size: number
  readonly members: readonly BtfMember[]
}
export interface BtfEnumValue {
  readonly name: string
  readonly value: number
}
export interface BtfEnum extends BtfTypeBase {
  readonly kind: 'enum'
  readonly size: number
  /** kind_flag: values are signed (older compilers never set it) */
  readonly signed: boolean
  readonly values: readonly BtfEnumValue[]
}
export interface BtfEnum64Value {
  readonly name: string
  readonly value: bigint
}
export interface BtfEnum64 extends BtfTypeBase {
  readonly kind: 'enum64'
  readonly size: number
  readonly signed: boolean
  readonly values: readonly BtfEnum64Value[]
}
export interface BtfFwd extends BtfTypeBase {
  readonly kind: 'fwd'
  /** forward declaration of a union (else of a struct) */
  readonly union: boolean
}
export interface BtfTypedef extends BtfTypeBase {
  readonly kind: 'typedef'
  readonly type: number
}
export interface BtfVolatile extends BtfTypeBase {
  readonly kind: 'volatile'
  readonly type: number
}
export interface BtfConst extends BtfTypeBase {
  readonly kind: 'const'
  readonly type: number
}
export interface BtfRestrict extends BtfTypeBase {
  readonly kind: 'restrict'
  readonly type: number
}
export interface BtfTypeTag extends BtfTypeBase {
  readonly kind: 'type_tag'
  readonly type: number
}
export type BtfLinkage = 'static' | 'global' | 'extern' | `unknown(${number})`
export interface BtfFunc extends BtfTypeBase {
  readonly kind: 'func'
  /** FUNC_PROTO id */
  readonly type: number
  readonly linkage: BtfLinkage
}
export interface BtfParam {
  readonly name: string
  readonly type: number
}
export interface BtfFuncProto extends BtfTypeBase {
  readonly kind: 'func_proto'
  readonly returnType: number
  /** parameters; a trailing `...` is not included (see `variadic`) */
  readonly params: readonly BtfParam[]
  readonly variadic: boolean
}
export interface BtfVar extends BtfTypeBase {
  readonly kind: 'var'
  readonly type: number
  readonly linkage: BtfLinkage
}
export interface BtfVarSecinfo {
  /** VAR (or FUNC for .ksyms) type id */
  readonly type: number
  readonly offset: number
  readonly size: number
}
export interface BtfDatasec extends BtfTypeBase {
  readonly kind: 'datasec'
  /** 0 in an unlinked .o (libbpf fills it in when it opens the object) */
  readonly size: number
  readonly vars: readonly BtfVarSecinfo[]
}
export interface BtfFloat extends BtfTypeBase {
  readonly kind: 'float'
  readonly size: number
}
export interface BtfDeclTag extends BtfTypeBase {
  readonly kind: 'decl_tag'
  readonly type: number
  /** -1: the tag applies to the type itself, else member / parameter index */
  readonly componentIdx: number
}

export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfPtr
  | BtfArray
  | BtfStruct
  | BtfUnion
  | BtfEnum
  | BtfEnum64
  | BtfFwd
  | BtfTypedef
  | BtfVolatile
  | BtfConst
  | BtfRestrict
  | BtfTypeTag
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag

/** The type object of a given kind name. */
export type BtfTypeOfKind<K extends BtfKind> = Extract<BtfType, { kind: K }>

/** Kinds that `resolve()` looks through. */
export const QUALIFIER_KINDS: ReadonlySet<BtfKind> = new Set<BtfKind>(['typedef', 'const', 'volatile', 'restrict', 'type_tag'])

/** A global variable in a data section (.data, .rodata, .bss, .data.*, .rodata.*, .bss.*). */
export interface BtfVariable {
  readonly name: string
  /** ELF section / DATASEC name, e.g. '.rodata' */
  readonly section: string
  /**
   * Byte offset within the section, from the DATASEC entry. In an unlinked
   * .o file clang leaves it 0 (libbpf fixes it up from the ELF symbol table
   * when it opens the object): pass `symbolOffset` to {@link Btf.variables}
   * to supply the real one.
   */
  readonly offset: number
  /** bytes; from the DATASEC entry, or computed from the type when the entry says 0 */
  readonly size: number
  /** type of the variable (the VAR's target, qualifiers included) */
  readonly typeId: number
  /** id of the VAR record */
  readonly varId: number
  readonly linkage: BtfLinkage
}

export interface BtfDatasecInfo {
  readonly id: number
  readonly name: string
  readonly size: number
  readonly vars: readonly BtfVariable[]
}

export interface VariablesOptions {
  /**
   * Offset of a variable within its section, e.g. from the ELF symbol table
   * (`st_value`). Called for every variable; return undefined to keep the
   * DATASEC value.
   */
  symbolOffset?: (section: string, name: string) => number | undefined
  /** Also include sections not named .data/.rodata/.bss[.*] (e.g. .kconfig, .maps, license). Default false. */
  allSections?: boolean
}

const DATA_SECTION_RE = /^\.(data|rodata|bss)(\..+)?$/

const HDR_MIN = 24
const K_INT = 1
const K_PTR = 2
const K_ARRAY = 3
const K_STRUCT = 4
const K_UNION = 5
const K_ENUM = 6
const K_FWD = 7
const K_TYPEDEF = 8
const K_VOLATILE = 9
const K_CONST = 10
const K_RESTRICT = 11
const K_FUNC = 12
const K_FUNC_PROTO = 13
const K_VAR = 14
const K_DATASEC = 15
const K_FLOAT = 16
const K_DECL_TAG = 17
const K_TYPE_TAG = 18
const K_ENUM64 = 19

function toBuffer(raw: Uint8Array | ArrayBuffer): Buffer {
  if (Buffer.isBuffer(raw)) return raw
  if (raw instanceof ArrayBuffer) return Buffer.from(raw)
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
  throw new InvalidArgumentError('BTF input must be a Buffer, Uint8Array or ArrayBuffer')
}

function linkageName(l: number): BtfLinkage {
  return l === 0 ? 'static' : l === 1 ? 'global' : l === 2 ? 'extern' : `unknown(${l})`
}

/**
 * Parsed BTF. Construct with {@link parseBtf} (or {@link loadKernelBtf}).
 */
export class Btf {
  /** byte order of the input (codecs always use little-endian target data) */
  readonly byteOrder: 'little' | 'big'
  /** number of entries in {@link types}, i.e. highest type id + 1 */
  readonly typeCount: number

  readonly #buf: Buffer
  readonly #dv: DataView
  readonly #le: boolean
  /** absolute byte offset of each record, indexed by id (0 unused) */
  readonly #offsets: Uint32Array
  readonly #strStart: number
  readonly #strLen: number
  readonly #cache: (BtfType | undefined)[]
  #all: readonly BtfType[] | undefined
  #names: Map<string, number | number[]> | undefined
  /** whole string section as one JS string when it is pure ASCII (names are then cheap substrings) */
  #strAscii: string | undefined
  readonly #strCache = new Map<number, string>()

  /** @internal use parseBtf() */
  constructor(raw: Uint8Array | ArrayBuffer) {
    const buf = toBuffer(raw)
    this.#buf = buf
    const len = buf.length
    if (len < HDR_MIN) throw new BtfError(`BTF too short: ${len} bytes, header needs at least ${HDR_MIN}`)
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#dv = dv
    let le: boolean
    if (dv.getUint16(0, true) === BTF_MAGIC) le = true
    else if (dv.getUint16(0, false) === BTF_MAGIC) le = false
    else if (buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46)
      throw new BtfError('this is an ELF object, not raw BTF: extract its .BTF section first (readElfBtf)')
    else throw new BtfError(`bad BTF magic 0x${dv.getUint16(0, true).toString(16).padStart(4, '0')} (expected 0xeb9f)`)
    this.#le = le
    this.byteOrder = le ? 'little' : 'big'
    const version = dv.getUint8(2)
    if (version !== 1) throw new BtfError(`unsupported BTF version ${version} (expected 1)`)
    const hdrLen = dv.getUint32(4, le)
    if (hdrLen < HDR_MIN || hdrLen > len) throw new BtfError(`bad BTF header length ${hdrLen} (file is ${len} bytes)`)
    const typeOff = dv.getUint32(8, le)
    const typeLen = dv.getUint32(12, le)
    const strOff = dv.getUint32(16, le)
    const strLen = dv.getUint32(20, le)
    const body = len - hdrLen
    if (typeOff > body || typeLen > body - typeOff)
      throw new BtfError(`BTF type section [${typeOff}, +${typeLen}) exceeds the ${body} bytes after the header`)
    if (strOff > body || strLen > body - strOff)
      throw new BtfError(`BTF string section [${strOff}, +${strLen}) exceeds the ${body} bytes after the header`)
    if (typeOff % 4 !== 0) throw new BtfError(`BTF type section offset ${typeOff} is not 4-byte aligned`)
    const strStart = hdrLen + strOff
    if (strLen > 0) {
      if (buf[strStart] !== 0) throw new BtfError('BTF string section does not start with an empty string')
      if (buf[strStart + strLen - 1] !== 0) throw new BtfError('BTF string section is not NUL-terminated')
    }
    this.#strStart = strStart
    this.#strLen = strLen
    const strBytes = buf.subarray(strStart, strStart + strLen)
    if (isAscii(strBytes)) this.#strAscii = strBytes.toString('latin1')

    // ---- validating scan: record offsets, check bounds, names and referenced ids
    const start = hdrLen + typeOff
    const end = start + typeLen
    let offsets = new Uint32Array(((typeLen / 12) | 0) + 2)
    let id = 1
    let pos = start
    let maxRef = 0
    let maxRefFrom = 0
    const badName = (what: string, off: number): never => {
      throw new BtfError(`type id ${id}: ${what} string offset ${off} is outside the ${strLen}-byte string section`)
    }
    while (pos < end) {
      if (end - pos < 12) throw new BtfError(`type id ${id}: record truncated (${end - pos} bytes left in type section)`)
      offsets[id] = pos
      const nameOff = dv.getUint32(pos, le)
      const info = dv.getUint32(pos + 4, le)
      const st = dv.getUint32(pos + 8, le)
      if (nameOff !== 0 && nameOff >= strLen) badName('name', nameOff)
      const kind = (info >>> 24) & 0x1f
      const vlen = info & 0xffff
      let extra = 0
      let ref = 0
      switch (kind) {
        case K_INT: {
          extra = 4
          if (end - pos < 16) break
          const enc = dv.getUint32(pos + 12, le)
          const bits = enc & 0xff
          const off = (enc >>> 16) & 0xff
          if (st === 0 || st > 16 || bits === 0 || bits + off > st * 8)
            throw new BtfError(`type id ${id}: invalid INT (size ${st}, bits ${bits}, offset ${off})`)
          break
        }
        case K_PTR:
        case K_TYPEDEF:
        case K_VOLATILE:
        case K_CONST:
        case K_RESTRICT:
        case K_FUNC:
        case K_TYPE_TAG:
          ref = st
          break
        case K_VAR:
        case K_DECL_TAG:
          ref = st
          extra = 4
          break
        case K_ARRAY:
          extra = 12
          if (end - pos < 24) break
          ref = Math.max(dv.getUint32(pos + 12, le), dv.getUint32(pos + 16, le))
          break
        case K_STRUCT:
        case K_UNION:
        case K_DATASEC:
        case K_ENUM64:
        case K_ENUM:
        case K_FUNC_PROTO: {
          const rec = kind === K_ENUM || kind === K_FUNC_PROTO ? 8 : 12
          extra = rec * vlen
          if (end - pos - 12 < extra) break
          if (kind === K_FUNC_PROTO) ref = st
          const hasName = kind !== K_DATASEC
          const hasType = kind === K_STRUCT || kind === K_UNION || kind === K_FUNC_PROTO || kind === K_DATASEC
          const typeAt = kind === K_DATASEC ? 0 : 4
          for (let i = 0, p = pos + 12; i < vlen; i++, p += rec) {
            if (hasName) {
              const n = dv.getUint32(p, le)
              if (n !== 0 && n >= strLen) badName('member', n)
            }
            if (hasType) {
              const t = dv.getUint32(p + typeAt, le)
              if (t > ref) ref = t
            }
          }
          break
        }
        case K_FWD:
        case K_FLOAT:
          break
        default:
          throw new BtfError(`type id ${id}: unknown BTF kind ${kind}`)
      }
      if (end - pos - 12 < extra)
        throw new BtfError(`type id ${id} (${BTF_KINDS[kind]}): record needs ${12 + extra} bytes, only ${end - pos} left in type section`)
      if (ref > maxRef) {
        maxRef = ref
        maxRefFrom = id
      }
      pos += 12 + extra
      id++
      if (id >= offsets.length) {
        const grown = new Uint32Array(offsets.length * 2)
        grown.set(offsets)
        offsets = grown
      }
    }
    this.typeCount = id
    if (maxRef >= id)
      throw new BtfError(`type id ${maxRefFrom} refers to type id ${maxRef}, but the last type id is ${id - 1}`)
    this.#offsets = offsets.subarray(0, id)
    this.#cache = new Array(id)
    this.#cache[0] = Object.freeze({ id: 0, name: '', kind: 'void' })
  }

  /** Read a string from the string section. Throws BtfError when out of range. */
  string(off: number): string {
    if (off === 0) return ''
    if (!(off >= 0 && off < this.#strLen)) throw new BtfError(`string offset ${off} is outside the ${this.#strLen}-byte string section`)
    const all = this.#strAscii
    if (all !== undefined) return all.substring(off, all.indexOf('\0', off))
    let s = this.#strCache.get(off)
    if (s === undefined) {
      const a = this.#strStart + off
      const e = this.#buf.indexOf(0, a)
      s = this.#buf.toString('utf8', a, e)
      this.#strCache.set(off, s)
    }
    return s
  }

  /** All types, indexed by id; `types[0]` is void. Materialises every type on first access. */
  get types(): readonly BtfType[] {
    if (!this.#all) {
      for (let i = 1; i < this.typeCount; i++) if (!this.#cache[i]) this.#cache[i] = this.#materialize(i)
      this.#all = Object.freeze(this.#cache.slice() as BtfType[])
    }
    return this.#all
  }

  #checkId(id: number): void {
    if (!(Number.isInteger(id) && id >= 0 && id < this.typeCount))
      throw new InvalidArgumentError(`BTF type id ${id} is out of range (0..${this.typeCount - 1})`)
  }

  /** The type with this id (0 is void). Throws InvalidArgumentError for ids out of range. */
  typeById(id: number): BtfType {
    const t = this.#cache[id]
    if (t !== undefined) return t
    this.#checkId(id)
    return (this.#cache[id] = this.#materialize(id))
  }

  /** Kind of a type without materialising it. */
  kindOf(id: number): BtfKind {
    this.#checkId(id)
    if (id === 0) return 'void'
    return BTF_KINDS[(this.#dv.getUint32(this.#offsets[id] + 4, this.#le) >>> 24) & 0x1f]
  }

  /** Name of a type without materialising it ('' if anonymous). */
  nameOf(id: number): string {
    this.#checkId(id)
    if (id === 0) return ''
    return this.string(this.#dv.getUint32(this.#offsets[id], this.#le))
  }

  #materialize(id: number): BtfType {
    const dv = this.#dv
    const le = this.#le
    const pos = this.#offsets[id]
    const name = this.string(dv.getUint32(pos, le))
    const info = dv.getUint32(pos + 4, le)
    const st = dv.getUint32(pos + 8, le)
    const kind = (info >>> 24) & 0x1f
    const vlen = info & 0xffff
    const kflag = info >>> 31 === 1
    const p0 = pos + 12
    let t: BtfType
    switch (kind) {
      case K_INT: {
        const enc = dv.getUint32(p0, le)
        const e = (enc >>> 24) & 0x0f
        t = { id, name, kind: 'int', size: st, bits: enc & 0xff, bitOffset: (enc >>> 16) & 0xff, signed: (e & 1) !== 0, char: (e & 2) !== 0, bool: (e & 4) !== 0 }
        break
      }
      case K_PTR:
        t = { id, name, kind: 'ptr', type: st }
        break
      case K_ARRAY:
        t = { id, name, kind: 'array', type: dv.getUint32(p0, le), indexType: dv.getUint32(p0 + 4, le), nelems: dv.getUint32(p0 + 8, le) }
        break
      case K_STRUCT:
      case K_UNION: {
        const members: BtfMember[] = new Array(vlen)
        for (let i = 0, p = p0; i < vlen; i++, p += 12) {
          const off = dv.getUint32(p + 8, le)
          members[i] = Object.freeze({
            name: this.string(dv.getUint32(p, le)),
            type: dv.getUint32(p + 4, le),
            bitOffset: kflag ? off & 0xffffff : off,
            bitfieldSize: kflag ? off >>> 24 : 0,
          })
        }
        t = { id, name, kind: kind === K_STRUCT ? 'struct' : 'union', size: st, members: Object.freeze(members) }
        break
      }
      case K_ENUM: {
        const values: BtfEnumValue[] = new Array(vlen)
        for (let i = 0, p = p0; i < vlen; i++, p += 8)
          values[i] = Object.freeze({ name: this.string(dv.getUint32(p, le)), value: kflag ? dv.getInt32(p + 4, le) : dv.getUint32(p + 4, le) })
        t = { id, name, kind: 'enum', size: st, signed: kflag, values: Object.freeze(values) }
        break
      }
      case K_ENUM64: {
        const values: BtfEnum64Value[] = new Array(vlen)
        for (let i = 0, p = p0; i < vlen; i++, p += 12) {
          const lo = BigInt(dv.getUint32(p + 4, le))
          const hi = BigInt(dv.getUint32(p + 8, le))
          let v = (hi << 32n) | lo
          if (kflag) v = BigInt.asIntN(64, v)
          values[i] = Object.freeze({ name: this.string(dv.getUint32(p, le)), value: v })
        }
        t = { id, name, kind: 'enum64', size: st, signed: kflag, values: Object.freeze(values) }
        break
      }
      case K_FWD:
        t = { id, name, kind: 'fwd', union: kflag }
        break
      case K_TYPEDEF:
        t = { id, name, kind: 'typedef', type: st }
        break
      case K_VOLATILE:
        t = { id, name, kind: 'volatile', type: st }
        break
      case K_CONST:
        t = { id, name, kind: 'const', type: st }
        break
      case K_RESTRICT:
        t = { id, name, kind: 'restrict', type: st }
        break
      case K_TYPE_TAG:
        t = { id, name, kind: 'type_tag', type: st }
        break
      case K_FUNC:
        t = { id, name, kind: 'func', type: st, linkage: linkageName(vlen) }
        break
      case K_FUNC_PROTO: {
        const params: BtfParam[] = []
        let variadic = false
        for (let i = 0, p = p0; i < vlen; i++, p += 8) {
          const n = dv.getUint32(p, le)
          const pt = dv.getUint32(p + 4, le)
          if (i === vlen - 1 && n === 0 && pt === 0) variadic = true
          else params.push(Object.freeze({ name: this.string(n), type: pt }))
        }
        t = { id, name, kind: 'func_proto', returnType: st, params: Object.freeze(params), variadic }
        break
      }
      case K_VAR:
        t = { id, name, kind: 'var', type: st, linkage: linkageName(dv.getUint32(p0, le)) }
        break
      case K_DATASEC: {
        const vars: BtfVarSecinfo[] = new Array(vlen)
        for (let i = 0, p = p0; i < vlen; i++, p += 12)
          vars[i] = Object.freeze({ type: dv.getUint32(p, le), offset: dv.getUint32(p + 4, le), size: dv.getUint32(p + 8, le) })
        t = { id, name, kind: 'datasec', size: st, vars: Object.freeze(vars) }
        break
      }
      case K_FLOAT:
        t = { id, name, kind: 'float', size: st }
        break
      case K_DECL_TAG:
        t = { id, name, kind: 'decl_tag', type: st, componentIdx: dv.getInt32(p0, le) }
        break
      default:
        // unreachable: the constructor rejected unknown kinds
        throw new BtfError(`type id ${id}: unknown BTF kind ${kind}`)
    }
    return Object.freeze(t)
  }

  #nameIndex(): Map<string, number | number[]> {
    if (this.#names) return this.#names
    const m = new Map<string, number | number[]>()
    const dv = this.#dv
    const le = this.#le
    const offsets = this.#offsets
    for (let id = 1; id < this.typeCount; id++) {
      const off = dv.getUint32(offsets[id], le)
      if (off === 0) continue
      const n = this.string(off)
      const prev = m.get(n)
      if (prev === undefined) m.set(n, id)
      else if (typeof prev === 'number') m.set(n, [prev, id])
      else prev.push(id)
    }
    this.#strCache.clear() // the index holds the names now
    return (this.#names = m)
  }

  /** All types with this name (optionally of one kind), in id order. */
  findAllByName<K extends BtfKind>(name: string, kind?: K): BtfTypeOfKind<K>[] {
    const hit = this.#nameIndex().get(name)
    const ids = hit === undefined ? [] : typeof hit === 'number' ? [hit] : hit
    const out: BtfType[] = []
    for (const id of ids) if (kind === undefined || this.kindOf(id) === kind) out.push(this.typeById(id))
    return out as BtfTypeOfKind<K>[]
  }

  /**
   * The type with this name. With `kind`, the first (lowest id) of that kind.
   * Without, the lowest-id type that is not a forward declaration (so
   * `struct foo` wins over `struct foo;`), else the forward declaration.
   * Throws NotFoundError.
   */
  findByName<K extends BtfKind = BtfKind>(name: string, kind?: K): BtfTypeOfKind<K> {
    const t = this.tryFindByName(name, kind)
    if (!t) throw new NotFoundError(kind ? `BTF ${kind}` : 'BTF type', name)
    return t
  }

  /** Like {@link findByName} but returns undefined when there is no such type. */
  tryFindByName<K extends BtfKind = BtfKind>(name: string, kind?: K): BtfTypeOfKind<K> | undefined {
    const all = this.findAllByName(name, kind)
    if (all.length === 0) return undefined
    return (all.find((t) => t.kind !== 'fwd' && t.kind !== 'func' && t.kind !== 'var' && t.kind !== 'decl_tag') ?? all[0]) as BtfTypeOfKind<K>
  }

  /** The id after skipping typedef/const/volatile/restrict/type_tag. Throws BtfError on cycles. */
  resolveId(id: number): number {
    let cur = id
    for (let depth = 0; depth <= MAX_TYPE_DEPTH; depth++) {
      const t = this.typeById(cur)
      if (!QUALIFIER_KINDS.has(t.kind)) return cur
      cur = (t as BtfTypedef).type
    }
    throw new BtfError(`type id ${id}: typedef/qualifier chain longer than ${MAX_TYPE_DEPTH} (cycle?)`)
  }

  /** The type after skipping typedef/const/volatile/restrict/type_tag. Throws BtfError on cycles. */
  resolve(idOrType: number | BtfType): BtfType {
    return this.typeById(this.resolveId(typeof idOrType === 'number' ? idOrType : idOrType.id))
  }

  /**
   * Size in bytes of a value of this type (pointers are 8 bytes; VARs have
   * the size of their type). Throws BtfError for types without a size
   * (void, func, fwd, ...), for cycles and for sizes beyond 4 GiB.
   */
  sizeOf(idOrType: number | BtfType): number {
    return this.#sizeOf(typeof idOrType === 'number' ? idOrType : idOrType.id, 0)
  }

  #sizeOf(id: number, depth: number): number {
    if (depth > MAX_TYPE_DEPTH) throw new BtfError(`type id ${id}: type nesting deeper than ${MAX_TYPE_DEPTH} (cycle?)`)
    const t = this.typeById(id)
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64':
      case 'struct':
      case 'union':
      case 'float':
      case 'datasec':
        return t.size
      case 'ptr':
        return BTF_POINTER_SIZE
      case 'typedef':
      case 'const':
      case 'volatile':
      case 'restrict':
      case 'type_tag':
      case 'var':
        return this.#sizeOf(t.type, depth + 1)
      case 'array': {
        if (t.nelems === 0) return 0
        const n = t.nelems * this.#sizeOf(t.type, depth + 1)
        if (n > 0xffffffff) throw new BtfError(`type id ${id}: array of ${t.nelems} elements is larger than 4 GiB`)
        return n
      }
      default:
        throw new BtfError(`type id ${id} (${t.kind}${t.name ? ` '${t.name}'` : ''}) has no size`)
    }
  }

  /** All DATASECs with their variables (any section name). */
  datasecs(options: Omit<VariablesOptions, 'allSections'> = {}): BtfDatasecInfo[] {
    const out: BtfDatasecInfo[] = []
    const dv = this.#dv
    for (let id = 1; id < this.typeCount; id++) {
      if (((dv.getUint32(this.#offsets[id] + 4, this.#le) >>> 24) & 0x1f) !== K_DATASEC) continue
      const sec = this.typeById(id) as BtfDatasec
      const vars: BtfVariable[] = []
      for (const vi of sec.vars) {
        const v = this.typeById(vi.type)
        if (v.kind !== 'var') continue // FUNC entries in .ksyms
        const fixed = options.symbolOffset?.(sec.name, v.name)
        let size = vi.size
        if (size === 0) {
          try {
            size = this.sizeOf(v.type)
          } catch (e) {
            if (!(e instanceof BtfError)) throw e
          }
        }
        vars.push(
          Object.freeze({ name: v.name, section: sec.name, offset: fixed ?? vi.offset, size, typeId: v.type, varId: v.id, linkage: v.linkage }),
        )
      }
      out.push(Object.freeze({ id, name: sec.name, size: sec.size, vars: Object.freeze(vars) }))
    }
    return out
  }

  /**
   * Global variables of the data sections `.data`, `.rodata`, `.bss` and
   * custom `.data.*` / `.rodata.*` / `.bss.*` (others with `allSections`).
   * See {@link BtfVariable.offset} for offsets in unlinked objects.
   */
  variables(options: VariablesOptions = {}): BtfVariable[] {
    const out: BtfVariable[] = []
    for (const sec of this.datasecs(options)) if (options.allSections || DATA_SECTION_RE.test(sec.name)) out.push(...sec.vars)
    return out
  }

  /** A global variable by name (see {@link variables}). Throws NotFoundError. */
  variable(name: string, options: VariablesOptions = {}): BtfVariable {
    const all = this.variables(options)
    const v = all.find((x) => x.name === name)
    if (!v) throw new NotFoundError('global variable', name, all.map((x) => x.name))
    return v
  }

  /**
   * A C-like spelling of a type, e.g. `struct event`, `const u64`,
   * `char[16]`, `void *`. Used in generated doc comments and error messages.
   */
  typeName(id: number): string {
    return this.#cDecl(id, '', 0).trim()
  }

  /** C declaration of `name` with type `id`, e.g. `char pad[40]`. */
  declaration(id: number, name: string): string {
    return this.#cDecl(id, name, 0).trim()
  }

  #cDecl(id: number, inner: string, depth: number): string {
    if (depth > MAX_TYPE_DEPTH) return `/*...*/ ${inner}`
    const t = this.typeById(id)
    const sp = inner ? ` ${inner}` : ''
    switch (t.kind) {
      case 'void':
        return `void${sp}`
      case 'int':
      case 'float':
      case 'typedef':
        return `${t.name || '(anon)'}${sp}`
      case 'struct':
      case 'union':
      case 'enum':
        return `${t.kind} ${t.name || '(anon)'}${sp}`
      case 'enum64':
        return `enum ${t.name || '(anon)'}${sp}`
      case 'fwd':
        return `${t.union ? 'union' : 'struct'} ${t.name}${sp}`
      case 'const':
      case 'volatile':
      case 'restrict': {
        const target = this.typeById(t.type)
        if (target.kind === 'ptr') return this.#cDecl(t.type, `${t.kind}${sp}`, depth + 1)
        return `${t.kind} ${this.#cDecl(t.type, inner, depth + 1)}`
      }
      case 'type_tag':
        return this.#cDecl(t.type, inner, depth + 1)
      case 'ptr': {
        const target = this.typeById(t.type)
        const star = target.kind === 'array' || target.kind === 'func_proto' ? `(*${inner})` : `*${inner}`
        return this.#cDecl(t.type, star, depth + 1)
      }
      case 'array':
        return this.#cDecl(t.type, `${inner}[${t.nelems}]`, depth + 1)
      case 'func_proto': {
        const ps = t.params.map((p) => this.#cDecl(p.type, p.name, depth + 1).trim())
        if (t.variadic) ps.push('...')
        return this.#cDecl(t.returnType, `${inner}(${ps.join(', ') || 'void'})`, depth + 1)
      }
      case 'func':
        return this.#cDecl(t.type, t.name, depth + 1)
      case 'var':
        return this.#cDecl(t.type, t.name, depth + 1)
      case 'datasec':
        return `SEC("${t.name}")${sp}`
      case 'decl_tag':
        return `__attribute__((btf_decl_tag("${t.name}")))${sp}`
    }
  }
}

/** Parse raw BTF (a .BTF section or /sys/kernel/btf/vmlinux). Throws BtfError on malformed input. */
export function parseBtf(raw: Uint8Array | ArrayBuffer): Btf {
  return new Btf(raw)
}

let kernelBtf: { path: string; btf: Btf } | undefined

/** Parse the running kernel's BTF (cached per path). */
export function loadKernelBtf(path = '/sys/kernel/btf/vmlinux'): Btf {
  if (kernelBtf && kernelBtf.path === path) return kernelBtf.btf
  let raw: Buffer
  try {
    raw = readFileSync(path)
  } catch (e) {
    throw new NotFoundError('kernel BTF file', `${path} (${(e as Error).message})`)
  }
  const btf = parseBtf(raw)
  kernelBtf = { path, btf }
  return btf
}
