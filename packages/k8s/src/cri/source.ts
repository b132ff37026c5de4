/**
 * Container → pod facts from the node's container runtime over the CRI gRPC
 * API (containerd, CRI-O). This is the source to use when the agent may not
 * talk to the API server, and it knows a container the moment it is created,
 * before any informer has seen the pod.
 *
 * One lookup makes ContainerStatus (container name, image name) and
 * ListContainers filtered by id (its sandbox id) calls in parallel, then
 * PodSandboxStatus for the pod's name, namespace, UID and labels; sandboxes
 * and results are cached. Every call has a deadline. A container the runtime
 * does not know resolves to undefined; every other failure rejects with a
 * CriError whose code says why, and after 'unavailable' further lookups fail
 * fast for `retryAfterMs` instead of queueing on a dead socket.
 */
import { statSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import { K8sConfigError } from '../cluster.js'
import { CriError, type CriErrorCode } from './errors.js'
import {
  runtimeServiceClient,
  type CriContainer,
  type CriContainerStatus,
  type CriPodSandboxStatus,
  type CriVersionResponse,
} from './proto.js'
import type { ContainerSource, CriContainerInfo } from './types.js'

/** Where kubelet's runtimes listen, probed in this order when no socket is given. */
export const DEFAULT_CRI_SOCKETS: readonly string[] = [
  '/run/containerd/containerd.sock',
  '/var/run/crio/crio.sock',
  '/run/k3s/containerd/containerd.sock',
]

export interface CriSourceOptions {
  /** unix socket of the runtime; default: the first of DEFAULT_CRI_SOCKETS that exists */
  socketPath?: string
  /** deadline of each gRPC call (default 2000 ms) */
  timeoutMs?: number
  /** how long a found container stays cached (default 300000 ms) */
  cacheTtlMs?: number
  /** how long "the runtime does not know this id" stays cached (default 10000 ms) */
  notFoundTtlMs?: number
  /** most containers (and, separately, sandboxes) cached (default 4096) */
  maxCacheEntries?: number
  /** after an 'unavailable' error, fail fast for this long (default 1000 ms) */
  retryAfterMs?: number
  /**
   * Copy pod annotations into results (default false: annotations often
   * carry configuration, sometimes secrets; kubectl's last-applied
   * configuration is always dropped).
   */
  includeAnnotations?: boolean
}

export interface CriSourceStats {
  socketPath: string | undefined
  lookups: number
  cacheHits: number
  notFound: number
  calls: number
  /** lookups refused without a call while the runtime was unavailable */
  fastFailures: number
  errors: Record<CriErrorCode, number>
  cacheSize: number
}

const HEX64 = /^[0-9a-f]{64}$/
/** Labels the runtime and kubelet add for their own bookkeeping, not the pod's labels. */
const BOOKKEEPING_LABEL_PREFIXES = ['io.kubernetes.', 'io.cri-containerd.']
const DROPPED_ANNOTATIONS = new Set(['kubectl.kubernetes.io/last-applied-configuration'])

/** How grpc-js exposes a unary method on a client built from a package definition. */
type UnaryMethod<T> = (
  request: object,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: T) => void,
) => grpc.ClientUnaryCall

interface Cached<T> {
  value: T
  expires: number
}

/** First existing unix socket among the candidates, or undefined. */
export function findCriSocket(candidates: readonly string[] = DEFAULT_CRI_SOCKETS): string | undefined {
  return candidates.find((path) => {
    try {
      return statSync(path, { throwIfNoEntry: false })?.isSocket() ?? false
    } catch {
      return false
    }
  })
}

export class CriContainerSource implements ContainerSource {
  readonly socketPath: string | undefined
  private readonly timeoutMs: number
  private readonly cacheTtlMs: number
  private readonly notFoundTtlMs: number
  private readonly maxCacheEntries: number
  private readonly retryAfterMs: number
  private readonly includeAnnotations: boolean
  private client: grpc.Client | undefined
  private closed = false
  private runtimeName: Promise<string> | undefined
  private unavailable: { until: number; error: CriError } | undefined
  private readonly containers = new Map<string, Cached<CriContainerInfo | undefined>>()
  private readonly sandboxes = new Map<string, Cached<CriPodSandboxStatus | undefined>>()
  private readonly inflight = new Map<string, Promise<CriContainerInfo | undefined>>()
  private readonly counters = { lookups: 0, cacheHits: 0, notFound: 0, calls: 0, fastFailures: 0 }
  private readonly errorCounts: Record<CriErrorCode, number> = {
    unavailable: 0,
    timeout: 0,
    unsupported: 0,
    protocol: 0,
    runtime: 0,
    'invalid-id': 0,
    closed: 0,
  }

