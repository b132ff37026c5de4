// Real-kernel tests of the spec/live split: inspect, configure, load, attach,
// maps (incl. batch), variables and ring-buffer delivery.
import { readFileSync, rmSync, unlinkSync } from 'node:fs'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { BpfError, BpfMap, Collection, CollectionSpec, InvalidArgumentError, NotFoundError, RingBuffer, SyscallError, type RecordBatch } from '../src/index.js'
import { catchErr, describeBpf, testObject } from './helpers.js'

describeBpf('object loading', () => {
  it('inspects programs, maps and variables before loading', () => {
    const spec = CollectionSpec.fromFile(testObject('maps'))
    const prog = spec.programs.must('on_getppid')
    expect(prog.section).toBe('tracepoint/syscalls/sys_enter_getppid')
    expect(prog.type).toBe('tracepoint')
    const byPid = spec.maps.must('by_pid')
    expect(byPid).toMatchObject({ type: 'hash', keySize: 4, valueSize: 32, maxEntries: 1024 })
    expect(spec.maps.must('events')).toMatchObject({ type: 'ringbuf', maxEntries: 1 << 20 })
    expect(spec.maps.must('percpu').type).toBe('percpu_array')
    const vars = spec.variables
    expect(vars.must('target_tgid')).toMatchObject({ section: '.rodata', size: 4, constant: true })
    expect(vars.must('tag').get()).toBe(7)
    expect(vars.must('calls').section).toBe('.bss')
    expect(vars.must('last_pid')).toMatchObject({ section: '.data' })
    expect(vars.must('last_pid').get()).toBe(1)
  })

  it('rejects unknown names with the list of what exists', () => {
    const spec = CollectionSpec.fromFile(testObject('maps'))
    expect(() => spec.programs.must('nope')).toThrow(NotFoundError)
    expect(() => spec.maps.must('nope')).toThrow(/no map named 'nope' \(available: .*by_pid/)
    expect(() => spec.variables.must('nope')).toThrow(NotFoundError)
  })
})

describeBpf('loaded collection: maps, variables, ring buffer', () => {
  let coll: Collection
  let links: ReturnType<Collection['attachAll']>

  beforeAll(() => {
    const spec = CollectionSpec.fromFile(testObject('maps'))
    spec.variables.must('target_tgid').set(process.pid)
    spec.variables.must('tag').set(42)
    coll = new Collection(spec)
    links = coll.attachAll()
  })
  afterAll(() => {
    for (const l of links) l.close()
    coll.close()
  })

  function callGetppid(n: number): void {
    for (let i = 0; i < n; i++) void process.ppid // getppid(2) each time (process.pid is cached)
  }

  it('runs the attached tracepoint and sees .rodata set before load', () => {
    const before = coll.map<number, bigint>('counters').lookup(0) ?? 0n
    callGetppid(10)
    expect(coll.map<number, bigint>('counters').lookup(0)).toBe(before + 10n)
    const v = coll.map('by_pid').lookup(process.pid) as { count: bigint; pid: number; tag: number; comm: string }
    expect(v.pid).toBe(process.pid)
    expect(v.tag).toBe(42)
    expect(v.count).toBeGreaterThanOrEqual(10n)
    expect(typeof v.comm).toBe('string')
  })

  it('per-CPU values come back one per possible CPU', () => {
    callGetppid(5)
    const values = coll.map<number, bigint[]>('percpu').lookup(0)!
    expect(Array.isArray(values)).toBe(true)
    const sum = values.reduce((a, b) => a + b, 0n)
    expect(sum).toBeGreaterThanOrEqual(5n)
  })

  it('update with flags, delete, iterate', () => {
    const m = coll.map<bigint, bigint>('scratch')
    m.update(1n, 10n)
    m.update(2n, 20n, 'noexist')
    expect(() => m.update(2n, 21n, 'noexist')).toThrow(/EEXIST/)
    expect(() => m.update(3n, 30n, 'exist')).toThrow(/ENOENT/)
    m.update(2n, 22n, 'exist')
    expect(m.lookup(2n)).toBe(22n)
    expect(new Map(m.entries())).toEqual(new Map([[1n, 10n], [2n, 22n]]))
    expect([...m.keys()].sort()).toEqual([1n, 2n])
    expect(m.delete(1n)).toBe(true)
    expect(m.delete(1n)).toBe(false)
    expect(m.lookup(1n)).toBeUndefined()
    expect(m.lookupAndDelete(2n)).toBe(22n)
    expect([...m.keys()]).toEqual([])
  })

  it('batch update, lookup and delete', () => {
    const m = coll.map<bigint, bigint>('scratch')
    const entries: [bigint, bigint][] = Array.from({ length: 1000 }, (_, i) => [BigInt(i + 1), BigInt(i * 3)])
    expect(m.updateBatch(entries)).toBe(1000)
    const got = new Map(m.lookupBatch({ batchSize: 128 }))
    expect(got.size).toBe(1000)
    expect(got.get(500n)).toBe(1497n)
    expect(m.deleteBatch(entries.slice(0, 400).map(([k]) => k))).toBe(400)
    const drained = new Map(m.lookupBatch({ batchSize: 64, delete: true }))
    expect(drained.size).toBe(600)
    expect([...m.keys()]).toEqual([])
  })

  it("the kernel's terse map errors come with what they mean", () => {
    using full = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 2 })
    full.update(Buffer.from([1, 0, 0, 0]), Buffer.alloc(4))
    full.update(Buffer.from([2, 0, 0, 0]), Buffer.alloc(4))
    const e = catchErr(() => full.update(Buffer.from([3, 0, 0, 0]), Buffer.alloc(4)))
    expect(e).toMatchObject({ code: 'E2BIG' })
    expect((e as Error).message).toMatch(/^update on unnamed hash map \(fd \d+\) failed: E2BIG \(the map is full \(max_entries 2\)/)
    const exists = catchErr(() => full.update(Buffer.from([1, 0, 0, 0]), Buffer.alloc(4), 'noexist'))
    expect((exists as Error).message).toMatch(/the key exists and the flag was 'noexist'/)
    using arr = BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 4, name: 'small' })
    const range = catchErr(() => arr.update(Buffer.from([9, 0, 0, 0]), Buffer.alloc(4)))
    expect((range as Error).message).toMatch(/^update on map 'small' failed: E2BIG \(index out of range \(max_entries 4\)/)
  })

  it('batch errors: a flag the kernel refuses is an argument error, a partial failure says how far it got', () => {
    const m = coll.map<bigint, bigint>('scratch')
    m.updateBatch([[1n, 10n], [3n, 30n]])
    // BPF_NOEXIST is a per-element flag; the batch command rejects it with EINVAL, which is not "unsupported".
    const flagErr = catchErr(() => m.updateBatch([[2n, 20n]], 'noexist' as never))
    expect(flagErr).toBeInstanceOf(InvalidArgumentError)
    expect((flagErr as Error).message).toMatch(/only 'any' or 'lock'/)
    expect(m.lookup(2n)).toBeUndefined()
    // 'lock' on a value without a bpf_spin_lock: EINVAL from a kernel that has batch commands
    // (the map_batch probe says so), reported as the syscall error it is, not as "unsupported".
    const lockErr = catchErr(() => m.updateBatch([[2n, 20n]], 'lock'))
    expect(lockErr).toBeInstanceOf(SyscallError)
    expect(lockErr).toMatchObject({ code: 'EINVAL', done: 0 })
    expect(m.lookup(2n)).toBeUndefined()
    // The kernel stops at the missing key 2: key 1 is gone, key 3 is kept, and the error says 1 was done.
    const partial = catchErr(() => m.deleteBatch([1n, 2n, 3n]))
    expect(partial).toBeInstanceOf(SyscallError)
    expect(partial).toMatchObject({ code: 'ENOENT', done: 1 })
    expect((partial as Error).message).toMatch(/1 element\(s\) done before the failure/)
    expect(m.lookup(1n)).toBeUndefined()
    expect(m.lookup(3n)).toBe(30n)
    m.delete(3n)
  })

  it('wrong key and value sizes are typed errors', () => {
    const m = coll.map('by_pid')
    expect(() => m.lookup(Buffer.alloc(8))).toThrow(InvalidArgumentError)
    expect(() => m.lookup(Buffer.alloc(8))).toThrow(/must be 4 bytes, got 8/)
    const raw = m.withCodecs({})
    try {
      expect(() => raw.update(Buffer.alloc(4), Buffer.alloc(3))).toThrow(/must be 32 bytes, got 3/)
    } finally {
      raw.close()
    }
    expect(() => coll.map<number, bigint>('counters').update(0, -1n)).toThrow(InvalidArgumentError)
  })

  it('delivers ring-buffer records decoded through BTF, in order', async () => {
    const rb = coll.ringBuffer<{ seq: bigint; pid: number; tag: number; comm: string }>('events', { codec: 'event' })
    try {
      rb.consume() // drop what earlier tests produced
      const seen: { seq: bigint; pid: number; tag: number }[] = []
      rb.on('data', (e) => seen.push(e))
      callGetppid(100)
      await new Promise((r) => setTimeout(r, 50))
      expect(seen.length).toBe(100)
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.seq).toBe(seen[i - 1]!.seq + 1n)
      expect(seen.every((e) => e.pid === process.pid && e.tag === 42)).toBe(true)
      expect(rb.stats.lost).toBe(0)
    } finally {
      rb.close()
    }
  })

  it('for await yields records and a zero-copy batch view sees the same bytes', async () => {
    // one reader per ring at a time: they share the kernel's consumer position
    const rb = coll.ringBuffer<{ seq: bigint; pid: number }>('events', { codec: 'event' })
    try {
      rb.consume()
      callGetppid(20)
      const got: bigint[] = []
      for await (const e of rb) {
        got.push(e.seq)
        if (got.length === 20) break
      }
      expect(got.length).toBe(20)
      for (let i = 1; i < got.length; i++) expect(got[i]).toBe(got[i - 1]! + 1n)
    } finally {
      rb.close()
    }
    using raw = new RingBuffer(coll.map('events'))
    callGetppid(3)
    const pids: number[] = []
    raw.onBatch((b) => {
      for (let i = 0; i < b.count; i++) pids.push(b.view.getUint32(b.offset(i) + 8, true))
    })
    expect(raw.consume()).toBe(3)
    expect(pids).toEqual([process.pid, process.pid, process.pid])
  })

  it('fans each record out to every data listener and a for-await loop; short records are errors, not decodes', async () => {
    const rb = coll.ringBuffer<{ seq: bigint }>('events', { codec: 'event' })
    try {
      rb.consume()
      const a: bigint[] = []
      const b: bigint[] = []
      rb.on('data', (e) => a.push(e.seq))
      rb.on('data', (e) => b.push(e.seq))
      callGetppid(5)
      const it = rb[Symbol.asyncIterator]()
      const first = await it.next()
      await it.return!()
      expect(a.length).toBe(5)
      expect(b).toEqual(a)
      expect(first.value!.seq).toBe(a[0])
    } finally {
      rb.close()
    }
    // a codec longer than the records: every record is reported, none decoded
    const tooLong = { size: 4096, decode: () => 'decoded', encode: () => undefined }
    using strict = new RingBuffer<string>(coll.map('events'), { codec: tooLong })
    const errors: Error[] = []
    const decoded: string[] = []
    strict.on('error', (e) => errors.push(e)).on('data', (d) => decoded.push(d))
    callGetppid(2)
    expect(strict.consume()).toBe(2)
    expect(decoded).toEqual([])
    expect(errors.map((e) => e.name)).toEqual(['InvalidArgumentError', 'InvalidArgumentError'])
    expect(strict.stats.malformed).toBe(2)
  })

  it("'batch' listeners see every batch; off() stops a listener, also from inside a delivery", () => {
    using rb = coll.ringBuffer<{ seq: bigint }>('events', { codec: 'event', maxRecordsPerBatch: 3 })
    rb.consume()
    const batchCounts: number[] = []
    const onBatchEvent = (b: RecordBatch) => batchCounts.push(b.count)
    const kept: bigint[] = []
    const once: bigint[] = []
    const removesItself = (e: { seq: bigint }) => {
      once.push(e.seq)
      rb.off('data', removesItself)
    }
    rb.on('batch', onBatchEvent).on('data', (e) => kept.push(e.seq)).on('data', removesItself)
    callGetppid(7) // 3 + 3 + 1 records of 32 bytes
    expect(rb.consume()).toBe(7)
    expect(batchCounts).toEqual([3, 3, 1])
    expect(kept.length).toBe(7)
    // removed during the first batch: it still gets that batch's records (the list is a
    // snapshot per batch, as EventEmitter's emit does), and none after
    expect(once).toEqual(kept.slice(0, 3))
    rb.off('batch', onBatchEvent)
    callGetppid(2)
    expect(rb.consume()).toBe(2)
    expect(batchCounts).toEqual([3, 3, 1])
    expect(kept.length).toBe(9)
  })

  it('keeps delivering in small batches and after a callback detaches the batch buffer', () => {
    // 3 records per batch: 50 records arrive as 17 batches in one consume()
    using rb = new RingBuffer(coll.map('events'), { maxRecordsPerBatch: 3 })
    rb.consume()
    const seqs: bigint[] = []
    rb.onBatch((b) => {
      for (let i = 0; i < b.count; i++) {
        expect(b.length(i)).toBe(32)
        seqs.push(b.view.getBigUint64(b.offset(i), true))
      }
      // a user who transfers the buffer away must not break the reader: the next batch
      // arrives in a new buffer
      if (seqs.length === 2) structuredClone(b.view.buffer, { transfer: [b.view.buffer] })
    })
    callGetppid(50)
    expect(rb.consume()).toBe(50)
    expect(rb.stats.batches).toBe(17)
    expect(seqs.length).toBe(50)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1n)
  })

  it('a burst is delivered a few batches per event-loop turn, so other callbacks still run', async () => {
    // 128 records per batch, at most 2 batches per wake-up
    using rb = new RingBuffer(coll.map('events'), { maxRecordsPerBatch: 128, maxBatchesPerWake: 2 })
    rb.consume()
    callGetppid(5000)
    let delivered = 0
    const seenByOtherCallbacks: number[] = [] // `delivered` as seen by a setImmediate callback, once per loop turn
    rb.onBatch((b) => (delivered += b.count))
    const deadline = Date.now() + 5000
    while (delivered < 5000 && Date.now() < deadline) {
      await new Promise((r) => setImmediate(r))
      seenByOtherCallbacks.push(delivered)
    }
    expect(delivered).toBe(5000)
    // other callbacks ran after the first wake-up's worth (at most 2 x 128 records) ...
    const firstSeen = seenByOtherCallbacks.find((n) => n > 0)
    expect(firstSeen).toBeLessThanOrEqual(256)
    // ... and the loop kept turning all through the burst: at least one turn per 256 records
    expect(seenByOtherCallbacks.filter((n) => n > 0 && n < 5000).length).toBeGreaterThanOrEqual(Math.floor(5000 / 256) - 1)
  })

  it('live variables: .bss/.data read back, writable; .rodata frozen', () => {
    const calls = coll.variable<bigint>('calls').get()
    callGetppid(4)
    expect(coll.variable<bigint>('calls').get()).toBe(calls + 4n)
    expect(coll.variable<number>('last_pid').get()).toBe(process.pid)
    coll.variable<number>('last_pid').set(5)
    expect(coll.variable<number>('last_pid').get()).toBe(5)
    expect(coll.variable<number>('tag').get()).toBe(42)
    expect(() => coll.variable<number>('tag').set(1)).toThrow(/frozen/)
  })
})

