/**
 * Ring-buffer consumer benchmark (issue 1/5).
 *
 * Drain: the shared producer fills a 256 MiB ring with N 64-byte records while
 * nobody reads; then we time draining them (a) through the zero-copy batch view
 * and (b) as decoded objects (JS walks the ring's memory and decodes in one pass), and in the same run the C libbpf reference
 * (drain-c). One untimed warm-up drain per mode first (JIT warm-up is a
 * one-time cost of a long-lived consumer; its figure is printed), then RUNS
 * rounds of C, SDK alone, raw (by stride, then by offsets), decoded, decoding
 * alone. Ratios are medians of per-round ratios (each SDK drain against the C
 * drain of the same round), which cancels most of this VM's drift. Prints
 * ns/event and ratios and a final JSON line.
 *
 * Live (--live): a child calls getppid() flat out on one core (1000 records per
 * call) for 3 s while the SDK consumes on the event loop; prints the delivered
 * rate and the kernel-counted drops, next to the C consumer (consumer-c).
 *
 *   node bench/run.mjs ringbuf/drain.ts [N] [--rounds K] [--live]
 */
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { Collection, CollectionSpec, type Codec, type RecordBatch } from '@bpfkit/core'
import { buildPeers, median, parseKv, quantile, round } from '../common.js'

