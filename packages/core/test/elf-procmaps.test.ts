/**
 * /proc/PID/maps parsing against a real child process that maps files with
 * hostile names (spaces, newlines, leading blanks, a literal "\012", a fake
 * " (deleted)" suffix) and a file deleted after mapping.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError, NotFoundError } from '../src/errors.js'
import {
  hostPathFor,
  mappedFiles,
  MAX_LINE_BYTES,
  parseMapsLine,
  parseProcMaps,
  readProcMaps,
  resolveLibrary,
  validatePid,
} from '../src/elf/index.js'

const CHILD_PY = `
import mmap, os, sys
keep = []
for p in sys.argv[1:]:
    f = open(p, 'rb')
    keep.append((f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)))
os.unlink(sys.argv[-1])
print('ready', flush=True)
sys.stdin.read()
`

let dir: string
let child: ChildProcess
const files: Record<string, { path: string; ino: string; content: string }> = {}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bpfkit maps '))
  const names = {
    space: 'with space.bin',
    newline: 'new\nline.bin',
    leading: '   lead.bin',
    backslash: 'back\\012slash.bin',
    fakeDeleted: 'fake (deleted)',
    gone: 'gone.bin',
  }
  for (const [key, name] of Object.entries(names)) {
    const path = join(dir, name)
    const content = `content of ${key}\n`.repeat(100)
    writeFileSync(path, content)
    files[key] = { path, ino: String(statSync(path).ino), content }
  }
  writeFileSync(join(dir, 'child.py'), CHILD_PY)
  child = spawn('python3', [join(dir, 'child.py'), ...Object.values(files).map((f) => f.path)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const rl = createInterface({ input: child.stdout! })
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`python child exited with ${code}`)))
    rl.once('line', (l) => (l === 'ready' ? resolve() : reject(new Error(l))))
  })
})

afterAll(() => {
  child?.kill('SIGKILL')
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('readProcMaps on a live process', () => {
  it('parses every line of its own maps', () => {
    const maps = readProcMaps(process.pid)
    const text = readFileSync(`/proc/${process.pid}/maps`, 'utf8')
    expect(maps.length).toBeGreaterThan(10)
    expect(maps.length).toBeLessThanOrEqual(text.split('\n').filter(Boolean).length + 50)
    const exe = maps.find((m) => m.path === process.execPath || m.path.endsWith('/node'))
    expect(exe?.inode).toBe(String(statSync(process.execPath).ino))
    for (const m of maps) {
      expect(m.end).toBeGreaterThan(m.start)
      expect(m.perms).toMatch(/^[r-][w-][x-][ps]$/)
    }
    expect(maps.some((m) => m.path === '[stack]')).toBe(true)
  })

  it('finds hostile file names with the right path', () => {
    const maps = readProcMaps(child.pid!)
    const byIno = (key: string) => maps.find((m) => m.inode === files[key].ino && m.path.startsWith(dir))
    expect(byIno('space')?.path).toBe(files.space.path)
    expect(byIno('newline')?.path).toBe(files.newline.path)
    expect(byIno('leading')?.path).toBe(files.leading.path)
    expect(byIno('gone')).toMatchObject({ path: files.gone.path, deleted: true })
    // the maps text alone cannot tell these apart from an escape / a deletion:
    expect(byIno('backslash')?.path).toBe(join(dir, 'back\nslash.bin'))
    expect(byIno('fakeDeleted')).toMatchObject({ path: join(dir, 'fake'), deleted: true })
  })

  it('mappedFiles settles names exactly and finds deleted files through map_files', () => {
    const list = mappedFiles(child.pid!)
    const get = (key: string) => list.find((f) => f.inode === files[key].ino)!
    for (const key of ['space', 'newline', 'leading', 'backslash', 'fakeDeleted']) {
      const f = get(key)
      expect(f, key).toBeDefined()
      expect(f.path).toBe(files[key].path)
      expect(f.deleted).toBe(false)
      expect(f.hostPath).toBe(`/proc/${child.pid}/root${files[key].path}`)
      expect(readFileSync(f.hostPath, 'utf8')).toBe(files[key].content)
      expect(readFileSync(f.mapFilesPath, 'utf8')).toBe(files[key].content)
    }
    const gone = get('gone')
    expect(gone.deleted).toBe(true)
    expect(gone.path).toBe(files.gone.path)
    expect(gone.mapFilesPath).toMatch(new RegExp(`^/proc/${child.pid}/map_files/[0-9a-f]+-[0-9a-f]+$`))
    expect(readFileSync(gone.mapFilesPath, 'utf8')).toBe(files.gone.content)
    // one entry per file even though python maps each once and the interpreter maps libs many times
    const keys = list.map((f) => `${f.dev}/${f.inode}`)
    expect(new Set(keys).size).toBe(keys.length)
    expect(list.find((f) => /libc\.so\.6$/.test(f.path))?.mappings.length).toBeGreaterThan(1)
  })

  it('resolveLibrary uses the mapping, and map_files for deleted files', () => {
    expect(resolveLibrary('with space.bin', { pid: child.pid! })).toBe(`/proc/${child.pid}/root${files.space.path}`)
    const gone = resolveLibrary('gone.bin', { pid: child.pid! })
    expect(gone).toMatch(/\/map_files\//)
    expect(readFileSync(gone, 'utf8')).toBe(files.gone.content)
  })

  it('reports a missing process as NotFoundError', () => {
    expect(() => readProcMaps(0x7ffffff0)).toThrow(NotFoundError)
    expect(() => readProcMaps(0x7ffffff0)).toThrow(/no such process/)
  })
})

describe('parsing', () => {
  const pad = (prefix: string) => prefix.padEnd(72, ' ') + ' '

  it('handles anonymous, pseudo, wide-address and padded lines', () => {
    const text = [
      '55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 260131                     /usr/bin/cat',
      '563a15310000-563a15320000 rw-p 00000000 00:00 0 ',
      '7ffd1c0e1000-7ffd1c102000 rw-p 00000000 00:00 0                          [stack]',
      'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
      `${pad('7f0000000000-7f0000001000 r--s 00001000 103:05 18446744073709551615 ')}/weird   name (deleted)`,
      `${pad('7f0000001000-7f0000002000 r--p 00000000 fe:00 7 ')}   three spaces\\012and newline`,
      '',
    ].join('\n')
    const maps = parseProcMaps(text)
    expect(maps).toHaveLength(6)
    expect(maps[0]).toEqual({
      start: 0x55d0c0a00000,
      end: 0x55d0c0a02000,
      perms: 'r--p',
      offset: 0,
      dev: 'fe:00',
      inode: '260131',
      path: '/usr/bin/cat',
      deleted: false,
    })
    expect(maps[1].path).toBe('')
    expect(maps[2].path).toBe('[stack]')
    expect(maps[3].start.toString(16)).toBe('ffffffffff600000')
    expect(maps[3].end - maps[3].start).toBe(4096)
    expect(maps[4]).toMatchObject({ path: '/weird   name', deleted: true, dev: '103:05', inode: '18446744073709551615', offset: 0x1000 })
    expect(maps[5].path).toBe('   three spaces\nand newline')
  })

  it('rejects malformed lines with InvalidArgumentError', () => {
    for (const bad of ['garbage', '1-2 rwxp 0 00:00', 'zz-10 r--p 00000000 00:00 0 ', '0-1 r--q 00000000 00:00 0 ']) {
      expect(() => parseProcMaps(bad)).toThrow(InvalidArgumentError)
    }
    expect(() => parseMapsLine('x'.repeat(10000))).toThrow(/malformed .*\.\.\./)
  })

  it('caps very long lines and keeps parsing', () => {
    const long = `${pad('7f0000000000-7f0000001000 r--p 00000000 fe:00 9 ')}/${'a'.repeat(MAX_LINE_BYTES * 2)}`
    const maps = parseProcMaps(`${long}\n${pad('7f0000001000-7f0000002000 r--p 00000000 fe:00 10 ')}/ok\n`)
    expect(maps[0].pathTruncated).toBe(true)
    expect(maps[0].path.length).toBeLessThan(MAX_LINE_BYTES)
    expect(maps[1].path).toBe('/ok')
  })

  it('validates pids and host paths', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 40, '12', '1/../self', null]) {
      expect(() => validatePid(bad)).toThrow(InvalidArgumentError)
      expect(() => readProcMaps(bad as number)).toThrow(InvalidArgumentError)
    }
    expect(hostPathFor(42, '/usr/lib/libc.so.6')).toBe('/proc/42/root/usr/lib/libc.so.6')
    expect(hostPathFor(42, '/a/../../../etc/shadow')).toBe('/proc/42/root/etc/shadow')
    expect(() => hostPathFor(42, 'relative')).toThrow(InvalidArgumentError)
    expect(() => hostPathFor(42, '/a\0b')).toThrow(InvalidArgumentError)
  })
})
