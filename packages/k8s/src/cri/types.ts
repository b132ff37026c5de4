/** What the CRI source knows about one container (from ContainerStatus + PodSandboxStatus labels). */
export interface CriContainerInfo {
  /** full 64-hex container id */
  containerId: string
  containerName?: string
  image?: string
  podUid: string
  podName: string
  namespace: string
  /** pod labels from the sandbox (io.kubernetes.* bookkeeping labels removed) */
  labels: Record<string, string>
  annotations?: Record<string, string>
  runtime: 'containerd' | 'cri-o' | string
}

/** A source of container → pod facts, used when the API server is not reachable or not granted. */
export interface ContainerSource {
  /** info for a container id, or undefined when the runtime does not know it */
  lookupContainer(containerId: string): Promise<CriContainerInfo | undefined>
  close(): void
}
