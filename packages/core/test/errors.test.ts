// Bad input must give clear, typed errors (never a crash), verifier failures
// must carry the complete log, and closing must leave no fd behind.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { BpfMap, ClosedError, Collection, CollectionSpec, ElfError, InvalidArgumentError, VerifierError } from '../src/index.js'
import { catchErr, describeBpf, openFds, tempDir, testObject } from './helpers.js'

describeBpf('bad objects', () => {
  const good = () => readFileSync(testObject('maps'))

  it('empty, random and truncated ELF buffers are ElfErrors', () => {
    expect(() => CollectionSpec.fromBuffer(Buffer.alloc(0), 'empty')).toThrow(ElfError)
    expect(() => CollectionSpec.fromBuffer(randomBytes(4096), 'random')).toThrow(ElfError)
    const elf = good()
    for (const cut of [16, 64, 100, 512, 2048, elf.length >> 1, elf.length - 64]) {
      expect(() => CollectionSpec.fromBuffer(elf.subarray(0, cut), `cut${cut}`)).toThrow(ElfError)
    }
  })

  it('corrupted section headers are ElfErrors with libbpf\'s reason', () => {
    const elf = Buffer.from(good())
    elf.writeBigUInt64LE(BigInt(elf.length + 4096), 0x28) // e_shoff past the end
    const err = catchErr(() => CollectionSpec.fromBuffer(elf, 'bad-shoff'))
    expect(err).toBeInstanceOf(ElfError)
    expect((err as ElfError).message).toMatch(/cannot open BPF object 'bad-shoff'/)
  })

  it('a missing file is an ElfError naming it', () => {
    expect(() => CollectionSpec.fromFile('/nonexistent/x.bpf.o')).toThrow(/cannot read object file \/nonexistent\/x.bpf.o/)
  })

  it('misuse is a typed error that says what is wrong, before the kernel answers EINVAL', () => {
    const spec = CollectionSpec.fromBuffer(good(), 'maps')
    for (const bad of [-1, 1.5, 2 ** 32, Number.NaN]) {
      const e = catchErr(() => (spec.maps.must('events').maxEntries = bad))
      expect(e, String(bad)).toBeInstanceOf(InvalidArgumentError)
      expect((e as Error).message).toMatch(/maxEntries of map 'events' must be an integer/)
    }
    using coll = new Collection(spec)
    const tracepoint = coll.program('on_getppid')
    const attempts: [string, () => unknown][] = [
      ['attachUprobe', () => tracepoint.attachUprobe({ binary: process.execPath, symbol: 'uv_version' })],
      ['attachKprobe', () => tracepoint.attachKprobe('bpf_fentry_test1')],
      ['attachTracing', () => tracepoint.attachTracing()],
      ['attachLsm', () => tracepoint.attachLsm()],
      ['attachRawTracepoint', () => tracepoint.attachRawTracepoint('sys_enter')],
      ['attachCgroup', () => tracepoint.attachCgroup('/')],
    ]
    for (const [method, attempt] of attempts) {
      const e = catchErr(attempt)
      expect(e, method).toBeInstanceOf(InvalidArgumentError)
      expect((e as Error).message).toMatch(new RegExp(`^${method} needs a .* program; 'on_getppid' is a tracepoint program`))
    }
    const codecErr = catchErr(() => coll.ringBuffer('events', { codec: { size: 'x', decode: () => 0 } as never }))
    expect(codecErr).toBeInstanceOf(InvalidArgumentError)
    const sizeErr = catchErr(() => coll.ringBuffer('events', { maxRecordsPerBatch: 0 }))
    expect(sizeErr).toBeInstanceOf(InvalidArgumentError)
    expect((sizeErr as Error).message).toMatch(/maxRecordsPerBatch must be a whole number from 1/)
    using rb = coll.ringBuffer('events')
    expect(() => rb.consume(-1)).toThrow(/maxRecords must be a whole number >= 0, not -1/)
  })

  it('pin paths off bpffs are argument errors that say so, not "permission denied"', () => {
    const offBpffs = /is not on a BPF file system \(bpffs\); pins live under \/sys\/fs\/bpf/
    const tmp = tempDir()
    const expectOff = (fn: () => unknown, what: string) => {
      const e = catchErr(fn)
      expect(e, what).toBeInstanceOf(InvalidArgumentError)
      expect((e as Error).message, what).toMatch(offBpffs)
    }
    expectOff(() => BpfMap.fromPin('/etc/passwd'), 'fromPin of a regular file') // the kernel says EACCES
    using map = BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 })
    expectOff(() => map.pin(join(tmp, 'map')), 'map.pin') // the kernel says EPERM
    const spec = CollectionSpec.fromBuffer(good(), 'maps')
    spec.maps.must('counters').pinPath = join(tmp, 'counters')
    expectOff(() => new Collection(spec), 'MapSpec.pinPath')
    using coll = new Collection(CollectionSpec.fromBuffer(good(), 'maps'))
    using link = coll.program('on_getppid').attach()
    expectOff(() => link.pin(join(tmp, 'link')), 'link.pin')
    const dir = catchErr(() => BpfMap.fromPin('/sys/fs/bpf'))
    expect(dir).toBeInstanceOf(InvalidArgumentError)
    expect((dir as Error).message).toMatch(/\/sys\/fs\/bpf is a directory, not a pinned object/)
  })

  it('a program the verifier rejects raises VerifierError with the full log', () => {
    const err = catchErr(() => Collection.load(testObject('bad')))
    expect(err).toBeInstanceOf(VerifierError)
    const v = err as VerifierError
    expect(v.program).toBe('no_null_check')
    expect(v.log).toMatch(/invalid mem access 'map_value_or_null'/)
    expect(v.log).toMatch(/processed \d+ insns/)
    expect(v.truncated).toBe(false)
  })

  it('a truncated verifier log is retried with a bigger buffer', () => {
    const full = catchErr(() => Collection.load(testObject('bad'))) as VerifierError
    const small = catchErr(() => new Collection(CollectionSpec.fromFile(testObject('bad')), { logSize: 128 })) as VerifierError
    expect(small).toBeInstanceOf(VerifierError)
    const stable = (log: string) => log.replace(/verification time \d+ usec/, '').replace(/0x[0-9a-f]{16}/g, 'ADDR')
    expect(stable(small.log)).toBe(stable(full.log))
    expect(small.log.length).toBeGreaterThan(128)
  })

  it('closing everything returns the fd count and the mappings to where they were, at once', () => {
    const bpfMappings = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('anon_inode:bpf-map')).length
    const before = openFds()
    const mappingsBefore = bpfMappings()
    for (let i = 0; i < 3; i++) {
      const spec = CollectionSpec.fromFile(testObject('maps'))
      spec.variables.must('target_tgid').set(process.pid)
      const coll = new Collection(spec)
      const links = coll.attachAll()
      const rb = coll.ringBuffer('events')
      rb.on('data', () => {})
      const extra = coll.map('scratch').withCodecs({})
      void process.ppid
      rb.consume()
      rb.close()
      extra.close()
      for (const l of links) l.close()
      coll.close()
      expect(() => coll.map('scratch')).toThrow(ClosedError)
    }
    // no loop turn needed: a polling ring reader unmaps and closes its fd right after uv_close()
    // (a synchronous loop that opens and closes rings must not accumulate their memory)
    expect(openFds()).toBe(before)
    expect(bpfMappings()).toBe(mappingsBefore)
  })

  it('links stay attached after the collection is closed', () => {
    const before = openFds()
    const spec = CollectionSpec.fromFile(testObject('maps'))
    spec.variables.must('target_tgid').set(process.pid)
    const coll = new Collection(spec)
    const counters = coll.map<number, bigint>('counters').withCodecs<number, bigint>({
      key: { size: 4, decode: (v, o) => v.getUint32(o, true), encode: (x, v, o) => v.setUint32(o, x, true) },
      value: { size: 8, decode: (v, o) => v.getBigUint64(o, true), encode: (x, v, o) => v.setBigUint64(o, x, true) },
    })
    const link = coll.program('on_getppid').attach()
    coll.close()
    expect(() => coll.program('on_getppid')).toThrow(ClosedError)
    for (let i = 0; i < 5; i++) void process.ppid
    expect(counters.lookup(0)).toBe(5n)
    link.close()
    void process.ppid
    expect(counters.lookup(0)).toBe(5n)
    counters.close()
    expect(openFds()).toBe(before)
  })
})
