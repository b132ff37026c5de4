// Ring buffers in worker_threads: a worker's ring delivers through the worker's own event
// loop, and however the worker ends (terminate(), process.exit() inside a ring callback,
// running out of work) the addon's environment cleanup releases its ring, maps, program and
// link: the process's fds and ring mappings return to where they were, and the process
// keeps working. The worker side is fixtures/ring-worker.mjs.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import { Worker } from 'node:worker_threads'
import { expect, it } from 'vitest'
import { Collection, CollectionSpec } from '../src/index.js'
import { describeBpf, openFds, testObject } from './helpers.js'

const fixture = new URL('./fixtures/ring-worker.mjs', import.meta.url)
const N = 200

interface Msg {
  type: string
  byComm?: Record<string, number>
  seqs?: number[]
  records?: number
}

/** One fixture worker, with its messages queued so none is missed between awaits. */
class RingWorker {
  readonly worker: Worker
  readonly exited: Promise<number>
  readonly #queue: Msg[] = []
  #wake: (() => void) | undefined
  #failure: Error | undefined

  constructor(readonly name: string) {
    this.worker = new Worker(fixture, { workerData: { objectPath: testObject('maps'), name } })
    this.worker.on('message', (m: Msg) => {
      this.#queue.push(m)
      this.#wake?.()
    })
    this.worker.on('error', (e) => {
      this.#failure = e
      this.#wake?.()
    })
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve))
    void this.exited.then((code) => {
      this.#failure ??= new Error(`worker ${name} exited with code ${code}`)
      this.#wake?.()
    })
  }

  send(msg: object): void {
    this.worker.postMessage(msg)
  }

  /** The next message of this type (earlier ones of other types are skipped). */
  async next(type: string, timeoutMs = 10_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.#queue.findIndex((m) => m.type === type)
      if (i >= 0) return this.#queue.splice(i, 1)[0]!
      if (this.#failure) throw this.#failure
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`worker ${this.name}: no '${type}' message within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.#wake = undefined
    }
  }

  /** Resolves with the exit code, or fails after `ms`. */
  async exit(ms = 5000): Promise<number> {
    let t: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`worker ${this.name} did not exit within ${ms} ms`)), ms)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(t)
    }
  }
}

/**
 * What a leaked ring, map, program or link would leave behind in this process: the fd
 * count, this process's BPF fds by kind (e.g. { 'anon_inode:bpf-map': 9 }) and ring mappings.
 */
function kernelFootprint(): { fds: number; bpfFds: Record<string, number>; ringMappings: number } {
  const bpfFds: Record<string, number> = {}
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith('anon_inode:bpf')) bpfFds[target] = (bpfFds[target] ?? 0) + 1
    } catch {
      // the fd of the directory listing itself is gone by now
    }
  }
  const ringMappings = readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('anon_inode:bpf-map')).length
  return { fds: openFds(), bpfFds, ringMappings }
}

/** Waits up to 2 s (teardown and finalizers are asynchronous) for the footprint to return to `before`. */
async function expectReleased(before: ReturnType<typeof kernelFootprint>): Promise<void> {
  const deadline = Date.now() + 2000
  let now = kernelFootprint()
  while (!isDeepStrictEqual(now, before) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20))
    now = kernelFootprint()
  }
  expect(now).toEqual(before)
}

/** Every record the ring got, with none missing or repeated: seqs are exactly 0..n-1. */
function expectNoGaps(seqs: number[] | undefined, n: number): void {
  expect([...(seqs ?? [])].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i))
}

/** A ring in the main thread still loads, attaches and delivers exactly what it should. */
async function expectMainThreadRingWorks(): Promise<void> {
  const spec = CollectionSpec.fromFile(testObject('maps'))
  spec.variables.must('target_tgid').set(process.pid)
  using coll = new Collection(spec)
  using link = coll.program('on_getppid').attach()
  using rb = coll.ringBuffer<{ pid: number }>('events', { codec: 'event' })
  const seen: number[] = []
  rb.on('data', (e) => seen.push(e.pid))
  for (let i = 0; i < 50; i++) void process.ppid
  const deadline = Date.now() + 2000
  while (seen.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  await new Promise((r) => setTimeout(r, 20))
  expect(seen).toEqual(Array(50).fill(process.pid))
}

describeBpf('ring buffers in worker threads', () => {
  it('a worker gets every record through its own loop; terminate() while polling releases everything', async () => {
    const before = kernelFootprint()
    const w = new RingWorker('bpfkit-w-term')
    try {
      await w.next('ready')
      // the worker holds the program, the maps and the ring: the footprint must have grown
      expect(kernelFootprint().fds).toBeGreaterThan(before.fds)
      expect(kernelFootprint().ringMappings).toBeGreaterThan(before.ringMappings)
      w.send({ type: 'go', calls: N, expect: { 'bpfkit-w-term': N } })
      const got = await w.next('count')
      expect(got.byComm).toEqual({ 'bpfkit-w-term': N })
      expectNoGaps(got.seqs, N)
      // records are still streaming in through the poll when the worker is torn down
      w.send({ type: 'stream' })
      expect((await w.next('streaming')).records).toBeGreaterThan(N)
    } finally {
      await w.worker.terminate()
    }
    expect(await w.exit()).toBe(1)
    await expectReleased(before)
    await expectMainThreadRingWorks()
  })

  /** Starts a worker, checks its first N records, sends `ending` and expects it to exit with `code`. */
  async function endWorker(name: string, ending: 'exit-in-callback' | 'unref', code: number): Promise<void> {
    const w = new RingWorker(name)
    try {
      await w.next('ready')
      w.send({ type: 'go', calls: N, expect: { [name]: N } })
      expect((await w.next('count')).byComm).toEqual({ [name]: N })
      w.send({ type: ending })
      expect(await w.exit()).toBe(code)
    } finally {
      await w.worker.terminate()
    }
  }

  it('process.exit() from inside a ring callback of a worker releases everything', async () => {
    const before = kernelFootprint()
    await endWorker('bpfkit-w-exit', 'exit-in-callback', 0)
    await expectReleased(before)
    await expectMainThreadRingWorks()
  })

  it('a worker whose polling ring is unref\'d ends by itself and releases everything', async () => {
    const before = kernelFootprint()
    await endWorker('bpfkit-w-unref', 'unref', 0)
    await expectReleased(before)
  })

  it('two workers read their own rings at once; ending one leaves the other delivering', async () => {
    const before = kernelFootprint()
    const a = new RingWorker('bpfkit-w-a')
    const b = new RingWorker('bpfkit-w-b')
    try {
      await Promise.all([a.next('ready'), b.next('ready')])
      // both programs fire on getppid() from any thread of this process: each ring gets
      // both workers' records, N of each, through its own worker's loop
      const both = { 'bpfkit-w-a': N, 'bpfkit-w-b': N }
      a.send({ type: 'go', calls: N, expect: both })
      b.send({ type: 'go', calls: N, expect: both })
      const [ga, gb] = await Promise.all([a.next('count'), b.next('count')])
      expect(ga.byComm).toEqual(both)
      expect(gb.byComm).toEqual(both)
      expectNoGaps(ga.seqs, 2 * N)
      expectNoGaps(gb.seqs, 2 * N)

      // a's environment cleanup must close only a's readers (counts are since the start)
      await a.worker.terminate()
      const more = { 'bpfkit-w-a': N, 'bpfkit-w-b': 2 * N }
      b.send({ type: 'go', calls: N, expect: more })
      const again = await b.next('count')
      expect(again.byComm).toEqual(more)
      expectNoGaps(again.seqs, 3 * N)
    } finally {
      await Promise.all([a.worker.terminate(), b.worker.terminate()])
    }
    await expectReleased(before)
  })
})
