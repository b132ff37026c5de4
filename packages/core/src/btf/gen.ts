/**
 * `bpfkit gen types`: TypeScript declarations and static codecs from BTF,
 * in the spirit of bpf2go's generated Go types.
 *
 * For every struct/union reachable from the object's maps (key/value) and
 * global variables (or the names requested with `types`, or everything with
 * `all`) the output has
 *
 *   export interface Name { ... }            // one property per member, doc comment = C declaration + offset
 *   export const NameCodec: Codec<Name> = {  // static decode/encode, same code codecForType() compiles at run time
 *     size, decode(view, offset) {...}, encode(value, view, offset) {...} }
 *
 * and for every enum `export const Name = { A: 0, ... } as const` plus
 * `export type Name = (typeof Name)[keyof typeof Name]`. Enum-typed members
 * are typed `number` (bigint for ENUM64): the kernel may hand back values
 * that are not enumerators.
 *
 * Names: C names become PascalCase (`struct task_struct` → `TaskStruct`);
 * anonymous types are named after where they are used (`Outer` + member
 * `anon_named` → `OuterAnonNamed`, a map value → `<Map>Value`, a variable →
 * its PascalCase name); clashes (struct foo vs enum foo, reserved / global
 * names like `Map`) get a suffix. Output is sorted and deterministic.
 */
import { BtfError, NotFoundError } from '../errors.js'
import { emitCodec, helperClosure, HELPERS, tsTypeOf } from './emit.js'
import { isElf, readElfBtf } from './elf.js'
import { buildLayout, type CodecOptions, type Node, type StructNode } from './layout.js'
import { parseBtf, type Btf, type BtfEnum, type BtfEnum64, type BtfType } from './parse.js'

export interface GenerateOptions extends CodecOptions {
  /** type names to generate (`event`, `struct event`, `named_t`, `enum kind`); default: everything reachable from maps and variables */
  types?: string[]
  /** generate every named struct, union and enum in the BTF */
  all?: boolean
  /** module the generated file imports `Codec` and `InvalidArgumentError` from. Default '@bpfkit/core' */
  importFrom?: string
  /** shown in the banner comment, e.g. the object file name */
  source?: string
}

const RESERVED = new Set([
  // globals and names the generated code uses
  'Codec', 'InvalidArgumentError', 'DataView', 'ArrayBuffer', 'SharedArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint16Array',
  'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'BigInt',
  'Number', 'String', 'Boolean', 'Object', 'Array', 'Math', 'JSON', 'Error', 'TypeError', 'RangeError', 'TextDecoder',
  'TextEncoder', 'Symbol', 'Promise', 'Map', 'Set', 'WeakMap', 'WeakSet', 'Date', 'RegExp', 'Function', 'Infinity', 'NaN',
  'Record', 'Partial', 'Readonly', 'Required', 'Pick', 'Omit', 'Exclude', 'Extract', 'Proxy', 'Reflect', 'Intl',
  'Iterator', 'Generator', 'Atomics', 'WebAssembly',
])
// lower-case keywords can only come out of sanitising odd names, but keep them out anyway
const KEYWORDS = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function if ' +
    'import in instanceof new null return super switch this throw true try typeof var void while with yield let static ' +
    'implements interface package private protected public await any boolean number string symbol bigint never unknown object type')
    .split(' '),
)

const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** `task_struct` → `TaskStruct`; non-identifier characters are dropped. */
export function pascalCase(s: string): string {
  const parts = s.split(/[^A-Za-z0-9]+/).filter(Boolean)
  let out = parts.map((p) => p[0].toUpperCase() + p.slice(1)).join('')
  if (!out) out = 'Anon'
  if (/^[0-9]/.test(out)) out = `T${out}`
  return out
}

function propKey(k: string): string {
  return IDENT_RE.test(k) && k !== '__proto__' ? k : JSON.stringify(k)
}

