/** Container runtime named by a cgroup path. */
export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker' | 'nerdctl' | 'podman' | 'unknown'

/** Kubernetes QoS class encoded in kubelet's cgroup layout. */
export type QosClass = 'guaranteed' | 'burstable' | 'besteffort'

/** What a cgroup v2 path tells about the container it belongs to. */
export interface CgroupContainerRef {
  /** the path as given (relative to the cgroup2 mount, starting with '/') */
  path: string
  /** kubelet's cgroup driver layout the path follows */
  driver: 'systemd' | 'cgroupfs'
  /** pod UID with dashes (systemd slices write them with '_'; normalised here) */
  podUid?: string
  qos?: QosClass
  /** 64-hex container id (absent for the pod-level cgroup itself) */
  containerId?: string
  runtime?: ContainerRuntime
}
