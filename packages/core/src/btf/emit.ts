/**
 * Code emitter shared by the runtime codec compiler (codec.ts, via
 * `new Function`) and the static generator (gen.ts). It turns a layout IR
 * into straight-line DataView reads/writes at constant offsets; only arrays
 * become loops. Everything taken from BTF that ends up in source text is
 * either a number we computed or passed through JSON.stringify, so hostile
 * names cannot inject code.
 */
import type { Field, Node, NumNode, StructNode } from './layout.js'

/** One helper function or constant available to generated code. */
interface Helper {
  /** JS source (runtime) */
  readonly js: string
  /** TypeScript source (static generator) */
  readonly ts: string
  readonly deps: readonly string[]
}

function fn(name: string, params: string, tsSig: string, body: string, deps: string[] = []): Helper {
  return { js: `function ${name}(${params}) {${body}}`, ts: `function ${name}${tsSig} {${body}}`, deps }
}

/* Helper bodies are written in the common subset of JS and TS (no annotations inside). */
export const HELPERS: Record<string, Helper> = {
  __td: { js: 'const __td = new TextDecoder()', ts: 'const __td = new TextDecoder()', deps: [] },
  __te: { js: 'const __te = new TextEncoder()', ts: 'const __te = new TextEncoder()', deps: [] },
  __E: { js: 'const __E = Object.freeze({})', ts: 'const __E: any = Object.freeze({})', deps: [] },
  __EA: { js: 'const __EA = Object.freeze([])', ts: 'const __EA: any = Object.freeze([])', deps: [] },
  __fmt: fn(
    '__fmt',
    'v',
    '(v: unknown): string',
    `
  try {
    if (typeof v === 'bigint') return v + 'n'
    if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)
    if (v !== null && typeof v === 'object') return Array.isArray(v) ? 'array(' + v.length + ')' : 'object'
    return String(v)
  } catch {
    return typeof v
  }
`,
  ),
  __bad: fn(
    '__bad',
    'path, v, what',
    '(path: string, v: unknown, what: string): Error',
    `
  return new InvalidArgumentError(path + ': ' + __fmt(v) + ' is not a valid ' + what)
`,
    ['__fmt'],
  ),
  __short: fn(
    '__short',
    'view, offset, size',
    '(view: DataView, offset: number, size: number): Error',
    `
  return new InvalidArgumentError('need ' + size + ' bytes at offset ' + offset + ' but the buffer has ' + view.byteLength + ' bytes')
`,
  ),
  // Strings: scan 4 bytes at a time for the NUL (and for non-ASCII bytes,
  // which take the TextDecoder path), then look the bytes up in a 256-entry
  // direct-mapped cache of recently decoded strings (event streams repeat the
  // same comm / path values; comparing words is much cheaper than building a
  // string). Strings longer than 64 bytes are not cached and go to TextDecoder.
  __sc: { js: "const __sc = new Array(256).fill('')", ts: "const __sc: string[] = new Array(256).fill('')", deps: [] },
  __scw: { js: 'const __scw = new Int32Array(256 * 17)', ts: 'const __scw = new Int32Array(256 * 17)', deps: [] },
  __str: fn(
    '__str',
    'view, p, len',
    '(view: DataView, p: number, len: number): string',
    `
  let h = -2128831035
  let i = 0
  for (const lim = len - 3; i < lim; i += 4) {
    const w = view.getInt32(p + i, true)
    if ((((w - 0x01010101) & ~w) | w) & 0x80808080) break
    h = Math.imul(h ^ w, 16777619)
  }
  let n = i
  let tail = 0
  for (; n < len; n++) {
    const c = view.getUint8(p + n)
    if (c === 0) break
    if (c > 127) return __strSlow(view, p, len)
    tail = tail * 256 + c
    if (n - i === 3) return __strSlow(view, p, len)
  }
  if (n === 0) return ''
  const nw = i >> 2
  if (nw > 16) return __strSlow(view, p, len)
  h = Math.imul(h ^ tail, 16777619) ^ n
  const slot = (h ^ (h >>> 8) ^ (h >>> 16)) & 255
  const base = slot * 17
  const s = __sc[slot]
  if (s !== undefined && s.length === n && __scw[base + 16] === tail) {
    let k = 0
    while (k < nw && __scw[base + k] === view.getInt32(p + 4 * k, true)) k++
    if (k === nw) return s
  }
  let r = ''
  if (n > 32) r = __td.decode(new Uint8Array(view.buffer, view.byteOffset + p, n))
  else {
    let j = 0
    for (; j + 8 <= n; j += 8)
      r += String.fromCharCode(
        view.getUint8(p + j), view.getUint8(p + j + 1), view.getUint8(p + j + 2), view.getUint8(p + j + 3),
        view.getUint8(p + j + 4), view.getUint8(p + j + 5), view.getUint8(p + j + 6), view.getUint8(p + j + 7),
      )
    for (; j < n; j++) r += String.fromCharCode(view.getUint8(p + j))
  }
  for (let k = 0; k < nw; k++) __scw[base + k] = view.getInt32(p + 4 * k, true)
  __scw[base + 16] = tail
  __sc[slot] = r
  return r
`,
    ['__strSlow', '__sc', '__scw', '__td'],
  ),
  __strSlow: fn(
    '__strSlow',
    'view, p, len',
    '(view: DataView, p: number, len: number): string',
    `
  const u = new Uint8Array(view.buffer, view.byteOffset + p, len)
  const e = u.indexOf(0)
  return __td.decode(e < 0 ? u : u.subarray(0, e))
`,
    ['__td'],
  ),
  __bytes: fn(
    '__bytes',
    'view, p, len',
    '(view: DataView, p: number, len: number): Uint8Array',
    `
  return new Uint8Array(view.buffer, view.byteOffset + p, len).slice()
`,
  ),
  __u64: fn(
    '__u64',
    'view, p',
    '(view: DataView, p: number): bigint',
    `
  return view.getUint32(p + 4, true) === 0 ? BigInt(view.getUint32(p, true)) : view.getBigUint64(p, true)
`,
  ),
  __i64: fn(
    '__i64',
    'view, p',
    '(view: DataView, p: number): bigint',
    `
  const hi = view.getInt32(p + 4, true)
  if (hi === 0) return BigInt(view.getUint32(p, true))
  if (hi === -1) return BigInt(view.getUint32(p, true) - 4294967296)
  return view.getBigInt64(p, true)
`,
  ),
  __u64n: fn(
    '__u64n',
    'view, p, path',
    '(view: DataView, p: number, path: string): number',
    `
  const hi = view.getUint32(p + 4, true)
  if (hi > 0x1fffff) throw new InvalidArgumentError(path + ': ' + view.getBigUint64(p, true) + ' exceeds Number.MAX_SAFE_INTEGER (decode with int64: "bigint")')
  return hi * 4294967296 + view.getUint32(p, true)
`,
  ),
  __i64n: fn(
    '__i64n',
    'view, p, path',
    '(view: DataView, p: number, path: string): number',
    `
  const v = view.getInt32(p + 4, true) * 4294967296 + view.getUint32(p, true)
  if (v > 9007199254740991 || v < -9007199254740991) throw new InvalidArgumentError(path + ': ' + view.getBigInt64(p, true) + ' is beyond Number.MAX_SAFE_INTEGER (decode with int64: "bigint")')
  return v
`,
  ),
  __i128: fn(
    '__i128',
    'view, p, signed',
    '(view: DataView, p: number, signed: boolean): bigint',
    `
  const v = (view.getBigUint64(p + 8, true) << 64n) | view.getBigUint64(p, true)
  return signed ? BigInt.asIntN(128, v) : v
`,
  ),
  __bitsN: fn(
    '__bitsN',
    'view, p, s, bits, signed',
    '(view: DataView, p: number, s: number, bits: number, signed: boolean): number',
    `
  const span = (s + bits + 7) >> 3
  let raw = 0
  for (let i = span - 1; i >= 0; i--) raw = raw * 256 + view.getUint8(p + i)
  let v = Math.floor(raw / 2 ** s) % 2 ** bits
  if (signed && v >= 2 ** (bits - 1)) v -= 2 ** bits
  return v
`,
  ),
  __bitsB: fn(
    '__bitsB',
    'view, p, s, bits, signed',
    '(view: DataView, p: number, s: number, bits: number, signed: boolean): bigint',
    `
  const span = (s + bits + 7) >> 3
  let raw = 0n
  for (let i = span - 1; i >= 0; i--) raw = (raw << 8n) | BigInt(view.getUint8(p + i))
  const v = (raw >> BigInt(s)) & ((1n << BigInt(bits)) - 1n)
  return signed ? BigInt.asIntN(bits, v) : v
`,
  ),
  __bitsBN: fn(
    '__bitsBN',
    'view, p, s, bits, signed, path',
    '(view: DataView, p: number, s: number, bits: number, signed: boolean, path: string): number',
    `
  if (s + bits <= 48) return __bitsN(view, p, s, bits, signed)
  const v = __bitsB(view, p, s, bits, signed)
  if (v > 9007199254740991n || v < -9007199254740991n) throw new InvalidArgumentError(path + ': ' + v + ' is beyond Number.MAX_SAFE_INTEGER (decode with int64: "bigint")')
  return Number(v)
`,
    ['__bitsN', '__bitsB'],
  ),
  __zero: fn(
    '__zero',
    'view, p, len',
    '(view: DataView, p: number, len: number): void',
    `
  if (len > 64) new Uint8Array(view.buffer, view.byteOffset + p, len).fill(0)
  else for (let i = 0; i < len; i++) view.setUint8(p + i, 0)
`,
  ),
  // kind: 0 unsigned, 1 signed, 2 either (enums)
  __encI64: fn(
    '__encI64',
    'view, p, v, kind, what, path',
    '(view: DataView, p: number, v: any, kind: number, what: string, path: string): void',
    `
  if (v == null) {
    view.setUint32(p, 0, true)
    view.setUint32(p + 4, 0, true)
    return
  }
  if (typeof v === 'number') {
    if ((v >>> 0) === v) {
      view.setUint32(p, v, true)
      view.setUint32(p + 4, 0, true)
      return
    }
    if (!Number.isInteger(v)) throw __bad(path, v, what)
    v = BigInt(v)
  } else if (typeof v !== 'bigint') throw __bad(path, v, what)
  if (kind === 0 ? v < 0n || v > 0xffffffffffffffffn : v < -0x8000000000000000n || v > (kind === 1 ? 0x7fffffffffffffffn : 0xffffffffffffffffn))
    throw __bad(path, v, what)
  view.setBigUint64(p, BigInt.asUintN(64, v), true)
`,
    ['__bad'],
  ),
  __encI128: fn(
    '__encI128',
    'view, p, v, signed, what, path',
    '(view: DataView, p: number, v: any, signed: boolean, what: string, path: string): void',
    `
  if (v == null) v = 0n
  else if (typeof v === 'number' && Number.isInteger(v)) v = BigInt(v)
  else if (typeof v !== 'bigint') throw __bad(path, v, what)
  if (signed ? BigInt.asIntN(128, v) !== v : BigInt.asUintN(128, v) !== v) throw __bad(path, v, what)
  const u = BigInt.asUintN(128, v)
  view.setBigUint64(p, BigInt.asUintN(64, u), true)
  view.setBigUint64(p + 8, u >> 64n, true)
`,
    ['__bad'],
  ),
  __encStr: fn(
    '__encStr',
    'view, p, len, v, path',
    '(view: DataView, p: number, len: number, v: any, path: string): void',
    `
  if (v == null) v = ''
  if (typeof v === 'string') {
    const n = v.length
    let i = 0
    if (n < len) {
      for (; i < n; i++) {
        const c = v.charCodeAt(i)
        if (c > 127) break
        view.setUint8(p + i, c)
      }
    }
    if (i === n) {
      for (; i < len; i++) view.setUint8(p + i, 0)
      return
    }
    v = __te.encode(v)
    if (v.length > len - 1) throw new InvalidArgumentError(path + ': string of ' + v.length + ' UTF-8 bytes does not fit in char[' + len + '] (at most ' + Math.max(len - 1, 0) + ' bytes plus NUL)')
  } else if (!(v instanceof Uint8Array)) throw __bad(path, v, 'string for char[' + len + ']')
  else if (v.length > len) throw new InvalidArgumentError(path + ': ' + v.length + ' bytes do not fit in char[' + len + ']')
  new Uint8Array(view.buffer, view.byteOffset + p, len).set(v)
  for (let i = v.length; i < len; i++) view.setUint8(p + i, 0)
`,
    ['__te', '__bad'],
  ),
  __encBytes: fn(
    '__encBytes',
    'view, p, len, v, path',
    '(view: DataView, p: number, len: number, v: any, path: string): void',
    `
  let n = 0
  if (v == null) n = 0
  else if (v instanceof Uint8Array) {
    n = v.length
    if (n > len) throw new InvalidArgumentError(path + ': ' + n + ' bytes do not fit in ' + len)
    new Uint8Array(view.buffer, view.byteOffset + p, len).set(v)
  } else if (Array.isArray(v)) {
    n = v.length
    if (n > len) throw new InvalidArgumentError(path + ': ' + n + ' bytes do not fit in ' + len)
    for (let i = 0; i < n; i++) {
      const x = v[i]
      if (typeof x !== 'number' || (x & 255) !== x) throw __bad(path + '[' + i + ']', x, 'u8')
      view.setUint8(p + i, x)
    }
  } else if (typeof v === 'string') {
    __encStr(view, p, len, v, path)
    return
  } else throw __bad(path, v, 'Uint8Array of ' + len + ' bytes')
  for (let i = n; i < len; i++) view.setUint8(p + i, 0)
`,
    ['__bad', '__encStr'],
  ),
  __encBits: fn(
    '__encBits',
    'view, p, s, bits, signed, v, path',
    '(view: DataView, p: number, s: number, bits: number, signed: boolean, v: any, path: string): void',
    `
  if (v == null || v === false) v = 0
  else if (v === true) v = 1
  const span = (s + bits + 7) >> 3
  const what = (signed ? 'signed ' : 'unsigned ') + bits + '-bit bitfield'
  if (typeof v === 'number' && s + bits <= 48) {
    const lim = 2 ** bits
    if (!Number.isInteger(v) || (signed ? v < -lim / 2 || v >= lim / 2 : v < 0 || v >= lim)) throw __bad(path, v, what)
    let x = (v < 0 ? v + lim : v) * 2 ** s
    let m = (lim - 1) * 2 ** s
    for (let i = 0; i < span; i++) {
      const xb = x % 256
      const mb = m % 256
      view.setUint8(p + i, (view.getUint8(p + i) & ~mb) | xb)
      x = (x - xb) / 256
      m = (m - mb) / 256
    }
    return
  }
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw __bad(path, v, what)
    v = BigInt(v)
  } else if (typeof v !== 'bigint') throw __bad(path, v, what)
  if (signed ? BigInt.asIntN(bits, v) !== v : BigInt.asUintN(bits, v) !== v) throw __bad(path, v, what)
  const x = BigInt.asUintN(bits, v) << BigInt(s)
  const m = ((1n << BigInt(bits)) - 1n) << BigInt(s)
  for (let i = 0; i < span; i++) {
    const sh = BigInt(8 * i)
    view.setUint8(p + i, (view.getUint8(p + i) & ~Number((m >> sh) & 255n)) | Number((x >> sh) & 255n))
  }
`,
    ['__bad'],
  ),
}