describeBpf('ring-buffer loss accounting', () => {
  it('counts reservations that failed while nobody read', () => {
    const spec = CollectionSpec.fromFile(testObject('maps'))
    spec.variables.must('target_tgid').set(process.pid)
    spec.maps.must('events').maxEntries = 4096 // holds ~100 of the 40-byte records
    using coll = new Collection(spec)
    using link = coll.program('on_getppid').attach()
    const lostEvents: number[] = []
    using rb = coll.ringBuffer('events', { codec: 'event' })
    rb.on('lost', (l) => lostEvents.push(l.count))
    for (let i = 0; i < 1000; i++) void process.ppid
    link.close()
    let delivered = 0
    rb.on('data', () => delivered++)
    rb.consume()
    expect(delivered).toBeGreaterThan(50)
    expect(delivered).toBeLessThan(1000)
    expect(delivered + rb.stats.lost).toBe(1000)
    expect(lostEvents.reduce((a, b) => a + b, 0)).toBe(rb.stats.lost)
  })

  it('a slow for-await consumer stops the reading; the kernel counts what did not fit, nothing is dropped in user space', async () => {
    const spec = CollectionSpec.fromFile(testObject('maps'))
    spec.variables.must('target_tgid').set(process.pid)
    spec.maps.must('events').maxEntries = 4096 // holds ~100 of the 32-byte records (+ 8-byte headers)
    using coll = new Collection(spec)
    using link = coll.program('on_getppid').attach()
    using rb = coll.ringBuffer<{ seq: bigint }>('events', { codec: 'event', highWaterMark: 10, maxRecordsPerBatch: 8 })
    const it = rb[Symbol.asyncIterator]()
    const seqs: bigint[] = []
    for (let i = 0; i < 1000; i++) {
      void process.ppid
      if (i === 0) seqs.push((await it.next()).value!.seq) // the consumer takes one record, then is slow
    }
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)) // the loop turns; nobody takes records
    // bounded buffering: what the SDK read is at most the queue (highWaterMark) plus one batch in flight
    expect(rb.stats.records).toBeLessThanOrEqual(1 + 10 + 8)
    expect(rb.available()).toBeGreaterThan(0) // the rest waits in the kernel ring
    // the consumer catches up: every record is either delivered or counted lost by the BPF program
    const deadline = Date.now() + 5000
    while (seqs.length + rb.refreshLost() < 1000 && Date.now() < deadline) {
      const r = await Promise.race([it.next(), new Promise<'idle'>((res) => setTimeout(() => res('idle'), 20))])
      if (r !== 'idle' && !r.done) seqs.push(r.value.seq)
    }
    link.close()
    expect(seqs.length).toBeGreaterThan(50)
    expect(seqs.length + rb.stats.lost).toBe(1000)
    expect(rb.stats.discarded).toBe(0)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!) // in order, no repeats
    await it.return!()
  })

  it('refuses a non-ringbuf map', () => {
    using coll = Collection.load(testObject('maps'))
    expect(() => new RingBuffer(coll.map('counters'))).toThrow(/not a ringbuf/)
  })
})

