// An object this project did not write: the shared ring-buffer producer,
// compiled from source, configured through its .rodata and drained.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Collection, CollectionSpec } from '../src/index.js'
import { compileBpf, describeBpf, sharedDir } from './helpers.js'

const producerSrc = join(sharedDir, 'peers', 'ringbuf', 'producer.bpf.c')

describeBpf('foreign object: shared/peers producer.bpf.c', () => {
  it('loads, runs and delivers every record with nothing lost', () => {
    expect(existsSync(producerSrc), `${producerSrc} must exist (shared/ beside the repo)`).toBe(true)
    const spec = CollectionSpec.fromFile(compileBpf(producerSrc))
    expect(spec.maps.must('rb')).toMatchObject({ type: 'ringbuf', maxEntries: 256 << 20 })
    spec.variables.must('target_tgid').set(process.pid)
    spec.variables.must('batch').set(1000)
    spec.maps.must('rb').maxEntries = 16 << 20 // resized before load
    using coll = new Collection(spec)
    expect(coll.map('rb').maxEntries).toBe(16 << 20)
    using link = coll.program('produce').attach()
    for (let i = 0; i < 5; i++) void process.ppid // getppid(2) -> 1000 records each
    link.close()
    using rb = coll.ringBuffer('rb', { lost: { map: coll.map('stats'), key: 1 } })
    let n = 0
    let expected = 0n
    let ordered = true
    rb.onBatch((b) => {
      for (let i = 0; i < b.count; i++) {
        const o = b.offset(i)
        const seq = b.view.getBigUint64(o, true)
        if (seq !== expected++) ordered = false
        if (b.view.getUint32(o + 20, true) !== 7 || b.length(i) !== 64) ordered = false
        n++
      }
    })
    rb.consume()
    expect(n).toBe(5000)
    expect(ordered).toBe(true)
    expect(coll.map<number, bigint>('stats').lookup(0)).toBe(5000n)
    expect(rb.refreshLost()).toBe(0)
  })
})
