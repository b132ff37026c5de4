/**
 * The "spec" half of the spec/live split (as in cilium/ebpf): an ELF object
 * opened and inspected but not loaded. Everything here is plain data that can
 * be changed — global variables, map sizes, pin paths, which programs load —
 * before `new Collection(spec)` turns it into kernel objects.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import type { NativeMapInfo, NativeProgramInfo } from '@bpfkit/native'
import { type Btf, codecForType, codecForVariable, parseBtf } from './btf/index.js'
import type { BtfVariable } from './btf/index.js'
import type { Codec } from './codec.js'
import { ElfError, InvalidArgumentError, NotFoundError } from './errors.js'
import { libbpfCause, native, type RawNativeError } from './native.js'

/** A program in an object, before loading. */
export class ProgramSpec {
  readonly name: string
  /** ELF section, e.g. 'tracepoint/sched/sched_process_exec'; drives auto-attach */
  readonly section: string
  /** program type as libbpf names it: 'tracepoint', 'kprobe', 'tracing', 'lsm', 'cgroup_sock_addr', ... */
  readonly type: string
  /** expected attach type ('' when none), e.g. 'cgroup_inet4_connect', 'trace_fentry' */
  readonly attachType: string
  readonly instructions: number
  /** load this program with the collection (true by default) */
  autoload: boolean

  constructor(info: NativeProgramInfo) {
    this.name = info.name
    this.section = info.section
    this.type = info.typeName
    this.attachType = info.attachTypeName
    this.instructions = info.insnCount
    this.autoload = info.autoload
  }
}

/** A map in an object, before loading. */
export class MapSpec {
  readonly name: string
  /** map type as libbpf names it: 'hash', 'array', 'ringbuf', 'percpu_array', ... */
  readonly type: string
  readonly keySize: number
  readonly valueSize: number
  readonly flags: number
  /** libbpf internal map holding global variables (.rodata, .data, .bss, ...) */
  readonly internal: boolean
  /** BTF type ids of key and value (0 when the object has no BTF for them) */
  readonly keyTypeId: number
  readonly valueTypeId: number
  #maxEntries: number
  /** pin the map at this bpffs path at load (reusing an existing compatible pin), or null */
  pinPath: string | null
  /** initial contents of an internal map; variables write into it */
  readonly initialValue: Buffer | null

  constructor(info: NativeMapInfo) {
    this.name = info.name
    this.type = info.typeName
    this.keySize = info.keySize
    this.valueSize = info.valueSize
    this.flags = info.flags
    this.internal = info.internal
    this.keyTypeId = info.btfKeyTypeId
    this.valueTypeId = info.btfValueTypeId
    this.#maxEntries = info.maxEntries
    this.pinPath = info.pinPath
    this.initialValue = info.initialValue ? Buffer.from(info.initialValue) : null
  }

  /**
   * Maximum entries (for ring buffers: the size in bytes; libbpf rounds it up to a power of
   * two multiple of the page size). Checked when set, so a bad size fails here, not at load.
   */
  get maxEntries(): number {
    return this.#maxEntries
  }

  set maxEntries(n: number) {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new InvalidArgumentError(`maxEntries of map '${this.name}' must be an integer in [0, 4294967295], got ${String(n)}`)
    }
    this.#maxEntries = n
  }
}

/** A global variable in .rodata/.data/.bss, settable before load. */
export class VariableSpec<T = unknown> {
  readonly name: string
  /** ELF section: '.rodata', '.data', '.bss', or a custom '.data.x' */
  readonly section: string
  readonly offset: number
  readonly size: number
  /** true for .rodata: the verifier sees the value as a constant */
  readonly constant: boolean
  /** @internal the internal map's initial value this variable lives in */
  readonly data: Buffer
  /** codec of the variable's BTF type */
  readonly codec: Codec<T>

  /** @internal */
  constructor(variable: BtfVariable, data: Buffer, codec: Codec<T>) {
    this.name = variable.name
    this.section = variable.section
    this.offset = variable.offset
    this.size = variable.size
    this.constant = variable.section.startsWith('.rodata')
    this.data = data
    this.codec = codec
  }

  /** Current value (the object's initial value unless set() was called). */
  get(): T {
    return this.codec.decode(new DataView(this.data.buffer, this.data.byteOffset, this.data.length), this.offset)
  }

