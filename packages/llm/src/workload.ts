/**
 * The workload an exchange belongs to, for per-workload summaries and
 * policies: the Kubernetes workload when an enricher added k8s fields
 * (namespace/kind/name), else the process executable name, else its comm.
 */

const WORKLOAD_KINDS = ['deployment', 'statefulset', 'daemonset', 'cronjob', 'job', 'replicaset'] as const

function field(o: unknown, ...path: string[]): string | undefined {
  let cur = o
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[k]
  }
  return typeof cur === 'string' && cur !== '' ? cur : undefined
}

/** `ev` is an HTTP event, possibly enriched with `k8s` and `process.executable`. */
export function workloadOf(ev: { process?: unknown; k8s?: unknown }): string {
  const k8s = ev.k8s
  if (k8s && typeof k8s === 'object') {
    const ns = field(k8s, 'namespace', 'name') ?? '-'
    // @bpfkit/k8s resolves the owning workload (k8s.workload: {kind, name}); else the OTel k8s.<kind>.name fields
    const wname = field(k8s, 'workload', 'name')
    if (wname) return `${ns}/${(field(k8s, 'workload', 'kind') ?? 'workload').toLowerCase()}/${wname}`
    for (const kind of WORKLOAD_KINDS) {
      const name = field(k8s, kind, 'name')
      if (name) return `${ns}/${kind}/${name}`
    }
    const pod = field(k8s, 'pod', 'name')
    if (pod) return `${ns}/pod/${pod}`
  }
  return field(ev.process, 'executable', 'name') ?? field(ev.process, 'comm') ?? 'unknown'
}
