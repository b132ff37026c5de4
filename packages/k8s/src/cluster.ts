/**
 * The enricher's view of the API server: a node-scoped pod informer (full
 * pods, indexed by UID and container id) and, when peer identity is on,
 * cluster-wide slim pod / Service / EndpointSlice informers.
 */
import { KubeConfig } from '@kubernetes/client-node'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Reflector, type BackoffOptions, type ReflectorHealth } from './api/reflector.js'
import { KubeTransport, type TransportOptions } from './api/transport.js'
import type { Logger } from './log.js'
import { checkNumber } from './options.js'
import { PodIndex, type PodIndexOptions } from './metadata/pod-index.js'
import { WorkloadResolver } from './metadata/workload.js'
import { PeerIndex, slimEndpointSlice, slimPod, slimService } from './peers.js'
import type { EndpointSlice, Pod, Service } from './types.js'

/** Which cluster to talk to. */
export type KubeConfigSource =
  /** KUBECONFIG, ~/.kube/config, else in-cluster (client-node loadFromDefault) */
  | 'default'
  /** the pod's service account (KUBERNETES_SERVICE_HOST + /var/run/secrets/...) */
  | 'in-cluster'
  | { file: string }
  | KubeConfig

export class K8sConfigError extends Error {
  override readonly name = 'K8sConfigError'
}

export function loadKubeConfig(source: KubeConfigSource = 'default'): KubeConfig {
  if (source instanceof KubeConfig) return source
  const kc = new KubeConfig()
  if (source === 'default') {
    // client-node's default falls back to http://localhost:8080 when it finds nothing: say so instead
    const home = join(homedir(), '.kube', 'config')
    if (!process.env.KUBECONFIG && !existsSync(home) && !process.env.KUBERNETES_SERVICE_HOST) {
      throw new K8sConfigError(`no kubeconfig found: $KUBECONFIG is unset, ${home} does not exist and this is not a pod (no $KUBERNETES_SERVICE_HOST); pass kubeConfig: { file: '/path/to/kubeconfig' }`)
    }
    kc.loadFromDefault()
  }
  else if (source === 'in-cluster') {
    if (!process.env.KUBERNETES_SERVICE_HOST) throw new K8sConfigError('in-cluster config requested but KUBERNETES_SERVICE_HOST is not set (not running in a pod?)')
    kc.loadFromCluster()
  } else if (source !== null && typeof source === 'object' && typeof source.file === 'string') {
    if (!existsSync(source.file)) throw new K8sConfigError(`kubeconfig file not found: ${source.file}`)
    try {
      kc.loadFromFile(source.file)
    } catch (err) {
      throw new K8sConfigError(`kubeconfig ${source.file} cannot be loaded: ${(err as Error).message}`)
    }
  } else {
    const hint = typeof source === 'string' ? ` (to load a file, pass { file: ${JSON.stringify(source)} })` : ''
    throw new K8sConfigError(`unknown kubeConfig option: ${JSON.stringify(source)}${hint}`)
  }
  if (!kc.getCurrentCluster()) throw new K8sConfigError('the kubeconfig has no current cluster')
  return kc
}

export interface ClusterCacheOptions extends TransportOptions, PodIndexOptions {
  kubeConfig?: KubeConfigSource
  /** only pods on this node (fieldSelector spec.nodeName=…); default $NODE_NAME; unset = every pod (dev only) */
  nodeName?: string
  /** GET the owner ReplicaSet/Job when the workload heuristic cannot decide (default true) */
  ownerLookups?: boolean
  /** watch all pods, Services and EndpointSlices for peerFor() (default false: three cluster-wide watches) */
  peers?: boolean
  /** keep pod annotations in the cache (only when events should carry them) */
  annotations?: boolean
  backoff?: BackoffOptions
  logger: Logger
}

/** Keep only what enrichment reads: a pod in the cache is ~5x smaller than the API object. */
export function slimNodePod(keepAnnotations: boolean): (p: Pod) => Pod {
  const c = (l?: Array<{ name: string; image?: string; containerID?: string }>) => l?.map((x) => ({ name: x.name, image: x.image, containerID: x.containerID }))
  return (p) => ({
    metadata: {
      name: p.metadata.name,
      namespace: p.metadata.namespace,
      uid: p.metadata.uid,
      resourceVersion: p.metadata.resourceVersion,
      labels: p.metadata.labels,
      annotations: keepAnnotations ? p.metadata.annotations : undefined,
      ownerReferences: p.metadata.ownerReferences?.map((o) => ({ kind: o.kind, name: o.name, controller: o.controller })),
    },
    spec: {
      nodeName: p.spec?.nodeName,
      serviceAccountName: p.spec?.serviceAccountName,
      hostNetwork: p.spec?.hostNetwork,
      containers: c(p.spec?.containers),
      initContainers: c(p.spec?.initContainers),
      ephemeralContainers: c(p.spec?.ephemeralContainers),
    },
    status: {
      phase: p.status?.phase,
      podIP: p.status?.podIP,
      podIPs: p.status?.podIPs,
      containerStatuses: c(p.status?.containerStatuses),
      initContainerStatuses: c(p.status?.initContainerStatuses),
      ephemeralContainerStatuses: c(p.status?.ephemeralContainerStatuses),
    },
  })
}

