/**
 * Latency of an exchange from the HTTP pipeline's timings: the total, and
 * the time to the first token. For a live stream the first token is the
 * first stream event that carried content (the first byte is often an
 * empty role or ping event); otherwise the first byte is the best we know.
 */
import type { l7 } from '@bpfkit/core'

export interface ExchangeLatency {
  time_to_first_token_ms?: number
  total_ms?: number
}

/** `stream` says whether stream events were seen live and when the first content arrived. */
export function latencyOf(ev: l7.HttpExchangeEvent | undefined, stream: { liveStream: boolean; firstContentTime?: string }): ExchangeLatency {
  const l: ExchangeLatency = {}
  const t = ev?.timings
  if (t?.duration_ns !== undefined) l.total_ms = round3(t.duration_ns / 1e6)
  if (stream.liveStream && stream.firstContentTime !== undefined) {
    const start = isoToMs(t?.request_end)
    const first = isoToMs(stream.firstContentTime)
    if (start !== undefined && first !== undefined && first >= start) l.time_to_first_token_ms = round3(first - start)
  } else if (t?.ttfb_ns !== undefined) {
    // non-streamed (or stream seen only as a whole body): the first byte is the best we know
    l.time_to_first_token_ms = round3(t.ttfb_ns / 1e6)
  }
  return l
}

/** ISO 8601 with up to ns → ms since the epoch, keeping sub-ms digits (Date.parse drops them). */
export function isoToMs(iso: string | undefined): number | undefined {
  if (!iso) return undefined
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/.exec(iso)
  if (!m) return undefined
  const base = Date.parse(`${m[1]}${m[3] ?? 'Z'}`)
  if (!Number.isFinite(base)) return undefined
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0
  return base + frac
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000
}
