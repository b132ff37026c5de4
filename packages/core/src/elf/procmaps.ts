/**
 * /proc/PID/maps parsing, for finding which files a process has mapped (the
 * libraries it actually loaded, seen through its own mount namespace).
 *
 * File names are controlled by whoever created the file, so the parser does
 * not trust them: the kernel pads the fixed fields to a known column and then
 * prints the name verbatim except that '\n' becomes "\012" (seq_path escapes
 * only newline) and unlinked files get " (deleted)" appended. Names may
 * therefore contain spaces (also leading ones), "\012" literally, or end in
 * " (deleted)" on purpose. The parser locates the name by column, and
 * mappedFiles() settles the ambiguous cases with /proc/PID/map_files, which
 * names each mapping's file exactly. Line length and line count are capped.
 */
import { closeSync, constants, openSync, readlinkSync, readSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import { InvalidArgumentError } from '../errors.js'
import { fsError } from './internal.js'

export interface ProcMapping {
  /** first address (page aligned; exact as a number even above 2^53, e.g. [vsyscall]) */
  readonly start: number
  /** address past the end */
  readonly end: number
  /** e.g. 'r-xp' (p = private, s = shared) */
  readonly perms: string
  /** offset in the file of `start` */
  readonly offset: number
  /** device as 'major:minor' in hex, as printed by the kernel (e.g. 'fe:00') */
  readonly dev: string
  /** inode number as a decimal string ('0' for anonymous memory); may exceed 2^53 on overlayfs */
  readonly inode: string
  /** unescaped file name without the ' (deleted)' suffix, or a pseudo name like '[heap]', or '' */
  readonly path: string
  /** the kernel marked the file as unlinked (a heuristic here; mappedFiles() verifies) */
  readonly deleted: boolean
  /** the line exceeded MAX_LINE_BYTES and `path` is cut short */
  readonly pathTruncated?: boolean
}

export interface MappedFile {
  /** the file's path in the process's mount namespace (exact when map_files is readable, i.e. as root) */
  readonly path: string
  /** the file was unlinked after being mapped (upgraded library, memfd, ...) */
  readonly deleted: boolean
  readonly dev: string
  readonly inode: string
  /** `/proc/PID/root` + path: the same file as seen from here (unless deleted) */
  readonly hostPath: string
  /** `/proc/PID/map_files/START-END` of the first mapping: opens the mapped inode, even when deleted (needs root) */
  readonly mapFilesPath: string
  /** all mappings of this file, in address order */
  readonly mappings: readonly ProcMapping[]
}

/** Longest line kept; paths are at most PATH_MAX (4096) bytes before escaping. */
export const MAX_LINE_BYTES = 64 * 1024
/** Far above vm.max_map_count's default of 65530. */
export const MAX_LINES = 1 << 21
/** The kernel pads the fields before the path to this column (64-bit kernels). */
const PATH_COLUMN = 72

const LINE = /^([0-9a-f]{1,16})-([0-9a-f]{1,16}) ([r-][w-][x-][ps]) ([0-9a-f]{1,16}) ([0-9a-f]{1,8}):([0-9a-f]{1,8}) ([0-9]{1,20})(?: |$)/
const DELETED = ' (deleted)'

/** Validate a pid before it goes into a /proc path: a positive integer, nothing else. */
export function validatePid(pid: unknown): number {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid > 0x7fffffff) {
    throw new InvalidArgumentError(`pid must be a positive integer, got ${typeof pid === 'string' ? JSON.stringify(pid) : String(pid)}`)
  }
  return pid
}

/** `/proc/PID/root` + `path`: where a file of that process's mount namespace is visible from here. */
export function hostPathFor(pid: number, path: string): string {
  validatePid(pid)
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw new InvalidArgumentError(`path must be absolute, got ${JSON.stringify(path)}`)
  }
  // normalize so '..' cannot climb out of the process root
  return `/proc/${pid}/root${posix.normalize(path)}`
}

/** hex address → number. Page-aligned values are exact doubles up to 2^64. */
function hexNumber(s: string): number {
  return Number(BigInt(`0x${s}`))
}

/** Parse one line of /proc/PID/maps. `truncated` marks a line cut at MAX_LINE_BYTES. */
export function parseMapsLine(line: string, lineNo = 1, truncated = false): ProcMapping {
  const m = LINE.exec(line)
  if (!m) {
    const shown = line.length > 80 ? `${line.slice(0, 80)}...` : line
    throw new InvalidArgumentError(`malformed /proc/PID/maps line ${lineNo}: ${JSON.stringify(shown)}`)
  }
  const prefixEnd = m[0].length
  let path = ''
  if (line.length > prefixEnd) {
    const col = Math.max(prefixEnd, PATH_COLUMN) + 1
    const pad = line.slice(prefixEnd, col)
    path = line.length >= col && /^ *$/.test(pad) ? line.slice(col) : line.slice(prefixEnd).replace(/^ +/, '')
  }
  let deleted = false
  if (!truncated && path.endsWith(DELETED) && path.length > DELETED.length) {
    deleted = true
    path = path.slice(0, -DELETED.length)
  }
  path = path.replace(/\\012/g, '\n')
  const mapping: ProcMapping = {
    start: hexNumber(m[1]),
    end: hexNumber(m[2]),
    perms: m[3],
    offset: hexNumber(m[4]),
    dev: `${m[5]}:${m[6]}`,
    inode: BigInt(m[7]).toString(),
    path,
    deleted,
  }
  return truncated ? { ...mapping, pathTruncated: true } : mapping
}