function doc(s: string): string {
  return s.replace(/\*\//g, '*\\/').replace(/[\r\n]+/g, ' ')
}

function indent(text: string, pad: string): string {
  return text
    .split('\n')
    .map((l) => (l ? pad + l : l))
    .join('\n')
}

interface StructInfo {
  typeId: number
  node: StructNode
  /** named C type (struct tag or typedef) */
  cname: string
  kind: 'struct' | 'union' | 'datasec'
  /** first place it was used, for naming anonymous types */
  parent?: { typeId: number; field: string }
  hint?: string
}
interface EnumInfo {
  type: BtfEnum | BtfEnum64
  cname: string
  parent?: { typeId: number; field: string }
  hint?: string
}
interface AliasRoot {
  typeId: number
  name: string
  node: Node
}

interface Root {
  typeId: number
  hint: string
  explicit: boolean
}

/** Find the type a user-facing name refers to. */
function lookup(btf: Btf, name: string): BtfType {
  const m = /^(struct|union|enum)\s+(.+)$/.exec(name.trim())
  if (m) {
    const kind = m[1] as 'struct' | 'union' | 'enum'
    const t = btf.tryFindByName(m[2], kind) ?? (kind === 'enum' ? btf.tryFindByName(m[2], 'enum64') : undefined)
    if (!t) throw new NotFoundError(`BTF ${kind}`, m[2])
    return t
  }
  for (const k of ['struct', 'union', 'enum', 'enum64', 'typedef', 'int', 'float'] as const) {
    const t = btf.tryFindByName(name, k)
    if (t) return t
  }
  throw new NotFoundError('BTF type', name)
}

function defaultRoots(btf: Btf): Root[] {
  const roots: Root[] = []
  for (const sec of btf.datasecs()) {
    if (sec.name === '.maps') {
      for (const v of sec.vars) {
        let t: BtfType
        try {
          t = btf.resolve(v.typeId)
        } catch {
          continue
        }
        if (t.kind !== 'struct') continue
        for (const m of t.members) {
          if (m.name !== 'key' && m.name !== 'value') continue
          const p = btf.resolve(m.type)
          if (p.kind === 'ptr' && p.type !== 0) roots.push({ typeId: p.type, hint: `${v.name}_${m.name}`, explicit: false })
        }
      }
    } else if (/^\.(data|rodata|bss)(\..+)?$/.test(sec.name)) {
      for (const v of sec.vars) {
        roots.push({ typeId: v.typeId, hint: v.name, explicit: false })
        // A global pointer to a struct (BPFKIT_EXPORT_TYPE, libbpf-bootstrap's `unused` idiom)
        // is how objects keep ring-buffer record types in BTF: generate the pointee too.
        try {
          const t = btf.resolve(v.typeId)
          if (t.kind === 'ptr' && t.type !== 0) roots.push({ typeId: t.type, hint: v.name, explicit: false })
        } catch {
          // unresolvable type: skipped, like the pointer itself
        }
      }
    }
  }
  return roots
}

/** Skip qualifiers/typedefs/arrays/pointers-as-values to the struct/union/enum a root is about. */
function rootTarget(btf: Btf, id: number): { t: BtfType; alias: string } {
  let cur = id
  let alias = ''
  for (let depth = 0; depth < 64; depth++) {
    const t = btf.typeById(cur)
    if (t.kind === 'typedef') {
      if (!alias) alias = t.name
      cur = t.type
    } else if (t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag' || t.kind === 'var') cur = t.type
    else if (t.kind === 'array') cur = t.type
    else if (t.kind === 'ptr' && t.type !== 0 && depth === 0) cur = t.type // `const struct event *unused;` idiom
    else return { t, alias }
  }
  throw new BtfError(`type id ${id}: type chain too long (cycle?)`)
}

/** Generate TypeScript source (see module doc). */
export function generateTypes(btf: Btf, options: GenerateOptions = {}): string {
  const layoutOptions: CodecOptions = { int64: options.int64, charArrays: options.charArrays }
  const structs = new Map<number, StructInfo>()
  const enums = new Map<number, EnumInfo>()
  const aliases: AliasRoot[] = []

  // ---- roots
  let roots: Root[]
  if (options.types && options.types.length) roots = options.types.map((n) => ({ typeId: lookup(btf, n).id, hint: n.replace(/^(struct|union|enum)\s+/, ''), explicit: true }))
  else if (options.all) {
    roots = []
    for (let id = 1; id < btf.typeCount; id++) {
      const k = btf.kindOf(id)
      if ((k === 'struct' || k === 'union' || k === 'enum' || k === 'enum64') && btf.nameOf(id)) roots.push({ typeId: id, hint: btf.nameOf(id), explicit: false })
      else if (k === 'typedef') {
        const target = btf.resolve(id)
        if ((target.kind === 'struct' || target.kind === 'union' || target.kind === 'enum' || target.kind === 'enum64') && !target.name)
          roots.push({ typeId: id, hint: btf.nameOf(id), explicit: false })
      }
    }
  } else roots = defaultRoots(btf)

  // ---- collect struct/enum nodes reachable from the roots
  const visitNode = (n: Node, parent: number | undefined, field: string) => {
    switch (n.t) {
      case 'num':
      case 'bits':
        if (n.enumId !== undefined && !enums.has(n.enumId)) {
          const et = btf.typeById(n.enumId) as BtfEnum | BtfEnum64
          enums.set(n.enumId, { type: et, cname: et.name, ...(parent !== undefined ? { parent: { typeId: parent, field } } : {}) })
        }
        return
      case 'tarr':
        visitNode(n.elem, parent, field)
        return
      case 'arr':
        visitNode(n.elem, parent, field)
        return
      case 'struct': {
        let info = structs.get(n.typeId)
        if (!info) {
          info = {
            typeId: n.typeId,
            node: n,
            cname: n.cname,
            kind: btf.kindOf(n.typeId) as 'struct' | 'union' | 'datasec',
            ...(parent !== undefined ? { parent: { typeId: parent, field } } : {}),
          }
          structs.set(n.typeId, info)
        } else if (!info.cname && n.cname) info.cname = n.cname
        for (const f of n.fields) visitNode(f.node, n.typeId, f.key)
        return
      }
      default:
        return
    }
  }

  const sortedRoots = [...roots].sort((a, b) => (a.hint < b.hint ? -1 : a.hint > b.hint ? 1 : a.typeId - b.typeId))
  for (const r of sortedRoots) {
    const { t, alias } = rootTarget(btf, r.typeId)
    if (t.kind === 'struct' || t.kind === 'union') {
      const known = structs.get(t.id)
      if (known) {
        if (!known.cname && alias) known.cname = alias
        if (!known.hint) known.hint = r.hint
        continue
      }
      const node = buildLayout(btf, r.typeId === t.id ? t.id : r.typeId, layoutOptions)
      // buildLayout on a typedef/array root: find the struct node itself
      const sn = findStruct(node, t.id)
      if (!sn) continue
      visitNode(sn, undefined, '')
      const info = structs.get(t.id)!
      if (!info.cname && alias) info.cname = alias
      if (!info.hint) info.hint = r.hint
    } else if (t.kind === 'enum' || t.kind === 'enum64') {
      if (!enums.has(t.id)) enums.set(t.id, { type: t, cname: t.name || alias, hint: r.hint })
      else if (!enums.get(t.id)!.cname && alias) enums.get(t.id)!.cname = alias
    } else if (r.explicit) {
      const node = buildLayout(btf, r.typeId, layoutOptions)
      visitNode(node, undefined, '')
      aliases.push({ typeId: r.typeId, name: btf.nameOf(r.typeId) || r.hint, node })
    }
  }

  // ---- naming
  const used = new Set<string>()
  const structNames = new Map<number, string>()
  const enumNames = new Map<number, string>()
  const claim = (base: string, suffix: string, withCodec: boolean): string => {
    const ok = (n: string) => !used.has(n) && !RESERVED.has(n) && !KEYWORDS.has(n) && (!withCodec || !used.has(`${n}Codec`))
    const candidates = [base, `${base}${suffix}`]
    let name = candidates.find(ok)
    for (let i = 2; !name; i++) if (ok(`${base}${i}`)) name = `${base}${i}`
    used.add(name)
    if (withCodec) used.add(`${name}Codec`)
    return name
  }
  const suffixOf = (k: string) => (k === 'union' ? 'Union' : k === 'datasec' ? 'Section' : k.startsWith('enum') ? 'Enum' : 'Struct')

  type Named = { kind: 's' | 'e'; id: number; cname: string; ckind: string }
  const named: Named[] = []
  for (const s of structs.values()) if (s.cname) named.push({ kind: 's', id: s.typeId, cname: s.cname, ckind: s.kind })
  for (const [id, e] of enums) if (e.cname) named.push({ kind: 'e', id, cname: e.cname, ckind: e.type.kind })
  const kindOrder = (k: string) => ['struct', 'union', 'datasec', 'enum', 'enum64'].indexOf(k)
  named.sort((a, b) => (a.cname < b.cname ? -1 : a.cname > b.cname ? 1 : kindOrder(a.ckind) - kindOrder(b.ckind) || a.id - b.id))
  for (const n of named) {
    const name = claim(pascalCase(n.cname), suffixOf(n.ckind), n.kind === 's')
    ;(n.kind === 's' ? structNames : enumNames).set(n.id, name)
  }
  const structName = (id: number, depth = 0): string => {
    const have = structNames.get(id)
    if (have) return have
    const s = structs.get(id)!
    let base: string
    if (s.parent && depth < 64) base = structName(s.parent.typeId, depth + 1) + pascalCase(s.parent.field)
    else base = s.hint ? pascalCase(s.hint) : `Anon${id}`
    const name = claim(base, suffixOf(s.kind), true)
    structNames.set(id, name)
    return name
  }
  // anonymous ones in a stable order: by parent chain name, then id
  for (const id of [...structs.keys()].sort((a, b) => a - b)) structName(id)
  for (const [id, e] of [...enums].sort((a, b) => a[0] - b[0])) {
    if (enumNames.has(id)) continue
    const base = e.parent ? structName(e.parent.typeId) + pascalCase(e.parent.field) : e.hint ? pascalCase(e.hint) : `Enum${id}`
    enumNames.set(id, claim(base, 'Enum', false))
  }
  const aliasNames = aliases.map((a) => claim(pascalCase(a.name), 'Type', true))

  // ---- emit
  const nameOf = (s: StructNode) => structName(s.typeId)
  const helperNames = new Set<string>()
  const blocks: { name: string; text: string }[] = []

  for (const [id, e] of enums) {
    const name = enumNames.get(id)!
    const t = e.type
    const seen = new Set<string>()
    const lines: string[] = []
    for (const v of t.values) {
      if (seen.has(v.name) || !v.name) continue
      seen.add(v.name)
      lines.push(`  ${propKey(v.name)}: ${typeof v.value === 'bigint' ? `${v.value}n` : String(v.value)},`)
    }
    const what = `${t.kind === 'enum64' ? 'enum (64-bit)' : 'enum'} ${t.name || `(anonymous${e.cname ? `, ${e.cname}` : ''})`}`
    blocks.push({
      name,
      text:
        `/** ${doc(what)}: ${t.size} bytes, ${t.signed ? 'signed' : 'unsigned'} */\n` +
        `export const ${name} = {\n${lines.join('\n')}${lines.length ? '\n' : ''}} as const\n` +
        `export type ${name} = (typeof ${name})[keyof typeof ${name}]\n`,
    })
  }

  const codecBlock = (name: string, node: Node, what: string): string => {
    const src = emitCodec(node, 'value', true)
    for (const h of src.helpers) helperNames.add(h)
    return (
      `/** Codec for {@link ${name}}: ${doc(what)}, ${node.size} bytes, little-endian. */\n` +
      `export const ${name}Codec: Codec<${name}> = {\n` +
      `  size: ${node.size},\n` +
      `  decode(view: DataView, offset: number): ${name} {\n${indent(src.decode, '    ')}\n  },\n` +
      `  encode(value: ${name}, view: DataView, offset: number): void {\n${indent(src.encode, '    ')}\n  },\n` +
      `}\n`
    )
  }

  for (const s of structs.values()) {
    const name = structName(s.typeId)
    const n = s.node
    const props = n.fields.map((f) => {
      const enumRef = fieldEnum(f.node)
      const where =
        f.node.t === 'bits'
          ? `bit offset ${f.bitOffset} (byte ${f.bitOffset >> 3})`
          : `offset ${f.off}, ${f.node.size} byte${f.node.size === 1 ? '' : 's'}`
      const see = enumRef !== undefined && enumNames.has(enumRef) ? `, see {@link ${enumNames.get(enumRef)}}` : ''
      const opt = f.optional ? ' (union member)' : ''
      return `  /** \`${doc(f.cdecl)}\`: ${where}${opt}${see} */\n  ${propKey(f.key)}: ${tsTypeOf(f.node, nameOf)}`
    })
    const ctype = n.ctype
    const iface =
      `/** ${doc(ctype)}: ${n.size} bytes${n.union ? '; every member is decoded from the same bytes' : ''} */\n` +
      `export interface ${name} {\n${props.join('\n')}${props.length ? '\n' : ''}}\n`
    blocks.push({ name, text: `${iface}\n${codecBlock(name, n, ctype)}` })
  }

  aliases.forEach((a, i) => {
    const name = aliasNames[i]
    const what = btf.typeName(a.typeId)
    blocks.push({
      name,
      text: `/** ${doc(what)} */\nexport type ${name} = ${tsTypeOf(a.node, nameOf)}\n\n${codecBlock(name, a.node, what)}`,
    })
  })

  blocks.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

  const importFrom = options.importFrom ?? '@bpfkit/core'
  const helpers = helperClosure(helperNames)
    .map((h) => HELPERS[h].ts)
    .join('\n\n')
  const head =
    `// Code generated by bpfkit gen types${options.source ? ` from ${doc(options.source)}` : ''}. DO NOT EDIT.\n` +
    `/* eslint-disable */\n` +
    `import type { Codec } from ${JSON.stringify(importFrom)}\n` +
    `import { InvalidArgumentError } from ${JSON.stringify(importFrom)}\n`
  const body = blocks.map((b) => b.text).join('\n')
  return `${head}\n${body}${helpers ? `\n// ---- helpers used by the codecs above\n\n${helpers}\n` : ''}`
}

function fieldEnum(n: Node): number | undefined {
  if (n.t === 'num' || n.t === 'bits') return n.enumId
  if (n.t === 'tarr') return n.elem.enumId
  if (n.t === 'arr') return fieldEnum(n.elem)
  return undefined
}

function findStruct(n: Node, typeId: number): StructNode | undefined {
  if (n.t === 'struct') return n.typeId === typeId ? n : undefined
  if (n.t === 'arr') return findStruct(n.elem, typeId)
  return undefined
}

/**
 * `bpfkit gen types <object.bpf.o>`: accepts either a BPF ELF object (its
 * .BTF section is used) or raw BTF bytes.
 */
export function generateTypesFromBtf(raw: Uint8Array, options: GenerateOptions = {}): string {
  const btfBytes = isElf(raw) ? readElfBtf(raw).btf : raw
  return generateTypes(parseBtf(btfBytes), options)
}
