// Real-kernel tests of what outlives what: pinned links and maps after the
// process-side objects are closed, the capability named by a PermissionError
// when an unprivileged process tries to load, and several ring buffers read
// at once on one event loop.
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, rmSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { BpfMap, Collection, CollectionSpec, type Codec } from '../src/index.js'
import { describeBpf, openFds, repoRoot, testObject } from './helpers.js'

const u32: Codec<number> = { size: 4, decode: (v, o) => v.getUint32(o, true), encode: (x, v, o) => v.setUint32(o, x, true) }
const u64: Codec<bigint> = { size: 8, decode: (v, o) => v.getBigUint64(o, true), encode: (x, v, o) => v.setBigUint64(o, x, true) }

/** Each call is one getppid(2) (process.pid is cached, process.ppid is not). */
function callGetppid(n: number): void {
  for (let i = 0; i < n; i++) void process.ppid
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The 'maps' test object, loaded so that on_getppid only counts this process. */
function loadMaps(tag?: number): Collection {
  const spec = CollectionSpec.fromFile(testObject('maps'))
  spec.variables.must('target_tgid').set(process.pid)
  if (tag !== undefined) spec.variables.must('tag').set(tag)
  return new Collection(spec)
}

describeBpf('pinned links and maps outlive their objects', () => {
  const pinBase = `/sys/fs/bpf/bpfkit-lifecycle-${process.pid}`

  it('a pinned link keeps running after Link and Collection are closed, and stops once its pin is removed', async () => {
    const linkPath = `${pinBase}-link`
    const mapPath = `${pinBase}-counters`
    let counters: BpfMap<number, bigint> | undefined
    try {
      const fdsBefore = openFds()
      const coll = loadMaps()
      const link = coll.program('on_getppid').attach()
      link.pin(linkPath)
      expect(link.pinnedAt).toBe(linkPath)
      coll.map('counters').pin(mapPath) // on_getppid bumps counters[0] on every call
      link.close()
      coll.close()
      // nothing of the object is held by this process any more: only the two pins keep it alive
      expect(openFds()).toBe(fdsBefore)
      expect(existsSync(linkPath)).toBe(true)

      counters = BpfMap.fromPin(mapPath, { key: u32, value: u64 })
      expect(counters.name).toBe('counters')
      const start = counters.lookup(0)!
      callGetppid(25)
      expect(counters.lookup(0)).toBe(start + 25n)

      // Removing the last reference detaches, but asynchronously: the kernel frees the
      // bpffs inode after an RCU grace period and releases the link from a workqueue.
      unlinkSync(linkPath)
      const deadline = performance.now() + 5000
      for (;;) {
        const before = counters.lookup(0)!
        callGetppid(1)
        if (counters.lookup(0) === before) break
        if (performance.now() > deadline) throw new Error('program still runs 5 s after its link pin was removed')
        await sleep(5)
      }
      const detached = counters.lookup(0)!
      callGetppid(50)
      expect(counters.lookup(0)).toBe(detached)
    } finally {
      counters?.close()
      rmSync(linkPath, { force: true })
      rmSync(mapPath, { force: true })
    }
  })

  it('unpin() removes the link file; the link then lives only as long as the Link object', () => {
    const linkPath = `${pinBase}-unpin`
    try {
      using coll = loadMaps()
      const counters = coll.map<number, bigint>('counters')
      const link = coll.program('on_getppid').attach()
      link.pin(linkPath)
      link.unpin()
      expect(existsSync(linkPath)).toBe(false)
      expect(link.pinnedAt).toBeNull()
      const start = counters.lookup(0)!
      callGetppid(3)
      expect(counters.lookup(0)).toBe(start + 3n) // still attached through this process's fd
      link.close() // the only reference: detaches now
      callGetppid(3)
      expect(counters.lookup(0)).toBe(start + 3n)
    } finally {
      rmSync(linkPath, { force: true })
    }
  })
})

describeBpf('PermissionError names the missing capability', () => {
  const child = join(repoRoot, 'packages', 'core', 'test', 'fixtures', 'permission-child.mjs')
  const coreDist = join(repoRoot, 'packages', 'core', 'dist', 'index.js')

  interface Outcome {
    ok: boolean
    name?: string
    message?: string
    code?: string
    errno?: number
    capability?: string
    isBpfError?: boolean
    isPermissionError?: boolean
  }
  interface ChildReport {
    uid: number
    capEff: string
    results: { load: Outcome; createLruMap: Outcome; openPin?: Outcome }
  }

  /**
   * Runs the child script as uid 0 with only `caps` (setpriv names, e.g. 'bpf')
   * effective. The "noroot" securebits stop exec from handing root every
   * capability back, so the child is unprivileged for bpf() while still able to
   * read a clone of the repository wherever root can (a non-root user could
   * not read one made under a 0700 mktemp directory).
   */
  function runUnprivileged(caps: string[], pinnedPath?: string): ChildReport {
    expect(existsSync(coreDist), 'packages/core/dist is built by scripts/setup.sh').toBe(true)
    const add = caps.map((c) => `,+${c}`).join('')
    const args = ['--securebits=+noroot,+noroot_locked', `--inh-caps=-all${add}`, `--bounding-set=-all${add}`]
    if (caps.length) args.push(`--ambient-caps=${caps.map((c) => `+${c}`).join(',')}`)
    const r = spawnSync('setpriv', [...args, process.execPath, child, coreDist, testObject('maps'), ...(pinnedPath ? [pinnedPath] : [])], {
      cwd: '/',
      encoding: 'utf8',
      timeout: 20_000,
    })
    if (r.error) throw new Error(`cannot run setpriv (util-linux): ${r.error.message}`)
    expect(r.status, `child failed:\n${r.stderr}`).toBe(0)
    return JSON.parse(r.stdout) as ChildReport
  }

  const CAP_BPF = 39n
  const CAP_PERFMON = 38n
  const effective = (capEff: string) => BigInt('0x' + capEff)

  it('without capabilities: loading names CAP_BPF and CAP_PERFMON, creating an LRU map names CAP_BPF', () => {
    const r = runUnprivileged([])
    expect(r.uid).toBe(0)
    expect(effective(r.capEff)).toBe(0n)
    expect(r.results.load).toMatchObject({
      ok: false,
      name: 'PermissionError',
      isPermissionError: true,
      isBpfError: true,
      code: 'EPERM',
      errno: 1,
      capability: 'CAP_BPF and CAP_PERFMON',
    })
    expect(r.results.load.message).toMatch(/^load object 'maps'.*permission denied; needs CAP_BPF and CAP_PERFMON/)
    expect(r.results.createLruMap).toMatchObject({ ok: false, isPermissionError: true, errno: 1, capability: 'CAP_BPF' })
    expect(r.results.createLruMap.message).toMatch(/^create lru_hash map: permission denied; needs CAP_BPF/)
  })

  it('a pin the file mode refuses names access to the file, not a capability', () => {
    const path = `/sys/fs/bpf/bpfkit-lifecycle-${process.pid}-private`
    const m = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1, name: 'private' })
    try {
      m.pin(path)
      // owned by someone else, mode 0600: without CAP_DAC_OVERRIDE even uid 0 may not open it
      chownSync(path, 65534, 65534)
      chmodSync(path, 0o600)
      const r = runUnprivileged(['bpf'], path)
      expect(r.results.openPin).toMatchObject({ ok: false, isPermissionError: true, code: 'EACCES', errno: 13 })
      expect(r.results.openPin!.capability).toBe(`access to ${path} (its owner and mode, or CAP_DAC_OVERRIDE)`)
    } finally {
      m.close()
      rmSync(path, { force: true })
    }
  })

  it('with CAP_BPF only: the map is created, loading still asks for CAP_PERFMON; with both, loading works', () => {
    const bpfOnly = runUnprivileged(['bpf'])
    expect(bpfOnly.uid).toBe(0)
    expect(effective(bpfOnly.capEff)).toBe(1n << CAP_BPF)
    expect(bpfOnly.results.createLruMap).toEqual({ ok: true })
    expect(bpfOnly.results.load).toMatchObject({ ok: false, isPermissionError: true, errno: 1 })
    expect(bpfOnly.results.load.capability).toMatch(/CAP_PERFMON/)
    expect(bpfOnly.results.load.message).toMatch(/program 'on_getppid'.*needs .*CAP_PERFMON/)

    // the capabilities the error named are the ones that fix it
    const both = runUnprivileged(['bpf', 'perfmon'])
    expect(effective(both.capEff)).toBe((1n << CAP_BPF) | (1n << CAP_PERFMON))
    expect(both.results.load).toEqual({ ok: true })
    expect(both.results.createLruMap).toEqual({ ok: true })
  })
})

