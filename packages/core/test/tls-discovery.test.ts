// TLS sensor building blocks that need no BPF: RET scanning of Go functions,
// .gopclntab lookup in stripped Go binaries, file classification, discovery
// through /proc/PID/map_files (also for hostile file names), and the
// attach-once registry.
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { openElf, resolveLibrary } from '../src/elf/index.js'
import type { Link } from '../src/link.js'
import {
  AttachRegistry,
  arm64ReturnOffsets,
  discoverProcess,
  findGoFunction,
  findInPclntab,
  findReturnSites,
  goVersion,
  InspectCache,
  inspectFile,
  isGoBinary,
  x86ReturnOffsets,
} from '../src/sensors/tls/index.js'
import { firstOutput, repoRoot, tempDir } from './helpers.js'

const fixtures = join(repoRoot, 'packages', 'core', 'test', 'fixtures', 'tls')
const hasGo = spawnSync('sh', ['-c', 'command -v go']).status === 0
const python = spawnSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim()

describe('Go RET scanning', () => {
  it('finds RET instructions by decoding, not by byte value', () => {
    const code = new Uint8Array([
      0x48, 0xc7, 0xc0, 0xc3, 0x00, 0x00, 0x00, // mov rax, 0xc3 (a 0xC3 byte in an immediate)
      0x48, 0x8b, 0x83, 0xc3, 0x00, 0x00, 0x00, // mov rax, [rbx+0xc3]
      0x74, 0x01, // je +1
      0xc3, // ret      <- 16
      0x90, // nop
      0xc2, 0x08, 0x00, // ret 8    <- 18
      0xcc, 0xcc, // int3 padding
    ])
    expect(x86ReturnOffsets(code, 0x401000)).toEqual([16, 18])
  })

  it('finds AArch64 RET (any register)', () => {
    const words = [0xd503201f /* nop */, 0xd65f03c0 /* ret */, 0x91000400 /* add */, 0xd65f0220 /* ret x17 */]
    const buf = new Uint8Array(words.length * 4)
    const view = new DataView(buf.buffer)
    words.forEach((w, i) => view.setUint32(i * 4, w, true))
    expect(arm64ReturnOffsets(buf)).toEqual([4, 12])
  })
})

describe.skipIf(!hasGo)('Go binaries', () => {
  let dir: string
  let plain: string
  let stripped: string

  beforeAll(() => {
    dir = tempDir('bpfkit-go-')
    const env = { ...process.env, GOCACHE: join(dir, 'gocache'), GOPATH: join(dir, 'gopath'), GO111MODULE: 'off', CGO_ENABLED: '0', GOFLAGS: '' }
    plain = join(dir, 'plain')
    stripped = join(dir, 'stripped')
    for (const [out, flags] of [[plain, []], [stripped, ['-ldflags=-s -w']]] as const) {
      const r = spawnSync('go', ['build', ...flags, '-o', out, join(fixtures, 'client.go')], { env, cwd: dir, encoding: 'utf8' })
      if (r.status !== 0) throw new Error(r.stderr)
    }
  }, 180_000)

  it('recognises Go and reads its version from .go.buildinfo', () => {
    const elf = openElf(plain)
    expect(isGoBinary(elf)).toBe(true)
    expect(goVersion(elf)).toMatch(/^go1\.\d+/)
    expect(isGoBinary(openElf(process.execPath))).toBe(false)
  })

  it('finds crypto/tls functions in .gopclntab where .symtab says, also when stripped', () => {
    const elf = openElf(plain)
    const names = ['crypto/tls.(*Conn).Write', 'crypto/tls.(*Conn).Read']
    const fromTab = findInPclntab(elf, names)
    for (const n of names) {
      const sym = findGoFunction(elf, n)!
      expect(sym.source).toBe('.symtab')
      expect(fromTab.get(n)).toMatchObject({ address: sym.address })
      // pclntab sizes run to the next function (alignment padding included)
      expect(fromTab.get(n)!.size).toBeGreaterThanOrEqual(sym.size)
      expect(fromTab.get(n)!.size - sym.size).toBeLessThan(64)
    }
    const s = openElf(stripped)
    expect(s.symbolTableSizes().symtab).toBe(0)
    const w = findGoFunction(s, 'crypto/tls.(*Conn).Write')
    expect(w?.source).toBe('.gopclntab')
    const sites = findReturnSites(s, stripped, w!)
    expect(sites.addresses.length).toBeGreaterThan(0)
    expect(sites.addresses.every((a) => a > w!.address && a < w!.address + w!.size)).toBe(true)
  })

  it('classifies Go programs with crypto/tls as targets with return sites', () => {
    for (const p of [plain, stripped]) {
      const r = inspectFile(p)
      expect('target' in r && r.target.library).toBe('go')
      if (!('target' in r)) continue
      expect(r.target.probes.map((x) => x.fn).sort()).toEqual(['free', 'read', 'write'])
      for (const probe of r.target.probes) if (probe.fn !== 'free') expect(probe.returns!.length).toBeGreaterThan(0)
    }
  })
})

