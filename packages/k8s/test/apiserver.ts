/**
 * A small Kubernetes API server for tests, speaking the real list/watch
 * protocol over node:http: resourceVersions, paginated lists (limit /
 * continue), chunked newline-delimited watch streams, BOOKMARK events when
 * the client sets allowWatchBookmarks, 410 Gone for compacted
 * resourceVersions (as a watch ERROR event or as HTTP 410), fieldSelector and
 * labelSelector filtering, and single-object GETs (replicasets, jobs). Faults
 * can be injected: garbage lines, truncated chunks, 5xx answers, 403s, and the
 * whole server stopping and restarting on the same port.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'

type Obj = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: any }; [k: string]: any }

interface Collection {
  kind: string
  apiVersion: string
  objects: Map<string, Obj>
}

interface WatchEvent {
  rv: number
  resource: string
  type: 'ADDED' | 'MODIFIED' | 'DELETED'
  object: Obj
}

interface Watcher {
  resource: string
  filter: (o: Obj) => boolean
  res: http.ServerResponse
  bookmarks: boolean
}

/** One-shot misbehaviours, consumed by the next matching request. */
export type Fault =
  | { kind: 'status'; status: number; path?: string; body?: string; times?: number }
  | { kind: 'garbage-line'; path?: string }
  | { kind: 'truncate-watch'; path?: string }
  | { kind: 'invalid-list-json'; path?: string }
  | { kind: 'expire-watch'; as: 'event' | 'http'; path?: string }
  /** a watch answered 200 and closed at once, with no events (a misbehaving proxy) */
  | { kind: 'empty-watch'; path?: string }
  /** accept the request and never answer (a stuck API server) */
  | { kind: 'hang'; path?: string }