describeBpf('several ring buffers on one event loop', () => {
  interface Event {
    seq: bigint
    pid: number
    tag: number
  }

  it('two collections each deliver exactly their own records through their data listeners', async () => {
    const K = 300
    const fdsBefore = openFds()
    const a = loadMaps(101)
    const b = loadMaps(202)
    const links = [a.program('on_getppid').attach(), b.program('on_getppid').attach()]
    const rings = [a.ringBuffer<Event>('events', { codec: 'event' }), b.ringBuffer<Event>('events', { codec: 'event' })]
    try {
      const seen: Event[][] = [[], []]
      const errors: Error[] = []
      rings.forEach((rb, i) => rb.on('data', (e) => seen[i]!.push(e)).on('error', (e) => errors.push(e)))
      callGetppid(K)
      // records only reach 'data' from the event loop (uv_poll wake-ups), never synchronously
      expect(seen[0]!.length + seen[1]!.length).toBe(0)
      const deadline = performance.now() + 5000
      while (seen[0]!.length < K || seen[1]!.length < K) {
        if (performance.now() > deadline) throw new Error(`timed out: rings got ${seen[0]!.length} and ${seen[1]!.length} of ${K} records`)
        await sleep(5)
      }
      await sleep(50) // a stray extra record would arrive by now
      expect(errors).toEqual([])
      const expectedSeqs = Array.from({ length: K }, (_, i) => BigInt(i))
      for (const [i, tag] of [[0, 101], [1, 202]] as const) {
        expect(seen[i]!.length).toBe(K)
        expect(seen[i]!.map((e) => e.seq)).toEqual(expectedSeqs) // each object counts from 0: none lost, none doubled
        expect(new Set(seen[i]!.map((e) => e.tag))).toEqual(new Set([tag]))
        expect(new Set(seen[i]!.map((e) => e.pid))).toEqual(new Set([process.pid]))
        expect(rings[i]!.stats).toMatchObject({ records: K, lost: 0, malformed: 0 })
        expect(rings[i]!.refreshLost()).toBe(0)
      }
    } finally {
      for (const rb of rings) rb.close()
      for (const l of links) l.close()
      a.close()
      b.close()
    }
    expect(openFds()).toBe(fdsBefore)
  })
})
