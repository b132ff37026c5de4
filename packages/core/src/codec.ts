/**
 * A codec turns fixed-size bytes (a map key/value, a ring-buffer record, a
 * global variable) into a JS value and back. Codecs are derived from BTF
 * (see btf/codegen.ts) or written by users; both implement this interface.
 */
import { InvalidArgumentError } from './errors.js'

export interface Codec<T = unknown> {
  /** encoded size in bytes; records shorter than this are rejected on decode */
  readonly size: number
  /** read a value starting at `offset` of `view` */
  decode(view: DataView, offset: number): T
  /** write `value` starting at `offset` of `view` (exactly `size` bytes) */
  encode(value: T, view: DataView, offset: number): void
}

/** Identity codec: values are Buffers of exactly `size` bytes (copied on decode). */
export function bytesCodec(size: number): Codec<Buffer> {
  return {
    size,
    decode(view, offset) {
      return Buffer.from(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + size))
    },
    encode(value, view, offset) {
      if (value.length !== size) throw new InvalidArgumentError(`expected ${size} bytes, got ${value.length}`)
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(value)
    },
  }
}
