/**
 * Finding TLS code in a process: which of its mapped files are TLS libraries
 * (libssl, BoringSSL, GnuTLS), executables that carry OpenSSL inside and
 * export it (the official node binary), or Go programs with crypto/tls.
 *
 * Files are judged by content, not by name: every mapped ELF file is opened
 * once (per device+inode, cached) and its symbols are checked. Names in
 * /proc/PID/maps are chosen by whoever created the file, so they are only
 * shown in messages; files are opened through /proc/PID/map_files/START-END
 * (the exact mapped inode, also when it was deleted or lives in another mount
 * namespace), or /proc/PID/root/PATH when map_files is not readable. Nothing
 * here runs a command. A file's identity is the (st_dev, st_ino) of what was
 * opened, which is also what a uprobe attaches to.
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs'
import { ElfError } from '../../errors.js'
import { mappedFiles, openElf, resolveLibrary, symbolFileOffset, validatePid, type ElfFile, type MappedFile } from '../../elf/index.js'
import { findGoFunction, goVersion, isGoBinary, parseGoVersion } from './go-binary.js'
import { findReturnSites } from './go-ret.js'

export type TlsLibrary = 'openssl' | 'boringssl' | 'gnutls' | 'go'

/** What a probe point is: the BPF side's enum tls_fn (plus 'free' for connection teardown). */
export type TlsFunction = 'write' | 'read' | 'write_ex' | 'read_ex' | 'write_ex2' | 'free'

export interface TlsProbePoint {
  fn: TlsFunction
  symbol: string
  /** virtual address of the function entry in the file */
  address: number
  /** Go: virtual addresses of the function's RET instructions (probed instead of a uretprobe) */
  returns?: number[]
}

export interface TlsTarget {
  library: TlsLibrary
  /** file identity: `${st_dev}:${st_ino}` of the opened file */
  key: string
  /** a path this process can open and the kernel can attach to */
  path: string
  /** the file's name in its process (for messages only; may be hostile) */
  displayPath: string
  probes: TlsProbePoint[]
  /** Go toolchain version, OpenSSL version string, ... when known */
  version?: string
}

/** A file that was looked at and holds no TLS code (or TLS code we cannot hook), with why. */
export interface SkippedFile {
  key: string
  displayPath: string
  reason: string
  /** the file could not be read now (its process exited): the verdict is not cached */
  transient?: boolean
}

const OPENSSL_FUNCS: [TlsFunction, string][] = [
  ['write', 'SSL_write'],
  ['read', 'SSL_read'],
  ['write_ex', 'SSL_write_ex'],
  ['read_ex', 'SSL_read_ex'],
  ['write_ex2', 'SSL_write_ex2'],
  ['free', 'SSL_free'],
]
const GNUTLS_FUNCS: [TlsFunction, string][] = [
  ['write', 'gnutls_record_send'],
  ['read', 'gnutls_record_recv'],
  ['free', 'gnutls_deinit'],
]
const GO_FUNCS: [TlsFunction, string][] = [
  ['write', 'crypto/tls.(*Conn).Write'],
  ['read', 'crypto/tls.(*Conn).Read'],
  ['free', 'crypto/tls.(*Conn).Close'],
]

/** Library names tried in a process's root when attaching ahead of time (see preattachTargets). */
export const WELL_KNOWN_LIBRARIES = ['libssl.so.3', 'libssl.so.1.1', 'libssl.so.1.0.2', 'libssl.so.10', 'libgnutls.so.30']

/** Errors that mean "not now" (the process, and with it its map_files link, went away), not "never". */
const TRANSIENT = /\b(ESRCH|ENOENT|EACCES|EPERM)\b/

/** Files larger than this are not inspected (no real binary is; protects against hostile sparse files). */
const MAX_FILE_BYTES = 4 * 2 ** 30

export type InspectResult = { target: TlsTarget } | { skipped: SkippedFile }

/**
 * Caches inspection results by file identity (dev, inode, size, mtime), so a
 * file mapped by many processes, or by processes that come and go, is parsed
 * once.
 */
export class InspectCache {
  readonly #results = new Map<string, InspectResult>()
  /** number of files actually parsed (for tests and stats) */
  parsed = 0

  get(stamp: string): InspectResult | undefined {
    return this.#results.get(stamp)
  }

