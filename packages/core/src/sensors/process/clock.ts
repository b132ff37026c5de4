/**
 * Converts kernel timestamps to wall-clock time. BPF programs stamp events
 * with CLOCK_MONOTONIC (bpf_ktime_get_ns) and processes carry CLOCK_BOOTTIME
 * start times; both are turned into ISO 8601 strings with nanoseconds.
 */
import { readFileSync } from 'node:fs'

/** Wall-clock ns minus CLOCK_MONOTONIC ns, measured once (process.hrtime is CLOCK_MONOTONIC). */
const monoToWallNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint()

/**
 * CLOCK_BOOTTIME minus CLOCK_MONOTONIC (time spent suspended), from
 * /proc/uptime (10 ms resolution). Zero on machines that never suspend.
 */
function bootToMonoOffsetNs(): bigint {
  try {
    const uptime = readFileSync('/proc/uptime', 'utf8').split(' ')[0]!
    const [s, frac = '0'] = uptime.split('.')
    const boot = BigInt(s!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9))
    const diff = boot - process.hrtime.bigint()
    return diff > 20_000_000n ? diff : 0n // below /proc/uptime's resolution: no suspend
  } catch {
    return 0n
  }
}
const bootOffsetNs = bootToMonoOffsetNs()

/** ISO 8601 UTC with 9 fractional digits, from ns since the epoch. */
export function isoNanos(epochNs: bigint): string {
  const ms = epochNs / 1_000_000n
  const iso = new Date(Number(ms)).toISOString() // ...sss Z
  const nanos = (epochNs % 1_000_000_000n).toString().padStart(9, '0')
  return `${iso.slice(0, 19)}.${nanos}Z`
}

/** Wall time of a CLOCK_MONOTONIC kernel timestamp. */
export function monoToIso(ktime: bigint): string {
  return isoNanos(ktime + monoToWallNs)
}

/** Wall time of a CLOCK_BOOTTIME timestamp (process start times). */
export function bootToIso(boottime: bigint): string {
  return isoNanos(boottime - bootOffsetNs + monoToWallNs)
}

/** Current CLOCK_MONOTONIC in ns. */
export function nowMono(): bigint {
  return process.hrtime.bigint()
}
