/**
 * K8sEnricher: adds Kubernetes identity to any event that carries a pid or a
 * cgroup id.
 *
 *   kernel key (cgroup id / pid) → cgroup path → container id + pod UID   (CgroupResolver, parseCgroupPath)
 *   container id → pod (informer index; pod UID fallback; tombstones)     (ClusterCache)
 *   pod → workload (heuristics, cached owner lookups)                     (WorkloadResolver)
 *
 * Every event leaves with `k8s.identity.state`: complete, partial, pending or
 * host. An event whose pod is not known yet is held (bounded queue, `holdMs`),
 * then enriched, or emitted `pending` followed later by a
 * `k8s.identity.resolved` event once the pod shows up.
 */
import { EventEmitter } from 'eventemitter3'
import { CgroupResolver, type CgroupResolverOptions } from './cgroup/resolver.js'
import type { CgroupContainerRef } from './cgroup/types.js'
import type { ContainerSource, CriContainerInfo } from './cri/types.js'
import { ClusterCache, type ClusterCacheOptions } from './cluster.js'
import { cgroupIdOf, defaultKey, type IdentityKey, type KeyFunction } from './keys.js'
import { LatencyWindow } from './latency.js'
import { consoleLogger, type Logger } from './log.js'
import { checkNumber } from './options.js'
import { parseImage, podFields, type IdentityOptions } from './metadata/identity.js'
import type { ContainerEntry } from './metadata/pod-index.js'
import type { Workload } from './metadata/workload.js'
import type { ReflectorHealth } from './api/reflector.js'
import type { Peer } from './peers.js'
import type { ContainerFields, Enriched, IdentityResolvedEvent, IdentitySource, IdentityState, K8sFields, Pod } from './types.js'

export interface K8sEnricherOptions<E = unknown> extends Omit<ClusterCacheOptions, 'logger' | 'annotations'>, IdentityOptions {
  /** use the API server (default true); false = cgroup facts and the CRI source only */
  api?: boolean
  /** a CgroupResolver to share, or options for the enricher's own */
  cgroup?: CgroupResolver | CgroupResolverOptions
  /** container runtime facts when the API server is unreachable, not granted, or slower than the hold */
  cri?: ContainerSource
  /** deadline for one CRI lookup, ms (default 1000) */
  criTimeoutMs?: number
  /** how to find the key in an event (default: cgroup.id, then process.pid) */
  key?: KeyFunction<E>
  /** how long an event waits for its pod, ms (default 2000) */
  holdMs?: number
  /** most events held at once; beyond that they leave `pending` at once and are counted (default 10,000) */
  maxPending?: number
  /** how long a pending event can still get its `k8s.identity.resolved` follow-up, ms (default 10 min) */
  followUpTtlMs?: number
  /** most events waiting for a follow-up (default 10,000; overflow counted) */
  maxFollowUps?: number
  /** wait at most this long in start() for the first list, ms (default 10 s) */
  startTimeoutMs?: number
  /** where operational problems are reported (default console.warn, one line per problem) */
  logger?: Logger
}

export interface K8sEnricherEvents<E> {
  event: [Enriched<E>]
  'k8s.identity.resolved': [IdentityResolvedEvent]
}

export interface K8sEnricherStats {
  events: number
  states: Record<IdentityState, number>
  /** events held right now waiting for their pod */
  pending: number
  /** events emitted pending/partial still waiting for a follow-up */
  followUps: number
  /** held events that left because the queue was full */
  queueOverflow: number
  /** follow-ups dropped because the follow-up table was full */
  followUpOverflow: number
  /** k8s.identity.resolved events emitted */
  resolved: number
  /** time events spent waiting for their identity (held events only) */
  holdLatency: ReturnType<LatencyWindow['summary']>
  /** time from a pending event to its follow-up */
  followUpLatency: ReturnType<LatencyWindow['summary']>
  /** events whose pod came from the tombstone cache (deleted while in flight) */
  tombstoneHits: number
  cache: { pods: number; containers: number; tombstones: number; peerPodIps: number; serviceIps: number; backendIps: number }
  api: { enabled: boolean; requests: number; errors: number; garbage: number; watchEvents: number; bookmarks: number; expired: number; relists: number }
  owners: { heuristic: number; lookups: number; denied: number; lookupErrors: number }
  cri: { lookups: number; hits: number; errors: number }
  cgroup: ReturnType<CgroupResolver['stats']>
  /** events dropped by the async iterator because its consumer was too slow */
  iteratorDrops: number
  /** events whose enrichment threw (a bug or a malformed cached object); they left partial with the reason */
  internalErrors: number
  /** push(): 'event' listeners that threw (logged; the enricher keeps going) */
  listenerErrors: number
}

