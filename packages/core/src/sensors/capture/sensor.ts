/**
 * CaptureSensor: the lifecycle the TLS and plain-socket sensors share around
 * their CaptureReader (flush, refreshStats, ref, close). A subclass creates
 * the reader in its constructor and releases what else it holds in
 * teardown(), which also runs when its constructor fails half-way.
 */
import { EventEmitter } from 'eventemitter3'

/** What the sensor uses of its reader (CaptureReader, whatever its record types). */
export interface CaptureLifecycle<K> {
  start(flushMs: number): void
  flush(): void
  refreshStats(): K
  ref(): void
  /** delivers pending records, then stops reading */
  stop(): void
  /** reads the ring once more, even after stop() */
  drain(): void
  close(): void
}

export abstract class CaptureSensor<Events extends EventEmitter.ValidEventTypes, K> extends EventEmitter<Events> {
  /** unset only while the subclass constructor has not created it yet */
  protected reader: CaptureLifecycle<K> | undefined
  protected closed = false

  /** Delivers what is in the ring now (synchronously) and refreshes stats. */
  flush(): void {
    this.reader?.flush()
  }

  /** Reads the BPF counters (summed over CPUs) into stats.kernel. */
  refreshStats(): K {
    return this.reader!.refreshStats()
  }

  /** Keeps the event loop alive while the sensor runs (it does not by default). */
  ref(): this {
    this.reader?.ref()
    return this
  }

  /** Delivers pending records, then detaches everything. */
  close(): void {
    if (this.closed) return
    this.reader?.stop()
    this.teardown()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  /** Releases everything the sensor holds; sets `closed`. Safe on a half-built sensor. */
  protected abstract teardown(): void
}
