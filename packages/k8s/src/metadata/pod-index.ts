/**
 * The node's pods, indexed by pod UID and by container id, plus a tombstone
 * cache of deleted pods so events that arrive after the delete still resolve.
 */
import type { ContainerStatus, Pod } from '../types.js'
import { TtlCache } from './ttl-cache.js'

/** A container as the pod status lists it. */
export interface ContainerEntry {
  id: string
  /** runtime named by the containerID prefix ("containerd", "cri-o", "docker") */
  runtime?: string
  name: string
  /** image reference from the pod spec (what the user wrote), else from the status */
  image?: string
  podUid: string
}

export interface PodIndexOptions {
  /** how long deleted pods stay resolvable, ms (default 5 min) */
  tombstoneTtlMs?: number
  /** most tombstones kept (default 4096) */
  maxTombstones?: number
}

/** "containerd://abc…" → { runtime: "containerd", id: "abc…" } */
export function parseContainerId(containerID: string | undefined): { id: string; runtime?: string } | undefined {
  if (!containerID) return undefined
  const m = /^([a-z0-9.-]+):\/\/(.+)$/i.exec(containerID)
  const id = (m ? m[2]! : containerID).trim().toLowerCase()
  if (!id) return undefined
  return { id, runtime: m?.[1]?.toLowerCase() }
}

export class PodIndex {
  readonly #byUid = new Map<string, Pod>()
  readonly #byContainer = new Map<string, ContainerEntry>()
  readonly #uidByName = new Map<string, string>()
  readonly #deadPods: TtlCache<string, Pod>
  readonly #deadContainers: TtlCache<string, ContainerEntry>
  /** called after a pod is added or updated (the enricher resolves held events) */
  onPod?: (pod: Pod) => void

  constructor(options: PodIndexOptions = {}) {
    const ttl = options.tombstoneTtlMs ?? 5 * 60_000
    const max = options.maxTombstones ?? 4096
    this.#deadPods = new TtlCache(ttl, max)
    this.#deadContainers = new TtlCache(ttl, max * 4)
  }

  get size(): number {
    return this.#byUid.size
  }
  get containers(): number {
    return this.#byContainer.size
  }
  get tombstones(): number {
    return this.#deadPods.size
  }

  /** Live pod by UID. */
  pod(uid: string): Pod | undefined {
    return this.#byUid.get(uid)
  }

  /** Live or deleted pod by UID; `dead` tells which. */
  podOrTombstone(uid: string): { pod: Pod; dead: boolean } | undefined {
    const live = this.#byUid.get(uid)
    if (live) return { pod: live, dead: false }
    const dead = this.#deadPods.get(uid)
    return dead ? { pod: dead, dead: true } : undefined
  }

  /** Live or deleted container by its full id (as cgroup paths carry it). */
  container(id: string): { entry: ContainerEntry; dead: boolean } | undefined {
    const live = this.#byContainer.get(id)
    if (live) return { entry: live, dead: false }
    const dead = this.#deadContainers.get(id)
    return dead ? { entry: dead, dead: true } : undefined
  }

  /** All live pods (for tests and metrics). */
  pods(): IterableIterator<Pod> {
    return this.#byUid.values()
  }

  upsert(pod: Pod): void {
    const uid = pod.metadata?.uid
    if (!uid) return
    // A relist after a gap can replace a pod by a same-named successor (StatefulSets) without a delete.
    const name = `${pod.metadata.namespace}/${pod.metadata.name}`
    const previousUid = this.#uidByName.get(name)
    if (previousUid && previousUid !== uid) {
      const previous = this.#byUid.get(previousUid)
      if (previous) this.remove(previous)
    }
    this.#uidByName.set(name, uid)
    const old = this.#byUid.get(uid)
    if (old) for (const c of containersOf(old)) this.#byContainer.delete(c.id)
    this.#byUid.set(uid, pod)
    this.#deadPods.delete(uid)
    for (const c of containersOf(pod)) this.#byContainer.set(c.id, c)
    this.onPod?.(pod)
  }

  remove(pod: Pod): void {
    const uid = pod.metadata?.uid
    if (!uid) return
    // the delete event carries the final state; prefer it over the cached one
    const last = this.#byUid.get(uid) ?? pod
    const podContainers = containersOf(pod)
    const lastContainers = last === pod ? podContainers : containersOf(last)
    const [final, finalContainers] = podContainers.length >= lastContainers.length ? [pod, podContainers] : [last, lastContainers]
    for (const c of lastContainers) this.#byContainer.delete(c.id)
    this.#byUid.delete(uid)
    const name = `${pod.metadata.namespace}/${pod.metadata.name}`
    if (this.#uidByName.get(name) === uid) this.#uidByName.delete(name)
    this.#deadPods.set(uid, final)
    for (const c of finalContainers) this.#deadContainers.set(c.id, c)
  }

  prune(): void {
    this.#deadPods.prune()
    this.#deadContainers.prune()
  }
}

/** Every container of a pod that has an id: app, init and ephemeral containers. */
export function containersOf(pod: Pod): ContainerEntry[] {
  const out: ContainerEntry[] = []
  const specImage = new Map<string, string | undefined>()
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []), ...(pod.spec?.ephemeralContainers ?? [])]) specImage.set(c.name, c.image)
  const add = (list: ContainerStatus[] | undefined) => {
    for (const s of list ?? []) {
      const parsed = parseContainerId(s.containerID)
      if (!parsed || !s.name) continue
      out.push({ id: parsed.id, runtime: parsed.runtime, name: s.name, image: specImage.get(s.name) ?? s.image, podUid: pod.metadata.uid })
    }
  }
  add(pod.status?.containerStatuses)
  add(pod.status?.initContainerStatuses)
  add(pod.status?.ephemeralContainerStatuses)
  return out
}
