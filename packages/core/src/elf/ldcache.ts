/**
 * Shared-library lookup the way the dynamic loader (ld.so) does it, so a
 * uprobe on "libssl.so.3" lands on the file the target process actually
 * loads: the process's own mappings first (when a pid is given), then
 * LD_LIBRARY_PATH, then /etc/ld.so.cache, then the default directories.
 *
 * /etc/ld.so.cache is parsed directly (formats "glibc-ld.so.cache1.1", and
 * the old "ld.so-1.7.0" with or without a new-format cache appended), with
 * every count and string offset bounds-checked: a corrupt cache is an
 * ElfError, never a crash.
 */
import { closeSync, constants, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import { ElfError, InvalidArgumentError } from '../errors.js'
import { errnoCode, notFound } from './internal.js'
import { mappedFiles, validatePid } from './procmaps.js'
import { EM_AARCH64, EM_X86_64, type ElfMachine } from './reader.js'
import { resolveInRoot } from './rootpath.js'

export interface LdCacheEntry {
  /** library name (usually the soname), e.g. 'libssl.so.3' */
  readonly name: string
  /** path as recorded in the cache (relative to the cache's root) */
  readonly path: string
  /** raw entry flags: low byte = kind (3 = ELF libc6), next byte = architecture */
  readonly flags: number
  /** architecture of the entry, when it is one we know */
  readonly machine: ElfMachine | undefined
  /** hwcap bits (new format only; 0 otherwise) */
  readonly hwcap: bigint
}

export interface ResolveLibraryOptions {
  /** look in this process's mappings first, and resolve inside its mount namespace (/proc/PID/root) */
  pid?: number
  /** resolve inside this root directory (default: /proc/PID/root with a pid, else /) */
  root?: string
  /** LD_LIBRARY_PATH to use (default: the target process's, read from /proc/PID/environ, or ours) */
  ldLibraryPath?: string
  /** architecture to look for (default: this machine's) */
  machine?: ElfMachine
  /** ld.so.cache to read, as a path inside the root (default: /etc/ld.so.cache) */
  cachePath?: string
}

const MAGIC_OLD = 'ld.so-1.7.0'
const MAGIC_NEW = 'glibc-ld.so.cache1.1'
const OLD_HEADER = 16
const OLD_ENTRY = 12
const NEW_HEADER = 48
const NEW_ENTRY = 24
/** Real caches hold a few thousand entries. */
const MAX_ENTRIES = 1 << 20
const MAX_CACHE_BYTES = 256 * 1024 * 1024
const MAX_STRING = 4096
const FLAG_ELF_LIBC6 = 0x0003
const FLAG_X8664_LIB64 = 0x0300
const FLAG_AARCH64_LIB64 = 0x0a00

const DEFAULT_DIRS: Record<ElfMachine, string[]> = {
  x86_64: ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'],
  aarch64: ['/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'],
}

function entryMachine(flags: number): ElfMachine | undefined {
  if ((flags & 0xff) !== FLAG_ELF_LIBC6) return undefined
  if ((flags & 0xff00) === FLAG_X8664_LIB64) return 'x86_64'
  if ((flags & 0xff00) === FLAG_AARCH64_LIB64) return 'aarch64'
  return undefined
}

function cstring(buf: Buffer, off: number, what: string): string {
  if (off >= buf.length) throw new ElfError(`ld.so.cache: ${what} string offset ${off} is past the end of the cache (${buf.length} bytes)`)
  const end = buf.subarray(off, Math.min(buf.length, off + MAX_STRING + 1)).indexOf(0)
  if (end < 0) throw new ElfError(`ld.so.cache: ${what} string at offset ${off} is unterminated or longer than ${MAX_STRING} bytes`)
  return buf.toString('utf8', off, off + end)
}

/** Parse the bytes of an ld.so.cache file. ElfError if it is corrupt or of an unknown format. */
export function parseLdCache(bytes: Uint8Array): LdCacheEntry[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let newAt = -1
  if (buf.length >= MAGIC_NEW.length && buf.toString('latin1', 0, MAGIC_NEW.length) === MAGIC_NEW) {
    newAt = 0
  } else if (buf.length >= MAGIC_OLD.length && buf.toString('latin1', 0, MAGIC_OLD.length) === MAGIC_OLD) {
    if (buf.length < OLD_HEADER) throw new ElfError('ld.so.cache: truncated old-format header')
    const n = buf.readUInt32LE(12)
    if (n > MAX_ENTRIES || OLD_HEADER + n * OLD_ENTRY > buf.length) {
      throw new ElfError(`ld.so.cache: old-format entry count ${n} does not fit in the ${buf.length}-byte file`)
    }
    const end = OLD_HEADER + n * OLD_ENTRY
    const aligned = (end + 7) & ~7
    if (aligned + MAGIC_NEW.length <= buf.length && buf.toString('latin1', aligned, aligned + MAGIC_NEW.length) === MAGIC_NEW) {
      newAt = aligned
    } else {
      // old format only: string offsets are relative to the end of the entries
      const strings = buf.subarray(end)
      const out: LdCacheEntry[] = []
      for (let i = 0; i < n; i++) {
        const o = OLD_HEADER + i * OLD_ENTRY
        const flags = buf.readInt32LE(o)
        out.push({
          name: cstring(strings, buf.readUInt32LE(o + 4), `entry ${i} name`),
          path: cstring(strings, buf.readUInt32LE(o + 8), `entry ${i} path`),
          flags,
          machine: entryMachine(flags),
          hwcap: 0n,
        })
      }
      return out
    }
  } else {
    throw new ElfError('ld.so.cache: unknown format (expected "glibc-ld.so.cache1.1" or "ld.so-1.7.0")')
  }
  // new format: string offsets are relative to the start of the new header
  const data = buf.subarray(newAt)
  if (data.length < NEW_HEADER) throw new ElfError('ld.so.cache: truncated header')
  const n = data.readUInt32LE(20)
  const endian = data[28] & 3
  if (endian === 3) throw new ElfError('ld.so.cache is big-endian; cannot use it on this machine')
  if (endian === 1) throw new ElfError('ld.so.cache has an invalid endianness flag')
  if (n > MAX_ENTRIES || NEW_HEADER + n * NEW_ENTRY > data.length) {
    throw new ElfError(`ld.so.cache: entry count ${n} does not fit in the ${data.length}-byte cache`)
  }
  const out: LdCacheEntry[] = []
  for (let i = 0; i < n; i++) {
    const o = NEW_HEADER + i * NEW_ENTRY
    const flags = data.readInt32LE(o)
    out.push({
      name: cstring(data, data.readUInt32LE(o + 4), `entry ${i} name`),
      path: cstring(data, data.readUInt32LE(o + 8), `entry ${i} path`),
      flags,
      machine: entryMachine(flags),
      hwcap: data.readBigUInt64LE(o + 16),
    })
  }
  return out
}

const cacheMemo = new Map<string, { key: string; entries: LdCacheEntry[] }>()

/**
 * Read and parse an ld.so.cache (default /etc/ld.so.cache), memoized until the
 * file changes. Returns [] if the file does not exist (musl systems have none).
 */
export function readLdCache(path = '/etc/ld.so.cache'): LdCacheEntry[] {
  let key: string
  try {
    const st = statSync(path, { bigint: true })
    if (!st.isFile()) throw new ElfError(`${path} is not a regular file`)
    if (st.size > BigInt(MAX_CACHE_BYTES)) throw new ElfError(`${path} is ${st.size} bytes, larger than any real ld.so.cache`)
    key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`
  } catch (err) {
    if (err instanceof ElfError) throw err
    const code = errnoCode(err)
    if (code === 'ENOENT' || code === 'ENOTDIR') return []
    throw new ElfError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  const memo = cacheMemo.get(path)
  if (memo && memo.key === key) return memo.entries
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw new ElfError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  let entries: LdCacheEntry[]
  try {
    entries = parseLdCache(bytes)
  } catch (err) {
    if (err instanceof ElfError) throw new ElfError(`${path}: ${err.message}`, { cause: err })
    throw err
  }
  if (cacheMemo.size >= 64) cacheMemo.clear()
  cacheMemo.set(path, { key, entries })
  return entries
}

function hostMachine(): ElfMachine {
  return process.arch === 'arm64' ? 'aarch64' : 'x86_64'
}

/**
 * True if `path` is a regular ELF64 little-endian file for `machine`: ld.so
 * skips libraries of the wrong architecture in its search path, and so do we.
 */
function isCompatible(path: string, machine: ElfMachine): boolean {
  let fd: number
  try {
    if (!statSync(path).isFile()) return false
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch {
    return false
  }
  try {
    const head = Buffer.alloc(20)
    if (readSync(fd, head, 0, 20, 0) !== 20) return false
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return false
    return head.readUInt16LE(18) === (machine === 'x86_64' ? EM_X86_64 : EM_AARCH64)
  } catch {
    return false
  } finally {
    closeSync(fd)
  }
}

/** LD_LIBRARY_PATH of process `pid`, from /proc/PID/environ (bounded; '' if unreadable). */
function environLibraryPath(pid: number): string {
  let env: Buffer
  try {
    env = readFileSync(`/proc/${pid}/environ`)
  } catch {
    return ''
  }
  const limit = Math.min(env.length, 4 * 1024 * 1024)
  let pos = 0
  while (pos < limit) {
    let end = env.indexOf(0, pos)
    if (end < 0 || end > limit) end = limit
    if (end - pos > 16 && env.toString('latin1', pos, pos + 16) === 'LD_LIBRARY_PATH=') return env.toString('utf8', pos + 16, end)
    pos = end + 1
  }
  return ''
}

/** basename matches `name` exactly or as a prefix up to a dot: libssl / libssl.so → libssl.so.3 */
function nameMatches(base: string, name: string): boolean {
  return base === name || base.startsWith(`${name}.`)
}

/**
 * Find a shared library the way ld.so would and return the absolute path to
 * open from this process.
 *
 * - a name containing '/' is used as is (inside the root, if any);
 * - with `pid`: first the files the process has mapped whose name is `name`
 *   or starts with `name.` ('libssl' → 'libssl.so.3'), returned as
 *   /proc/PID/root/... (or /proc/PID/map_files/... if it was deleted since),
 *   which works across mount namespaces (containers);
 * - then LD_LIBRARY_PATH, /etc/ld.so.cache (entries for the target
 *   architecture), and the default directories, all inside the root, with
 *   symlinks resolved inside it;
 * - finally, for an unversioned name ('libssl'), cache entries starting with
 *   `name.`, preferring a versioned soname.
 *
 * NotFoundError lists everywhere it looked.
 */
export function resolveLibrary(name: string, options: ResolveLibraryOptions = {}): string {
  if (typeof name !== 'string' || !name || name.includes('\0') || name.length > 4096) {
    throw new InvalidArgumentError(`invalid library name ${JSON.stringify(name)}`)
  }
  const pid = options.pid === undefined ? undefined : validatePid(options.pid)
  const root = options.root ?? (pid !== undefined ? `/proc/${pid}/root` : '/')
  if (typeof root !== 'string' || !root.startsWith('/') || root.includes('\0')) {
    throw new InvalidArgumentError(`root must be an absolute path, got ${JSON.stringify(root)}`)
  }
  const machine = options.machine ?? hostMachine()
  if (machine !== 'x86_64' && machine !== 'aarch64') throw new InvalidArgumentError(`unsupported machine ${String(machine)}`)
  const inRoot = (p: string) => resolveInRoot(root, p)
  const rootLabel = root === '/' ? '' : ` (inside ${root})`

  if (name.includes('/')) {
    let p: string | undefined
    if (name.startsWith('/')) p = inRoot(name)
    else p = pid !== undefined ? posix.join(`/proc/${pid}/cwd`, name) : posix.resolve(name)
    if (p && isFile(p)) return p
    throw notFound('library', name, `library ${name} not found${rootLabel}`)
  }

  const looked: string[] = []
  if (pid !== undefined) {
    looked.push(`/proc/${pid}/maps`)
    const files = mappedFiles(pid)
    const hit =
      files.find((f) => posix.basename(f.path) === name) ?? files.find((f) => nameMatches(posix.basename(f.path), name))
    if (hit) return hit.deleted ? hit.mapFilesPath : hit.hostPath
  }

  const ldPath = options.ldLibraryPath ?? (pid !== undefined ? environLibraryPath(pid) : (process.env.LD_LIBRARY_PATH ?? ''))
  const ldDirs = ldPath.split(/[:;]/).filter((d) => d.startsWith('/') && !d.includes('$'))
  if (ldDirs.length) looked.push(`LD_LIBRARY_PATH (${ldDirs.join(':')})`)
  for (const dir of ldDirs) {
    const p = inRoot(posix.join(dir, name))
    if (p && isCompatible(p, machine)) return p
  }

  const cachePath = options.cachePath ?? '/etc/ld.so.cache'
  const cacheFile = inRoot(cachePath)
  looked.push(cachePath)
  const entries = cacheFile ? readLdCache(cacheFile).filter((e) => e.machine === machine) : []
  const fromCache = (list: LdCacheEntry[]) => {
    // baseline entries first; hwcap-specific ones only if nothing else fits
    for (const e of [...list.filter((x) => x.hwcap === 0n), ...list.filter((x) => x.hwcap !== 0n)]) {
      const p = e.path.startsWith('/') ? inRoot(e.path) : undefined
      if (p && isCompatible(p, machine)) return p
    }
    return undefined
  }
  const exact = fromCache(entries.filter((e) => e.name === name))
  if (exact) return exact

  looked.push(...DEFAULT_DIRS[machine])
  for (const dir of DEFAULT_DIRS[machine]) {
    const p = inRoot(posix.join(dir, name))
    if (p && isCompatible(p, machine)) return p
  }

  if (!/\.so\.\d/.test(name)) {
    const prefixed = entries.filter((e) => e.name.startsWith(`${name}.`))
    prefixed.sort((a, b) => Number(/\.so\.\d/.test(b.name)) - Number(/\.so\.\d/.test(a.name)))
    const loose = fromCache(prefixed)
    if (loose) return loose
  }
  throw notFound('library', name, `library ${name} (${machine}) not found${rootLabel}; searched ${looked.join(', ')}`)
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile()
  } catch {
    return false
  }
}
