/**
 * The "live" half of the spec/live split: `new Collection(spec)` loads every
 * map and program of a CollectionSpec into the kernel. Load failures become
 * typed errors; a truncated verifier log is retried with a bigger buffer so
 * VerifierError always carries the complete log.
 */
import type { NativeObject } from '@bpfkit/native'
import { codecForType } from './btf/index.js'
import { TRACING_CAPS } from './caps.js'
import type { Codec } from './codec.js'
import { BpfError, InvalidArgumentError, NotFoundError, NotSupportedError, VerifierError } from './errors.js'
import { Link } from './link.js'
import { BpfMap, type MapCodecs } from './map.js'
import { pinPathProblem } from './mounts.js'
import { toBpfError, type RawNativeError } from './native.js'
import { ObjectHandle } from './object-handle.js'
import { probeFeature, type FeatureName } from './probes.js'
import { Program } from './program.js'
import { Resource } from './resource.js'
import { RingBuffer, type RingBufferOptions } from './ringbuf.js'
import { CollectionSpec, NamedMap, openNative, type VariableSpec } from './spec.js'

export interface CollectionOptions {
  /** verifier log level for a failing program: 1 (default) or 2 (verbose) */
  logLevel?: 1 | 2
  /** first verifier log buffer size in bytes (default 1 MiB); grows ×8 while truncated */
  logSize?: number
  /** largest verifier log buffer to try (default 256 MiB) */
  maxLogSize?: number
  /** bpffs directory for maps declared with LIBBPF_PIN_BY_NAME */
  pinRoot?: string
  /** external vmlinux BTF for CO-RE on kernels without /sys/kernel/btf/vmlinux */
  btfCustomPath?: string
  /** give maps BTF-derived codecs (default true); false = raw Buffers */
  btfCodecs?: boolean
  /** @internal feature probes load with this off to avoid diagnosing themselves */
  diagnose?: boolean
}

const DEFAULT_LOG_SIZE = 1 << 20
const MAX_LOG_SIZE = 256 << 20

export class Collection extends Resource {
  readonly spec: CollectionSpec
  readonly programs: NamedMap<Program>
  readonly maps: NamedMap<BpfMap>
  readonly #handle: ObjectHandle

  constructor(spec: CollectionSpec, options: CollectionOptions = {}) {
    const object = loadWithFullLog(spec, options)
    const handle = new ObjectHandle(object)
    handle.retain()
    super(`collection '${spec.name}'`, () => handle.releaseRef())
    this.spec = spec
    this.#handle = handle
    const useBtf = options.btfCodecs !== false
    const maps: [string, BpfMap][] = []
    const programs: [string, Program][] = []
    try {
      for (const m of spec.maps.values()) {
        const fd = object.mapFd(m.name)
        // Internal maps (.rodata/.data/.bss) stay raw: variable() decodes them per variable.
        const codecs = useBtf && !m.internal ? btfCodecs(spec, m.keyTypeId, m.valueTypeId, m.keySize, m.valueSize) : {}
        maps.push([m.name, new BpfMap(fd, codecs)])
      }
      for (const p of spec.programs.values()) {
        if (!p.autoload) continue
        programs.push([p.name, new Program(handle, p.name, p.section, p.type, p.attachType)])
      }
    } catch (err) {
      for (const [, m] of maps) m.close()
      for (const [, p] of programs) p.close()
      handle.releaseRef()
      throw toBpfError(err, { action: `open maps of '${spec.name}'` })
    }
    this.maps = new NamedMap('map', maps)
    this.programs = new NamedMap('program', programs)
  }

  /** Loads an object file or buffer in one step (spec with defaults). */
  static load(source: string | Uint8Array, options: CollectionOptions = {}): Collection {
    const spec = typeof source === 'string' ? CollectionSpec.fromFile(source) : CollectionSpec.fromBuffer(source)
    return new Collection(spec, options)
  }

  /** The map called `name`; K/V are what its codecs produce (BTF-derived by default). */
  map<K = any, V = any>(name: string): BpfMap<K, V> {
    this.assertOpen()
    return this.maps.must(name) as BpfMap<K, V>
  }

  /**
   * A global variable of the loaded object. get() reads the kernel's current
   * value; set() writes .data/.bss variables (.rodata is frozen at load).
   */
  variable<T = unknown>(name: string): LiveVariable<T> {
    this.assertOpen()
    const v = this.spec.variables.must(name) as VariableSpec<T>
    const map = [...this.spec.maps.values()].find((m) => m.internal && m.initialValue === v.data)
    if (!map) throw new NotFoundError('data section map for variable', name)
    return new LiveVariable<T>(v, this.maps.must(map.name) as BpfMap<Buffer, Buffer>)
  }

  /** The program called `name` (only programs that were loaded). */
  program(name: string): Program {
    this.assertOpen()
    return this.programs.must(name)
  }

