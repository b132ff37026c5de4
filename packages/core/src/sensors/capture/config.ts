/**
 * The options both capture sensors take the same way (per-call cap, ring
 * size, wake-up threshold, comm filter, pid filter), checked once and written
 * into the BPF object the same way (variables and the pid map declared in
 * bpf/include/capture.h).
 */
import { InvalidArgumentError } from '../../errors.js'
import type { BpfMap } from '../../map.js'
import type { CollectionSpec } from '../../spec.js'

export interface CaptureLimitOptions {
  maxBytesPerCall?: number
  ringBytes?: number
  wakeupBytes?: number
  comm?: string
}

export interface CaptureLimits {
  maxBytes: number
  ringBytes: number
  wakeupBytes: number
}

/** A sensor's ring size: the kernel wants a power of two multiple of the page size. */
export function checkRingBytes(ringBytes: number): number {
  if (!Number.isInteger(ringBytes) || ringBytes < 4096 || ringBytes > 2 ** 31 || (ringBytes & (ringBytes - 1)) !== 0) {
    throw new InvalidArgumentError(`ringBytes must be a power of two from 4096 to 2^31, got ${ringBytes}`)
  }
  return ringBytes
}

/** Checks the shared options (InvalidArgumentError on a bad one) and fills in the defaults. */
export function captureLimits(
  options: CaptureLimitOptions,
  defaults: { maxBytesPerCall: number; minMaxBytesPerCall: number; ringBytes: number },
): CaptureLimits {
  const maxBytes = options.maxBytesPerCall ?? defaults.maxBytesPerCall
  const min = defaults.minMaxBytesPerCall
  if (!Number.isInteger(maxBytes) || maxBytes < min || maxBytes > 0xffffffff) {
    throw new InvalidArgumentError(`maxBytesPerCall must be an integer from ${min} to 2^32-1, got ${maxBytes}`)
  }
  const ringBytes = checkRingBytes(options.ringBytes ?? defaults.ringBytes)
  const wakeupBytes = options.wakeupBytes ?? Math.min(1 << 20, ringBytes / 4)
  if (!Number.isInteger(wakeupBytes) || wakeupBytes < 0 || wakeupBytes >= ringBytes) {
    throw new InvalidArgumentError(`wakeupBytes must be an integer from 0 to ringBytes-1, got ${wakeupBytes}`)
  }
  if (options.comm !== undefined && (options.comm.length === 0 || Buffer.byteLength(options.comm) > 15)) {
    throw new InvalidArgumentError(`comm must be 1 to 15 bytes, got ${JSON.stringify(options.comm)}`)
  }
  return { maxBytes, ringBytes, wakeupBytes }
}

/** Writes the limits and filters into the object before load; `ring` is the ring map's name. */
export function configureCapture(
  spec: CollectionSpec,
  ring: string,
  limits: CaptureLimits,
  filters: { onlyListedPids: boolean; comm?: string },
): void {
  spec.variables.must('max_bytes_per_call').set(limits.maxBytes)
  spec.variables.must('only_listed_pids').set(filters.onlyListedPids ? 1 : 0)
  spec.variables.must('wakeup_bytes').set(BigInt(limits.wakeupBytes))
  if (filters.comm !== undefined) {
    spec.variables.must('comm_filter_on').set(1)
    const comm = Buffer.alloc(16)
    comm.write(filters.comm)
    spec.variables.must('comm_filter').set(comm)
  }
  spec.maps.must(ring).maxEntries = limits.ringBytes
}

/** Fills the pid filter map: listed pids are captured (1), the agent and excluded pids never (2). */
export function fillPidFilter(map: BpfMap<number, number>, pids: Iterable<number> | undefined, excludePids: number[] | undefined): void {
  for (const p of pids ?? []) if (p !== process.pid) map.update(p, 1)
  for (const p of [process.pid, ...(excludePids ?? [])]) map.update(p, 2)
}
