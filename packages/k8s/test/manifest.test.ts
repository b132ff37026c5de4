/**
 * examples/k8s/daemonset.yaml grants what the agent needs and nothing more:
 * read-only RBAC on three resources, named capabilities instead of
 * privileged mode, and the host mounts the sensors read.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import yaml from 'js-yaml'
import { describe, expect, it } from 'vitest'

const manifestPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../../examples/k8s/daemonset.yaml')
type Doc = Record<string, any>
const docs = yaml.loadAll(readFileSync(manifestPath, 'utf8')).filter(Boolean) as Doc[]
const one = (kind: string): Doc => {
  const found = docs.filter((d) => d.kind === kind)
  expect(found, kind).toHaveLength(1)
  return found[0]!
}

describe('examples/k8s/daemonset.yaml', () => {
  it('holds exactly the objects of an agent install', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(
      ['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'Namespace', 'ServiceAccount'].sort(),
    )
  })

  it('grants get/list/watch on pods, services and endpointslices and nothing else', () => {
    const rules = one('ClusterRole').rules as Doc[]
    const grants = rules.flatMap((rule) =>
      (rule.apiGroups as string[]).flatMap((group) =>
        (rule.resources as string[]).flatMap((resource) => (rule.verbs as string[]).map((verb) => `${group}/${resource}:${verb}`)),
      ),
    )
    expect(grants.sort()).toEqual(
      [
        '/pods:get', '/pods:list', '/pods:watch',
        '/services:get', '/services:list', '/services:watch',
        'discovery.k8s.io/endpointslices:get', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch',
      ].sort(),
    )
    for (const rule of rules) {
      expect(Object.keys(rule).sort()).toEqual(['apiGroups', 'resources', 'verbs'])
      expect(JSON.stringify(rule)).not.toContain('*')
    }
  })

  it('binds the role to the agent service account, which the DaemonSet uses', () => {
    const binding = one('ClusterRoleBinding')
    const account = one('ServiceAccount')
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one('ClusterRole').metadata.name })
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace }])
    const ds = one('DaemonSet')
    expect(ds.metadata.namespace).toBe(account.metadata.namespace)
    expect(ds.spec.template.spec.serviceAccountName).toBe(account.metadata.name)
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels)
  })

  const pod = () => one('DaemonSet').spec.template.spec as Doc
  const agent = () => {
    const containers = pod().containers as Doc[]
    expect(containers).toHaveLength(1)
    return containers[0]!
  }

  it('runs in the host PID namespace, not the host network', () => {
    expect(pod().hostPID).toBe(true)
    expect(pod().hostNetwork).toBeUndefined()
    expect(pod().hostIPC).toBeUndefined()
  })

  it('passes the node name from spec.nodeName and runs the agent with --k8s --json', () => {
    const env = agent().env as Doc[]
    expect(env.find((e) => e.name === 'NODE_NAME')).toEqual({
      name: 'NODE_NAME',
      valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } },
    })
    expect(agent().command).toEqual(['node', 'examples/agent/dist/main.js', '--k8s', '--json'])
  })

  it('adds named capabilities, drops the rest, and is not privileged', () => {
    const sc = agent().securityContext as Doc
    expect(sc.privileged).toBe(false)
    expect(sc.allowPrivilegeEscalation).toBe(false)
    expect(sc.readOnlyRootFilesystem).toBe(true)
    expect(sc.capabilities.drop).toEqual(['ALL'])
    expect([...sc.capabilities.add].sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON', 'SYS_PTRACE', 'SYS_RESOURCE'])
    expect(pod().securityContext?.privileged).toBeUndefined()
  })

  it('mounts the kernel file systems the sensors use, read-only where reading is enough', () => {
    const volumes = new Map((pod().volumes as Doc[]).map((v) => [v.name as string, v]))
    const mounts = new Map((agent().volumeMounts as Doc[]).map((m) => [m.mountPath as string, m]))
    const expected: Array<[mountPath: string, hostPath: string, readOnly: boolean]> = [
      ['/sys/fs/bpf', '/sys/fs/bpf', false],
      ['/sys/kernel/tracing', '/sys/kernel/tracing', true],
      ['/sys/fs/cgroup', '/sys/fs/cgroup', true],
      ['/sys/kernel/btf', '/sys/kernel/btf', true],
      ['/run/containerd/containerd.sock', '/run/containerd/containerd.sock', true],
    ]
    for (const [mountPath, hostPath, readOnly] of expected) {
      const mount = mounts.get(mountPath)
      expect(mount, mountPath).toBeDefined()
      expect(Boolean(mount!.readOnly), mountPath).toBe(readOnly)
      expect(volumes.get(mount!.name)?.hostPath?.path, mountPath).toBe(hostPath)
    }
    // Every host path is one of those: no host root, no /var/lib, no docker socket.
    const hostPaths = [...volumes.values()].filter((v) => v.hostPath).map((v) => v.hostPath.path as string)
    expect(hostPaths.sort()).toEqual(expected.map(([, hostPath]) => hostPath).sort())
    // Every mount refers to a declared volume.
    for (const mount of mounts.values()) expect(volumes.has(mount.name), mount.name).toBe(true)
  })
})
