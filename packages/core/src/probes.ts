/**
 * Feature probes: each answer comes from trying the real thing (loading and
 * attaching a tiny program from the bundled probes.bpf.o, or creating a tiny
 * map), never from the kernel version. Results are cached per process. A "no"
 * carries the reason the kernel gave.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Collection } from './collection.js'
import { MAP_TYPES } from './map.js'
import type { Program } from './program.js'
import { CollectionSpec } from './spec.js'
import { native } from './native.js'

export type FeatureName = 'kprobes' | 'fentry' | 'lsm' | 'uprobes' | 'tracepoints' | 'ringbuf' | 'bpf_loop' | 'send_signal' | 'map_batch'

export interface FeatureProbe {
  /** human name of the kernel feature, used in NotSupportedError */
  feature: string
  supported: boolean
  /** why not (the kernel's answer), or '' */
  reason: string
}

const HUMAN: Record<FeatureName, string> = {
  kprobes: 'kprobes (CONFIG_KPROBES)',
  fentry: 'fentry/fexit trampolines (BPF_PROG_TYPE_TRACING)',
  lsm: 'BPF LSM programs (CONFIG_BPF_LSM, "bpf" in the active LSM list)',
  uprobes: 'uprobes (CONFIG_UPROBE_EVENTS)',
  tracepoints: 'tracepoint programs',
  ringbuf: 'BPF ring buffer (BPF_MAP_TYPE_RINGBUF, 5.8)',
  bpf_loop: 'bpf_loop helper (5.17)',
  send_signal: 'bpf_send_signal helper (5.3)',
  map_batch: 'batch map commands (BPF_MAP_LOOKUP_BATCH and friends, 5.6)',
}

const cache = new Map<FeatureName, FeatureProbe>()
const running = new Set<FeatureName>()

/** Probes one feature (cached). Never throws: failures become supported=false. */
export function probeFeature(name: FeatureName): FeatureProbe {
  let r = cache.get(name)
  if (r) return r
  // A probe's own attach failure asks for a diagnosis of the same feature: answer "no
  // verdict yet" so the raw kernel error reaches the probe instead of recursing.
  if (running.has(name)) return { feature: HUMAN[name], supported: true, reason: '' }
  running.add(name)
  try {
    r = runProbe(name)
  } finally {
    running.delete(name)
  }
  cache.set(name, r)
  return r
}

/** Forget cached answers (for tests and long-running agents after kernel changes). */
export function resetFeatureCache(): void {
  cache.clear()
}

function runProbe(name: FeatureName): FeatureProbe {
  const feature = HUMAN[name]
  try {
    switch (name) {
      case 'ringbuf': {
        const n = native()
        n.closeFd(n.mapCreate(MAP_TYPES.ringbuf!, 'probe_rb', 0, 0, 4096, 0))
        break
      }
      case 'map_batch': {
        // A batch lookup of an empty hash map: ENOENT (done) where the command exists, EINVAL where it does not.
        const n = native()
        const fd = n.mapCreate(MAP_TYPES.hash!, 'probe_batch', 4, 4, 1, 0)
        try {
          n.mapLookupBatch(fd, null, Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4), 1, false)
        } finally {
          n.closeFd(fd)
        }
        break
      }
      case 'kprobes':
        withProbeProgram('probe_kprobe', (p) => p.attachKprobe('bpf_fentry_test1').close())
        break
      case 'fentry':
        withProbeProgram('probe_fentry', (p) => p.attachTracing().close())
        break
      case 'lsm':
        if (!activeLsms().includes('bpf')) throw new Error(`"bpf" is not in the active LSM list (${activeLsms().join(',') || 'unknown'})`)
        withProbeProgram('probe_lsm', (p) => p.attachLsm().close())
        break
      case 'uprobes':
        withProbeProgram('probe_uprobe', (p) =>
          p.attachUprobe({ binary: process.execPath, symbol: 'uv_version', pid: process.pid }).close(),
        )
        break
      case 'tracepoints':
        withProbeProgram('probe_tracepoint', (p) => p.attach().close())
        break
      case 'bpf_loop':
        withProbeProgram('probe_bpf_loop', () => {})
        break
      case 'send_signal':
        withProbeProgram('probe_send_signal', () => {})
        break
    }
    return { feature, supported: true, reason: '' }
  } catch (err) {
    return { feature, supported: false, reason: reasonOf(err) }
  }
}

/** Path of a bundled BPF object shipped in @bpfkit/core's bpf/ directory. */
export function bundledObject(file: string): string {
  const here = dirname(fileURLToPath(import.meta.url))
  for (const dir of [join(here, '..', 'bpf'), join(here, 'bpf'), join(here, '..', '..', 'bpf')]) {
    const p = join(dir, file)
    if (existsSync(p)) return p
  }
  throw new Error(`bundled BPF object ${file} not found next to @bpfkit/core (was bpf/build.sh run?)`)
}

function withProbeProgram(program: string, use: (p: Program) => void): void {
  const spec = CollectionSpec.fromFile(bundledObject('probes.bpf.o'))
  for (const p of spec.programs.values()) p.autoload = p.name === program
  const coll = new Collection(spec, { diagnose: false, btfCodecs: false })
  try {
    use(coll.program(program))
  } finally {
    coll.close()
  }
}

/** Active LSMs, from securityfs (empty if it is not mounted). */
export function activeLsms(): string[] {
  try {
    return readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').filter(Boolean)
  } catch {
    return []
  }
}

function reasonOf(err: unknown): string {
  const e = err as { message?: string; code?: string }
  return e?.message ?? String(err)
}
