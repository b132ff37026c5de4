/** Turns a pod (and one of its containers) into the k8s.* / container.* event fields. */
import type { ContainerFields, IdentitySource, IdentityState, K8sFields, Pod } from '../types.js'
import type { ContainerEntry } from './pod-index.js'
import type { Workload } from './workload.js'

export interface IdentityOptions {
  /** copy pod annotations into events (default false: they often hold config blobs or secrets) */
  annotations?: boolean
  /** copy pod labels (default true) */
  labels?: boolean
}

/** "registry:5000/ns/app:1.2@sha256:…" → { name: "registry:5000/ns/app", tags: ["1.2"] } */
export function parseImage(ref: string | undefined): { name: string; tags?: string[] } | undefined {
  if (!ref) return undefined
  const noDigest = ref.split('@')[0]!
  const slash = noDigest.lastIndexOf('/')
  const colon = noDigest.lastIndexOf(':')
  if (colon > slash) return { name: noDigest.slice(0, colon), tags: [noDigest.slice(colon + 1)] }
  return { name: noDigest }
}

const WORKLOAD_FIELD: Record<string, keyof K8sFields> = {
  Deployment: 'deployment',
  ReplicaSet: 'replicaset',
  StatefulSet: 'statefulset',
  DaemonSet: 'daemonset',
  Job: 'job',
  CronJob: 'cronjob',
}

export function podFields(
  pod: Pod,
  container: ContainerEntry | undefined,
  workload: Workload,
  state: IdentityState,
  source: IdentitySource,
  reason: string | undefined,
  options: IdentityOptions,
): { k8s: K8sFields; container?: ContainerFields } {
  const m = pod.metadata
  const k8s: K8sFields = { identity: reason ? { state, source, reason } : { state, source }, pod: { name: m.name, uid: m.uid } }
  if (options.labels !== false && m.labels) k8s.pod!.labels = { ...m.labels }
  if (options.annotations && m.annotations) k8s.pod!.annotations = { ...m.annotations }
  if (m.namespace) k8s.namespace = { name: m.namespace }
  if (pod.spec?.nodeName) k8s.node = { name: pod.spec.nodeName }
  if (container) k8s.container = { name: container.name }
  if (pod.spec?.serviceAccountName) k8s.service_account = { name: pod.spec.serviceAccountName }
  k8s.workload = { kind: workload.kind, name: workload.name }
  const top = WORKLOAD_FIELD[workload.kind]
  if (top) (k8s as any)[top] = { name: workload.name }
  if (workload.via) (k8s as any)[WORKLOAD_FIELD[workload.via.kind]!] = { name: workload.via.name }
  if (!container) return { k8s }
  const out: ContainerFields = { id: container.id }
  if (container.runtime) out.runtime = container.runtime
  const image = parseImage(container.image)
  if (image) out.image = image
  return { k8s, container: out }
}