describe('file classification', () => {
  it('recognises libssl, libgnutls and node, and skips other files', () => {
    const cache = new InspectCache()
    const ssl = inspectFile(resolveLibrary('libssl.so.3'), 'libssl.so.3', cache)
    expect('target' in ssl && ssl.target.library).toBe('openssl')
    if ('target' in ssl) expect(ssl.target.probes.map((p) => p.fn)).toEqual(expect.arrayContaining(['write', 'read', 'write_ex', 'read_ex', 'free']))
    const gnutls = inspectFile(resolveLibrary('libgnutls.so.30'), 'libgnutls.so.30', cache)
    expect('target' in gnutls && gnutls.target.library).toBe('gnutls')
    const node = inspectFile(process.execPath, 'node', cache)
    expect('target' in node && node.target.library).toBe('openssl')
    const libc = inspectFile(resolveLibrary('libc.so.6'), 'libc.so.6', cache)
    expect('skipped' in libc && libc.skipped.reason).toBe('no TLS functions')
    const text = join(tempDir(), 'not-elf')
    writeFileSync(text, 'hello world, this is not an ELF file at all, just some text. '.repeat(4))
    expect('skipped' in inspectFile(text)).toBe(true)
    // cached by identity: a second look parses nothing
    const parsed = cache.parsed
    inspectFile(resolveLibrary('libssl.so.3'), 'again', cache)
    expect(cache.parsed).toBe(parsed)
  })

  it.skipIf(!python || process.getuid?.() !== 0)('finds a TLS library mapped under a hostile name, through map_files', async () => {
    const dir = tempDir()
    // a newline, a fake " (deleted)" suffix and spaces: /proc/PID/maps shows "\012" and is ambiguous
    const evil = join(dir, ' evil\nlib ssl.so (deleted)')
    copyFileSync(resolveLibrary('libssl.so.3'), evil)
    const child = spawn(python, ['-c', `import ctypes,sys,time; ctypes.CDLL(${JSON.stringify(evil)}); print('ok', flush=True); time.sleep(30)`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    try {
      await firstOutput(child, 'python loading the renamed libssl')
      const found = discoverProcess(child.pid!)
      const t = found.targets.find((x) => x.displayPath === evil)
      expect(t, JSON.stringify(found.targets.map((x) => x.displayPath))).toBeDefined()
      expect(t!.library).toBe('openssl')
      expect(t!.path).toMatch(/^\/proc\/\d+\/map_files\/[0-9a-f]+-[0-9a-f]+$/)
    } finally {
      child.kill('SIGKILL')
    }
  })
})

describe('attach registry', () => {
  const fakeLink = (log: string[], name: string) => ({ close: () => log.push(`close ${name}`) }) as unknown as Link

  it('attaches once per file, detaches when the last holder goes', () => {
    const log: string[] = []
    const reg = new AttachRegistry<{ key: string }>({ attach: (t) => (log.push(`attach ${t.key}`), [fakeLink(log, t.key)]) })
    expect(reg.acquire({ key: 'a' }, 1)).toBe('attached')
    expect(reg.acquire({ key: 'a' }, 2)).toBe('held')
    expect(reg.acquire({ key: 'b' }, 2)).toBe('attached')
    reg.inherit(2, 3) // fork
    expect(reg.release(1)).toEqual([])
    expect(reg.release(2)).toEqual([])
    expect(reg.release(3).sort()).toEqual(['a', 'b'])
    expect(log).toEqual(['attach a', 'attach b', 'close a', 'close b'])
    expect(reg.size).toBe(0)
  })

  it('remembers failures unless they are transient, and lingers before detaching', async () => {
    let fail: Error | undefined = new Error('boom')
    const log: string[] = []
    const reg = new AttachRegistry<{ key: string }>({
      attach: (t) => {
        if (fail) throw fail
        return [fakeLink(log, t.key)]
      },
      remember: (e) => (e as Error).message !== 'gone',
      lingerMs: 50,
    })
    expect(reg.acquire({ key: 'x' }, 1)).toBe('failed')
    fail = undefined
    expect(reg.acquire({ key: 'x' }, 1)).toBe('failed') // remembered
    fail = new Error('gone')
    expect(reg.acquire({ key: 'y' }, 1)).toBe('failed')
    fail = undefined
    expect(reg.acquire({ key: 'y' }, 1)).toBe('attached') // transient: retried
    expect(reg.release(1)).toEqual([]) // lingering
    expect(reg.has('y')).toBe(true)
    expect(reg.acquire({ key: 'y' }, 2)).toBe('held') // re-used within the linger time
    reg.release(2)
    await new Promise((r) => setTimeout(r, 120))
    expect(reg.has('y')).toBe(false)
    expect(log).toEqual(['close y'])
    reg.close()
  })
})