  constructor(options: CriSourceOptions = {}) {
    if (options.socketPath !== undefined && (typeof options.socketPath !== 'string' || options.socketPath === '')) {
      throw new K8sConfigError(`socketPath must be a non-empty path to the CRI runtime's socket, got ${JSON.stringify(options.socketPath)}`)
    }
    this.socketPath = options.socketPath ?? findCriSocket()
    this.timeoutMs = positive(options.timeoutMs, 2000)
    this.cacheTtlMs = positive(options.cacheTtlMs, 300_000)
    this.notFoundTtlMs = positive(options.notFoundTtlMs, 10_000)
    this.maxCacheEntries = positive(options.maxCacheEntries, 4096)
    this.retryAfterMs = Math.max(0, options.retryAfterMs ?? 1000)
    this.includeAnnotations = options.includeAnnotations ?? false
  }

  /** The container and its pod, or undefined when the runtime does not know the id. Rejects with CriError. */
  lookupContainer(containerId: string): Promise<CriContainerInfo | undefined> {
    this.counters.lookups++
    try {
      const id = this.checkId(containerId)
      const cached = this.containers.get(id)
      if (cached && cached.expires > Date.now()) {
        this.counters.cacheHits++
        return Promise.resolve(cached.value)
      }
      const pending = this.inflight.get(id)
      if (pending) return pending
      const lookup = this.fetchContainer(id).finally(() => this.inflight.delete(id))
      this.inflight.set(id, lookup)
      return lookup
    } catch (error) {
      return Promise.reject(error)
    }
  }

  stats(): CriSourceStats {
    return {
      socketPath: this.socketPath,
      ...this.counters,
      errors: { ...this.errorCounts },
      cacheSize: this.containers.size,
    }
  }

  close(): void {
    this.closed = true
    this.client?.close()
    this.client = undefined
    this.containers.clear()
    this.sandboxes.clear()
  }

  private checkId(containerId: string): string {
    if (this.closed) throw this.count(new CriError('closed', 'the CRI source is closed'))
    const id = typeof containerId === 'string' ? containerId.toLowerCase() : ''
    if (!HEX64.test(id)) {
      throw this.count(new CriError('invalid-id', `not a 64-hex container id: ${JSON.stringify(String(containerId).slice(0, 80))}`))
    }
    if (this.socketPath === undefined) {
      throw this.count(new CriError('unavailable', `no CRI socket found (tried ${DEFAULT_CRI_SOCKETS.join(', ')})`))
    }
    if (this.unavailable && this.unavailable.until > Date.now()) {
      this.counters.fastFailures++
      throw this.unavailable.error
    }
    return id
  }

  private async fetchContainer(id: string): Promise<CriContainerInfo | undefined> {
    try {
      const [status, listed, runtime] = await Promise.all([
        // verbose stays false (the proto3 default): the verbose info map is large and runtime-specific.
        this.call<{ status: CriContainerStatus | null }>('ContainerStatus', { container_id: id }, true),
        this.call<{ containers: CriContainer[] }>('ListContainers', { filter: { id } }, false),
        this.runtime(),
      ])
      const container = listed?.containers.find((c) => c.id === id)
      const containerStatus = status?.status ?? undefined
      let info: CriContainerInfo | undefined
      if (container || containerStatus) {
        const sandbox = container?.pod_sandbox_id ? await this.sandbox(container.pod_sandbox_id) : undefined
        info = this.toInfo(id, runtime, containerStatus, container, sandbox)
      } else {
        // Sandbox ids are container ids too: the pause container's cgroup is named by it.
        const sandbox = await this.sandbox(id)
        info = sandbox ? this.toInfo(id, runtime, undefined, undefined, sandbox) : undefined
      }
      if (!info) this.counters.notFound++
      this.remember(this.containers, id, info, info ? this.cacheTtlMs : this.notFoundTtlMs)
      return info
    } catch (error) {
      throw this.count(error instanceof CriError ? error : new CriError('runtime', String(error), undefined, { cause: error }))
    }
  }

  private async sandbox(sandboxId: string): Promise<CriPodSandboxStatus | undefined> {
    const cached = this.sandboxes.get(sandboxId)
    if (cached && cached.expires > Date.now()) return cached.value
    const response = await this.call<{ status: CriPodSandboxStatus | null }>(
      'PodSandboxStatus',
      { pod_sandbox_id: sandboxId },
      true,
    )
    const status = response?.status ?? undefined
    this.remember(this.sandboxes, sandboxId, status, status ? this.cacheTtlMs : this.notFoundTtlMs)
    return status
  }

  /** runtime_name from Version, asked once; the socket name when the runtime does not say. */
  private runtime(): Promise<string> {
    this.runtimeName ??= this.call<CriVersionResponse>('Version', { version: '0.1.0' }, false).then(
      (version) => version?.runtime_name || guessRuntime(this.socketPath!),
    )
    // A failed Version call is asked again by the next lookup.
    this.runtimeName.catch(() => (this.runtimeName = undefined))
    return this.runtimeName
  }