/** `names` plus every helper they depend on, in a stable order. */
export function helperClosure(names: Iterable<string>): string[] {
  const out = new Set<string>()
  const visit = (n: string) => {
    if (out.has(n)) return
    const h = HELPERS[n]
    if (!h) throw new Error(`internal: unknown codec helper ${n}`)
    for (const d of h.deps) visit(d)
    out.add(n)
  }
  for (const n of names) visit(n)
  return Object.keys(HELPERS).filter((n) => out.has(n))
}

export interface EmitResult {
  /** statements of the decode function body (params: view, offset) */
  readonly decode: string
  /** statements of the encode function body (params: value, view, offset) */
  readonly encode: string
  /** helper names referenced */
  readonly helpers: ReadonlySet<string>
}

const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** Property key for an object literal (`__proto__` must be computed to stay an own property). */
function literalKey(k: string): string {
  if (k === '__proto__') return '["__proto__"]'
  return IDENT_RE.test(k) ? k : JSON.stringify(k)
}
function access(obj: string, k: string): string {
  return IDENT_RE.test(k) && k !== '__proto__' ? `${obj}.${k}` : `${obj}[${JSON.stringify(k)}]`
}

class Emitter {
  readonly helpers = new Set<string>()
  #n = 0
  constructor(readonly ts: boolean) {}
  fresh(p: string): string {
    return `${p}${this.#n++}`
  }
  use(h: string): string {
    this.helpers.add(h)
    return h
  }
  /** `: any` in TypeScript mode */
  get any(): string {
    return this.ts ? ': any' : ''
  }
}

