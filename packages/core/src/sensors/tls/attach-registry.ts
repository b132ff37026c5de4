/**
 * Attach-once bookkeeping for uprobes. A uprobe belongs to a file (device +
 * inode), not to a process: attached with pid -1 it fires in every process
 * that maps the file, now or later. So each file is attached once, however
 * many processes use it, and its probes are detached when the last holder
 * lets go. Holders are pids (a process that maps the file; released on its
 * exit event) or named holders such as 'preattach' (files attached ahead of
 * time, kept until the sensor closes).
 *
 * Keying by (dev, inode) rather than inode alone matters: inode numbers
 * repeat across file systems (Kubeshark's "TODO add device id").
 *
 * Detaching is expensive: closing one uprobe link waits for an RCU grace
 * period in the kernel (measured ~110 ms per probe on Linux 6.18), and the
 * close is synchronous. So a file whose last holder went away lingers for
 * `lingerMs` (a re-run of the same program reuses the probes, with no exec
 * race), and is then detached on a timer of its own, one file at a time.
 */
import type { Link } from '../../link.js'

export type Holder = number | string

export interface AttachedFile<T> {
  readonly key: string
  readonly target: T
  readonly links: Link[]
  readonly holders: Set<Holder>
  /** pending detach of a file nobody holds */
  linger?: NodeJS.Timeout
}

export interface AttachRegistryOptions<T> {
  /** attaches every probe of `target`; throws on failure (nothing may stay attached then) */
  attach: (target: T) => Link[]
  /** called after a file's links were closed */
  onDetach?: (entry: AttachedFile<T>) => void
  /** whether a failed attach is remembered (not retried); default: always */
  remember?: (err: unknown) => boolean
  /** keep a file attached this long after its last holder is gone (default 0: detach at once) */
  lingerMs?: number
}

export class AttachRegistry<T extends { key: string }> {
  readonly #files = new Map<string, AttachedFile<T>>()
  readonly #byHolder = new Map<Holder, Set<string>>()
  /** keys whose attach failed, with the error: not retried */
  readonly failed = new Map<string, Error>()
  readonly #attach: (target: T) => Link[]
  readonly #onDetach: ((entry: AttachedFile<T>) => void) | undefined
  readonly #remember: (err: unknown) => boolean
  readonly #lingerMs: number
  #closed = false

  constructor(options: AttachRegistryOptions<T>) {
    this.#attach = options.attach
    this.#onDetach = options.onDetach
    this.#remember = options.remember ?? (() => true)
    this.#lingerMs = options.lingerMs ?? 0
  }

  /**
   * Records that `holder` uses `target`, attaching it if nobody did yet.
   * Returns 'attached' (new links), 'held' (already attached), or 'failed'
   * (attach threw now or earlier; see `failed`).
   */
  acquire(target: T, holder: Holder): 'attached' | 'held' | 'failed' {
    if (this.#closed) return 'failed'
    let entry = this.#files.get(target.key)
    let result: 'attached' | 'held' = 'held'
    if (!entry) {
      if (this.failed.has(target.key)) return 'failed'
      let links: Link[]
      try {
        links = this.#attach(target)
      } catch (err) {
        if (this.#remember(err)) this.failed.set(target.key, err as Error)
        return 'failed'
      }
      entry = { key: target.key, target, links, holders: new Set() }
      this.#files.set(target.key, entry)
      result = 'attached'
    }
    if (entry.linger) {
      clearTimeout(entry.linger)
      entry.linger = undefined
    }
    entry.holders.add(holder)
    let keys = this.#byHolder.get(holder)
    if (!keys) this.#byHolder.set(holder, (keys = new Set()))
    keys.add(target.key)
    return result
  }

  /** `child` holds whatever `parent` holds (fork: the child maps the same files). */
  inherit(parent: Holder, child: Holder): void {
    const keys = this.#byHolder.get(parent)
    if (!keys) return
    for (const key of keys) {
      const entry = this.#files.get(key)
      if (!entry) continue
      entry.holders.add(child)
      let mine = this.#byHolder.get(child)
      if (!mine) this.#byHolder.set(child, (mine = new Set()))
      mine.add(key)
    }
  }

  /** Drops every hold of `holder`; files left without holders are detached (now or after lingerMs). Returns the keys detached now. */
  release(holder: Holder): string[] {
    const keys = this.#byHolder.get(holder)
    if (!keys) return []
    this.#byHolder.delete(holder)
    const detached: string[] = []
    for (const key of keys) {
      const entry = this.#files.get(key)
      if (!entry) continue
      entry.holders.delete(holder)
      if (entry.holders.size === 0 && this.#unheld(entry)) detached.push(key)
    }
    return detached
  }

  /** Drops one hold; detaches the file if it was the last. Returns true if it was detached. */
  releaseKey(holder: Holder, key: string): boolean {
    const keys = this.#byHolder.get(holder)
    if (!keys?.delete(key)) return false
    if (keys.size === 0) this.#byHolder.delete(holder)
    const entry = this.#files.get(key)
    if (!entry) return false
    entry.holders.delete(holder)
    if (entry.holders.size > 0) return false
    return this.#unheld(entry)
  }

  /** Detaches now, or schedules it after the linger time. True if detached now. */
  #unheld(entry: AttachedFile<T>): boolean {
    if (this.#lingerMs <= 0) {
      this.#detach(entry)
      return true
    }
    entry.linger ??= setTimeout(() => {
      entry.linger = undefined
      if (!this.#closed && entry.holders.size === 0 && this.#files.get(entry.key) === entry) this.#detach(entry)
    }, this.#lingerMs).unref()
    return false
  }

  has(key: string): boolean {
    return this.#files.has(key)
  }

  get(key: string): AttachedFile<T> | undefined {
    return this.#files.get(key)
  }

  holds(holder: Holder, key: string): boolean {
    return this.#byHolder.get(holder)?.has(key) ?? false
  }

  /** Attached files. */
  entries(): IterableIterator<AttachedFile<T>> {
    return this.#files.values()
  }

  get size(): number {
    return this.#files.size
  }

  /** Detaches everything. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const entry of [...this.#files.values()]) this.#detach(entry)
    this.#byHolder.clear()
  }

  #detach(entry: AttachedFile<T>): void {
    if (entry.linger) clearTimeout(entry.linger)
    entry.linger = undefined
    this.#files.delete(entry.key)
    for (const l of entry.links) {
      try {
        l.close()
      } catch {
        // already closed
      }
    }
    this.#onDetach?.(entry)
  }
}