describeBpf('pin paths chosen before load', () => {
  it('a second load reuses the pinned map; an incompatible pin is a typed error', () => {
    const path = `/sys/fs/bpf/bpfkit-pinload-${process.pid}`
    const open = () => {
      const spec = CollectionSpec.fromFile(testObject('maps'))
      spec.maps.must('counters').pinPath = path
      return spec
    }
    try {
      {
        using first = new Collection(open())
        first.map<number, bigint>('counters').update(0, 7n)
      }
      // the pin outlived the first collection; the second one gets the same map, not a new one
      using second = new Collection(open())
      expect(second.map<number, bigint>('counters').lookup(0)).toBe(7n)
      second.close()
      rmSync(path)
      // something else pinned there: libbpf refuses to reuse a map of another shape
      using other = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 2, name: 'other' })
      other.pin(path)
      expect(() => new Collection(open())).toThrow(BpfError)
      expect(() => new Collection(open())).toThrow(`couldn't reuse pinned map at '${path}': parameter mismatch`)
    } finally {
      rmSync(path, { force: true })
    }
  })
})

describeBpf('standalone maps', () => {
  it('creates, pins and reopens a map', () => {
    const path = `/sys/fs/bpf/bpfkit-test-${process.pid}`
    using m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 16, name: 'standalone' })
    m.update(Buffer.from([1, 0, 0, 0]), Buffer.alloc(8, 9))
    m.pin(path)
    try {
      using again = BpfMap.fromPin(path)
      expect(again.name).toBe('standalone')
      expect(again.lookup(Buffer.from([1, 0, 0, 0]))).toEqual(Buffer.alloc(8, 9))
    } finally {
      unlinkSync(path)
    }
  })
})