function pos(base: string, k: number): string {
  return k === 0 ? base : `${base} + ${k}`
}

// ------------------------------------------------------------------ decode

function decNum(e: Emitter, n: NumNode, p: string, path: string): string {
  if (n.repr === 'float') return n.size === 4 ? `view.getFloat32(${p}, true)` : `view.getFloat64(${p}, true)`
  if (n.repr === 'bool') {
    switch (n.size) {
      case 1:
        return `view.getUint8(${p}) !== 0`
      case 2:
        return `view.getUint16(${p}, true) !== 0`
      case 4:
        return `view.getUint32(${p}, true) !== 0`
      case 8:
        return `(view.getUint32(${p}, true) | view.getUint32(${p} + 4, true)) !== 0`
      default:
        return `${e.use('__i128')}(view, ${p}, false) !== 0n`
    }
  }
  switch (n.size) {
    case 1:
      return n.signed ? `view.getInt8(${p})` : `view.getUint8(${p})`
    case 2:
      return n.signed ? `view.getInt16(${p}, true)` : `view.getUint16(${p}, true)`
    case 4:
      return n.signed ? `view.getInt32(${p}, true)` : `view.getUint32(${p}, true)`
    case 8:
      if (n.out === 'number') return `${e.use(n.signed ? '__i64n' : '__u64n')}(view, ${p}, ${JSON.stringify(path)})`
      return `${e.use(n.signed ? '__i64' : '__u64')}(view, ${p})`
    default:
      return `${e.use('__i128')}(view, ${p}, ${n.signed})`
  }
}