export class ClusterCache {
  readonly transport: KubeTransport
  readonly pods: PodIndex
  readonly peers = new PeerIndex()
  readonly workloads: WorkloadResolver
  readonly nodeName?: string
  readonly #podReflector: Reflector<Pod>
  readonly #peerReflectors: Reflector<any>[] = []

  constructor(options: ClusterCacheOptions) {
    const initialMs = checkNumber('backoff.initialMs', options.backoff?.initialMs, 1) ?? 500
    checkNumber('backoff.maxMs', options.backoff?.maxMs, initialMs)
    checkNumber('requestTimeoutMs', options.requestTimeoutMs, 1)
    const kc = loadKubeConfig(options.kubeConfig)
    this.transport = new KubeTransport(kc, options)
    this.pods = new PodIndex(options)
    this.workloads = new WorkloadResolver(options.ownerLookups === false ? undefined : this.transport)
    this.nodeName = options.nodeName ?? process.env.NODE_NAME ?? undefined
    if (!this.nodeName) options.logger.warn('[bpfkit/k8s] no nodeName option and no $NODE_NAME: watching every pod in the cluster (set NODE_NAME from spec.nodeName in a DaemonSet)')
    const common = { backoff: options.backoff, logger: options.logger }
    this.#podReflector = new Reflector<Pod>(
      this.transport,
      {
        ...common,
        name: this.nodeName ? `pods on ${this.nodeName}` : 'pods',
        path: '/api/v1/pods',
        fieldSelector: this.nodeName ? `spec.nodeName=${this.nodeName}` : undefined,
        slim: slimNodePod(options.annotations === true),
      },
      {
        add: (p) => this.#podChanged(p),
        update: (p) => this.#podChanged(p),
        delete: (p) => this.pods.remove(p),
      },
    )
    if (options.peers) {
      this.#peerReflectors.push(
        new Reflector<Pod>(this.transport, { ...common, name: 'pods (peers)', path: '/api/v1/pods', slim: slimPod }, {
          add: (p) => this.peers.upsertPod(p),
          update: (p) => this.peers.upsertPod(p),
          delete: (p) => this.peers.removePod(p),
        }),
        new Reflector<Service>(this.transport, { ...common, name: 'services', path: '/api/v1/services', slim: slimService }, {
          add: (s) => this.peers.upsertService(s),
          update: (s) => this.peers.upsertService(s),
          delete: (s) => this.peers.removeService(s),
        }),
        new Reflector<EndpointSlice>(this.transport, { ...common, name: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', slim: slimEndpointSlice }, {
          add: (e) => this.peers.upsertSlice(e),
          update: (e) => this.peers.upsertSlice(e),
          delete: (e) => this.peers.removeSlice(e),
        }),
      )
    }
  }

  #podChanged(p: Pod) {
    this.pods.upsert(p)
    // warm the owner cache so the first event of the pod already has the workload
    void this.workloads.lookup(p)
  }

  start(): void {
    this.#podReflector.start()
    for (const r of this.#peerReflectors) r.start()
  }

  /** Resolves when every informer has listed once, or after timeoutMs (then false). */
  async synced(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const all = Promise.all([this.#podReflector, ...this.#peerReflectors].map((r) => r.synced())).then(() => true)
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))
    try {
      return await Promise.race([all, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** The pod cache reflects the server right now (listed once and the last request succeeded). */
  get live(): boolean {
    const h = this.#podReflector.health()
    return h.synced && h.connected
  }

  /** The pod cache has never been filled (startup): worth waiting for. */
  get starting(): boolean {
    const h = this.#podReflector.health()
    return !h.synced && h.errors === 0
  }

  health(): ReflectorHealth[] {
    return [this.#podReflector, ...this.#peerReflectors].map((r) => r.health())
  }

  stop(): void {
    this.#podReflector.stop()
    for (const r of this.#peerReflectors) r.stop()
  }
}
