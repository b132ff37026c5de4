/**
 * HTTP transport for list and watch requests, built on client-node's
 * KubeConfig (auth, TLS, in-cluster config, exec plugins).
 *
 * Why not client-node's own Watch: in 1.4 it drops unparsable watch lines
 * silently and has no request timeouts. Here every list has a deadline, every
 * bad line is counted, and a corrupt stream forces a relist (an event may have
 * been lost), so the cache never drifts from the server without a trace.
 */
import http from 'node:http'
import https from 'node:https'
import type { KubeConfig } from '@kubernetes/client-node'
import { K8sApiError, K8sGarbageError, K8sTimeoutError } from './errors.js'

/** Shrinks an object before it is cached (drop fields nobody reads). */
export type Slimmer<T> = (obj: T) => T

/** Counters shared by every request of one transport. */
export interface TransportStats {
  requests: number
  /** non-2xx answers, refused connections, timeouts */
  errors: number
  /** watch lines that were not JSON, and truncated final lines */
  garbage: number
  /** watch events received (BOOKMARKs included) */
  watchEvents: number
  bookmarks: number
  /** 410 Gone answers (history compacted): normal protocol, answered by a relist */
  expired: number
}

export interface TransportOptions {
  /** deadline for a list request, ms (default 30 s) */
  requestTimeoutMs?: number
  /** server-side watch duration, s (the server closes the watch, the informer re-watches; default 300) */
  watchTimeoutSeconds?: number
}

type WatchCallback = (phase: string, obj: any, raw: any) => void
type DoneCallback = (err: any) => void

export class KubeTransport {
  readonly stats: TransportStats = { requests: 0, errors: 0, garbage: 0, watchEvents: 0, bookmarks: 0, expired: 0 }
  readonly #kc: KubeConfig
  readonly #timeoutMs: number
  readonly #watchSeconds: number

  constructor(kc: KubeConfig, options: TransportOptions = {}) {
    this.#kc = kc
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000
    this.#watchSeconds = options.watchTimeoutSeconds ?? 300
  }

  /** Base URL of the current cluster. */
  get server(): string {
    const cluster = this.#kc.getCurrentCluster()
    if (!cluster) throw new K8sApiError('the KubeConfig has no current cluster', 0)
    return cluster.server
  }

