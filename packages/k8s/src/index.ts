/**
 * @bpfkit/k8s — Kubernetes identity for bpfkit events.
 *
 *   const enricher = new K8sEnricher({ nodeName: process.env.NODE_NAME })
 *   await enricher.start()
 *   sensor.on('event', (e) => enricher.push(e))
 *   enricher.on('event', (e) => console.log(e.k8s.pod?.name, e.k8s.identity.state))
 *
 * See docs/k8s.md.
 */
export { K8sEnricher, type K8sEnricherOptions, type K8sEnricherEvents, type K8sEnricherStats, type K8sEnricherHealth } from './enricher.js'
export { ClusterCache, K8sConfigError, loadKubeConfig, slimNodePod, type ClusterCacheOptions, type KubeConfigSource } from './cluster.js'
export { defaultKey, type IdentityKey, type KeyFunction } from './keys.js'
export { PeerIndex, type Peer } from './peers.js'
export { PodIndex, containersOf, parseContainerId, type ContainerEntry, type PodIndexOptions } from './metadata/pod-index.js'
export { WorkloadResolver, guessWorkload, type Workload, type WorkloadGuess, type WorkloadStats } from './metadata/workload.js'
export { podFields, parseImage, type IdentityOptions } from './metadata/identity.js'
export { KubeTransport, type TransportOptions, type TransportStats } from './api/transport.js'
export { Reflector, type BackoffOptions, type ReflectorHealth } from './api/reflector.js'
export { K8sApiError, K8sGarbageError, K8sTimeoutError } from './api/errors.js'
export { consoleLogger, type Logger } from './log.js'
export { CgroupResolver, type CgroupResolverOptions, type CgroupResolverStats } from './cgroup/resolver.js'
export { parseCgroupPath } from './cgroup/path.js'
export type { CgroupContainerRef, ContainerRuntime, QosClass } from './cgroup/types.js'
/** where cgroup v2 is mounted: core's reader, re-exported for k8s users */
export { findCgroup2Mount } from '@bpfkit/core'
export type { ContainerSource, CriContainerInfo } from './cri/types.js'
export { CriContainerSource, findCriSocket, DEFAULT_CRI_SOCKETS, type CriSourceOptions, type CriSourceStats } from './cri/source.js'
export { CriError, type CriErrorCode } from './cri/errors.js'
export type * from './types.js'