function decBits(e: Emitter, n: Extract<Node, { t: 'bits' }>, base: string, k0: number, path: string): string {
  const s = n.shift & 7
  const k = k0 + (n.shift >> 3)
  const bits = n.bits
  const p = pos(base, k)
  let expr: string
  if (n.out === 'bigint') expr = `${e.use('__bitsB')}(view, ${p}, ${s}, ${bits}, ${n.signed})`
  else if (bits > 32) expr = `${e.use('__bitsBN')}(view, ${p}, ${s}, ${bits}, ${n.signed}, ${JSON.stringify(path)})`
  else if (s + bits > 32) expr = `${e.use('__bitsN')}(view, ${p}, ${s}, ${bits}, ${n.signed})`
  else {
    const span = (s + bits + 7) >> 3
    const raw =
      span === 1
        ? `view.getUint8(${p})`
        : span === 2
          ? `view.getUint16(${p}, true)`
          : span === 3
            ? `(view.getUint16(${p}, true) | (view.getUint8(${pos(base, k + 2)}) << 16))`
            : `view.getUint32(${p}, true)`
    if (bits === 32) expr = n.signed ? `(${raw} | 0)` : raw
    else if (n.signed) expr = `((${raw} << ${32 - s - bits}) >> ${32 - bits})`
    else expr = s === 0 ? `(${raw} & ${2 ** bits - 1})` : `((${raw} >>> ${s}) & ${2 ** bits - 1})`
  }
  return n.out === 'boolean' ? `(${expr} !== 0)` : expr
}