  async #requestOptions(): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = {}
    await this.#kc.applyToHTTPSOptions(opts)
    return opts
  }

  #url(path: string, query: Record<string, string | undefined>): URL {
    const url = new URL(this.server.replace(/\/$/, '') + path)
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, v)
    return url
  }

  /** GET a JSON document, with a deadline. */
  async getJson<T>(path: string, query: Record<string, string | undefined> = {}): Promise<T> {
    this.stats.requests++
    try {
      const url = this.#url(path, query)
      const opts = await this.#requestOptions()
      return await new Promise<T>((resolve, reject) => {
        const req = (url.protocol === 'https:' ? https : http).request(url, { ...opts, method: 'GET', headers: { ...opts.headers, accept: 'application/json' } }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('aborted', () => reject(new K8sApiError(`GET ${path}: response aborted`, 0)))
          res.on('close', () => {
            if (!res.complete) reject(new K8sApiError(`GET ${path}: connection closed before the response ended`, 0))
          })
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8')
            if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
              reject(statusError(`GET ${path}`, res.statusCode ?? 0, body))
              return
            }
            try {
              resolve(JSON.parse(body) as T)
            } catch {
              reject(new K8sGarbageError(`GET ${path}: response is not JSON`, body))
            }
          })
        })
        // a deadline for the whole request, not an idle timeout: a server trickling bytes cannot hold it forever
        const deadline = setTimeout(() => req.destroy(new K8sTimeoutError(`GET ${path}: no answer in ${this.#timeoutMs} ms`)), this.#timeoutMs)
        req.on('close', () => clearTimeout(deadline))
        req.on('error', reject)
        req.end()
      })
    } catch (err) {
      this.stats.errors++
      if (err instanceof K8sGarbageError) this.stats.garbage++
      throw err
    }
  }

  /** Lists a collection, following `continue` tokens, slimming every item. */
  async list<T>(path: string, query: Record<string, string | undefined>, slim?: Slimmer<T>) {
    const items: T[] = []
    let cont: string | undefined
    let resourceVersion = ''
    do {
      const page = await this.getJson<{ metadata?: { resourceVersion?: string; continue?: string }; items?: T[] }>(path, { ...query, limit: '500', continue: cont })
      if (!Array.isArray(page.items)) throw new K8sGarbageError(`GET ${path}: list has no items array`, JSON.stringify(page))
      for (const it of page.items) {
        const meta = (it as { metadata?: { name?: unknown } } | null)?.metadata
        if (!meta || typeof meta.name !== 'string') {
          this.stats.garbage++ // an item that is not an object cannot be cached; counted, the rest of the list is used
          continue
        }
        items.push(slim ? slim(it) : it)
      }
      resourceVersion = page.metadata?.resourceVersion ?? ''
      cont = page.metadata?.continue || undefined
    } while (cont)
    return { metadata: { resourceVersion }, items }
  }

  /**
   * A watch with the contract of client-node's Watch.watch (so ListWatch can
   * drive it): `callback(type, object)` per event, `done(err|null)` exactly
   * once when the stream ends — unless the returned controller aborted it.
   */
  async watch(path: string, query: Record<string, any>, callback: WatchCallback, done: DoneCallback, slim?: Slimmer<any>): Promise<{ abort(): void }> {
    this.stats.requests++
    let finished = false
    let req: http.ClientRequest | undefined
    const finish = (err: any) => {
      if (finished) return
      finished = true
      req?.destroy()
      if (err?.statusCode === 410 && !(err instanceof K8sGarbageError)) this.stats.expired++
      else if (err) this.stats.errors++
      done(err)
    }
    const controller = {
      abort: () => {
        finished = true
        req?.destroy()
      },
    }
    try {
      const stringQuery: Record<string, string | undefined> = { watch: '1', allowWatchBookmarks: 'true', timeoutSeconds: String(this.#watchSeconds) }
      for (const [k, v] of Object.entries(query)) if (v !== undefined) stringQuery[k] = String(v)
      const url = this.#url(path, stringQuery)
      const opts = await this.#requestOptions()
      if (finished) return controller
      req = (url.protocol === 'https:' ? https : http).request(url, { ...opts, method: 'GET', headers: { ...opts.headers, accept: 'application/json' } }, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => finish(statusError(`watch ${path}`, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))))
          res.on('error', finish)
          return
        }
        let buf = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          buf += chunk
          let nl: number
          while (!finished && (nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim()
            buf = buf.slice(nl + 1)
            if (line) this.#line(path, line, callback, finish, slim)
          }
        })
        const end = (err?: Error) => {
          const rest = buf.trim()
          if (rest && !finished) {
            // the connection ended inside an event; the watch resumes from the last complete event
            this.stats.garbage++
            finish(new K8sApiError(`watch ${path}: stream ended inside an event (${rest.length} bytes)`, 0))
          } else finish(err ?? null)
        }
        res.on('end', () => end())
        res.on('aborted', () => end(new K8sApiError(`watch ${path}: connection aborted`, 0)))
        res.on('error', (e) => end(e))
        res.on('close', () => end(res.complete ? undefined : new K8sApiError(`watch ${path}: connection closed`, 0)))
      })
      // A watch with no bytes for longer than the server-side timeout is a dead connection.
      req.setTimeout((this.#watchSeconds + 30) * 1000, () => req?.destroy(new K8sTimeoutError(`watch ${path}: silent for ${this.#watchSeconds + 30} s`)))
      req.on('error', (e) => finish(e))
      req.end()
    } catch (err) {
      finish(err)
    }
    return controller
  }

  #line(path: string, line: string, callback: WatchCallback, finish: DoneCallback, slim?: Slimmer<any>) {
    let ev: any
    try {
      ev = JSON.parse(line)
    } catch {
      ev = undefined
    }
    if (!ev || typeof ev !== 'object' || typeof ev.type !== 'string' || !ev.object || typeof ev.object !== 'object') {
      // The next good event would move the resourceVersion past whatever this was: relist instead.
      this.stats.garbage++
      finish(new K8sGarbageError(`watch ${path}: line is not a watch event`, line))
      return
    }
    this.stats.watchEvents++
    if (ev.type === 'ERROR') {
      // The API server ends the watch after an ERROR event; 410 (Expired) means "relist".
      const status = ev.object as { code?: number; reason?: string; message?: string }
      const code = typeof status.code === 'number' ? status.code : 500
      callback(ev.type, ev.object, ev)
      finish(new K8sApiError(`watch ${path}: ${status.reason ?? 'ERROR'} ${status.message ?? ''}`.trim(), code, status.reason))
      return
    }
    if (ev.type === 'BOOKMARK') this.stats.bookmarks++
    else if (!ev.object.metadata || typeof ev.object.metadata.name !== 'string') {
      this.stats.garbage++
      finish(new K8sGarbageError(`watch ${path}: ${ev.type} event without metadata.name`, line))
      return
    }
    const obj = slim && ev.type !== 'BOOKMARK' ? slim(ev.object) : ev.object
    callback(ev.type, obj, ev)
  }
}

function statusError(what: string, status: number, body: string): K8sApiError {
  let reason: string | undefined
  let message = body.slice(0, 200)
  try {
    const s = JSON.parse(body) as { reason?: string; message?: string }
    reason = s.reason
    message = s.message ?? message
  } catch {
    /* not a Status object: keep the raw text */
  }
  return new K8sApiError(`${what}: HTTP ${status}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`, status, reason)
}
