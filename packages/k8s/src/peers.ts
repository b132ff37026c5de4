/**
 * Who is behind a network address: a pod, a Service (ClusterIP), or
 * something outside the cluster. Fed by cluster-wide pod, Service and
 * EndpointSlice informers whose objects are slimmed to the few fields used
 * here (as Inspektor Gadget's kubeipresolver does), so memory stays small.
 */
import type { EndpointSlice, Pod, Service } from './types.js'

/** The identity of a network peer. */
export type Peer =
  | { kind: 'pod'; ip: string; k8s: { pod: { name: string; uid: string; labels?: Record<string, string> }; namespace: { name: string }; service?: { name: string } } }
  | { kind: 'service'; ip: string; k8s: { service: { name: string }; namespace: { name: string } } }
  | { kind: 'external'; ip: string }

/** Keep only what peer lookups read. */
export function slimPod(p: Pod): Pod {
  return {
    metadata: { name: p.metadata.name, namespace: p.metadata.namespace, uid: p.metadata.uid, resourceVersion: p.metadata.resourceVersion, labels: p.metadata.labels },
    spec: { hostNetwork: p.spec?.hostNetwork },
    status: { podIP: p.status?.podIP, podIPs: p.status?.podIPs },
  }
}

export function slimService(s: Service): Service {
  return {
    metadata: { name: s.metadata.name, namespace: s.metadata.namespace, uid: s.metadata.uid, resourceVersion: s.metadata.resourceVersion },
    spec: { clusterIP: s.spec?.clusterIP, clusterIPs: s.spec?.clusterIPs },
  }
}

export function slimEndpointSlice(e: EndpointSlice): EndpointSlice {
  return {
    metadata: {
      name: e.metadata.name,
      namespace: e.metadata.namespace,
      uid: e.metadata.uid,
      resourceVersion: e.metadata.resourceVersion,
      labels: e.metadata.labels?.['kubernetes.io/service-name'] ? { 'kubernetes.io/service-name': e.metadata.labels['kubernetes.io/service-name'] } : undefined,
    },
    endpoints: (e.endpoints ?? []).map((ep) => ({ addresses: ep.addresses })),
  }
}

function podIps(p: Pod): string[] {
  const ips = new Set<string>()
  if (p.status?.podIP) ips.add(p.status.podIP)
  for (const x of p.status?.podIPs ?? []) if (x?.ip) ips.add(x.ip)
  return [...ips]
}

function serviceIps(s: Service): string[] {
  const ips = new Set<string>()
  const c = s.spec?.clusterIP
  if (c && c !== 'None') ips.add(c)
  for (const x of s.spec?.clusterIPs ?? []) if (x && x !== 'None') ips.add(x)
  return [...ips]
}

/** IP → pod / Service indexes, updated by informer callbacks. */
export class PeerIndex {
  readonly #podByIp = new Map<string, Pod>()
  readonly #podIps = new Map<string, string[]>()
  readonly #svcByIp = new Map<string, Service>()
  readonly #svcIps = new Map<string, string[]>()
  /** backend IP → "namespace/service" from EndpointSlices */
  readonly #backend = new Map<string, string>()
  readonly #sliceIps = new Map<string, string[]>()
  readonly stats = { lookups: 0, pods: 0, services: 0, external: 0 }

  get sizes() {
    return { podIps: this.#podByIp.size, serviceIps: this.#svcByIp.size, backendIps: this.#backend.size }
  }

  upsertPod(p: Pod): void {
    this.removePod(p)
    if (p.spec?.hostNetwork) return // its IP is the node's: it would mislabel every host-network peer
    const ips = podIps(p)
    for (const ip of ips) this.#podByIp.set(ip, p)
    this.#podIps.set(p.metadata.uid, ips)
  }

  removePod(p: Pod): void {
    for (const ip of this.#podIps.get(p.metadata.uid) ?? []) if (this.#podByIp.get(ip)?.metadata.uid === p.metadata.uid) this.#podByIp.delete(ip)
    this.#podIps.delete(p.metadata.uid)
  }

  upsertService(s: Service): void {
    this.removeService(s)
    const ips = serviceIps(s)
    for (const ip of ips) this.#svcByIp.set(ip, s)
    this.#svcIps.set(s.metadata.uid, ips)
  }

  removeService(s: Service): void {
    for (const ip of this.#svcIps.get(s.metadata.uid) ?? []) if (this.#svcByIp.get(ip)?.metadata.uid === s.metadata.uid) this.#svcByIp.delete(ip)
    this.#svcIps.delete(s.metadata.uid)
  }

  upsertSlice(e: EndpointSlice): void {
    this.removeSlice(e)
    const svc = e.metadata.labels?.['kubernetes.io/service-name']
    if (!svc) return
    const ips = (e.endpoints ?? []).flatMap((ep) => ep.addresses ?? [])
    for (const ip of ips) this.#backend.set(ip, `${e.metadata.namespace}/${svc}`)
    this.#sliceIps.set(e.metadata.uid, ips)
  }

  removeSlice(e: EndpointSlice): void {
    const svc = `${e.metadata.namespace}/${e.metadata.labels?.['kubernetes.io/service-name']}`
    for (const ip of this.#sliceIps.get(e.metadata.uid) ?? []) if (this.#backend.get(ip) === svc) this.#backend.delete(ip)
    this.#sliceIps.delete(e.metadata.uid)
  }

  /** Identity of an IPv4/IPv6 address (IPv4-mapped IPv6 is unwrapped). */
  peerFor(address: string): Peer {
    this.stats.lookups++
    const ip = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
    const pod = this.#podByIp.get(ip)
    if (pod) {
      this.stats.pods++
      const m = pod.metadata
      const backend = this.#backend.get(ip)
      const peer: Peer = { kind: 'pod', ip, k8s: { pod: { name: m.name, uid: m.uid }, namespace: { name: m.namespace ?? 'default' } } }
      if (m.labels) peer.k8s.pod.labels = { ...m.labels }
      if (backend && backend.startsWith(`${m.namespace}/`)) peer.k8s.service = { name: backend.slice(backend.indexOf('/') + 1) }
      return peer
    }
    const svc = this.#svcByIp.get(ip)
    if (svc) {
      this.stats.services++
      return { kind: 'service', ip, k8s: { service: { name: svc.metadata.name }, namespace: { name: svc.metadata.namespace ?? 'default' } } }
    }
    this.stats.external++
    return { kind: 'external', ip }
  }
}
