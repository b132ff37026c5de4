/**
 * Live BPF maps: lookup/update/delete/iterate and batch operations, with keys
 * and values converted by codecs (BTF-derived by default, or your own).
 * Needs: kernel 4.x for basic maps; batch operations need 5.6 (arrays and
 * hashes); lookupAndDelete on hashes needs 5.14.
 */
import { bytesCodec, type Codec } from './codec.js'
import { BpfError, InvalidArgumentError, NotSupportedError } from './errors.js'
import { probeFeature } from './probes.js'
import { native, toBpfError } from './native.js'
import { Resource } from './resource.js'

/** Update flags as in BPF_ANY / BPF_NOEXIST / BPF_EXIST / BPF_F_LOCK. */
export type UpdateFlag = 'any' | 'noexist' | 'exist' | 'lock'
const UPDATE_FLAGS: Record<UpdateFlag, number> = { any: 0, noexist: 1, exist: 2, lock: 4 }

const PER_CPU_TYPES = new Set(['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage'])

/** Map type names (libbpf's) to enum bpf_map_type numbers, for BpfMap.create(). */
export const MAP_TYPES: Record<string, number> = {
  hash: 1, array: 2, prog_array: 3, perf_event_array: 4, percpu_hash: 5, percpu_array: 6,
  stack_trace: 7, cgroup_array: 8, lru_hash: 9, lru_percpu_hash: 10, lpm_trie: 11,
  array_of_maps: 12, hash_of_maps: 13, queue: 22, stack: 23, ringbuf: 27, bloom_filter: 30,
}
const MAP_TYPE_NAMES = Object.fromEntries(Object.entries(MAP_TYPES).map(([k, v]) => [v, k]))

export interface MapCodecs<K, V> {
  key?: Codec<K>
  /** codec of ONE value; per-CPU maps then read and write arrays of it, one per possible CPU */
  value?: Codec<V>
}

/** Options of BpfMap.create(). */
export interface CreateMapOptions {
  type: keyof typeof MAP_TYPES
  keySize: number
  valueSize: number
  maxEntries: number
  name?: string
  flags?: number
}

/** Value type seen by callers: per-CPU maps hold one value per possible CPU. */
type Stored<V> = V

/**
 * A loaded map. Obtain one from a Collection, from a pin (BpfMap.fromPin) or
 * create a standalone one (BpfMap.create). K and V are what the codecs produce.
 */
export class BpfMap<K = any, V = any> extends Resource {
  readonly name: string
  readonly type: string
  readonly keySize: number
  readonly valueSize: number
  readonly maxEntries: number
  readonly flags: number
  /** true for per-CPU maps: values are arrays with one element per possible CPU */
  readonly perCpu: boolean
  readonly #fd: number
  readonly #key: Codec<K>
  readonly #value: Codec<V>
  /** bytes one (possibly per-CPU) value takes in syscalls */
  readonly #valueBytes: number
  readonly #cpus: number
  readonly #keyScratch: Buffer
  readonly #valueScratch: Buffer

  /** @internal Use Collection.map(), BpfMap.fromPin() or BpfMap.create(). Takes ownership of fd. */
  constructor(fd: number, codecs: MapCodecs<K, V> = {}) {
    const n = native()
    let info
    try {
      info = n.mapInfo(fd)
    } catch (err) {
      throw toBpfError(err, { action: `inspect map fd ${fd}` })
    }
    super(`map '${info.name}'`, () => n.closeFd(fd))
    this.#fd = fd
    this.name = info.name
    this.type = MAP_TYPE_NAMES[info.type] ?? `type_${info.type}`
    this.keySize = info.keySize
    this.valueSize = info.valueSize
    this.maxEntries = info.maxEntries
    this.flags = info.flags
    this.perCpu = PER_CPU_TYPES.has(this.type)
    this.#cpus = this.perCpu ? n.possibleCpus() : 1
    this.#valueBytes = this.perCpu ? roundUp8(this.valueSize) * this.#cpus : this.valueSize
    this.#key = checkCodec('key', this.name, codecs.key ?? (bytesCodec(this.keySize) as unknown as Codec<K>), this.keySize)
    this.#value = checkCodec('value', this.name, codecs.value ?? (bytesCodec(this.valueSize) as unknown as Codec<V>), this.valueSize)
    this.#keyScratch = Buffer.alloc(Math.max(this.keySize, 8))
    this.#valueScratch = Buffer.alloc(Math.max(this.#valueBytes, 8))
  }