const args = process.argv.slice(2)
const N = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--rounds') ?? 2_000_000)
/** Rounds: 21 by default (`--rounds K`). On this VM single rounds scatter by ±30 %, so a median of 11 still moved by ~0.1x between runs. */
const roundsArg = args.indexOf('--rounds')
const RUNS = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 21
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--rounds needs a whole number >= 1, not '${args[roundsArg + 1]}'`)
const peers = buildPeers()
if (import.meta.url.endsWith('.ts')) {
  console.error('note: running from TypeScript source through a loader; `node run.mjs ringbuf/drain.ts` runs it compiled, as an agent runs (see run.mjs: tsx makes every DataView read ~10 % dearer)')
}
const producerObj = join(peers, 'producer.bpf.o')

interface Rec { seq: number; ts: number; pid: number; kind: number }
/** u64 as a number; small values stay small integers (no float boxing). Exact below 2^53. */
function u64(v: DataView, o: number): number {
  const hi = v.getUint32(o + 4, true)
  const lo = v.getUint32(o, true)
  return hi === 0 ? lo : lo + hi * 4294967296
}

/** What a user writes (or `bpfkit gen types` emits) for the producer's struct rec. */
const recCodec: Codec<Rec> = {
  size: 64,
  decode: (v, o) => ({ seq: u64(v, o), ts: u64(v, o + 8), pid: v.getUint32(o + 16, true), kind: v.getUint32(o + 20, true) }),
  encode: () => {
    throw new Error('not needed')
  },
}

function loadProducer(target: number, batch: number): Collection {
  const spec = CollectionSpec.fromFile(producerObj)
  spec.variables.must('target_tgid').set(target)
  spec.variables.must('batch').set(batch)
  return new Collection(spec)
}

/*
 * The consumers, created once, as a long-lived agent creates its listener once
 * for the life of its ring. A fresh closure per round (the rounds need fresh
 * rings) made V8 deoptimise the delivery loop at each round ("wrong call
 * target"), a cost no agent pays.
 */
let n = 0
/** XOR of what the consumers read, so that no read is dead code */
let check = 0
/** the SDK's own cost for a batch consumer: the addon notes where records start, one JS call per batch, no record read */
const onBatchCount = (b: RecordBatch) => (n += b.count)
/**
 * The raw walk as docs/concepts.md describes it: by stride when the batch says
 * its records have one size and sit back to back (`stride`, the common case of
 * one event struct per ring), else by the offsets array. One u32 read per
 * record either way. The loops are written in the handler itself: Node 24's
 * Maglev inlined a small loop function into the handler and ran the loop there
 * at 2-3x the cost, never handing it to TurboFan (about 250 calls per drain).
 * The accumulator is a local XOR, not `(s + x) | 0`: that add overflows int32
 * once the seqs sum past 2^31, V8 deoptimises, and which tier the loop then
 * settled in varied from run to run.
 */
const onBatchRaw = (b: RecordBatch) => {
  const view = b.view
  const count = b.count
  const stride = b.stride
  let s = 0
  if (stride !== 0) {
    for (let off = b.offset(0), end = off + count * stride; off < end; off += stride) s ^= view.getUint32(off, true)
  } else {
    const offsets = b.offsets
    for (let i = 0; i < count; i++) s ^= view.getUint32(offsets[2 * i]!, true)
  }
  check ^= s
  n += count
}
/** The same read, always through the offsets array (what a walk that ignores `stride` costs). */
const onBatchRawOffsets = (b: RecordBatch) => {
  const view = b.view
  const offsets = b.offsets
  const count = b.count
  let s = 0
  for (let i = 0; i < count; i++) s ^= view.getUint32(offsets[2 * i]!, true)
  check ^= s
  n += count
}
const onRecord = (r: Rec) => {
  check ^= r.seq
  n++
}

type Mode = 'native' | 'raw' | 'rawOffsets' | 'decoded'

/** Fills the ring with N records from this process, then times `drain`. */
function timeDrain(mode: Mode): number {
  using coll = loadProducer(process.pid, 1000)
  using link = coll.program('produce').attach()
  for (let i = 0; i < N / 1000; i++) void process.ppid
  link.close()
  using rb = coll.ringBuffer<Rec>('rb', { codec: recCodec, lost: { map: coll.map('stats'), key: 1 } })
  n = 0
  if (mode === 'native') rb.onBatch(onBatchCount)
  else if (mode === 'raw') rb.onBatch(onBatchRaw)
  else if (mode === 'rawOffsets') rb.onBatch(onBatchRawOffsets)
  else rb.on('data', onRecord)
  const t0 = process.hrtime.bigint()
  rb.consume()
  const dt = Number(process.hrtime.bigint() - t0)
  if (n !== N) throw new Error(`${mode}: drained ${n} of ${N} (lost ${rb.refreshLost()})`)
  return dt / n
}

/**
 * The cost of the decoding itself, with no ring and no SDK: the same codec and
 * the same kind of listener over N records laid out in a plain ArrayBuffer
 * with the values the producer writes (seq counting up, ts 0, kind 7), in
 * batches like the ring's: field reads and object creation in V8, not the
 * SDK. A decoded drain walks the ring and decodes in one pass, so its memory
 * reads overlap this work: it costs less than 'SDK alone' plus this.
 */
function jsDecodeFloor(): number {
  const per = 4 << 20
  const count = Math.floor(per / 72)
  const buf = new ArrayBuffer(per)
  const view = new DataView(buf)
  for (let i = 0; i < count; i++) {
    view.setUint32(i * 72 + 16, process.pid, true)
    view.setUint32(i * 72 + 20, 7, true)
  }
  n = 0
  let dt = 0n
  for (let done = 0; done < N; done += count) {
    writeSeqs(view, count, done) // not timed: only the decoding is
    const t0 = process.hrtime.bigint()
    decodeBatch(view, count, onRecord)
    dt += process.hrtime.bigint() - t0
  }
  return Number(dt) / n
}

/** Writes fresh seq values into a batch of the floor, as the producer does. */
function writeSeqs(view: DataView, count: number, firstSeq: number): void {
  for (let i = 0; i < count; i++) view.setUint32(i * 72, firstSeq + i, true)
}

/**
 * Decodes one batch of the floor: its own function, called per batch as the
 * SDK's loop is. A loop that runs only inside one long call is left to
 * on-stack replacement, which on Node 24 gave a floor of 31 ns/record against
 * 17 for the ring's whole decoded drain.
 */
function decodeBatch(view: DataView, count: number, listener: (r: Rec) => void): void {
  // records of one size (64 bytes, 72 apart): walked by stride, as the SDK's loop does for such batches
  for (let off = 0, end = count * 72; off < end; off += 72) listener(recCodec.decode(view, off))
}

function cDrain(): number {
  const out = execFileSync(join(peers, 'drain-c'), [String(N)], { env: { ...process.env, PRODUCER_OBJ: producerObj }, encoding: 'utf8' })
  return Number(parseKv(out).ns_per_event)
}

async function live(seconds: number): Promise<void> {
  const child = spawn(join(peers, 'getppid-loop'), [], { stdio: 'ignore' })
  const coll = loadProducer(child.pid!, 1000)
  const link = coll.program('produce').attach()
  const rb = coll.ringBuffer('rb', { lost: { map: coll.map('stats'), key: 1 }, ref: true })
  let n = 0
  rb.onBatch((b) => (n += b.count))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  const dt = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  child.kill('SIGKILL')
  link.close()
  const drops = rb.refreshLost()
  rb.close()
  coll.close()
  const cOut = parseKv(execFileSync(join(peers, 'consumer-c'), [String(seconds)], { env: { ...process.env, PRODUCER_OBJ: producerObj }, encoding: 'utf8' }))
  const line = {
    sdk_rate: Math.round(n / dt),
    sdk_drops: drops,
    sdk_cpu_ns_per_event: round(((cpu.user + cpu.system) * 1000) / Math.max(n, 1)),
    c_rate: Number(cOut.rate?.replace('/s', '')),
    c_drops: Number(cOut.drops),
    c_cpu_ns_per_event: Number(cOut.cpu_ns_per_event),
  }
  console.log(`live ${seconds}s: sdk ${line.sdk_rate}/s drops=${line.sdk_drops} | libbpf-c ${line.c_rate}/s drops=${line.c_drops}`)
  console.log(JSON.stringify(line))
}

if (args.includes('--live')) {
  await live(3)
} else {
  const cold = { raw: timeDrain('raw'), decoded: timeDrain('decoded') } // warm-up, reported
  timeDrain('native')
  timeDrain('rawOffsets')
  jsDecodeFloor()
  const modes = ['native', 'raw', 'rawOffsets', 'decoded'] as const
  const rows = { c: [] as number[], native: [] as number[], raw: [] as number[], rawOffsets: [] as number[], decoded: [] as number[], floor: [] as number[] }
  const ratios = { native: [] as number[], raw: [] as number[], rawOffsets: [] as number[], decoded: [] as number[], floor: [] as number[] }
  for (let r = 0; r < RUNS; r++) {
    const c = cDrain()
    rows.c.push(c)
    for (const mode of modes) {
      const t = timeDrain(mode)
      rows[mode].push(t)
      ratios[mode].push(t / c)
    }
    const f = jsDecodeFloor()
    rows.floor.push(f)
    ratios.floor.push(f / c)
  }
  const res = {
    sdk_raw_ns: round(median(rows.raw)),
    sdk_decoded_ns: round(median(rows.decoded)),
    c_ns: round(median(rows.c)),
    raw_ratio: round(median(ratios.raw)),
    decoded_ratio: round(median(ratios.decoded)),
    sdk_raw_offsets_ns: round(median(rows.rawOffsets)),
    raw_offsets_ratio: round(median(ratios.rawOffsets)),
    sdk_native_ns: round(median(rows.native)),
    native_ratio: round(median(ratios.native)),
    js_decode_floor_ns: round(median(rows.floor)),
    js_decode_floor_ratio: round(median(ratios.floor)),
    cold_raw_ns: round(cold.raw),
    cold_decoded_ns: round(cold.decoded),
    node: process.version,
  }
  const runs = (xs: number[]) => xs.map((x) => round(x)).join(' ')
  const iqr = (xs: number[]) => `${round(quantile(xs, 0.25))}-${round(quantile(xs, 0.75))}`
  console.log(`per-round ratios to C: raw ${runs(ratios.raw)} | decoded ${runs(ratios.decoded)} | SDK alone ${runs(ratios.native)}`)
  console.log(`ns/event: C ${runs(rows.c)} | raw ${runs(rows.raw)} | decoded ${runs(rows.decoded)}`)
  console.log(`middle half of the rounds (ratio to C): raw ${iqr(ratios.raw)}, decoded ${iqr(ratios.decoded)}, SDK alone ${iqr(ratios.native)}`)
  console.log(`drain ${N} x 64 B records, ${RUNS} rounds (medians): raw ${res.sdk_raw_ns} ns/event (${res.raw_ratio}x C), decoded ${res.sdk_decoded_ns} (${res.decoded_ratio}x), libbpf C ${res.c_ns}`)
  console.log(`raw walked by the offsets array even though the batch has one record size: ${res.sdk_raw_offsets_ns} ns/event (${res.raw_offsets_ratio}x C)`)
  console.log(`SDK alone (the addon notes each record for a batch, one JS call per batch, no record read in JS): ${res.sdk_native_ns} ns/event (${res.native_ratio}x C)`)
  console.log(`decoding alone (same codec and listener over a plain ArrayBuffer, no ring): ${res.js_decode_floor_ns} ns/event (${res.js_decode_floor_ratio}x C, ${process.version})`)
  console.log(`first (cold-JIT) drain: raw ${res.cold_raw_ns}, decoded ${res.cold_decoded_ns} ns/event`)
  console.log(JSON.stringify(res))
}