  private toInfo(
    id: string,
    runtime: string,
    status: CriContainerStatus | undefined,
    container: CriContainer | undefined,
    sandbox: CriPodSandboxStatus | undefined,
  ): CriContainerInfo {
    const containerLabels = { ...container?.labels, ...status?.labels }
    const podName = sandbox?.metadata?.name || containerLabels['io.kubernetes.pod.name']
    const namespace = sandbox?.metadata?.namespace || containerLabels['io.kubernetes.pod.namespace']
    const podUid = sandbox?.metadata?.uid || containerLabels['io.kubernetes.pod.uid']
    if (!podName || !namespace || !podUid) {
      throw new CriError('protocol', `runtime returned container ${id} without pod name, namespace and UID`)
    }
    const info: CriContainerInfo = {
      containerId: id,
      podUid,
      podName,
      namespace,
      labels: podLabels(sandbox?.labels ?? {}),
      runtime,
    }
    const containerName =
      status?.metadata?.name || container?.metadata?.name || containerLabels['io.kubernetes.container.name']
    if (containerName) info.containerName = containerName
    const image = status?.image?.image || container?.image?.image || status?.image_ref || container?.image_ref
    if (image) info.image = image
    if (this.includeAnnotations && sandbox) info.annotations = podAnnotations(sandbox.annotations)
    return info
  }

  /** One unary call with a deadline; resolves undefined for NOT_FOUND when `notFoundIsEmpty`. */
  private call<T>(method: string, request: object, notFoundIsEmpty: boolean): Promise<T | undefined> {
    if (this.closed) return Promise.reject(new CriError('closed', 'the CRI source is closed', method))
    const client = this.connect()
    this.counters.calls++
    return new Promise((resolve, reject) => {
      const invoke = (client as unknown as Record<string, UnaryMethod<T>>)[method]!
      invoke.call(client, request, { deadline: Date.now() + this.timeoutMs }, (error, response) => {
        if (!error) return resolve(response)
        // close() cancels calls in flight: that is 'closed', not a runtime outage
        if (this.closed) return reject(new CriError('closed', 'the CRI source was closed during the call', method, { cause: error }))
        if (error.code === grpc.status.NOT_FOUND && notFoundIsEmpty) return resolve(undefined)
        const criError = toCriError(error, method)
        if (criError.code === 'unavailable') this.unavailable = { until: Date.now() + this.retryAfterMs, error: criError }
        reject(criError)
      })
    })
  }

  private connect(): grpc.Client {
    if (!this.client) {
      const Client = runtimeServiceClient()
      this.client = new Client(`unix://${this.socketPath}`, grpc.credentials.createInsecure(), {
        // A runtime answer is small; a huge one is a broken or hostile peer.
        'grpc.max_receive_message_length': 4 * 1024 * 1024,
      })
    }
    return this.client
  }

  private remember<T>(cache: Map<string, Cached<T>>, key: string, value: T, ttlMs: number): void {
    if (this.closed) return
    cache.delete(key)
    cache.set(key, { value, expires: Date.now() + ttlMs })
    while (cache.size > this.maxCacheEntries) cache.delete(cache.keys().next().value!)
  }

  private count(error: CriError): CriError {
    this.errorCounts[error.code]++
    return error
  }
}

function toCriError(error: grpc.ServiceError, method: string): CriError {
  const detail = `${method}: ${error.details || error.message}`
  switch (error.code) {
    case grpc.status.UNAVAILABLE:
      return new CriError('unavailable', `CRI runtime unavailable (${detail})`, method, { cause: error })
    case grpc.status.DEADLINE_EXCEEDED:
      return new CriError('timeout', `CRI call timed out (${detail})`, method, { cause: error })
    case grpc.status.UNIMPLEMENTED:
      return new CriError('unsupported', `CRI runtime does not serve runtime.v1 (${detail})`, method, { cause: error })
    case grpc.status.INTERNAL:
      if (/parsing error|protocol error/i.test(error.details ?? '')) {
        return new CriError('protocol', `bad CRI response (${detail})`, method, { cause: error })
      }
      return new CriError('runtime', `CRI runtime error (${detail})`, method, { cause: error })
    default:
      return new CriError('runtime', `CRI runtime error (${detail})`, method, { cause: error })
  }
}

function podLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(labels)) {
    if (!BOOKKEEPING_LABEL_PREFIXES.some((prefix) => key.startsWith(prefix))) out[key] = value
  }
  return out
}

function podAnnotations(annotations: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(annotations)) if (!DROPPED_ANNOTATIONS.has(key)) out[key] = value
  return out
}

function guessRuntime(socketPath: string): string {
  if (socketPath.includes('crio')) return 'cri-o'
  if (socketPath.includes('containerd')) return 'containerd'
  return 'unknown'
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback
}
