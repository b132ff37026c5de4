/**
 * Shapes of the Kubernetes objects the enricher reads (only the fields it
 * uses: objects are cached as plain JSON from the API server) and of the
 * identity fields it adds to events (OpenTelemetry k8s.* / container.* names).
 */
import type { Peer } from './peers.js'

export interface OwnerReference {
  apiVersion?: string
  kind: string
  name: string
  uid?: string
  controller?: boolean
}

/** Any object the API server lists (the part every cached object has). */
export interface ApiObject {
  apiVersion?: string
  kind?: string
  metadata: ObjectMeta
}

export interface ObjectMeta {
  name: string
  namespace?: string
  uid: string
  resourceVersion?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  ownerReferences?: OwnerReference[]
}

export interface ContainerSpec {
  name: string
  image?: string
}

export interface ContainerStatus {
  name: string
  image?: string
  /** "<runtime>://<id>", absent until the container is created */
  containerID?: string
}

export interface Pod extends ApiObject {
  spec?: {
    nodeName?: string
    serviceAccountName?: string
    hostNetwork?: boolean
    containers?: ContainerSpec[]
    initContainers?: ContainerSpec[]
    ephemeralContainers?: ContainerSpec[]
  }
  status?: {
    phase?: string
    podIP?: string
    podIPs?: Array<{ ip: string }>
    containerStatuses?: ContainerStatus[]
    initContainerStatuses?: ContainerStatus[]
    ephemeralContainerStatuses?: ContainerStatus[]
  }
}

export interface Service extends ApiObject {
  spec?: { clusterIP?: string; clusterIPs?: string[]; type?: string; selector?: Record<string, string> }
}

export interface EndpointSlice extends ApiObject {
  endpoints?: Array<{ addresses?: string[]; targetRef?: { kind?: string; name?: string; namespace?: string } }>
}

/** Kinds the workload resolution reports. */
export type WorkloadKind = 'Deployment' | 'ReplicaSet' | 'StatefulSet' | 'DaemonSet' | 'Job' | 'CronJob' | 'Pod' | (string & {})

/**
 * How complete the identity on an event is.
 * - complete: pod, container and workload known
 * - partial: some of it known (API server unreachable, container not in the pod status yet, CRI-only facts)
 * - pending: the pod was not known within the hold time; a `k8s.identity.resolved` event follows when it appears
 * - host: the process is not in a Kubernetes pod cgroup (node processes, kubelet, the agent itself)
 */
export type IdentityState = 'complete' | 'partial' | 'pending' | 'host'

/** Where the identity came from. */
export type IdentitySource = 'apiserver' | 'tombstone' | 'cri' | 'cgroup' | 'none'

/** The `k8s` object added to every enriched event. */
export interface K8sFields {
  identity: {
    state: IdentityState
    source: IdentitySource
    /** why it is not complete, e.g. "pod not in the API server cache", "API server unreachable" */
    reason?: string
  }
  pod?: { name?: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  namespace?: { name: string }
  node?: { name: string }
  container?: { name: string }
  service_account?: { name: string }
  workload?: { kind: WorkloadKind; name: string }
  deployment?: { name: string }
  replicaset?: { name: string }
  statefulset?: { name: string }
  daemonset?: { name: string }
  job?: { name: string }
  cronjob?: { name: string }
}

/** The `container` object added to enriched events (OTel container.*). */
export interface ContainerFields {
  id: string
  /** runtime from the cgroup path or the status prefix (containerd, cri-o, docker, ...) */
  runtime?: string
  image?: { name: string; tags?: string[] }
}

/**
 * An event after enrichment: the original fields plus `k8s` and (when known) `container`. `peer` is set (with the `peers` option) on events that carry a
 * socket 4-tuple (`tuple.daddr`, e.g. HTTP exchanges): the pod, Service or external address at
 * the other end of the connection.
 */
export type Enriched<E> = E & { k8s: K8sFields; container?: ContainerFields; peer?: Peer }

/** Follow-up emitted when an event that went out `pending` (or `partial`) can now be attributed. */
export interface IdentityResolvedEvent {
  type: 'k8s.identity.resolved'
  time: string
  /** which earlier event this completes */
  ref: { type?: string; time?: string; process?: { pid?: number; exec_id?: string }; cgroup?: { id?: string } }
  /** how long after the original event the identity became known, ms */
  delay_ms: number
  k8s: K8sFields
  container?: ContainerFields
}