/** Parse the whole text of a maps file (for tests and for maps captured elsewhere). */
export function parseProcMaps(text: string): ProcMapping[] {
  const out: ProcMapping[] = []
  let lineNo = 0
  let pos = 0
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos)
    if (nl < 0) nl = text.length
    const raw = text.slice(pos, Math.min(nl, pos + MAX_LINE_BYTES))
    const truncated = nl - pos > MAX_LINE_BYTES
    pos = nl + 1
    if (++lineNo > MAX_LINES) throw new InvalidArgumentError(`maps text has more than ${MAX_LINES} lines`)
    if (raw === '') continue
    out.push(parseMapsLine(raw, lineNo, truncated))
  }
  return out
}

/**
 * Read and parse /proc/PID/maps. Streams the file in chunks, so a process
 * with a huge number of mappings or absurdly long names costs bounded memory
 * per line. NotFoundError if there is no such process; PermissionError if we
 * may not read it.
 */
export function readProcMaps(pid: number): ProcMapping[] {
  validatePid(pid)
  const file = `/proc/${pid}/maps`
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY)
  } catch (err) {
    throw fsError(err, 'read', file, 'process')
  }
  const out: ProcMapping[] = []
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024)
    let parts: Buffer[] = []
    let partsLen = 0
    let truncated = false
    let lineNo = 0
    const flush = () => {
      if (++lineNo > MAX_LINES) throw new InvalidArgumentError(`${file} has more than ${MAX_LINES} lines`)
      if (partsLen > 0) out.push(parseMapsLine(Buffer.concat(parts, partsLen).toString('utf8'), lineNo, truncated))
      parts = []
      partsLen = 0
      truncated = false
    }
    const keep = (b: Buffer) => {
      const room = MAX_LINE_BYTES - partsLen
      if (b.length > room) truncated = true
      const take = Math.min(room, b.length)
      if (take > 0) {
        parts.push(Buffer.from(b.subarray(0, take)))
        partsLen += take
      }
    }
    for (;;) {
      let n: number
      try {
        n = readSync(fd, chunk, 0, chunk.length, null)
      } catch (err) {
        throw fsError(err, 'read', file, 'process')
      }
      if (n === 0) break
      let pos = 0
      while (pos < n) {
        const nl = chunk.indexOf(10, pos)
        if (nl < 0 || nl >= n) {
          keep(chunk.subarray(pos, n))
          break
        }
        keep(chunk.subarray(pos, nl))
        flush()
        pos = nl + 1
      }
    }
    if (partsLen > 0) flush()
  } finally {
    closeSync(fd)
  }
  return out
}

/**
 * The files mapped by process `pid`, one entry per file (deduplicated by
 * device and inode), in order of first mapping. As root, names are taken from
 * /proc/PID/map_files (exact bytes, no "\012" ambiguity) and deletion is
 * decided by the mapped inode's link count rather than the " (deleted)" text.
 */
export function mappedFiles(pid: number): MappedFile[] {
  const maps = readProcMaps(pid)
  const groups = new Map<string, { first: ProcMapping; list: ProcMapping[] }>()
  for (const m of maps) {
    if (m.inode === '0' || !m.path.startsWith('/')) continue
    const key = `${m.dev}/${m.inode}`
    const g = groups.get(key)
    if (g) g.list.push(m)
    else groups.set(key, { first: m, list: [m] })
  }
  const out: MappedFile[] = []
  for (const { first, list } of groups.values()) {
    const mapFilesPath = `/proc/${pid}/map_files/${first.start.toString(16)}-${first.end.toString(16)}`
    let deleted = first.deleted
    let path = first.path
    try {
      deleted = statSync(mapFilesPath, { bigint: true }).nlink === 0n
    } catch {
      // not root, or the mapping just went away: keep the maps text's verdict
    }
    try {
      const link = readlinkSync(mapFilesPath)
      if (link.startsWith('/')) path = deleted && link.endsWith(DELETED) ? link.slice(0, -DELETED.length) : link
    } catch {
      // as above
    }
    if (!deleted && first.deleted && !path.endsWith(DELETED) && path === first.path) {
      // the name itself ends in " (deleted)" and map_files was not readable to say so
      path = `${path}${DELETED}`
    }
    out.push({
      path,
      deleted,
      dev: first.dev,
      inode: first.inode,
      hostPath: hostPathFor(pid, path),
      mapFilesPath,
      mappings: list,
    })
  }
  return out
}