function decNode(e: Emitter, n: Node, base: string, k: number, out: string[], path: string): string {
  switch (n.t) {
    case 'num':
      return decNum(e, n, pos(base, k), path)
    case 'bits':
      return decBits(e, n, base, k, path)
    case 'str':
      return `${e.use('__str')}(view, ${pos(base, k)}, ${n.size})`
    case 'bytes':
      return `${e.use('__bytes')}(view, ${pos(base, k)}, ${n.size})`
    case 'tarr': {
      const a = e.fresh('a')
      const i = e.fresh('i')
      const b = e.fresh('b')
      out.push(`const ${a} = new ${n.ctor}(${n.n})`)
      out.push(
        `for (let ${i} = 0, ${b} = ${pos(base, k)}; ${i} < ${n.n}; ${i}++, ${b} += ${n.elem.size}) ${a}[${i}] = ${decNum(e, n.elem, b, `${path}[]`)}`,
      )
      return a
    }
    case 'arr': {
      const a = e.fresh('a')
      const i = e.fresh('i')
      const b = e.fresh('b')
      const inner: string[] = []
      const x = decNode(e, n.elem, b, 0, inner, `${path}[]`)
      out.push(`const ${a}${e.ts ? ': any[]' : ''} = []`)
      out.push(`for (let ${i} = 0, ${b} = ${pos(base, k)}; ${i} < ${n.n}; ${i}++, ${b} += ${n.stride}) {`)
      for (const s of inner) out.push(`  ${s}`)
      out.push(`  ${a}.push(${x})`)
      out.push('}')
      return a
    }
    case 'struct': {
      if (n.fields.length === 0) return '{}'
      const parts = n.fields.map((f) => `${literalKey(f.key)}: ${decNode(e, f.node, base, k + f.off, out, `${path}.${f.key}`)}`)
      return `{ ${parts.join(', ')} }`
    }
  }
}

