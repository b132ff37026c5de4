/**
 * HPACK header-block decoding for a passive observer. hpack.js supplies the
 * wire primitives (prefix integers, Huffman strings, the static table); the
 * dynamic table is tracked here because an observer may join a connection
 * mid-stream or lose a header block in a gap, and must then know which
 * dynamic-table entries it does NOT know. Such references decode to
 * "unknown", never to a guessed value.
 *
 * Why eviction cannot cause wrong values: dynamic indexes count from the
 * newest entry and eviction removes the oldest, so an entry we know keeps its
 * index whatever the (possibly unknown) table size is; an encoder never
 * references an evicted entry. Our own eviction only bounds memory: an entry
 * we evicted too early reads as unknown.
 */
import hpack from 'hpack.js'

const STATIC = hpack['static-table'].table
const STATIC_LEN = STATIC.length // 61

/** Default SETTINGS_HEADER_TABLE_SIZE (RFC 9113). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096
/** Table size tracked at most, whatever the peers negotiate (memory bound). */
export const MAX_TRACKED_TABLE_SIZE = 64 * 1024

interface Entry {
  /** undefined: an entry whose name we could not decode */
  name: string | undefined
  value: string | undefined
  size: number
}

/** The result of decoding one header block. */
export interface HeaderBlock {
  /** fields decoded, in order (names as sent, values latin1) */
  headers: [string, string][]
  /** fields that could not be decoded (dynamic-table state unknown or block malformed) */
  unknown: number
  /** the block was malformed (the rest of it was not decoded) */
  error?: string
  /** decoded fields exceeded maxBytes and were cut */
  truncated?: boolean
}

function latin1(s: Buffer | number[]): string {
  return Buffer.isBuffer(s) ? s.toString('latin1') : Buffer.from(s).toString('latin1')
}

/**
 * One direction's HPACK decoder. Header blocks must be fed in wire order,
 * every one of them (including those of streams nobody tracks), or the
 * decoder must be told with `desync()`.
 */
export class HpackDecoder {
  /** newest first */
  private dynamic: Entry[] = []
  private size = 0
  private maxSize = DEFAULT_HEADER_TABLE_SIZE
  private limit = DEFAULT_HEADER_TABLE_SIZE
  /** true when entries older than `dynamic` may exist that we never saw */
  private partial: boolean
  /** blocks that hit an unknown reference or were malformed */
  failures = 0

  /** `joined`: the decoder starts without the connection's earlier state (mid-stream). */
  constructor(joined = false) {
    this.partial = joined
  }

  /** true while some dynamic-table state is unknown */
  get incomplete(): boolean {
    return this.partial
  }

  /** SETTINGS_HEADER_TABLE_SIZE advertised by the endpoint that decodes this direction. */
  setLimit(n: number): void {
    this.limit = Math.max(0, n)
  }

  /** A header block was lost: forget the table; later references to older entries read as unknown. */
  desync(): void {
    this.dynamic = []
    this.size = 0
    this.partial = true
  }

  private lookup(index: number): Entry | undefined {
    if (index >= 1 && index <= STATIC_LEN) {
      const e = STATIC[index - 1]!
      return { name: e.name, value: e.value, size: e.totalSize }
    }
    return this.dynamic[index - STATIC_LEN - 1]
  }

  private add(e: Entry): void {
    this.dynamic.unshift(e)
    this.size += e.size
    this.evict()
  }

  private evict(): void {
    const max = Math.min(this.maxSize, MAX_TRACKED_TABLE_SIZE)
    while (this.size > max && this.dynamic.length > 0) this.size -= this.dynamic.pop()!.size
  }

  /**
   * Decodes one complete header block. Never throws: malformed input ends
   * the block with `error` and makes the table state unknown from then on.
   */
  decode(block: Uint8Array, maxBytes = 64 * 1024): HeaderBlock {
    const out: HeaderBlock = { headers: [], unknown: 0 }
    if (block.length === 0) return out
    const d = hpack.decoder.create()
    d.push(Buffer.from(block.buffer, block.byteOffset, block.byteLength))
    let bytes = 0
    const put = (name: string, value: string) => {
      bytes += name.length + value.length
      if (bytes > maxBytes) out.truncated = true
      else out.headers.push([name, value])
    }
    /** a reference we cannot resolve: unknown while partial, a protocol error otherwise */
    const unresolved = (index: number): void => {
      out.unknown++
      if (!this.partial) {
        out.error ??= `HPACK index ${index} out of range`
        this.desync()
      }
    }
    try {
      while (!d.isEmpty()) {
        if (d.decodeBit()) {
          // indexed field
          const index = d.decodeInt()
          if (index === 0) throw new Error('HPACK index 0')
          const e = this.lookup(index)
          if (!e) unresolved(index)
          else if (e.name === undefined || e.value === undefined) out.unknown++
          else put(e.name, e.value)
          continue
        }
        const incremental = d.decodeBit()
        if (!incremental && d.decodeBit()) {
          // dynamic table size update
          const size = d.decodeInt()
          if (size > this.limit && !this.partial) throw new Error(`HPACK table size update ${size} above limit ${this.limit}`)
          this.maxSize = size
          this.evict()
          continue
        }
        if (!incremental) d.decodeBit() // never-indexed flag: same decoding
        const index = d.decodeInt()
        let name: string | undefined
        let nameSize: number
        if (index === 0) {
          const n = d.decodeStr()
          name = latin1(n)
          nameSize = n.length
        } else {
          const e = this.lookup(index)
          if (!e) {
            unresolved(index)
            name = undefined
          } else {
            name = e.name
            if (name === undefined) out.unknown++
          }
          nameSize = name === undefined ? 0 : Buffer.byteLength(name, 'latin1')
        }
        const v = d.decodeStr()
        const value = latin1(v)
        if (name !== undefined) put(name, value) // an unknown name was counted above
        if (incremental) this.add({ name, value: name === undefined ? undefined : value, size: 32 + nameSize + v.length })
      }
    } catch (err) {
      out.unknown++
      out.error ??= err instanceof Error ? err.message : String(err)
      this.desync()
    }
    if (out.unknown > 0 || out.error !== undefined) this.failures++
    return out
  }
}
