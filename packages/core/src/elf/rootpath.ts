/**
 * Path resolution inside another root directory, such as a container's
 * `/proc/PID/root`.
 *
 * Prefixing a path with the root is not enough: an absolute symlink inside
 * the container (`/lib64/libfoo.so -> /opt/foo/libfoo.so`) would be followed
 * relative to *our* root and land on a host file. This walks the path one
 * component at a time and re-roots absolute symlink targets, like
 * openat2(RESOLVE_IN_ROOT) (which Node does not expose). `..` cannot climb
 * above the root.
 */
import { lstatSync, readlinkSync } from 'node:fs'
import { posix } from 'node:path'

/** Same limit as the kernel (MAXSYMLINKS). */
const MAX_SYMLINKS = 40

/**
 * Host path of `path` as seen from `root`, with every symlink resolved inside
 * `root`. Returns undefined if some component does not exist or cannot be
 * read, or on a symlink loop. With root '/' the path is just normalized (the
 * kernel resolves symlinks the same way).
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  if (!path.startsWith('/') || path.includes('\0') || !root.startsWith('/') || root.includes('\0')) return undefined
  const base = posix.normalize(root).replace(/\/+$/, '')
  if (base === '') return posix.normalize(path)
  const todo = path.split('/').filter((c) => c !== '')
  const done: string[] = []
  let links = 0
  while (todo.length > 0) {
    const c = todo.shift() as string
    if (c === '.') continue
    if (c === '..') {
      done.pop()
      continue
    }
    const here = `${base}/${[...done, c].join('/')}`
    let isLink: boolean
    try {
      isLink = lstatSync(here).isSymbolicLink()
    } catch {
      return undefined
    }
    if (!isLink) {
      done.push(c)
      continue
    }
    if (++links > MAX_SYMLINKS) return undefined
    let target: string
    try {
      target = readlinkSync(here)
    } catch {
      return undefined
    }
    if (target.startsWith('/')) done.length = 0
    todo.unshift(...target.split('/').filter((t) => t !== ''))
  }
  return done.length ? `${base}/${done.join('/')}` : base
}
