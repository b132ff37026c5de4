/**
 * What the capture sensors count: the kernel counters every capture program
 * keeps first (enum capture_counter in bpf/include/capture.h) and the stats
 * both sensors keep in user space. Every drop is counted in one of them.
 */

/** The first counters of every capture program (enum capture_counter in capture.h), summed over CPUs. */
export interface CaptureKernelCounters {
  /** calls that moved data and were emitted */
  calls: number
  /** records submitted */
  records: number
  ringFullRecords: number
  ringFullBytes: number
  /** bytes beyond maxBytesPerCall */
  capBytes: number
  /** chunks whose user memory (or iovec array) could not be read */
  faultRecords: number
  faultBytes: number
}

/** Their names in index order: a sensor's own counter names follow them. */
export const CAPTURE_COUNTER_NAMES = [
  'calls',
  'records',
  'ringFullRecords',
  'ringFullBytes',
  'capBytes',
  'faultRecords',
  'faultBytes',
] as const satisfies readonly (keyof CaptureKernelCounters)[]

/** What both sensors count in user space, plus the kernel's counters `K`. */
export interface CaptureStats<K> {
  /** records delivered as 'record' events */
  records: number
  /** bytes delivered */
  bytes: number
  /** records that carried a gap */
  gaps: number
  /** bytes reported missing by those gaps (plus trailing losses reported at close) */
  gapBytes: number
  /** ring reservations that failed (records the kernel could not queue) */
  lostRecords: number
  /** ring records too short to decode */
  malformed: number
  closes: number
  /** counters of the BPF side, as of the last refreshStats()/flush() (refreshed every second) */
  kernel: K
}

/** Stats at zero: the shared counts, then the sensor's own (`own`), then the kernel counters `names`. */
export function newCaptureStats<K, Own extends object>(names: readonly (keyof K)[], own: Own): CaptureStats<K> & Own {
  return {
    records: 0,
    bytes: 0,
    gaps: 0,
    gapBytes: 0,
    lostRecords: 0,
    malformed: 0,
    closes: 0,
    ...own,
    kernel: Object.fromEntries(names.map((n) => [n, 0])) as unknown as K,
  }
}