// ------------------------------------------------------------------ encode

const INT_CHECK: Record<string, (v: string) => string> = {
  u8: (v) => `(${v} & 255) !== ${v}`,
  i8: (v) => `((${v} << 24) >> 24) !== ${v}`,
  u16: (v) => `(${v} & 65535) !== ${v}`,
  i16: (v) => `((${v} << 16) >> 16) !== ${v}`,
  u32: (v) => `(${v} >>> 0) !== ${v}`,
  i32: (v) => `(${v} | 0) !== ${v}`,
}

function encNum(e: Emitter, n: NumNode, val: string, p: string, out: string[], path: string): void {
  const P = JSON.stringify(path)
  const W = JSON.stringify(n.what)
  if (n.repr === 'float') {
    out.push(`v = ${val}`)
    const f32 = n.size === 4 ? ` || ((v > 3.4028234663852886e38 || v < -3.4028234663852886e38) && v - v === 0)` : ''
    out.push(`if (v == null) v = 0; else if (typeof v !== 'number'${f32}) throw ${e.use('__bad')}(${P}, v, ${W})`)
    out.push(`view.setFloat${n.size * 8}(${p}, v, true)`)
    return
  }
  if (n.repr === 'bool') {
    out.push(`v = ${val}`)
    out.push(`if (v === true) v = 1; else if (v == null || v === false) v = 0; else if (v !== 0 && v !== 1) throw ${e.use('__bad')}(${P}, v, 'bool')`)
    if (n.size <= 4) out.push(`view.setUint${n.size * 8}(${p}, v${n.size > 1 ? ', true' : ''})`)
    else if (n.size === 8) out.push(`${e.use('__encI64')}(view, ${p}, v, 0, 'bool', ${P})`)
    else out.push(`${e.use('__encI128')}(view, ${p}, v, false, 'bool', ${P})`)
    return
  }
  if (n.size === 8) {
    out.push(`${e.use('__encI64')}(view, ${p}, ${val}, ${n.lenient ? 2 : n.signed ? 1 : 0}, ${W}, ${P})`)
    return
  }
  if (n.size === 16) {
    out.push(`${e.use('__encI128')}(view, ${p}, ${val}, ${n.signed}, ${W}, ${P})`)
    return
  }
  const bits = n.size * 8
  const check = n.lenient
    ? `(${INT_CHECK[`u${bits}`]('v')} && ${INT_CHECK[`i${bits}`]('v')})`
    : INT_CHECK[`${n.signed ? 'i' : 'u'}${bits}`]('v')
  out.push(`v = ${val}`)
  out.push(`if (v == null) v = 0; else if (typeof v !== 'number' || ${check}) throw ${e.use('__bad')}(${P}, v, ${W})`)
  const setter = n.size === 1 ? `setUint8(${p}, v)` : `setUint${bits}(${p}, v, true)`
  out.push(`view.${setter}`)
}