describeBpf('ring batches of one record size and of several', () => {
  /** Loads varlen.bpf.o: each getppid() emits `count` records (seq first), of one size or mixed with discards. */
  function load(mixed: boolean, count: number): Collection {
    const spec = CollectionSpec.fromFile(testObject('varlen'))
    spec.variables.must('target_tgid').set(process.pid)
    spec.variables.must('count').set(count)
    spec.variables.must('mixed').set(mixed ? 1 : 0)
    const coll = new Collection(spec)
    coll.attachAll()
    return coll
  }
  const seqCodec = { size: 16, decode: (v: DataView, o: number) => ({ seq: Number(v.getBigUint64(o, true)) }), encode: () => undefined }

  it('decodes records of one size by stride and records of several sizes by their offsets, the same records either way', () => {
    for (const mixed of [false, true]) {
      using coll = load(mixed, 50)
      const sizes: number[] = []
      const sameSizes: number[] = []
      using raw = coll.ringBuffer('records')
      raw.onBatch((b) => {
        sameSizes.push(b.sameSize)
        for (let i = 0; i < b.count; i++) sizes.push(b.length(i))
      })
      void process.ppid
      raw.consume()
      // mixed: 16, 24, 16, 40, (discarded) in turn: 40 records of the 50 reservations
      expect(sizes).toEqual(mixed ? Array.from({ length: 40 }, (_, i) => [16, 24, 16, 40][i % 4]) : Array(50).fill(24))
      expect(sameSizes).toEqual([mixed ? 0 : 24])
      raw.close()

      using decoded = coll.ringBuffer('records', { codec: seqCodec })
      const seqs: number[] = []
      decoded.on('data', (r) => seqs.push(r.seq))
      void process.ppid
      decoded.consume()
      const n = mixed ? 40 : 50
      expect(seqs).toEqual(Array.from({ length: n }, (_, i) => n + i)) // the first call's records were read raw
    }
  })

  it('a codec longer than some records reports exactly those, and decodes the rest', () => {
    using coll = load(true, 10)
    using rb = coll.ringBuffer('records', { codec: { ...seqCodec, size: 24 } })
    const seqs: number[] = []
    const errors: Error[] = []
    rb.on('data', (r) => seqs.push(r.seq)).on('error', (e) => errors.push(e))
    void process.ppid
    rb.consume()
    // 16-byte records (seq 0, 2, 4, 6) are malformed; 24- and 40-byte ones (1, 3, 5, 7) decode
    expect(seqs).toEqual([1, 3, 5, 7])
    expect(rb.stats.malformed).toBe(4)
    expect(errors.map((e) => e.message)).toEqual(Array(4).fill("ring 'records': record of 16 bytes is shorter than the 24-byte codec"))
  })
})