export interface K8sEnricherHealth {
  /** true when the pod cache is live (or the API is off and there is a CRI source) */
  ok: boolean
  informers: ReflectorHealth[]
  pending: number
}

type Resolution = { final: true; k8s: K8sFields; container?: ContainerFields } | { final: false; ref: CgroupContainerRef | undefined; why: string }

interface Held<E> {
  event: E
  key: IdentityKey | undefined
  /** what the cgroup said, once known (saves re-reading the cgroup on every retry) */
  ref?: CgroupContainerRef
  t0: number
  deadline: number
  resolve: (e: Enriched<E>) => void
}

/** An event that left pending/partial; its container/pod is known from the cgroup, its pod was not. */
interface FollowUp {
  key: IdentityKey | undefined
  ref: CgroupContainerRef
  eventRef: IdentityResolvedEvent['ref']
  t0: number
  expires: number
}

/** memo slot for processes in the pod-level cgroup (no container) */
const POD_LEVEL = {}

const HOST: K8sFields = { identity: { state: 'host', source: 'cgroup' } }

export class K8sEnricher<E extends object = any> extends EventEmitter<K8sEnricherEvents<E>> {
  readonly cluster?: ClusterCache
  readonly cgroups: CgroupResolver
  readonly #o: K8sEnricherOptions<E>
  readonly #key: KeyFunction<E>
  readonly #holdMs: number
  readonly #maxPending: number
  readonly #held: Held<E>[] = []
  readonly #followUps: FollowUp[] = []
  readonly #ownsCgroups: boolean
  readonly #tick: NodeJS.Timeout
  readonly #logger: Logger
  readonly #holdLatency = new LatencyWindow()
  readonly #followLatency = new LatencyWindow()
  readonly #s = {
    events: 0,
    states: { complete: 0, partial: 0, pending: 0, host: 0 } as Record<IdentityState, number>,
    queueOverflow: 0,
    followUpOverflow: 0,
    resolved: 0,
    tombstoneHits: 0,
    cri: { lookups: 0, hits: 0, errors: 0 },
    iteratorDrops: 0,
    internalErrors: 0,
    listenerErrors: 0,
  }
  #closed = false
  #started = false

  constructor(options: K8sEnricherOptions<E> = {}) {
    super()
    this.#o = options
    this.#key = options.key ?? (defaultKey as KeyFunction<E>)
    this.#holdMs = checkNumber('holdMs', options.holdMs, 0) ?? 2000
    this.#maxPending = checkNumber('maxPending', options.maxPending, 1, true) ?? 10_000
    checkNumber('followUpTtlMs', options.followUpTtlMs, 0)
    checkNumber('maxFollowUps', options.maxFollowUps, 0, true)
    checkNumber('criTimeoutMs', options.criTimeoutMs, 1)
    checkNumber('startTimeoutMs', options.startTimeoutMs, 0)
    const logger = options.logger ?? consoleLogger
    this.#logger = logger
    if (options.cgroup instanceof CgroupResolver) {
      this.cgroups = options.cgroup
      this.#ownsCgroups = false
    } else {
      this.cgroups = new CgroupResolver(options.cgroup)
      this.#ownsCgroups = true
    }
    if (options.api !== false) {
      this.cluster = new ClusterCache({ ...options, annotations: options.annotations, logger })
      this.cluster.pods.onPod = (pod) => this.#podArrived(pod)
    }
    this.#tick = setInterval(() => this.#onTick(), Math.max(20, Math.min(250, this.#holdMs / 4)))
    this.#tick.unref()
  }

  /** Starts the informers and waits (up to startTimeoutMs) for the first list. Returns whether it synced (false after close()). */
  async start(): Promise<boolean> {
    if (this.#closed) return false // a closed enricher never restarts its informers
    if (!this.cluster) return true
    if (!this.#started) this.cluster.start()
    this.#started = true
    return this.cluster.synced(this.#o.startTimeoutMs ?? 10_000)
  }

  /**
   * Enriches one event. Resolves at once when the identity is known (or can
   * never be), otherwise after at most `holdMs`.
   */
  enrich(event: E, key: IdentityKey | undefined = this.#keyOf(event)): Promise<Enriched<E>> {
    this.#s.events++
    const t0 = performance.now()
    const r = this.#safeResolve(key)
    if (r.final) return Promise.resolve(this.#emitState(event, r.k8s, r.container))
    if (this.#closed || !this.#worthWaiting()) return this.#giveUp(event, key, t0)
    if (this.#held.length >= this.#maxPending) {
      this.#s.queueOverflow++
      return this.#giveUp(event, key, t0)
    }
    return new Promise((resolve) => this.#held.push({ event, key, ref: r.ref, t0, deadline: t0 + this.#holdMs, resolve }))
  }

  /** Enriches and emits 'event' (order follows resolution, so a held event can come after later ones). */
  push(event: E): void {
    void this.enrich(event).then((e) => {
      try {
        this.emit('event', e)
      } catch (err) {
        // a throwing 'event' listener must not become an unhandled rejection (fatal by default)
        this.#s.listenerErrors++
        this.#logger.warn(`[bpfkit/k8s] an 'event' listener threw: ${(err as Error)?.message ?? String(err)}`)
      }
    })
  }

  /** Identity for a key right now, without waiting (complete, partial, host, or pending). */
  identityFor(key: IdentityKey): { k8s: K8sFields; container?: ContainerFields } {
    const r = this.#safeResolve(key)
    if (r.final) return { k8s: r.k8s, container: r.container }
    return this.#fallback(r.ref, r.why)
  }

  /** Who is behind an IP address (pod, Service or external). Needs `peers: true` for anything but 'external'. */
  peerFor(ip: string): Peer {
    return this.cluster ? this.cluster.peers.peerFor(ip) : { kind: 'external', ip }
  }

  /** Emitted events and follow-ups as an async iterator (bounded buffer; drops counted in stats). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Enriched<E> | IdentityResolvedEvent> {
    const buf: Array<Enriched<E> | IdentityResolvedEvent> = []
    let wake: (() => void) | undefined
    const onItem = (e: Enriched<E> | IdentityResolvedEvent) => {
      if (buf.length >= this.#maxPending) this.#s.iteratorDrops++
      else buf.push(e)
      wake?.()
    }
    const onClose = () => wake?.()
    this.on('event', onItem)
    this.on('k8s.identity.resolved', onItem)
    this.#closeListeners.add(onClose)
    try {
      while (true) {
        while (buf.length) yield buf.shift()!
        if (this.#closed) return
        await new Promise<void>((r) => (wake = r))
        wake = undefined
      }
    } finally {
      this.off('event', onItem)
      this.off('k8s.identity.resolved', onItem)
      this.#closeListeners.delete(onClose)
    }
  }
  readonly #closeListeners = new Set<() => void>()

  stats(): K8sEnricherStats {
    const c = this.cluster
    const t = c?.transport.stats
    const relists = c?.health().reduce((n, h) => n + h.relists, 0) ?? 0
    return {
      events: this.#s.events,
      states: { ...this.#s.states },
      pending: this.#held.length,
      followUps: this.#followUps.length,
      queueOverflow: this.#s.queueOverflow,
      followUpOverflow: this.#s.followUpOverflow,
      resolved: this.#s.resolved,
      holdLatency: this.#holdLatency.summary(),
      followUpLatency: this.#followLatency.summary(),
      tombstoneHits: this.#s.tombstoneHits,
      cache: {
        pods: c?.pods.size ?? 0,
        containers: c?.pods.containers ?? 0,
        tombstones: c?.pods.tombstones ?? 0,
        peerPodIps: c?.peers.sizes.podIps ?? 0,
        serviceIps: c?.peers.sizes.serviceIps ?? 0,
        backendIps: c?.peers.sizes.backendIps ?? 0,
      },
      api: { enabled: !!c, requests: t?.requests ?? 0, errors: t?.errors ?? 0, garbage: t?.garbage ?? 0, watchEvents: t?.watchEvents ?? 0, bookmarks: t?.bookmarks ?? 0, expired: t?.expired ?? 0, relists },
      owners: { ...(c?.workloads.stats ?? { heuristic: 0, lookups: 0, denied: 0, lookupErrors: 0 }) },
      cri: { ...this.#s.cri },
      cgroup: this.cgroups.stats(),
      iteratorDrops: this.#s.iteratorDrops,
      internalErrors: this.#s.internalErrors,
      listenerErrors: this.#s.listenerErrors,
    }
  }

  health(): K8sEnricherHealth {
    const informers = this.cluster?.health() ?? []
    return { ok: this.cluster ? this.cluster.live : !!this.#o.cri, informers, pending: this.#held.length }
  }

  /** Stops the informers; held events are released at once (as pending or partial). */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#tick)
    this.cluster?.stop()
    for (const h of this.#held.splice(0)) void this.#giveUp(h.event, h.key, h.t0).then(h.resolve)
    this.#followUps.length = 0
    if (this.#ownsCgroups) this.cgroups.close()
    for (const l of this.#closeListeners) l()
  }

  #keyOf(event: E): IdentityKey | undefined {
    try {
      return this.#key(event)
    } catch {
      return undefined // a throwing key function must not stop the pipeline; the event says why it has no identity
    }
  }

  /** Worth holding: the pod can still appear through the API server. */
  #worthWaiting(): boolean {
    return !!this.cluster && this.#started && (this.cluster.live || this.cluster.starting)
  }

  /** The container/pod the key points at, from the kernel side. `null` = a host (non-pod) cgroup. */
  #ref(key: IdentityKey): CgroupContainerRef | null | undefined {
    if (key.containerId || key.podUid) return { path: '', driver: 'cgroupfs', containerId: key.containerId?.toLowerCase(), podUid: key.podUid }
    const cgroupId = cgroupIdOf(key.cgroupId) // a key function may hand over a number (from JSON)
    const byId = cgroupId !== undefined ? this.cgroups.resolveId(cgroupId) : undefined
    if (byId !== undefined) return byId
    return key.pid !== undefined ? this.cgroups.resolvePid(key.pid) : undefined
  }

  /** #resolve, but a bug or a malformed object in the cache degrades one event instead of the pipeline. */
  #safeResolve(key: IdentityKey | undefined, known?: CgroupContainerRef): Resolution {
    try {
      return this.#resolve(key, known)
    } catch (err) {
      this.#s.internalErrors++
      return { final: true, k8s: { identity: { state: 'partial', source: 'none', reason: `enrichment failed: ${(err as Error)?.message ?? err}` } } }
    }
  }

  #resolve(key: IdentityKey | undefined, known?: CgroupContainerRef): Resolution {
    if (!key) return { final: true, k8s: { identity: { state: 'partial', source: 'none', reason: 'the event carries no pid or cgroup id' } } }
    const ref = known ?? this.#ref(key)
    if (ref === null) return { final: true, k8s: HOST }
    if (!ref) return { final: false, ref, why: 'cgroup not found (new or already removed)' }
    const pods = this.cluster?.pods
    if (pods && ref.containerId) {
      const c = pods.container(ref.containerId)
      const found = c && pods.podOrTombstone(c.entry.podUid)
      if (found) return this.#fromPod(found.pod, c!.entry, found.dead || c!.dead)
    }
    if (pods && ref.podUid) {
      const found = pods.podOrTombstone(ref.podUid)
      if (found && !ref.containerId) {
        // a process in the pod-level cgroup: the pod is the whole answer
        return this.#fromPod(found.pod, undefined, found.dead)
      }
      if (found) return { final: false, ref, why: `container ${ref.containerId!.slice(0, 12)} is not in the pod status yet` }
    }
    return { final: false, ref, why: 'pod not in the API server cache' }
  }

  #fromPod(pod: Pod, container: ContainerEntry | undefined, dead: boolean): Resolution {
    const workload = this.cluster!.workloads.resolve(pod)
    if (dead) this.#s.tombstoneHits++
    // Built once per (pod object, container) and shared, frozen, by every event of that container.
    // Pod updates replace the pod object, so a stale entry can never be returned (WeakMap keyed by it).
    let perPod = this.#fieldsMemo.get(pod)
    if (!perPod) this.#fieldsMemo.set(pod, (perPod = new Map()))
    const slot = container ?? POD_LEVEL
    let f = perPod.get(slot)
    if (!f || f.dead !== dead || f.workload !== workload) {
      f = { dead, workload, ...deepFreeze(podFields(pod, container, workload, 'complete', dead ? 'tombstone' : 'apiserver', undefined, this.#o)) }
      perPod.set(slot, f)
    }
    return { final: true, k8s: f.k8s, container: f.container }
  }
  readonly #fieldsMemo = new WeakMap<Pod, Map<object, { dead: boolean; workload: Workload; k8s: K8sFields; container?: ContainerFields }>>()

  /** What an event gets when waiting is over: what the cgroup says, marked partial or pending. */
  #fallback(ref: CgroupContainerRef | undefined, why: string): { k8s: K8sFields; container?: ContainerFields } {
    const apiDown = !!this.cluster && !this.#worthWaiting()
    // without the API only the cgroup can answer: when it did not, say why
    const reason = !this.cluster ? (ref ? 'API server not used' : `API server not used; ${why}`) : !this.#started ? `the API informers were not started: call start() (${why})` : apiDown ? `API server unreachable (${why})` : why
    const pod = ref?.podUid ? this.cluster?.pods.podOrTombstone(ref.podUid) : undefined
    // pending = the cache is live and the pod should show up in it; partial = what we have is all we will get for now
    const state: IdentityState = ref && this.cluster && !apiDown && !pod ? 'pending' : 'partial'
    const k8s: K8sFields = { identity: { state, source: ref?.path ? 'cgroup' : 'none', reason } }
    if (pod) {
      const f = podFields(pod.pod, undefined, this.cluster!.workloads.resolve(pod.pod), 'partial', pod.dead ? 'tombstone' : 'apiserver', reason, this.#o)
      return { k8s: f.k8s, container: ref?.containerId ? { id: ref.containerId, ...(ref.runtime && ref.runtime !== 'unknown' ? { runtime: ref.runtime } : {}) } : undefined }
    }
    if (ref?.podUid) k8s.pod = { uid: ref.podUid }
    const container = ref?.containerId ? { id: ref.containerId, ...(ref.runtime && ref.runtime !== 'unknown' ? { runtime: ref.runtime } : {}) } : undefined
    return { k8s, container }
  }

  /** Releases an event that could not be fully attributed: CRI if available, then partial/pending plus a follow-up. */
  async #giveUp(event: E, key: IdentityKey | undefined, t0: number, known?: CgroupContainerRef): Promise<Enriched<E>> {
    const r = this.#safeResolve(key, known)
    if (r.final) return this.#emitState(event, r.k8s, r.container)
    try {
      return await this.#release(event, key, r, t0)
    } catch (err) {
      this.#s.internalErrors++
      return this.#emitState(event, { identity: { state: 'partial', source: 'none', reason: `enrichment failed: ${(err as Error)?.message ?? err}` } })
    }
  }

  async #release(event: E, key: IdentityKey | undefined, r: Extract<Resolution, { final: false }>, t0: number): Promise<Enriched<E>> {
    let out = this.#fallback(r.ref, r.why)
    if (this.#o.cri && r.ref?.containerId) {
      const info = await this.#criLookup(r.ref.containerId)
      if (info) out = criFields(info, r.ref, this.#o)
    }
    // a follow-up can still come from the API server
    if (this.cluster && !this.#closed && r.ref) this.#awaitFollowUp(event, key, r.ref, t0)
    return this.#emitState(event, out.k8s, out.container)
  }

  async #criLookup(containerId: string): Promise<CriContainerInfo | undefined> {
    this.#s.cri.lookups++
    let timer: NodeJS.Timeout | undefined
    try {
      const timeout = new Promise<undefined>((_, rej) => (timer = setTimeout(() => rej(new Error('CRI lookup timed out')), this.#o.criTimeoutMs ?? 1000)))
      const info = await Promise.race([this.#o.cri!.lookupContainer(containerId), timeout])
      if (info) this.#s.cri.hits++
      return info
    } catch {
      this.#s.cri.errors++
      return undefined
    } finally {
      clearTimeout(timer)
    }
  }

  #awaitFollowUp(event: E, key: IdentityKey | undefined, ref: CgroupContainerRef, t0: number) {
    if (this.#followUps.length >= (this.#o.maxFollowUps ?? 10_000)) {
      this.#s.followUpOverflow++
      return
    }
    const e = event as { type?: string; time?: string; process?: { pid?: number; exec_id?: string }; cgroup?: { id?: string } }
    const eventRef: IdentityResolvedEvent['ref'] = {}
    if (typeof e.type === 'string') eventRef.type = e.type
    if (typeof e.time === 'string') eventRef.time = e.time
    if (e.process) eventRef.process = { pid: e.process.pid, exec_id: e.process.exec_id }
    if (e.cgroup?.id !== undefined) eventRef.cgroup = { id: String(e.cgroup.id) }
    this.#followUps.push({ key, ref, eventRef, t0, expires: Date.now() + (this.#o.followUpTtlMs ?? 10 * 60_000) })
  }

  #emitState(event: E, k8s: K8sFields, container?: ContainerFields): Enriched<E> {
    this.#s.states[k8s.identity.state]++
    const out = { ...event, k8s } as Enriched<E>
    if (container) out.container = container
    // Connection events (HTTP, LLM) carry the socket's 4-tuple: name who is at the other end.
    const remote = this.#o.peers ? (event as { tuple?: { daddr?: unknown } }).tuple?.daddr : undefined
    if (typeof remote === 'string' && remote) out.peer = this.peerFor(remote)
    return out
  }

  /**
   * A pod was added or changed: release held events and send follow-ups that
   * now resolve. Batched per turn of the event loop, so a relist of N pods
   * costs one pass over the queues instead of N.
   */
  #podArrived(_pod: Pod) {
    if (this.#retryScheduled || (!this.#held.length && !this.#followUps.length)) return
    this.#retryScheduled = true
    setImmediate(() => {
      this.#retryScheduled = false
      if (this.#closed) return
      if (this.#held.length) this.#retryHeld(false)
      if (this.#followUps.length) this.#retryFollowUps()
    })
  }
  #retryScheduled = false

  #onTick() {
    if (this.#held.length) this.#retryHeld(true)
    if (this.#followUps.length) {
      // follow-ups resolve on pod arrivals (#podArrived); here they only expire
      const now = Date.now()
      const live = this.#followUps.filter((f) => f.expires > now)
      this.#followUps.splice(0, this.#followUps.length, ...live)
    }
    this.cluster?.pods.prune()
  }

  #retryHeld(expire: boolean) {
    const now = performance.now()
    const keep: Held<E>[] = []
    const live = this.#worthWaiting()
    for (const h of this.#held) {
      const r = this.#safeResolve(h.key, h.ref)
      if (r.final) {
        this.#holdLatency.add(now - h.t0)
        h.resolve(this.#emitState(h.event, r.k8s, r.container))
      } else if ((expire && now >= h.deadline) || !live) {
        this.#holdLatency.add(now - h.t0)
        void this.#giveUp(h.event, h.key, h.t0, h.ref).then(h.resolve)
      } else keep.push(h)
    }
    this.#held.splice(0, this.#held.length, ...keep)
  }

  #retryFollowUps() {
    const keep: FollowUp[] = []
    for (const f of this.#followUps) {
      const r = this.#safeResolve(f.key, f.ref)
      if (r.final && r.k8s.identity.state === 'complete') {
        this.#s.resolved++
        const delay = performance.now() - f.t0
        this.#followLatency.add(delay)
        const ev: IdentityResolvedEvent = { type: 'k8s.identity.resolved', time: new Date().toISOString(), ref: f.eventRef, delay_ms: Math.round(delay), k8s: r.k8s }
        if (r.container) ev.container = r.container
        this.emit('k8s.identity.resolved', ev)
      } else keep.push(f)
    }
    this.#followUps.splice(0, this.#followUps.length, ...keep)
  }
}

/** Fields from the container runtime: no workload or service account, so at most partial. */
function criFields(info: CriContainerInfo, ref: CgroupContainerRef, o: IdentityOptions): { k8s: K8sFields; container: ContainerFields } {
  const k8s: K8sFields = {
    identity: { state: 'partial', source: 'cri', reason: 'from the container runtime: no workload or service account' },
    pod: { name: info.podName, uid: info.podUid },
    namespace: { name: info.namespace },
  }
  if (o.labels !== false) k8s.pod!.labels = { ...info.labels }
  if (o.annotations && info.annotations) k8s.pod!.annotations = { ...info.annotations }
  if (info.containerName) k8s.container = { name: info.containerName }
  const container: ContainerFields = { id: info.containerId }
  const runtime = info.runtime || (ref.runtime !== 'unknown' ? ref.runtime : undefined)
  if (runtime) container.runtime = runtime
  const image = parseImage(info.image)
  if (image) container.image = image
  return { k8s, container }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}