  /** Opens a map pinned on bpffs. */
  static fromPin<K = Buffer, V = Buffer>(path: string, codecs: MapCodecs<K, V> = {}): BpfMap<K, V> {
    let fd
    try {
      fd = native().objGet(path)
    } catch (err) {
      throw toBpfError(err, { action: `open pinned map ${path}`, capability: 'CAP_BPF', path })
    }
    return new BpfMap(fd, codecs)
  }

  /** Creates a standalone map (not part of an object). */
  static create<K = Buffer, V = Buffer>(options: CreateMapOptions, codecs: MapCodecs<K, V> = {}): BpfMap<K, V> {
    const type = MAP_TYPES[options.type]
    if (type === undefined) throw new InvalidArgumentError(`unknown map type '${options.type}'`)
    let fd
    try {
      fd = native().mapCreate(type, options.name ?? '', options.keySize, options.valueSize, options.maxEntries, options.flags ?? 0)
    } catch (err) {
      throw toBpfError(err, { action: `create ${options.type} map`, capability: 'CAP_BPF' })
    }
    return new BpfMap(fd, codecs)
  }

  /** The map's file descriptor (owned by this object). */
  get fd(): number {
    this.assertOpen()
    return this.#fd
  }

  /** A second handle on the same kernel map that uses other codecs. Close it separately. */
  withCodecs<K2 = K, V2 = V>(codecs: MapCodecs<K2, V2>): BpfMap<K2, V2> {
    this.assertOpen()
    return new BpfMap<K2, V2>(native().dupFd(this.#fd), codecs)
  }

  /** The value stored under `key`, or undefined if there is none. */
  lookup(key: K): Stored<V> | undefined {
    const k = this.#encodeKey(key)
    const v = Buffer.alloc(this.#valueBytes)
    if (!this.#call('lookup', () => native().mapLookup(this.#fd, k, v, 0))) return undefined
    return this.#decodeValue(v, 0)
  }

  /** Stores `value` under `key`. flag 'noexist' fails if present, 'exist' if absent. */
  update(key: K, value: Stored<V>, flag: UpdateFlag = 'any'): void {
    const k = this.#encodeKey(key)
    const v = this.#encodeValue(value, this.#valueScratch, 0)
    this.#call('update', () => native().mapUpdate(this.#fd, k, v, UPDATE_FLAGS[flag] ?? checkFlag(flag)))
  }

  /** Deletes `key`; returns false if it was not there. */
  delete(key: K): boolean {
    const k = this.#encodeKey(key)
    return this.#call('delete', () => native().mapDelete(this.#fd, k!))
  }

  /** Atomically reads and removes `key` (queues/stacks: pops; key is ignored). */
  lookupAndDelete(key?: K): Stored<V> | undefined {
    const k = this.keySize === 0 ? null : this.#encodeKey(key as K)
    const v = Buffer.alloc(this.#valueBytes)
    if (!this.#call('lookupAndDelete', () => native().mapLookupAndDelete(this.#fd, k, v))) return undefined
    return this.#decodeValue(v, 0)
  }

  /**
   * Iterates keys with BPF_MAP_GET_NEXT_KEY. If keys are deleted concurrently
   * the kernel may restart from the beginning; iteration stops with an error
   * after 4× maxEntries steps rather than looping forever.
   */
  *keys(): IterableIterator<K> {
    this.assertOpen()
    if (this.keySize === 0) return
    let prev: Buffer | null = null
    const limit = this.maxEntries * 4 + 16
    for (let steps = 0; ; steps++) {
      if (steps > limit) throw new BpfError(`iteration of ${this.#label} did not finish (concurrent deletes?)`, { code: 'EAGAIN' })
      const next = Buffer.alloc(this.keySize)
      const p = prev
      if (!this.#call('iterate', () => native().mapGetNextKey(this.#fd, p, next))) return
      yield this.#key.decode(viewOf(next), 0)
      prev = next
    }
  }

  /** Iterates [key, value] pairs; keys deleted during iteration are skipped. */
  *entries(): IterableIterator<[K, Stored<V>]> {
    for (const key of this.keys()) {
      const value = this.lookup(key)
      if (value !== undefined) yield [key, value]
    }
  }

  [Symbol.iterator](): IterableIterator<[K, Stored<V>]> {
    return this.entries()
  }

  /**
   * Reads the whole map in batches (BPF_MAP_LOOKUP_BATCH, kernel 5.6+); with
   * `delete: true`, atomically drains it (LOOKUP_AND_DELETE_BATCH).
   */
  *lookupBatch(options: { batchSize?: number; delete?: boolean } = {}): IterableIterator<[K, Stored<V>]> {
    this.assertOpen()
    const size = Math.max(1, Math.min(options.batchSize ?? 256, this.maxEntries || 1))
    const keys = Buffer.alloc(this.keySize * size)
    const values = Buffer.alloc(this.#valueBytes * size)
    const cursorSize = Math.max(this.keySize, 8)
    let inBatch: Buffer | null = null
    for (;;) {
      const outBatch = Buffer.alloc(cursorSize)
      const ib = inBatch
      const r = this.#batchCall('lookup', () => native().mapLookupBatch(this.#fd, ib, outBatch, keys, values, size, !!options.delete))
      for (let i = 0; i < r.count; i++) {
        yield [this.#key.decode(viewOf(keys), i * this.keySize), this.#decodeValue(values, i * this.#valueBytes)]
      }
      if (r.done) return
      inBatch = outBatch
    }
  }

  /**
   * Writes many entries in one syscall (BPF_MAP_UPDATE_BATCH, kernel 5.6+). Returns how many were
   * written. The kernel takes only 'any' or 'lock' here ('noexist'/'exist' are per-element
   * update() flags): other flags are refused before the call, not reported as "not supported".
   */
  updateBatch(entries: Iterable<readonly [K, Stored<V>]>, flag: 'any' | 'lock' = 'any'): number {
    if (flag !== 'any' && flag !== 'lock') {
      throw new InvalidArgumentError(`updateBatch on ${this.#label}: flag '${String(flag)}' is not allowed, batch updates take only 'any' or 'lock' (use update() for 'noexist'/'exist')`)
    }
    const list = [...entries]
    const keys = Buffer.alloc(this.keySize * list.length)
    const values = Buffer.alloc(this.#valueBytes * list.length)
    list.forEach(([k, v], i) => {
      this.#encodeKeyInto(k, keys, i * this.keySize)
      this.#encodeValue(v, values, i * this.#valueBytes)
    })
    if (list.length === 0) return 0
    return this.#batchCall('update', () => native().mapUpdateBatch(this.#fd, keys, values, list.length, UPDATE_FLAGS[flag]))
  }

  /** Deletes many keys in one syscall (BPF_MAP_DELETE_BATCH, kernel 5.6+). Returns how many were deleted. */
  deleteBatch(keyList: Iterable<K>): number {
    const list = [...keyList]
    if (list.length === 0) return 0
    const keys = Buffer.alloc(this.keySize * list.length)
    list.forEach((k, i) => this.#encodeKeyInto(k, keys, i * this.keySize))
    return this.#batchCall('delete', () => native().mapDeleteBatch(this.#fd, keys, list.length))
  }

  /** Pins the map on bpffs so it outlives this process. */
  pin(path: string): void {
    this.assertOpen()
    this.#call('pin', () => native().objPin(this.#fd, path), path)
  }

  protected release(): void {
    native().closeFd(this.#fd)
  }

  #encodeKey(key: K): Buffer | null {
    this.assertOpen()
    if (this.keySize === 0) return null
    this.#encodeKeyInto(key, this.#keyScratch, 0)
    return this.#keyScratch.length === this.keySize ? this.#keyScratch : this.#keyScratch.subarray(0, this.keySize)
  }

  #encodeKeyInto(key: K, out: Buffer, offset: number): void {
    if (Buffer.isBuffer(key) || key instanceof Uint8Array) {
      if (key.length !== this.keySize) {
        throw new InvalidArgumentError(`key for ${this.#label} must be ${this.keySize} bytes, got ${key.length}`)
      }
      out.set(key, offset)
      return
    }
    this.#key.encode(key, viewOf(out), offset)
  }

  #encodeValue(value: Stored<V>, out: Buffer, offset: number): Buffer {
    this.assertOpen()
    if (!this.perCpu) {
      this.#encodeOne(value as V, out, offset)
    } else {
      const stride = roundUp8(this.valueSize)
      const arr = Array.isArray(value) ? (value as V[]) : null
      if (arr && arr.length !== this.#cpus) {
        throw new InvalidArgumentError(`per-CPU ${this.#label} needs ${this.#cpus} values (one per possible CPU), got ${arr.length}`)
      }
      for (let c = 0; c < this.#cpus; c++) this.#encodeOne(arr ? arr[c] : (value as V), out, offset + c * stride)
    }
    return out.length === this.#valueBytes ? out : out.subarray(0, offset + this.#valueBytes)
  }

  #encodeOne(value: V, out: Buffer, offset: number): void {
    if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
      if (value.length !== this.valueSize) {
        throw new InvalidArgumentError(`value for ${this.#label} must be ${this.valueSize} bytes, got ${value.length}`)
      }
      out.set(value, offset)
      return
    }
    this.#value.encode(value, viewOf(out), offset)
  }

  #decodeValue(buf: Buffer, offset: number): Stored<V> {
    const view = viewOf(buf)
    if (!this.perCpu) return this.#value.decode(view, offset)
    const stride = roundUp8(this.valueSize)
    const out: V[] = new Array(this.#cpus)
    for (let c = 0; c < this.#cpus; c++) out[c] = this.#value.decode(view, offset + c * stride)
    return out as Stored<V>
  }

  /** The kernel's terse answers to map commands, in words (see man bpf(2)). */
  get #errnoHints(): Partial<Record<string, string>> {
    return {
      E2BIG: this.type.includes('array') ? `index out of range (max_entries ${this.maxEntries})` : `the map is full (max_entries ${this.maxEntries})`,
      EEXIST: "the key exists and the flag was 'noexist'",
    }
  }

  /** "map 'name'" for messages; a map created without a name is told by its type and fd. */
  get #label(): string {
    return this.name ? `map '${this.name}'` : `unnamed ${this.type} map (fd ${this.#fd})`
  }

  #call<T>(op: string, fn: () => T, path?: string): T {
    this.assertOpen()
    try {
      return fn()
    } catch (err) {
      throw toBpfError(err, { action: `${op} on ${this.#label}`, capability: 'CAP_BPF', path, hints: this.#errnoHints })
    }
  }

  /**
   * Batch calls: a map type without the operation answers ENOTSUPP/EOPNOTSUPP; a kernel
   * without batch commands answers EINVAL, which is also its answer to a bad argument, so
   * that case is told apart by the map_batch feature probe, not guessed.
   */
  #batchCall<T>(op: string, fn: () => T): T {
    try {
      return this.#call(`batch ${op}`, fn)
    } catch (err) {
      const e = err as BpfError
      if (e.code === 'ENOTSUPP' || e.code === 'EOPNOTSUPP' || e.code === 'ENOTSUP') {
        throw new NotSupportedError(`batch ${op} on ${this.type} maps`, `${e.code} from the kernel (this map type does not implement it)`, { errno: e.errno, cause: err })
      }
      if (e.code === 'EINVAL' && e.errno) {
        const probe = probeFeature('map_batch')
        if (!probe.supported) throw new NotSupportedError(probe.feature, probe.reason, { errno: e.errno, cause: err })
      }
      throw err
    }
  }
}

function checkCodec<T>(what: string, map: string, codec: Codec<T>, size: number): Codec<T> {
  if (codec.size !== size) {
    throw new InvalidArgumentError(`${what} codec for map '${map}' is ${codec.size} bytes but the map's ${what} size is ${size}`)
  }
  return codec
}

function checkFlag(flag: string): never {
  throw new InvalidArgumentError(`unknown update flag '${flag}' (use any, noexist, exist or lock)`)
}

function roundUp8(n: number): number {
  return (n + 7) & ~7
}

function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
}