function encNode(e: Emitter, n: Node, val: string, base: string, k: number, out: string[], path: string): void {
  const P = JSON.stringify(path)
  switch (n.t) {
    case 'num':
      encNum(e, n, val, pos(base, k), out, path)
      return
    case 'bits':
      out.push(`${e.use('__encBits')}(view, ${pos(base, k + (n.shift >> 3))}, ${n.shift & 7}, ${n.bits}, ${n.signed}, ${val}, ${P})`)
      return
    case 'str':
      out.push(`${e.use('__encStr')}(view, ${pos(base, k)}, ${n.size}, ${val}, ${P})`)
      return
    case 'bytes':
      out.push(`${e.use('__encBytes')}(view, ${pos(base, k)}, ${n.size}, ${val}, ${P})`)
      return
    case 'tarr':
    case 'arr': {
      const a = e.fresh('a')
      const i = e.fresh('i')
      const b = e.fresh('b')
      const stride = n.t === 'tarr' ? n.elem.size : n.stride
      out.push(`let ${a}${e.any} = ${val}`)
      out.push(
        `if (${a} == null) ${a} = ${e.use('__EA')}; else if (typeof ${a} !== 'object' || !(${a}.length <= ${n.n})) throw ${e.use('__bad')}(${P}, ${a}, ${JSON.stringify(`array of at most ${n.n} elements`)})`,
      )
      const inner: string[] = []
      encNode(e, n.elem, `${a}[${i}]`, b, 0, inner, `${path}[]`)
      out.push(`for (let ${i} = 0, ${b} = ${pos(base, k)}; ${i} < ${n.n}; ${i}++, ${b} += ${stride}) {`)
      for (const s of inner) out.push(`  ${s}`)
      out.push('}')
      return
    }
    case 'struct': {
      const s = e.fresh('s')
      out.push(`let ${s}${e.any} = ${val}`)
      out.push(`if (${s} == null) ${s} = ${e.use('__E')}; else if (typeof ${s} !== 'object') throw ${e.use('__bad')}(${P}, ${s}, 'object')`)
      for (const f of n.fields) {
        const fv = access(s, f.key)
        const fp = `${path}.${f.key}`
        if (f.optional) {
          const inner: string[] = []
          encNode(e, f.node, fv, base, k + f.off, inner, fp)
          out.push(`if (${fv} !== undefined) {`)
          for (const x of inner) out.push(`  ${x}`)
          out.push('}')
        } else encNode(e, f.node, fv, base, k + f.off, out, fp)
      }
      return
    }
  }
}