describeBpf('zero-copy ring reading', () => {
  /** maps.bpf.o with a 4 KiB ring: 102 of its 40-byte records (32 + 8-byte header) fill it, so reads wrap. */
  function smallRing(): Collection {
    const spec = CollectionSpec.fromFile(testObject('maps'))
    spec.variables.must('target_tgid').set(process.pid)
    spec.maps.must('events').maxEntries = 4096
    const coll = new Collection(spec)
    coll.attachAll()
    return coll
  }
  const getppid = (n: number) => {
    for (let i = 0; i < n; i++) void process.ppid
  }

  it('records that wrap past the end of the ring arrive whole, through a batch view and decoded', () => {
    for (const how of ['batch', 'decoded'] as const) {
      using coll = smallRing()
      using rb = coll.ringBuffer<{ seq: bigint }>('events', { codec: 'event' })
      const seqs: bigint[] = []
      if (how === 'batch') {
        rb.onBatch((b) => {
          expect(b.sameSize).toBe(32)
          expect(b.stride).toBe(40)
          // by stride from the first record: the double mapping makes a wrapped batch contiguous
          for (let off = b.offset(0), end = off + b.count * b.stride; off < end; off += b.stride) seqs.push(b.view.getBigUint64(off, true))
        })
      } else {
        rb.on('data', (e) => seqs.push(e.seq))
      }
      for (let round = 0; round < 6; round++) {
        getppid(70) // 2800 bytes: the second round already wraps
        expect(rb.consume()).toBe(70)
      }
      expect(seqs.length).toBe(420)
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1n)
      expect(rb.refreshLost()).toBe(0)
    }
  })

  it('a listener that throws stops the walk after its record; the rest are delivered by the next read, none twice', () => {
    using coll = smallRing()
    using rb = coll.ringBuffer<{ seq: bigint }>('events', { codec: 'event' })
    const seqs: bigint[] = []
    let throwAt = 3
    rb.on('data', (e) => {
      seqs.push(e.seq)
      if (seqs.length === throwAt) throw new Error('listener failed')
    })
    getppid(10)
    expect(() => rb.consume()).toThrow('listener failed')
    expect(seqs.length).toBe(3)
    expect(rb.stats.records).toBe(3)
    expect(rb.available()).toBe(7 * 40) // the other seven wait in the ring
    throwAt = 0
    expect(rb.consume()).toBe(7)
    expect(seqs.length).toBe(10)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1n)
    expect(rb.available()).toBe(0)
  })

  it('close() releases the ring at once; a view kept past it reads zeros instead of faulting', () => {
    const ringMappings = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('bpf-map')).length
    const before = ringMappings()
    using coll = smallRing()
    const rb = coll.ringBuffer('events')
    let kept: DataView | undefined
    let first = -1
    rb.onBatch((b) => {
      kept = b.view
      first = b.offset(0)
    })
    getppid(1)
    rb.consume()
    expect(kept!.getUint32(first + 8, true)).toBe(process.pid) // struct event: seq, then pid
    expect(ringMappings()).toBe(before + 2) // consumer page; producer page and data area
    rb.close()
    expect(ringMappings()).toBe(before)
    expect(kept!.getUint32(first + 8, true)).toBe(0)
    expect(new Uint8Array(kept!.buffer).every((x) => x === 0)).toBe(true)
  })
})
