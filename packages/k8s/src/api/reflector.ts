/**
 * One informer (client-node ListWatch) that keeps itself alive.
 *
 * ListWatch stops after any error. This wrapper restarts it with exponential
 * backoff, relists after 410 Gone or a corrupt stream, logs each failure once
 * (and once more on recovery), and keeps serving the last good cache in the
 * meantime.
 */
import { ListWatch, type Watch } from '@kubernetes/client-node'
import type { ApiObject } from '../types.js'
import type { Logger } from '../log.js'
import { K8sGarbageError } from './errors.js'
import type { KubeTransport, Slimmer } from './transport.js'

export interface BackoffOptions {
  /** first retry delay, ms (default 500) */
  initialMs?: number
  /** longest retry delay, ms (default 30 s) */
  maxMs?: number
}

export interface ReflectorOptions<T> {
  /** what the log lines call it, e.g. "pods on node-1" */
  name: string
  /** collection path, e.g. /api/v1/pods */
  path: string
  fieldSelector?: string
  labelSelector?: string
  slim?: Slimmer<T>
  backoff?: BackoffOptions
  logger: Logger
}

export interface ReflectorHealth {
  name: string
  /** the first list has completed: the cache reflects the server */
  synced: boolean
  /** the last list or watch succeeded (false while the server is unreachable) */
  connected: boolean
  errors: number
  relists: number
  lastError?: string
  lastErrorAt?: string
}

export type ReflectorHandlers<T> = {
  add?: (obj: T) => void
  update?: (obj: T) => void
  delete?: (obj: T) => void
  /** after every completed list (initial sync and relists) */
  synced?: () => void
}

export class Reflector<T extends ApiObject> {
  readonly informer: ListWatch<any>
  readonly #o: ReflectorOptions<T>
  readonly #health: ReflectorHealth
  #delay: number
  #timer?: NodeJS.Timeout
  #stopped = false
  #loggedError?: string
  readonly #syncWaiters: Array<() => void> = []

  constructor(transport: KubeTransport, options: ReflectorOptions<T>, handlers: ReflectorHandlers<T>) {
    this.#o = options
    this.#health = { name: options.name, synced: false, connected: false, errors: 0, relists: 0 }
    this.#delay = options.backoff?.initialMs ?? 500
    const listFn = async () => {
      const list = await transport.list<T>(options.path, { fieldSelector: options.fieldSelector, labelSelector: options.labelSelector }, options.slim)
      if (this.#health.synced) this.#health.relists++
      this.#succeeded()
      // ListWatch applies the list after this promise resolves; report sync just after
      queueMicrotask(() => {
        this.#health.synced = true
        handlers.synced?.()
        for (const w of this.#syncWaiters.splice(0)) w()
      })
      return list as any
    }
    // Adapter with the shape of client-node's Watch: ListWatch only calls watch().
    const watch = {
      watch: (path: string, query: Record<string, any>, cb: any, done: any) => {
        const started = Date.now()
        let events = 0
        return transport.watch(path, query, (type, obj, raw) => {
          events++
          this.#succeeded()
          cb(type, obj, raw)
        }, (err: any) => this.#watchEnded(err, done, !err && events === 0 && Date.now() - started < 1000), options.slim)
      },
    } as unknown as Watch
    this.informer = new ListWatch<any>(options.path, watch, listFn, false, options.labelSelector, options.fieldSelector)
    if (handlers.add) this.informer.on('add', handlers.add)
    if (handlers.update) this.informer.on('update', handlers.update)
    if (handlers.delete) this.informer.on('delete', handlers.delete)
    this.informer.on('error', (err) => this.#failed(err))
  }

  /** Starts listing and watching; resolves at once (see `synced()`). */
  start(): void {
    this.#stopped = false
    void this.informer.start().catch((err) => this.#failed(err))
  }

  /** Resolves after the first successful list (or at once if it already happened). */
  synced(): Promise<void> {
    if (this.#health.synced) return Promise.resolve()
    return new Promise((r) => this.#syncWaiters.push(r))
  }

  health(): ReflectorHealth {
    return { ...this.#health }
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    void this.informer.stop()
  }

  #succeeded() {
    if (!this.#health.connected) {
      if (this.#loggedError) this.#o.logger.warn(`[bpfkit/k8s] ${this.#o.name}: API server reachable again, cache is live`)
      this.#loggedError = undefined
    }
    this.#health.connected = true
    this.#delay = this.#o.backoff?.initialMs ?? 500
  }

  /** A corrupt stream makes ListWatch relist at once; delay that so a broken server is not hammered. */
  #watchEnded(err: any, done: (err: any) => void, empty: boolean) {
    // ListWatch re-watches at once after a clean end; a server that closes empty watches at once would make that a busy loop
    if (empty) return this.#later(() => done(null))
    if (!(err instanceof K8sGarbageError)) return done(err)
    this.#health.errors++
    this.#health.lastError = err.message
    this.#health.lastErrorAt = new Date().toISOString()
    if (this.#loggedError !== 'garbage') {
      this.#loggedError = 'garbage'
      this.#o.logger.warn(`[bpfkit/k8s] ${this.#o.name}: ${err.message} (${JSON.stringify(err.sample)}); relisting, cache kept meanwhile`)
    }
    this.#later(() => done(err))
  }

  /** Runs `fn` after the current back-off delay (unless stopped meanwhile) and doubles the delay up to the maximum. */
  #later(fn: () => void) {
    const delay = this.#delay
    this.#delay = Math.min(this.#delay * 2, this.#o.backoff?.maxMs ?? 30_000)
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      if (!this.#stopped) fn()
    }, delay)
    this.#timer.unref?.()
  }

  #failed(err: unknown) {
    if (this.#stopped) return
    const e = err as { message?: string; statusCode?: number }
    this.#health.errors++
    this.#health.connected = false
    this.#health.lastError = e?.message ?? String(err)
    this.#health.lastErrorAt = new Date().toISOString()
    const kind = `${e?.statusCode ?? ''}:${(e?.message ?? '').replace(/\d+/g, '#').slice(0, 60)}`
    if (this.#loggedError !== kind) {
      this.#loggedError = kind
      this.#o.logger.warn(
        `[bpfkit/k8s] ${this.#o.name}: ${this.#health.lastError}; serving the cached state (${this.informer.list().length} objects), retrying with backoff`,
      )
    }
    clearTimeout(this.#timer)
    const delay = this.#delay
    this.#delay = Math.min(this.#delay * 2, this.#o.backoff?.maxMs ?? 30_000)
    // jitter so many nodes do not hammer a recovering API server in lockstep
    this.#timer = setTimeout(() => {
      if (!this.#stopped) void this.informer.start().catch((x) => this.#failed(x))
    }, delay * (0.8 + Math.random() * 0.4))
    this.#timer.unref?.()
  }
}