const RESOURCES: Record<string, { kind: string; apiVersion: string }> = {
  '/api/v1/pods': { kind: 'Pod', apiVersion: 'v1' },
  '/api/v1/services': { kind: 'Service', apiVersion: 'v1' },
  '/apis/discovery.k8s.io/v1/endpointslices': { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1' },
  '/apis/apps/v1/replicasets': { kind: 'ReplicaSet', apiVersion: 'apps/v1' },
  '/apis/batch/v1/jobs': { kind: 'Job', apiVersion: 'batch/v1' },
}

export class TestApiServer {
  readonly collections = new Map<string, Collection>()
  readonly faults: Fault[] = []
  /** every request path+query the server saw (tests assert on them) */
  readonly requests: string[] = []
  /** resources whose single-object GETs answer 403 (the DaemonSet RBAC does not grant them) */
  readonly forbidden = new Set<string>()
  /** keep this many watch events; older resourceVersions get 410 Gone */
  historyLimit = 10_000
  bookmarkMs = 100
  #rv = 1000
  #history: WatchEvent[] = []
  #watchers = new Set<Watcher>()
  #server?: http.Server
  #port = 0
  #snapshots = new Map<string, Obj[]>()
  #bookmarkTimer?: NodeJS.Timeout
  #uid = 0

  constructor() {
    for (const [path, r] of Object.entries(RESOURCES)) this.collections.set(path, { ...r, objects: new Map() })
  }

  get port(): number {
    return this.#port
  }
  get url(): string {
    return `http://127.0.0.1:${this.#port}`
  }
  get resourceVersion(): number {
    return this.#rv
  }
  get watchers(): number {
    return this.#watchers.size
  }

  /** A KubeConfig the real client-node uses to reach this server. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig()
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'test', token: 'test-token' }],
      contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
      currentContext: 'test',
    })
    return kc
  }

  async start(port = this.#port): Promise<void> {
    this.#server = http.createServer((req, res) => this.#handle(req, res))
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject)
      this.#server!.listen(port, '127.0.0.1', () => resolve())
    })
    this.#port = (this.#server.address() as AddressInfo).port
    this.#bookmarkTimer = setInterval(() => this.#bookmark(), this.bookmarkMs)
  }

  /** Stops listening and cuts every open watch (the API server "dies"). State is kept, like etcd. */
  async stop(): Promise<void> {
    clearInterval(this.#bookmarkTimer)
    for (const w of this.#watchers) w.res.destroy()
    this.#watchers.clear()
    const s = this.#server
    this.#server = undefined
    if (s) {
      s.closeAllConnections()
      await new Promise<void>((r) => s.close(() => r()))
    }
  }

  /** Ends every open watch normally (as the server does at timeoutSeconds); clients re-watch. */
  endWatches(): void {
    for (const w of this.#watchers) w.res.end()
    this.#watchers.clear()
  }

  /** Forgets watch history: every resourceVersion before now is "too old" (410 Gone). */
  compact(): void {
    this.#history = []
  }

  nextUid(): string {
    const n = (++this.#uid).toString(16).padStart(12, '0')
    return `00000000-0000-4000-8000-${n}`
  }

  // ---- mutations ---------------------------------------------------------

  put(resource: string, obj: Obj): Obj {
    const c = this.collections.get(resource)!
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`
    const stored = structuredClone(obj)
    stored.kind = c.kind
    stored.apiVersion = c.apiVersion
    stored.metadata.uid ??= this.nextUid()
    stored.metadata.resourceVersion = String(++this.#rv)
    const type = c.objects.has(key) ? 'MODIFIED' : 'ADDED'
    c.objects.set(key, stored)
    this.#record({ rv: this.#rv, resource, type, object: stored })
    return stored
  }

  remove(resource: string, namespace: string, name: string): Obj | undefined {
    const c = this.collections.get(resource)!
    const key = `${namespace}/${name}`
    const old = c.objects.get(key)
    if (!old) return undefined
    c.objects.delete(key)
    const gone = structuredClone(old)
    gone.metadata.resourceVersion = String(++this.#rv)
    this.#record({ rv: this.#rv, resource, type: 'DELETED', object: gone })
    return gone
  }

  list(resource: string): Obj[] {
    return [...this.collections.get(resource)!.objects.values()]
  }

  #record(ev: WatchEvent) {
    this.#history.push(ev)
    if (this.#history.length > this.historyLimit) this.#history.splice(0, this.#history.length - this.historyLimit)
    for (const w of this.#watchers) if (w.resource === ev.resource && w.filter(ev.object)) this.#send(w.res, { type: ev.type, object: ev.object })
  }

  #send(res: http.ServerResponse, ev: unknown) {
    res.write(JSON.stringify(ev) + '\n')
  }

  #bookmark() {
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue
      const c = this.collections.get(w.resource)!
      this.#send(w.res, { type: 'BOOKMARK', object: { kind: c.kind, apiVersion: c.apiVersion, metadata: { resourceVersion: String(this.#rv) } } })
    }
  }

  #fault(path: string, kinds: Fault['kind'][]): Fault | undefined {
    const i = this.faults.findIndex((f) => kinds.includes(f.kind) && (!f.path || path.startsWith(f.path)))
    if (i < 0) return undefined
    const f = this.faults[i]!
    if (f.kind === 'status' && (f.times ?? 1) > 1) f.times = (f.times ?? 1) - 1
    else this.faults.splice(i, 1)
    return f
  }

  // ---- request handling --------------------------------------------------

  #handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x')
    this.requests.push(url.pathname + url.search)
    const path = url.pathname
    const status = this.#fault(path, ['status']) as Extract<Fault, { kind: 'status' }> | undefined
    if (status) return this.#status(res, status.status, status.body)
    if (this.#fault(path, ['hang'])) return
    if (req.headers.authorization !== 'Bearer test-token') return this.#status(res, 401, undefined, 'Unauthorized')
    if (RESOURCES[path]) {
      const watch = url.searchParams.get('watch')
      if (watch === '1' || watch === 'true') return this.#watch(path, url, res)
      return this.#list(path, url, res)
    }
    // single object: /apis/<group>/<version>/namespaces/<ns>/<resource>/<name>
    const m = /^\/apis\/([^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path)
    if (m) {
      const resource = `/apis/${m[1]}/${m[3]}`
      if (this.forbidden.has(resource)) return this.#status(res, 403, undefined, 'Forbidden', `${m[3]} "${m[4]}" is forbidden`)
      const obj = this.collections.get(resource)?.objects.get(`${m[2]}/${decodeURIComponent(m[4]!)}`)
      if (!obj) return this.#status(res, 404, undefined, 'NotFound')
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify(obj))
    }
    this.#status(res, 404, undefined, 'NotFound')
  }

  #status(res: http.ServerResponse, code: number, body?: string, reason?: string, message?: string) {
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(body ?? JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason: reason ?? http.STATUS_CODES[code], message: message ?? http.STATUS_CODES[code] }))
  }

  #filter(url: URL): (o: Obj) => boolean {
    const fields = parseSelector(url.searchParams.get('fieldSelector'))
    const labels = parseSelector(url.searchParams.get('labelSelector'))
    return (o) =>
      fields.every(([k, op, v]) => (fieldValue(o, k) === v) === (op === '=')) && labels.every(([k, op, v]) => ((o.metadata.labels ?? {})[k] === v) === (op === '='))
  }

  #list(path: string, url: URL, res: http.ServerResponse) {
    if (this.#fault(path, ['invalid-list-json'])) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end('{"kind":"PodList","items":[{"metadata":')
    }
    const c = this.collections.get(path)!
    const limit = Number(url.searchParams.get('limit') ?? 0)
    const token = url.searchParams.get('continue')
    let items: Obj[]
    let offset = 0
    let rv = String(this.#rv)
    if (token) {
      const t = JSON.parse(Buffer.from(token, 'base64').toString()) as { id: string; offset: number; rv: string }
      const snap = this.#snapshots.get(t.id)
      if (!snap) return this.#status(res, 410, undefined, 'Expired', 'continue token expired')
      items = snap
      offset = t.offset
      rv = t.rv
    } else items = [...c.objects.values()].filter(this.#filter(url))
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset)
    const metadata: Record<string, string> = { resourceVersion: rv }
    if (limit > 0 && offset + limit < items.length) {
      const id = token ? (JSON.parse(Buffer.from(token, 'base64').toString()) as { id: string }).id : `${this.#rv}-${Math.random()}`
      this.#snapshots.set(id, items)
      metadata.continue = Buffer.from(JSON.stringify({ id, offset: offset + limit, rv })).toString('base64')
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ kind: `${c.kind}List`, apiVersion: c.apiVersion, metadata, items: page }))
  }

  #watch(path: string, url: URL, res: http.ServerResponse) {
    const from = Number(url.searchParams.get('resourceVersion') || 0)
    const oldest = this.#history[0]?.rv ?? this.#rv + 1
    const expire = this.#fault(path, ['expire-watch']) as Extract<Fault, { kind: 'expire-watch' }> | undefined
    const tooOld = from > 0 && from < oldest - 1
    if (expire?.as === 'http' || (tooOld && !expire)) {
      return this.#status(res, 410, undefined, 'Expired', `too old resource version: ${from} (${oldest - 1})`)
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    if (this.#fault(path, ['empty-watch'])) return res.end()
    if (expire?.as === 'event') {
      this.#send(res, { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: `too old resource version: ${from}` } })
      return res.end()
    }
    const filter = this.#filter(url)
    if (this.#fault(path, ['garbage-line'])) res.write('this is {not json\n')
    if (this.#fault(path, ['truncate-watch'])) {
      res.write('{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"half')
      setTimeout(() => res.socket?.destroy(), 20)
      return
    }
    for (const ev of this.#history) if (ev.rv > from && ev.resource === path && filter(ev.object)) this.#send(res, { type: ev.type, object: ev.object })
    const w: Watcher = { resource: path, filter, res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' }
    this.#watchers.add(w)
    const seconds = Number(url.searchParams.get('timeoutSeconds') ?? 0)
    const timer = seconds > 0 ? setTimeout(() => res.end(), seconds * 1000) : undefined
    res.on('close', () => {
      clearTimeout(timer)
      this.#watchers.delete(w)
    })
  }
}

function parseSelector(s: string | null): Array<[string, '=' | '!=', string]> {
  if (!s) return []
  return s.split(',').map((part) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(part.trim())
    if (!m) throw new Error(`bad selector ${part}`)
    return [m[1]!, m[2] === '!=' ? '!=' : '=', m[3]!]
  })
}

function fieldValue(o: Obj, path: string): string | undefined {
  let cur: any = o
  for (const p of path.split('.')) cur = cur?.[p]
  return cur === undefined ? undefined : String(cur)
}

export interface PodSpecInput {
  name: string
  namespace?: string
  uid?: string
  node?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  serviceAccount?: string
  owner?: { kind: string; name: string }
  hostNetwork?: boolean
  ip?: string
  /** app containers; `id` empty = not started yet (no containerID in the status) */
  containers?: Array<{ name: string; id?: string; image?: string; runtime?: string }>
  initContainers?: Array<{ name: string; id?: string; image?: string }>
}

/** A pod object shaped like the API server returns it (with the noise real pods carry). */
export function podObject(p: PodSpecInput): Obj {
  const cs = p.containers ?? []
  const status = (l: Array<{ name: string; id?: string; image?: string; runtime?: string }>) =>
    l.map((c) => ({ name: c.name, image: c.image ?? 'busybox:1.36', ready: true, restartCount: 0, ...(c.id ? { containerID: `${c.runtime ?? 'containerd'}://${c.id}` } : {}) }))
  return {
    metadata: {
      name: p.name,
      namespace: p.namespace ?? 'default',
      ...(p.uid ? { uid: p.uid } : {}),
      labels: p.labels ?? {},
      annotations: p.annotations ?? { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' },
      ...(p.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: p.owner.kind, name: p.owner.name, uid: 'owner-uid', controller: true, blockOwnerDeletion: true }] } : {}),
      managedFields: [{ manager: 'kubelet', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': {} } }],
    },
    spec: {
      nodeName: p.node ?? 'node-a',
      serviceAccountName: p.serviceAccount ?? 'default',
      hostNetwork: p.hostNetwork ?? false,
      containers: cs.map((c) => ({ name: c.name, image: c.image ?? 'busybox:1.36', resources: {} })),
      initContainers: (p.initContainers ?? []).map((c) => ({ name: c.name, image: c.image ?? 'busybox:1.36' })),
    },
    status: {
      phase: 'Running',
      podIP: p.ip,
      podIPs: p.ip ? [{ ip: p.ip }] : [],
      containerStatuses: status(cs),
      initContainerStatuses: status(p.initContainers ?? []),
    },
  }
}

/** A 64-hex container id derived from a seed (stable across runs). */
export function containerId(seed: string | number): string {
  let h = 0x811c9dc5
  const s = String(seed)
  let out = ''
  for (let round = 0; out.length < 64; round++) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0
    h = Math.imul(h ^ round, 16777619) >>> 0
    out += h.toString(16).padStart(8, '0')
  }
  return out.slice(0, 64)
}

/** Polls until fn() is truthy (or fails the test after timeoutMs). */
export async function until<T>(fn: () => T, timeoutMs = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v as NonNullable<T>
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A logger that records lines instead of printing them. */
export function memoryLogger(): { warn(m: string): void; lines: string[] } {
  const lines: string[] = []
  return { lines, warn: (m) => void lines.push(m) }
}
