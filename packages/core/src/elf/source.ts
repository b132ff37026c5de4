/**
 * Bounded random access to the bytes of an ELF file.
 *
 * Binaries like `node` are ~100 MB, so nothing here reads a whole file: callers
 * ask for (offset, length) ranges and every range is checked against the file
 * size first, turning a corrupt header field into an ElfError instead of a
 * RangeError or a giant allocation.
 *
 * A file source holds no descriptor between calls: each `session()` opens the
 * file, checks it is still the same file (device, inode, size, mtime) and
 * closes it again, so an ElfFile that is never closed leaks nothing, and a
 * binary replaced on disk (package upgrade) is reported instead of silently
 * mixing bytes of two files.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { ElfError } from '../errors.js'
import { fsError, hex } from './internal.js'

export interface ByteSource {
  /** name used in messages: the path, or '<buffer>' */
  readonly name: string
  /** size in bytes */
  readonly size: number
  /** total bytes read so far (diagnostics: proves we did not read everything) */
  readonly bytesRead: number
  /**
   * `length` bytes at `offset`; ElfError if the range is not inside the file.
   * `what` names the structure being read, for the message.
   */
  read(offset: number, length: number, what: string): Buffer
  /** run `fn` with the source open (nested sessions share one descriptor) */
  session<T>(fn: () => T): T
}

/** Throw unless [offset, offset+length) lies inside a file of `size` bytes. */
export function checkRange(name: string, size: number, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ElfError(`${name}: ${what} has an invalid offset/size (${offset}, ${length})`)
  }
  if (offset > size || length > size - offset) {
    throw new ElfError(
      `${name}: ${what} (offset ${hex(offset)}, ${length} bytes) extends past the end of the file (${size} bytes); the file is truncated or corrupt`,
    )
  }
}

/** A source over bytes already in memory (no copy). */
export class BufferSource implements ByteSource {
  readonly name: string
  readonly size: number
  bytesRead = 0
  private readonly buf: Buffer

  constructor(bytes: Uint8Array, name = '<buffer>') {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.size = this.buf.length
    this.name = name
  }

  read(offset: number, length: number, what: string): Buffer {
    checkRange(this.name, this.size, offset, length, what)
    this.bytesRead += length
    return this.buf.subarray(offset, offset + length)
  }

  session<T>(fn: () => T): T {
    return fn()
  }
}

interface Identity {
  dev: bigint
  ino: bigint
  size: bigint
  mtimeNs: bigint
}

/** A source over a file on disk, read with pread at offsets. */
export class FileSource implements ByteSource {
  readonly name: string
  readonly size: number
  bytesRead = 0
  private fd = -1
  private depth = 0
  private readonly identity: Identity

  constructor(readonly path: string) {
    this.name = path
    const fd = FileSource.open(path)
    try {
      this.identity = FileSource.identify(fd, path)
    } finally {
      closeSync(fd)
    }
    if (this.identity.size > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${path}: file is too large`)
    this.size = Number(this.identity.size)
  }

  /** O_NONBLOCK: opening a FIFO must not hang waiting for a writer. */
  private static open(path: string): number {
    try {
      return openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
    } catch (err) {
      throw fsError(err, 'open', path)
    }
  }

  private static identify(fd: number, path: string): Identity {
    const st = fstatSync(fd, { bigint: true })
    if (!st.isFile()) throw new ElfError(`${path} is not a regular file`)
    return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs }
  }

  session<T>(fn: () => T): T {
    if (this.depth === 0) {
      const fd = FileSource.open(this.path)
      let id: Identity
      try {
        id = FileSource.identify(fd, this.path)
      } catch (err) {
        closeSync(fd)
        throw err
      }
      const same =
        id.dev === this.identity.dev &&
        id.ino === this.identity.ino &&
        id.size === this.identity.size &&
        id.mtimeNs === this.identity.mtimeNs
      if (!same) {
        closeSync(fd)
        throw new ElfError(`${this.path} changed on disk since it was opened; open it again`)
      }
      this.fd = fd
    }
    this.depth++
    try {
      return fn()
    } finally {
      this.depth--
      if (this.depth === 0) {
        closeSync(this.fd)
        this.fd = -1
      }
    }
  }

  read(offset: number, length: number, what: string): Buffer {
    checkRange(this.name, this.size, offset, length, what)
    if (this.depth === 0) return this.session(() => this.read(offset, length, what))
    const buf = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      let n: number
      try {
        n = readSync(this.fd, buf, done, length - done, offset + done)
      } catch (err) {
        throw fsError(err, 'read', this.path)
      }
      if (n === 0) throw new ElfError(`${this.path}: unexpected end of file reading ${what} (the file shrank?)`)
      done += n
    }
    this.bytesRead += length
    return buf
  }
}