  set(stamp: string, r: InspectResult): void {
    if (this.#results.size > 100_000) this.#results.clear()
    this.#results.set(stamp, r)
  }
}

/**
 * The kernel's internal dev_t (MKDEV: major << 20 | minor, as in
 * inode->i_sb->s_dev) of a user-space st_dev (glibc's makedev encoding).
 */
export function kernelDev(stDev: bigint): bigint {
  const major = ((stDev >> 8n) & 0xfffn) | ((stDev >> 32n) & ~0xfffn)
  const minor = (stDev & 0xffn) | ((stDev >> 12n) & ~0xffn)
  return (major << 20n) | minor
}

/** `${dev}:${ino}` of a path (following links, e.g. map_files), or undefined. */
export function fileKey(path: string): { key: string; stamp: string; size: number; regular: boolean } | undefined {
  try {
    const st = statSync(path, { bigint: true })
    const key = `${st.dev}:${st.ino}`
    return { key, stamp: `${key}:${st.size}:${st.mtimeNs}`, size: Number(st.size), regular: st.isFile() }
  } catch {
    return undefined
  }
}

/**
 * Inspects one file: a TLS target, or why not. `path` must be a path this
 * process can open (a map_files or /proc/PID/root path, or a host path).
 */
export function inspectFile(path: string, displayPath = path, cache?: InspectCache): InspectResult {
  const id = fileKey(path)
  if (!id) return { skipped: { key: '', displayPath, reason: 'cannot stat' } }
  const cached = cache?.get(id.stamp)
  if (cached) return 'target' in cached ? { target: { ...cached.target, path, displayPath } } : cached
  const skip = (reason: string): InspectResult => ({ skipped: { key: id.key, displayPath, reason } })
  let result: InspectResult
  if (!id.regular) result = skip('not a regular file')
  else if (id.size < 64 || id.size > MAX_FILE_BYTES) result = skip('size')
  else {
    if (cache) cache.parsed++
    result = inspectElf(path, displayPath, id.key)
  }
  if (!('skipped' in result && result.skipped.transient)) cache?.set(id.stamp, result)
  return result
}

function inspectElf(path: string, displayPath: string, key: string): InspectResult {
  const skip = (reason: string): InspectResult => ({ skipped: { key, displayPath, reason } })
  let elf: ElfFile
  try {
    elf = openElf(path)
  } catch (e) {
    const message = (e as Error).message
    if (TRANSIENT.test(message)) return { skipped: { key, displayPath, reason: message, transient: true } }
    return skip(`not a supported ELF file: ${message}`)
  }
  try {
    if (isGoBinary(elf)) return inspectGo(elf, path, displayPath, key)
    const openssl = probePoints(elf, OPENSSL_FUNCS)
    if (openssl.some((p) => p.fn === 'write') && openssl.some((p) => p.fn === 'read')) {
      const boring = definedFunction(elf, 'SSL_CTX_set_grease_enabled') !== undefined
      return { target: { library: boring ? 'boringssl' : 'openssl', key, path, displayPath, probes: openssl } }
    }
    const gnutls = probePoints(elf, GNUTLS_FUNCS)
    if (gnutls.some((p) => p.fn === 'write') && gnutls.some((p) => p.fn === 'read')) {
      return { target: { library: 'gnutls', key, path, displayPath, probes: gnutls } }
    }
    return skip('no TLS functions')
  } catch (e) {
    const message = (e as Error).message
    if (TRANSIENT.test(message)) return { skipped: { key, displayPath, reason: message, transient: true } }
    return skip(`unreadable: ${message}`)
  } finally {
    elf.close()
  }
}

function inspectGo(elf: ElfFile, path: string, displayPath: string, key: string): InspectResult {
  const skip = (reason: string): InspectResult => ({ skipped: { key, displayPath, reason } })
  const version = goVersion(elf)
  const v = parseGoVersion(version)
  // register ABI (ABIInternal): amd64 since 1.17, arm64 since 1.18
  const minor = elf.machine === 'x86_64' ? 17 : 18
  if (v && v[0] === 1 && v[1] < minor) return skip(`${version} predates the register ABI on ${elf.machine}`)
  const probes: TlsProbePoint[] = []
  for (const [fn, name] of GO_FUNCS) {
    const f = findGoFunction(elf, name)
    if (!f) continue
    if (fn === 'free') {
      probes.push({ fn, symbol: name, address: f.address })
      continue
    }
    try {
      const rets = findReturnSites(elf, path, f)
      probes.push({ fn, symbol: name, address: f.address, returns: rets.addresses })
    } catch (e) {
      if (e instanceof ElfError) return skip(`${name}: ${e.message}`)
      throw e
    }
  }
  if (!probes.some((p) => p.fn === 'write') || !probes.some((p) => p.fn === 'read')) return skip('Go program without crypto/tls')
  return { target: { library: 'go', key, path, displayPath, probes, version } }
}

function definedFunction(elf: ElfFile, name: string) {
  let s
  try {
    s = elf.findSymbol(name)
  } catch {
    return undefined // ambiguous: not usable
  }
  return s && s.defined && (s.type === 'FUNC' || s.type === 'NOTYPE') && s.value > 0 ? s : undefined
}

function probePoints(elf: ElfFile, funcs: [TlsFunction, string][]): TlsProbePoint[] {
  const out: TlsProbePoint[] = []
  for (const [fn, name] of funcs) {
    const s = definedFunction(elf, name)
    if (!s) continue
    try {
      symbolFileOffset(elf, s) // must map to file bytes
    } catch {
      continue
    }
    out.push({ fn, symbol: name, address: s.value })
  }
  return out
}

/** The files `pid` maps, each with the best path to open it from here. */
export function candidateFiles(pid: number): { path: string; displayPath: string; file: MappedFile }[] {
  validatePid(pid)
  const out: { path: string; displayPath: string; file: MappedFile }[] = []
  for (const f of mappedFiles(pid)) {
    // only files with executable mappings can hold code we probe
    if (!f.mappings.some((m) => m.perms[2] === 'x')) continue
    const path = fileKey(f.mapFilesPath) ? f.mapFilesPath : f.deleted ? undefined : f.hostPath
    if (!path) continue
    out.push({ path, displayPath: f.path, file: f })
  }
  return out
}

export interface DiscoveryResult {
  targets: TlsTarget[]
  skipped: SkippedFile[]
}

/**
 * TLS targets of process `pid`: every mapped executable file that holds
 * OpenSSL/BoringSSL/GnuTLS/Go TLS functions. Throws NotFoundError if the
 * process is gone.
 */
export function discoverProcess(pid: number, cache?: InspectCache): DiscoveryResult {
  const targets: TlsTarget[] = []
  const skipped: SkippedFile[] = []
  const seen = new Set<string>()
  for (const c of candidateFiles(pid)) {
    const r = inspectFile(c.path, c.displayPath, cache)
    if ('target' in r) {
      if (seen.has(r.target.key)) continue
      seen.add(r.target.key)
      targets.push(r.target)
    } else {
      skipped.push(r.skipped)
    }
  }
  return { targets, skipped }
}

/**
 * TLS libraries that processes of `pid`'s mount namespace (or this one, with
 * no pid) would load, found like ld.so finds them, before any process maps
 * them. A uprobe on a file fires in every process that maps it later, so
 * attaching these ahead of time captures a new process from its first TLS
 * call, with no race against its start-up.
 */
export function preattachTargets(pid?: number, cache?: InspectCache, names = WELL_KNOWN_LIBRARIES): TlsTarget[] {
  const out: TlsTarget[] = []
  const seen = new Set<string>()
  for (const name of names) {
    let path: string
    try {
      path = resolveLibrary(name, pid === undefined ? {} : { pid })
    } catch {
      continue
    }
    const r = inspectFile(path, name, cache)
    if ('target' in r && !seen.has(r.target.key)) {
      seen.add(r.target.key)
      out.push(r.target)
    }
  }
  return out
}

/** The process's comm (thread name of its main thread), or undefined if it is gone. */
export function processComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${validatePid(pid)}/comm`, 'utf8').replace(/\n$/, '')
  } catch {
    return undefined
  }
}

/** Inode identity of the process's root directory (containers have their own). */
export function rootKey(pid: number): string | undefined {
  try {
    readlinkSync(`/proc/${validatePid(pid)}/root`)
    return fileKey(`/proc/${pid}/root/`)?.key
  } catch {
    return undefined
  }
}