// ------------------------------------------------------------------ coverage

type Ranges = [number, number][]
const MAX_RANGES = 64

function merge(r: Ranges): Ranges {
  r.sort((a, b) => a[0] - b[0])
  const out: Ranges = []
  for (const [a, b] of r) {
    if (b <= a) continue
    const last = out[out.length - 1]
    if (last && a <= last[1]) last[1] = Math.max(last[1], b)
    else out.push([a, b])
  }
  return out
}

/** Byte ranges an encode always writes (relative to the node), or null when too fragmented to track. */
function covered(n: Node): Ranges | null {
  switch (n.t) {
    case 'num':
    case 'str':
    case 'bytes':
    case 'tarr':
      return [[0, n.size]]
    case 'bits':
      return []
    case 'arr': {
      const el = covered(n.elem)
      if (!el) return null
      if (el.length === 1 && el[0][0] === 0 && el[0][1] >= n.stride) return [[0, n.size]]
      if (el.length * n.n > MAX_RANGES) return null
      const r: Ranges = []
      for (let i = 0; i < n.n; i++) for (const [a, b] of el) r.push([a + i * n.stride, b + i * n.stride])
      return merge(r)
    }
    case 'struct': {
      if (n.union) return []
      const r: Ranges = []
      for (const f of n.fields) {
        if (f.optional) continue
        const c = covered(f.node)
        if (!c) return null
        for (const [a, b] of c) r.push([a + f.off, b + f.off])
      }
      const m = merge(r)
      return m.length > MAX_RANGES ? null : m
    }
  }
}

function zeroStatements(e: Emitter, n: Node, out: string[]): void {
  const cov = covered(n)
  const gaps: Ranges = []
  if (!cov) gaps.push([0, n.size])
  else {
    let at = 0
    for (const [a, b] of cov) {
      if (a > at) gaps.push([at, a])
      at = Math.max(at, b)
    }
    if (at < n.size) gaps.push([at, n.size])
  }
  for (const [a, b] of gaps) {
    let len = b - a
    if (len > 32) {
      out.push(`${e.use('__zero')}(view, ${pos('offset', a)}, ${len})`)
      continue
    }
    let p = a
    while (len >= 4) {
      out.push(`view.setUint32(${pos('offset', p)}, 0)`)
      p += 4
      len -= 4
    }
    if (len >= 2) {
      out.push(`view.setUint16(${pos('offset', p)}, 0)`)
      p += 2
      len -= 2
    }
    if (len) out.push(`view.setUint8(${pos('offset', p)}, 0)`)
  }
}

/** Emit decode and encode function bodies for a layout. `name` is used in error paths. */
export function emitCodec(root: Node, name: string, ts: boolean): EmitResult {
  const e = new Emitter(ts)
  const size = root.size
  const check = `if (!(offset >= 0 && offset + ${size} <= view.byteLength)) throw ${e.use('__short')}(view, offset, ${size})`

  const dout: string[] = [check]
  const expr = decNode(e, root, 'offset', 0, dout, name)
  dout.push(`return ${expr}`)

  const eout: string[] = [check]
  zeroStatements(e, root, eout)
  encNode(e, root, 'value', 'offset', 0, eout, name)
  if (eout.some((l) => /^\s*v = /.test(l))) eout.splice(1, 0, `let v${e.any}`)

  return { decode: dout.join('\n'), encode: eout.join('\n'), helpers: e.helpers }
}

/** TypeScript type of a node's JS value; struct nodes are named by `nameOf`. */
export function tsTypeOf(n: Node, nameOf: (s: StructNode) => string): string {
  switch (n.t) {
    case 'num':
    case 'bits':
      return n.out
    case 'str':
      return 'string'
    case 'bytes':
      return 'Uint8Array'
    case 'tarr':
      return n.ctor
    case 'arr':
      return `${tsTypeOf(n.elem, nameOf)}[]`
    case 'struct':
      return nameOf(n)
  }
}

export type { Field }