  /** Set the value the program will see once loaded. Accepts raw bytes too. */
  set(value: T | Buffer): void {
    if (Buffer.isBuffer(value) && !Buffer.isBuffer(this.get())) {
      if (value.length !== this.size) {
        throw new InvalidArgumentError(`variable '${this.name}' is ${this.size} bytes, got a ${value.length}-byte buffer`)
      }
      value.copy(this.data, this.offset)
      return
    }
    this.codec.encode(value as T, new DataView(this.data.buffer, this.data.byteOffset, this.data.length), this.offset)
  }
}

/** A name-keyed collection that throws NotFoundError listing what exists. */
export class NamedMap<V> extends Map<string, V> {
  constructor(
    readonly kind: string,
    entries: Iterable<readonly [string, V]>,
  ) {
    super(entries)
  }

  /** Like get(), but a missing name is a NotFoundError rather than undefined. */
  must(name: string): V {
    const v = super.get(name)
    if (v === undefined) throw new NotFoundError(this.kind, name, [...this.keys()])
    return v
  }
}

/** An opened, inspected, not-yet-loaded object. */
export class CollectionSpec {
  /** object name (file name without .bpf.o / .o) */
  readonly name: string
  readonly programs: NamedMap<ProgramSpec>
  readonly maps: NamedMap<MapSpec>
  readonly variables: NamedMap<VariableSpec>
  /** the object's own BTF, or null if it was built without -g */
  readonly btf: Btf | null
  /** @internal original ELF bytes; loading reopens them so a spec can load many times */
  readonly elf: Buffer

  private constructor(name: string, elf: Buffer) {
    this.name = name
    this.elf = elf
    let info
    const obj = openNative(elf, name)
    try {
      info = obj.info()
    } finally {
      obj.close()
    }
    this.programs = new NamedMap('program', info.programs.map((p) => [p.name, new ProgramSpec(p)] as const))
    this.maps = new NamedMap('map', info.maps.map((m) => [m.name, new MapSpec(m)] as const))
    this.btf = info.btf ? parseBtf(info.btf) : null
    this.variables = new NamedMap('variable', this.#variableSpecs())
  }

  /** Open an object file (any libbpf-style ELF: ours, libbpf-tools', bpf2go's). */
  static fromFile(path: string): CollectionSpec {
    let elf: Buffer
    try {
      elf = readFileSync(path)
    } catch (cause) {
      throw new ElfError(`cannot read object file ${path}: ${(cause as Error).message}`, { cause })
    }
    return new CollectionSpec(objectName(path), elf)
  }

  /** Open an object from memory (for example one embedded in a package). */
  static fromBuffer(elf: Uint8Array, name = 'object'): CollectionSpec {
    return new CollectionSpec(name, Buffer.from(elf))
  }

  /** The BTF-derived codec for a named struct/union/typedef in this object. */
  codec<T = Record<string, unknown>>(typeName: string): Codec<T> {
    if (!this.btf) throw new NotFoundError('BTF type', typeName, [])
    return codecForType(this.btf, typeName) as Codec<T>
  }

  *#variableSpecs(): Iterable<readonly [string, VariableSpec]> {
    if (!this.btf) return
    for (const v of this.btf.variables()) {
      const map = [...this.maps.values()].find((m) => m.internal && internalMapHoldsSection(m.name, v.section))
      if (!map?.initialValue) continue
      if (v.offset + v.size > map.initialValue.length) continue
      yield [v.name, new VariableSpec(v, map.initialValue, codecForVariable(this.btf, v))]
    }
  }
}

/** Open `elf` with libbpf, mapping failures to ElfError. */
export function openNative(elf: Buffer, name: string, options: { pinRoot?: string; btfCustomPath?: string } = {}) {
  const { NativeObject } = native()
  try {
    return new NativeObject(elf, { name, ...options })
  } catch (err) {
    const e = err as RawNativeError
    const why = libbpfCause(e.libbpfLog) || e.message
    throw new ElfError(`cannot open BPF object '${name}': ${why}`, { errno: e.errno, libbpfLog: e.libbpfLog, cause: err })
  }
}

/**
 * libbpf names internal maps '<obj prefix>.rodata' (truncated to 15 chars);
 * the section is the part starting at the first '.'.
 */
export function sectionOfInternalMap(mapName: string): string {
  const i = mapName.indexOf('.')
  return i >= 0 ? mapName.slice(i) : mapName
}

/** True if internal map `mapName` holds `section` (names over 15 chars are truncated by libbpf). */
function internalMapHoldsSection(mapName: string, section: string): boolean {
  const held = sectionOfInternalMap(mapName)
  return held === section || (mapName.length === 15 && section.startsWith(held))
}

function objectName(path: string): string {
  return basename(path).replace(/\.bpf\.o$|\.o$/, '')
}