  /**
   * Opens a ring-buffer reader on map `name`. `codec` may be a BTF type name
   * from this object (e.g. 'struct event' or 'event'). A `<name>_lost` counter
   * map (see bpf/include/bpfkit.h) is picked up as the lost counter.
   */
  ringBuffer<T = Record<string, unknown>>(name: string, options: Omit<RingBufferOptions<T>, 'codec'> & { codec?: Codec<T> | string } = {}): RingBuffer<T> {
    const map = this.map(name)
    const codec = typeof options.codec === 'string' ? this.spec.codec<T>(options.codec.replace(/^struct\s+/, '')) : options.codec
    const lostMap = this.maps.get(`${name}_lost`)
    return new RingBuffer<T>(map, { ...options, codec, lost: options.lost ?? (lostMap ? { map: lostMap } : undefined) })
  }

  /** Auto-attaches every loaded program by its section name; returns the links. */
  attachAll(): Link[] {
    const links: Link[] = []
    try {
      for (const p of this.programs.values()) links.push(p.attach())
    } catch (err) {
      for (const l of links) l.close()
      throw err
    }
    return links
  }

  /** Closes the maps and programs (links stay attached until closed). */
  protected release(): void {
    for (const m of this.maps.values()) m.close()
    for (const p of this.programs.values()) p.close()
    this.#handle.releaseRef()
  }
}

/** A global variable read from and written to the live object's data map. */
export class LiveVariable<T> {
  constructor(
    readonly spec: VariableSpec<T>,
    readonly map: BpfMap<Buffer, Buffer>,
  ) {}

  get(): T {
    const data = this.map.lookup(Buffer.alloc(4))!
    return this.spec.codec.decode(new DataView(data.buffer, data.byteOffset, data.length), this.spec.offset)
  }

  set(value: T): void {
    if (this.spec.constant) throw new InvalidArgumentError(`variable '${this.spec.name}' is in .rodata, which is frozen once loaded`)
    const data = this.map.lookup(Buffer.alloc(4))!
    this.spec.codec.encode(value, new DataView(data.buffer, data.byteOffset, data.length), this.spec.offset)
    this.map.update(Buffer.alloc(4), data)
  }
}

function btfCodecs(spec: CollectionSpec, keyId: number, valueId: number, keySize: number, valueSize: number): MapCodecs<unknown, unknown> {
  const out: MapCodecs<unknown, unknown> = {}
  if (!spec.btf) return out
  const derive = (id: number, size: number): Codec<unknown> | undefined => {
    if (!id) return undefined
    try {
      const c = codecForType(spec.btf!, id)
      return c.size === size ? c : undefined
    } catch {
      return undefined // a type no codec can represent: callers get raw bytes
    }
  }
  out.key = derive(keyId, keySize)
  out.value = derive(valueId, valueSize)
  return out
}

/** Opens, configures and loads the object, growing the verifier log buffer while truncated. */
function loadWithFullLog(spec: CollectionSpec, options: CollectionOptions): NativeObject {
  let logSize = options.logSize ?? DEFAULT_LOG_SIZE
  const maxLogSize = options.maxLogSize ?? MAX_LOG_SIZE
  for (;;) {
    const object = openNative(spec.elf, spec.name, { pinRoot: options.pinRoot, btfCustomPath: options.btfCustomPath })
    try {
      configure(object, spec)
      object.load({ logLevel: options.logLevel ?? 1, logSize })
      return object
    } catch (err) {
      object.close()
      const e = err as RawNativeError
      if (e.logTruncated && logSize < maxLogSize) {
        logSize = Math.min(logSize * 8, maxLogSize)
        continue
      }
      throw loadError(spec, e, options)
    }
  }
}

function configure(object: NativeObject, spec: CollectionSpec): void {
  for (const m of spec.maps.values()) {
    object.setMapMaxEntries(m.name, m.maxEntries)
    if (m.pinPath !== null) {
      const problem = pinPathProblem(m.pinPath)
      if (problem) throw new InvalidArgumentError(`pin path of map '${m.name}': ${problem}`)
      object.setMapPinPath(m.name, m.pinPath)
    }
    if (m.internal && m.initialValue) object.setMapInitialValue(m.name, m.initialValue)
  }
  for (const p of spec.programs.values()) object.setProgramAutoload(p.name, p.autoload)
}

function loadError(spec: CollectionSpec, e: RawNativeError, options: CollectionOptions): BpfError {
  const program = e.program ? spec.programs.get(e.program) : undefined
  if (e.verifierLog && e.verifierLog.trim() && program) {
    return new VerifierError(program.name, e.verifierLog, !!e.logTruncated, e.errno ?? 0, e.libbpfLog)
  }
  const typed = toBpfError(e, { action: `load object '${spec.name}'${program ? ` (program '${program.name}')` : ''}`, capability: TRACING_CAPS })
  const feature = program && options.diagnose !== false ? featureOfProgramType(program.type) : undefined
  if (feature) {
    const probe = probeFeature(feature)
    if (!probe.supported) return new NotSupportedError(probe.feature, probe.reason, { errno: typed.errno, libbpfLog: e.libbpfLog, cause: typed })
  }
  return typed
}

function featureOfProgramType(type: string): FeatureName | undefined {
  if (type === 'tracing') return 'fentry'
  if (type === 'lsm') return 'lsm'
  return undefined
}
