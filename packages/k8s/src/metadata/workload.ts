/**
 * The workload that owns a pod (Deployment, StatefulSet, DaemonSet, CronJob, ...).
 *
 * Heuristics first, with zero API calls (as Tetragon and Istio do):
 * - ReplicaSet named "<deployment>-<pod-template-hash>" → Deployment
 * - Job named "<cronjob>-<scheduled time in minutes>" → CronJob
 * - StatefulSet, DaemonSet and other owners are the workload themselves.
 * Only when a heuristic cannot decide (a ReplicaSet without the hash in its
 * name, a Job without the time suffix: custom controllers, Argo Rollouts…)
 * is the owner's own ownerReference fetched, once per owner, and cached. The
 * DaemonSet manifest does not grant replicasets/jobs get, so a 403 keeps the
 * heuristic answer and is counted, not retried per event.
 */
import type { OwnerReference, Pod, WorkloadKind } from '../types.js'
import type { KubeTransport } from '../api/transport.js'
import { TtlCache } from './ttl-cache.js'

export interface Workload {
  kind: WorkloadKind
  name: string
  /** the direct owner when it is not the workload (the ReplicaSet of a Deployment, the Job of a CronJob) */
  via?: { kind: 'ReplicaSet' | 'Job'; name: string }
}

/** A guess plus whether an API lookup could improve it. */
export interface WorkloadGuess extends Workload {
  certain: boolean
}

const CRONJOB_JOB = /^(.+)-\d{8,10}$/

function controllerOf(pod: Pod): OwnerReference | undefined {
  const refs = pod.metadata.ownerReferences ?? []
  return refs.find((r) => r.controller) ?? refs[0]
}

/** The workload of a pod from its metadata alone. */
export function guessWorkload(pod: Pod): WorkloadGuess {
  const owner = controllerOf(pod)
  if (!owner) return { kind: 'Pod', name: pod.metadata.name, certain: true }
  if (owner.kind === 'ReplicaSet') {
    const hash = pod.metadata.labels?.['pod-template-hash']
    if (hash && owner.name.endsWith(`-${hash}`) && owner.name.length > hash.length + 1) {
      return { kind: 'Deployment', name: owner.name.slice(0, -(hash.length + 1)), via: { kind: 'ReplicaSet', name: owner.name }, certain: true }
    }
    return { kind: 'ReplicaSet', name: owner.name, certain: false }
  }
  if (owner.kind === 'Job') {
    const m = CRONJOB_JOB.exec(owner.name)
    if (m) return { kind: 'CronJob', name: m[1]!, via: { kind: 'Job', name: owner.name }, certain: true }
    return { kind: 'Job', name: owner.name, certain: false }
  }
  return { kind: owner.kind, name: owner.name, certain: true }
}

export interface WorkloadStats {
  /** answers from the heuristic alone */
  heuristic: number
  /** owner GETs sent */
  lookups: number
  /** owner GETs refused (403: the RBAC does not grant it) — the heuristic answer is kept */
  denied: number
  /** owner GETs that failed otherwise (404, 5xx, timeouts) */
  lookupErrors: number
}

/** Resolves workloads, caching owner lookups per (namespace, kind, name). */
export class WorkloadResolver {
  readonly stats: WorkloadStats = { heuristic: 0, lookups: 0, denied: 0, lookupErrors: 0 }
  readonly #transport?: KubeTransport
  readonly #cache = new TtlCache<string, Workload>(10 * 60_000, 10_000)
  readonly #inflight = new Map<string, Promise<void>>()
  readonly #certain = new WeakMap<Pod, Workload>()

  /** Without a transport (or with lookups off) only the heuristic is used. */
  constructor(transport?: KubeTransport) {
    this.#transport = transport
  }

  /** Best answer available now (never waits); starts a lookup in the background when useful. */
  resolve(pod: Pod): Workload {
    // the same pod object always gets the same answer from the heuristic: compute it once
    const known = this.#certain.get(pod)
    if (known) return known
    const guess = guessWorkload(pod)
    if (guess.certain || !this.#transport) {
      this.stats.heuristic++
      const w = strip(guess)
      this.#certain.set(pod, w)
      return w
    }
    const key = `${pod.metadata.namespace}/${guess.kind}/${guess.name}`
    const cached = this.#cache.get(key)
    if (cached !== undefined) return cached
    this.stats.heuristic++
    void this.lookup(pod)
    return strip(guess)
  }

  /** Fetches the owner's ownerReference (resolves when the cache is filled; never rejects). */
  lookup(pod: Pod): Promise<void> {
    const guess = guessWorkload(pod)
    const ns = pod.metadata.namespace ?? 'default'
    const key = `${ns}/${guess.kind}/${guess.name}`
    if (guess.certain || !this.#transport || this.#cache.get(key) !== undefined) return Promise.resolve()
    const running = this.#inflight.get(key)
    if (running) return running
    const path =
      guess.kind === 'ReplicaSet' ? `/apis/apps/v1/namespaces/${ns}/replicasets/${encodeURIComponent(guess.name)}` : `/apis/batch/v1/namespaces/${ns}/jobs/${encodeURIComponent(guess.name)}`
    this.stats.lookups++
    const p = this.#transport
      .getJson<{ metadata?: { ownerReferences?: OwnerReference[] } }>(path)
      .then((owner) => {
        const refs = owner.metadata?.ownerReferences ?? []
        const top = refs.find((r) => r.controller) ?? refs[0]
        const via = { kind: guess.kind as 'ReplicaSet' | 'Job', name: guess.name }
        this.#cache.set(key, top ? { kind: top.kind, name: top.name, via } : strip(guess))
      })
      .catch((err: { statusCode?: number }) => {
        if (err?.statusCode === 403 || err?.statusCode === 401) this.stats.denied++
        else this.stats.lookupErrors++
        // remember the failure for a while: one refused GET per owner, not one per event
        this.#cache.set(key, strip(guess), err?.statusCode === 403 ? 10 * 60_000 : 30_000)
      })
      .finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, p)
    return p
  }
}

function strip(g: WorkloadGuess): Workload {
  return g.via ? { kind: g.kind, name: g.name, via: g.via } : { kind: g.kind, name: g.name }
}
