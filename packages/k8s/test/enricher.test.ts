// The enricher's identity contract against the test API server: emitted
// fields, workload resolution, the hold queue, pending → k8s.identity.resolved,
// tombstones, overflow, CRI fallback, host processes and peer identity.
import { KubeConfig } from '@kubernetes/client-node'
import { afterEach, describe, expect, it } from 'vitest'
import { K8sConfigError, K8sEnricher, defaultKey, loadKubeConfig, guessWorkload, type ContainerSource, type IdentityResolvedEvent, type K8sEnricherOptions, type Pod } from '../src/index.js'
import { TestApiServer, containerId, memoryLogger, podObject, until } from './apiserver.js'

const PODS = '/api/v1/pods'
let server: TestApiServer
let enricher: K8sEnricher | undefined

afterEach(async () => {
  enricher?.close()
  enricher = undefined
  await server?.stop()
})

type Ev = { type: string; cid?: string; uid?: string; process?: { pid: number; exec_id: string } }

async function setup(opts: Partial<K8sEnricherOptions<Ev>> = {}) {
  server = new TestApiServer()
  await server.start()
  const logger = memoryLogger()
  enricher = new K8sEnricher<Ev>({
    kubeConfig: server.kubeConfig(),
    nodeName: 'node-a',
    logger,
    backoff: { initialMs: 20, maxMs: 200 },
    holdMs: 300,
    key: (e) => (e.cid ? { containerId: e.cid } : e.uid ? { podUid: e.uid } : e.process ? { pid: e.process.pid } : undefined),
    ...opts,
  })
  return { logger, e: enricher as K8sEnricher<Ev> }
}

describe('identity fields', () => {
  it('emits OTel-style pod, namespace, node, container, image, service account, labels and the Deployment', async () => {
    const { e } = await setup()
    const id = containerId('api')
    server.put(PODS, podObject({
      name: 'api-7d4b9c-x2x9z', namespace: 'shop', serviceAccount: 'api-sa', labels: { app: 'api', 'pod-template-hash': '7d4b9c' },
      annotations: { 'secret.example/token': 'abc' }, owner: { kind: 'ReplicaSet', name: 'api-7d4b9c' },
      containers: [{ name: 'server', id, image: 'registry.local:5000/shop/api:1.4.2' }], ip: '10.0.0.5',
    }))
    await e.start()
    const out = await e.enrich({ type: 'process.exec', cid: id })
    expect(out.type).toBe('process.exec')
    expect(out.k8s).toEqual({
      identity: { state: 'complete', source: 'apiserver' },
      pod: { name: 'api-7d4b9c-x2x9z', uid: expect.any(String), labels: { app: 'api', 'pod-template-hash': '7d4b9c' } },
      namespace: { name: 'shop' },
      node: { name: 'node-a' },
      container: { name: 'server' },
      service_account: { name: 'api-sa' },
      workload: { kind: 'Deployment', name: 'api' },
      deployment: { name: 'api' },
      replicaset: { name: 'api-7d4b9c' },
    })
    expect(out.container).toEqual({ id, runtime: 'containerd', image: { name: 'registry.local:5000/shop/api', tags: ['1.4.2'] } })
    expect(e.stats().owners).toMatchObject({ lookups: 0 }) // the heuristic decided
  })

  it('annotations only when opted in; init and ephemeral containers resolve too', async () => {
    const { e } = await setup({ annotations: true })
    const init = containerId('init')
    const pod = podObject({ name: 'p', annotations: { note: 'x' }, containers: [{ name: 'app', id: containerId('app') }], initContainers: [{ name: 'migrate', id: init }] })
    pod.status.ephemeralContainerStatuses = [{ name: 'debugger', image: 'busybox', containerID: `containerd://${containerId('dbg')}` }]
    server.put(PODS, pod)
    await e.start()
    const a = await e.enrich({ type: 'x', cid: init })
    expect(a.k8s.container?.name).toBe('migrate')
    expect(a.k8s.pod?.annotations).toEqual({ note: 'x' })
    expect((await e.enrich({ type: 'x', cid: containerId('dbg') })).k8s.container?.name).toBe('debugger')
  })

  it('workload heuristics: CronJob from the job name, StatefulSet/DaemonSet direct, bare pods', () => {
    const pod = (owner?: { kind: string; name: string }, labels?: Record<string, string>) => podObject({ name: 'p', owner, labels }) as unknown as Pod
    expect(guessWorkload(pod({ kind: 'Job', name: 'backup-29012345' }))).toMatchObject({ kind: 'CronJob', name: 'backup', via: { kind: 'Job', name: 'backup-29012345' }, certain: true })
    expect(guessWorkload(pod({ kind: 'Job', name: 'one-off' }))).toMatchObject({ kind: 'Job', name: 'one-off', certain: false })
    expect(guessWorkload(pod({ kind: 'StatefulSet', name: 'db' }))).toMatchObject({ kind: 'StatefulSet', name: 'db', certain: true })
    expect(guessWorkload(pod({ kind: 'DaemonSet', name: 'agent' }))).toMatchObject({ kind: 'DaemonSet', name: 'agent', certain: true })
    expect(guessWorkload(pod())).toMatchObject({ kind: 'Pod', name: 'p', certain: true })
    expect(guessWorkload(pod({ kind: 'ReplicaSet', name: 'web-abc' }, { 'rollouts-pod-template-hash': 'abc' }))).toMatchObject({ kind: 'ReplicaSet', certain: false })
  })

  it('asks the API only when the heuristic cannot decide; a 403 keeps the heuristic and is counted once', async () => {
    const { e } = await setup()
    server.put('/apis/apps/v1/replicasets', { metadata: { name: 'canary-abc', namespace: 'default', ownerReferences: [{ kind: 'Rollout', name: 'canary', controller: true } as any] } })
    const rolloutId = containerId('rollout')
    server.put(PODS, podObject({ name: 'canary-abc-1', owner: { kind: 'ReplicaSet', name: 'canary-abc' }, labels: { 'rollouts-pod-template-hash': 'abc' }, containers: [{ name: 'c', id: rolloutId }] }))
    server.forbidden.add('/apis/batch/v1/jobs')
    const jobIds = [containerId('job1'), containerId('job2')]
    server.put(PODS, podObject({ name: 'etl-1', owner: { kind: 'Job', name: 'etl' }, containers: [{ name: 'c', id: jobIds[0] }] }))
    server.put(PODS, podObject({ name: 'etl-2', owner: { kind: 'Job', name: 'etl' }, containers: [{ name: 'c', id: jobIds[1] }] }))
    await e.start()
    await until(() => e.stats().owners.lookups === 2 && e.stats().owners.denied === 1, 3000, 'owner lookups')
    const r = await e.enrich({ type: 'x', cid: rolloutId })
    expect(r.k8s.workload).toEqual({ kind: 'Rollout', name: 'canary' })
    expect(r.k8s.replicaset).toEqual({ name: 'canary-abc' })
    for (let i = 0; i < 5; i++) for (const id of jobIds) expect((await e.enrich({ type: 'x', cid: id })).k8s.workload).toEqual({ kind: 'Job', name: 'etl' })
    expect(e.stats().owners).toMatchObject({ lookups: 2, denied: 1 })
    expect(server.requests.filter((q) => q.includes('/jobs/')).length).toBe(1)
  })
})

describe('identity state', () => {
  it('an event before its pod is held and enriched when the pod appears within the hold time', async () => {
    const { e } = await setup({ holdMs: 2000 })
    await e.start()
    const id = containerId('late')
    const t0 = Date.now()
    const p = e.enrich({ type: 'process.exec', cid: id })
    expect(e.stats().pending).toBe(1)
    setTimeout(() => server.put(PODS, podObject({ name: 'late', containers: [{ name: 'app', id }] })), 150)
    const out = await p
    expect(out.k8s.identity.state).toBe('complete')
    expect(out.k8s.pod?.name).toBe('late')
    expect(Date.now() - t0).toBeLessThan(1500)
    expect(e.stats().holdLatency.count).toBe(1)
  })

  it('pod added after its process started: pending after the hold, then k8s.identity.resolved', async () => {
    const { e } = await setup({ holdMs: 100 })
    await e.start()
    const id = containerId('slow')
    const resolved: IdentityResolvedEvent[] = []
    const emitted: any[] = []
    e.on('k8s.identity.resolved', (r) => resolved.push(r))
    e.on('event', (x) => emitted.push(x))
    e.push({ type: 'process.exec', cid: id, process: { pid: 4242, exec_id: 'ZXhlYw==' } })
    await until(() => emitted.length === 1, 2000, 'pending event')
    expect(emitted[0].k8s.identity).toMatchObject({ state: 'pending', reason: 'pod not in the API server cache' })
    expect(emitted[0].container).toEqual({ id })
    server.put(PODS, podObject({ name: 'slow', containers: [{ name: 'app', id }] }))
    await until(() => resolved.length === 1, 2000, 'follow-up')
    expect(resolved[0]).toMatchObject({
      type: 'k8s.identity.resolved',
      ref: { type: 'process.exec', process: { pid: 4242, exec_id: 'ZXhlYw==' } },
      k8s: { identity: { state: 'complete' }, pod: { name: 'slow' }, container: { name: 'app' } },
      container: { id },
    })
    expect(e.stats()).toMatchObject({ resolved: 1, followUps: 0, states: { pending: 1 } })
  })

  it('a container missing from the pod status (kubelet lag) is partial with the pod fields, then resolved', async () => {
    const { e } = await setup({ holdMs: 100 })
    const uid = server.nextUid()
    server.put(PODS, podObject({ name: 'lag', uid, containers: [{ name: 'app' }] }))
    await e.start()
    const resolved: IdentityResolvedEvent[] = []
    e.on('k8s.identity.resolved', (r) => resolved.push(r))
    const id = containerId('lag')
    const out = await e.enrich({ type: 'x', uid }, { podUid: uid, containerId: id })
    expect(out.k8s.identity.state).toBe('partial')
    expect(out.k8s.pod?.name).toBe('lag')
    expect(out.k8s.container).toBeUndefined()
    server.put(PODS, podObject({ name: 'lag', uid, containers: [{ name: 'app', id }] }))
    await until(() => resolved.length === 1, 2000, 'follow-up')
    expect(resolved[0]!.k8s.container).toEqual({ name: 'app' })
  })

  it('pod deleted while events are in flight: events resolve from the tombstone', async () => {
    const { e } = await setup({ tombstoneTtlMs: 60_000 })
    const id = containerId('gone')
    server.put(PODS, podObject({ name: 'gone', owner: { kind: 'StatefulSet', name: 'db' }, containers: [{ name: 'app', id }] }))
    await e.start()
    server.remove(PODS, 'default', 'gone')
    await until(() => e.cluster!.pods.size === 0, 2000, 'delete')
    const out = await e.enrich({ type: 'process.exit', cid: id })
    expect(out.k8s.identity).toEqual({ state: 'complete', source: 'tombstone' })
    expect(out.k8s.pod?.name).toBe('gone')
    expect(out.k8s.statefulset).toEqual({ name: 'db' })
    expect(e.stats().tombstoneHits).toBe(1)
  })

  it('tombstones expire after their TTL', async () => {
    const { e } = await setup({ tombstoneTtlMs: 100, holdMs: 50 })
    const id = containerId('ttl')
    server.put(PODS, podObject({ name: 'ttl', containers: [{ name: 'app', id }] }))
    await e.start()
    server.remove(PODS, 'default', 'ttl')
    await until(() => e.cluster!.pods.size === 0, 2000, 'delete')
    await new Promise((r) => setTimeout(r, 150))
    expect((await e.enrich({ type: 'x', cid: id })).k8s.identity.state).toBe('pending')
  })

  it('a full hold queue emits pending at once and counts the overflow', async () => {
    const { e } = await setup({ maxPending: 3, holdMs: 5000 })
    await e.start()
    const held = [1, 2, 3].map((i) => e.enrich({ type: 'x', cid: containerId(`q${i}`) }))
    const t0 = Date.now()
    const over = await e.enrich({ type: 'x', cid: containerId('q4') })
    expect(Date.now() - t0).toBeLessThan(100)
    expect(over.k8s.identity.state).toBe('pending')
    expect(e.stats()).toMatchObject({ queueOverflow: 1, pending: 3 })
    e.close() // close releases held events instead of hanging
    const released = await Promise.all(held)
    expect(released.map((r) => r.k8s.identity.state)).toEqual(['pending', 'pending', 'pending'])
  })

  it('host processes are "host", events without a key say why', async () => {
    const { e } = await setup()
    await e.start()
    const host = await e.enrich({ type: 'x', process: { pid: process.pid, exec_id: 'x' } })
    expect(host.k8s.identity).toEqual({ state: 'host', source: 'cgroup' })
    const none = await e.enrich({ type: 'x' })
    expect(none.k8s.identity).toMatchObject({ state: 'partial', source: 'none' })
    expect(e.stats().states).toMatchObject({ host: 1, partial: 1 })
  })

  it('a CRI source fills in when the pod is not known in time (partial, source cri), followed by the API answer', async () => {
    const id = containerId('cri')
    const calls: string[] = []
    const cri: ContainerSource = {
      async lookupContainer(cid) {
        calls.push(cid)
        return cid === id ? { containerId: id, containerName: 'app', image: 'nginx:1.27', podUid: 'u-1', podName: 'web-0', namespace: 'prod', labels: { app: 'web' }, runtime: 'containerd' } : undefined
      },
      close() {},
    }
    const { e } = await setup({ cri, holdMs: 50 })
    await e.start()
    const resolved: IdentityResolvedEvent[] = []
    e.on('k8s.identity.resolved', (r) => resolved.push(r))
    const out = await e.enrich({ type: 'x', cid: id })
    expect(out.k8s).toMatchObject({ identity: { state: 'partial', source: 'cri' }, pod: { name: 'web-0', uid: 'u-1', labels: { app: 'web' } }, namespace: { name: 'prod' }, container: { name: 'app' } })
    expect(out.container).toEqual({ id, runtime: 'containerd', image: { name: 'nginx', tags: ['1.27'] } })
    expect(calls).toEqual([id])
    server.put(PODS, podObject({ name: 'web-0', namespace: 'prod', owner: { kind: 'StatefulSet', name: 'web' }, containers: [{ name: 'app', id }] }))
    await until(() => resolved.length === 1, 2000, 'follow-up')
    expect(resolved[0]!.k8s.workload).toEqual({ kind: 'StatefulSet', name: 'web' })
  })

  it('the async iterator yields enriched events and follow-ups', async () => {
    const { e } = await setup({ holdMs: 50 })
    await e.start()
    const id = containerId('it')
    const got: any[] = []
    const done = (async () => {
      for await (const x of e) {
        got.push(x)
        if (got.length === 2) break
      }
    })()
    e.push({ type: 'process.exec', cid: id })
    await until(() => got.length === 1, 2000, 'first')
    server.put(PODS, podObject({ name: 'it', containers: [{ name: 'app', id }] }))
    await done
    expect(got.map((g) => g.type)).toEqual(['process.exec', 'k8s.identity.resolved'])
  })
})

describe('configuration', () => {
  it('bad kubeconfig choices are typed errors, not crashes later', () => {
    expect(() => loadKubeConfig({ file: '/nonexistent/kubeconfig' })).toThrow(K8sConfigError)
    const env = process.env.KUBERNETES_SERVICE_HOST
    delete process.env.KUBERNETES_SERVICE_HOST
    try {
      expect(() => loadKubeConfig('in-cluster')).toThrow(/KUBERNETES_SERVICE_HOST/)
    } finally {
      if (env !== undefined) process.env.KUBERNETES_SERVICE_HOST = env
    }
    expect(() => new K8sEnricher({ kubeConfig: { file: '/nonexistent/kubeconfig' } })).toThrow(K8sConfigError)
    expect(() => loadKubeConfig(null as never)).toThrow(K8sConfigError)
    expect(() => loadKubeConfig('/etc/kubeconfig' as never)).toThrow(/to load a file, pass \{ file: "\/etc\/kubeconfig" \}/)
    // nothing to find: client-node alone would quietly talk to http://localhost:8080
    const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST }
    delete process.env.KUBECONFIG
    delete process.env.KUBERNETES_SERVICE_HOST
    process.env.HOME = '/nonexistent-home'
    try {
      expect(() => loadKubeConfig()).toThrow(/no kubeconfig found: \$KUBECONFIG is unset, \/nonexistent-home\/.kube\/config does not exist/)
      expect(() => new K8sEnricher()).toThrow(K8sConfigError)
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v
    }
  })

  it('numeric options that would make a busy loop or hold events forever are refused, naming the option', () => {
    const kubeConfig = new KubeConfig()
    kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: false }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' })
    const bad: [string, Partial<K8sEnricherOptions>][] = [
      ['backoff.initialMs', { backoff: { initialMs: 0 } }], // 0 doubled stays 0: a retry storm
      ['backoff.initialMs', { backoff: { initialMs: Number.NaN } }],
      ['backoff.maxMs', { backoff: { initialMs: 500, maxMs: 0 } }],
      ['requestTimeoutMs', { requestTimeoutMs: Number.NaN }],
      ['holdMs', { holdMs: Number.NaN }], // held forever, with a 1 ms tick
      ['maxPending', { maxPending: 0 }],
      ['maxFollowUps', { maxFollowUps: 1.5 }],
      ['criTimeoutMs', { criTimeoutMs: -1 }],
      ['minWalkIntervalMs', { cgroup: { minWalkIntervalMs: Number.NaN } }], // no rate limit on cgroup walks
      ['tombstoneMs', { cgroup: { tombstoneMs: -5 } }],
    ]
    for (const [name, opts] of bad) {
      expect(() => new K8sEnricher({ kubeConfig, ...opts }), name).toThrow(K8sConfigError)
      expect(() => new K8sEnricher({ kubeConfig, ...opts }), name).toThrow(new RegExp(`^${name.replace('.', '\\.')} must be`))
    }
  })

  it('enrich() before start() does not wait for informers that are not running, and says so', async () => {
    server = new TestApiServer()
    await server.start()
    enricher = new K8sEnricher<Ev>({ kubeConfig: server.kubeConfig(), nodeName: 'node-a', logger: memoryLogger(), holdMs: 5000, key: (e) => (e.cid ? { containerId: e.cid } : undefined) })
    const t0 = performance.now()
    const out = await enricher.enrich({ type: 'x', cid: containerId('a') })
    expect(performance.now() - t0).toBeLessThan(1000) // not held for holdMs
    expect(out.k8s.identity).toMatchObject({ state: 'partial', reason: expect.stringMatching(/^the API informers were not started: call start\(\)/) })
  })

  it("a throwing 'event' listener is counted and logged, never an unhandled rejection; start() after close() does not restart", async () => {
    const { e, logger } = await setup({ api: false })
    const unhandled: unknown[] = []
    const onUnhandled = (r: unknown) => unhandled.push(r)
    process.on('unhandledRejection', onUnhandled)
    try {
      e.on('event', () => {
        throw new Error('listener bug')
      })
      e.push({ type: 'x', cid: containerId('a') })
      await until(() => e.stats().listenerErrors === 1)
      await new Promise((r) => setImmediate(r))
      expect(unhandled).toEqual([])
      expect(logger.lines.join('\n')).toMatch(/an 'event' listener threw: listener bug/)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    const requests = server.requests.length
    e.close()
    expect(await e.start()).toBe(false)
    expect(server.requests.length).toBe(requests)
  })

  it('api: false uses only the cgroup facts: partial with container id and pod uid, never held', async () => {
    const e = new K8sEnricher<Ev>({ api: false, key: (x) => ({ containerId: x.cid, podUid: 'u-9' }) })
    const t0 = Date.now()
    const out = await e.enrich({ type: 'x', cid: containerId('noapi') })
    expect(Date.now() - t0).toBeLessThan(100)
    expect(out.k8s).toEqual({ identity: { state: 'partial', source: 'none', reason: 'API server not used' }, pod: { uid: 'u-9' } })
    // a cgroup id the resolver does not know: the reason says so, not only that the API is off
    expect(e.identityFor({ cgroupId: 5n }).k8s.identity.reason).toBe('API server not used; cgroup not found (new or already removed)')
    expect(out.container).toEqual({ id: containerId('noapi') })
    e.close()
  })
})

describe('keys', () => {
  it('reads cgroup.id (decimal string) and process.pid from core events, and refuses junk', () => {
    expect(defaultKey({ cgroup: { id: '18446744073709551615' }, process: { pid: 7 } })).toEqual({ cgroupId: 18446744073709551615n, pid: 7 })
    expect(defaultKey({ process: { pid: 9, tid: 9, comm: 'curl' } })).toEqual({ pid: 9 })
    expect(defaultKey({ cgroup: { id: '12; rm -rf' }, process: { pid: -1 } })).toBeUndefined()
    expect(defaultKey(null)).toBeUndefined()
  })
})

describe('peers', () => {
  it('maps pod IPs (not hostNetwork), ClusterIPs and EndpointSlice backends; the rest is external', async () => {
    const { e } = await setup({ peers: true })
    server.put(PODS, podObject({ name: 'db-0', namespace: 'data', node: 'node-b', ip: '10.1.0.7', labels: { app: 'db' } }))
    server.put(PODS, podObject({ name: 'kube-proxy', namespace: 'kube-system', ip: '192.168.1.10', hostNetwork: true }))
    server.put('/api/v1/services', { metadata: { name: 'db', namespace: 'data' }, spec: { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'] } })
    server.put('/apis/discovery.k8s.io/v1/endpointslices', { metadata: { name: 'db-abc', namespace: 'data', labels: { 'kubernetes.io/service-name': 'db' } }, endpoints: [{ addresses: ['10.1.0.7'] }] })
    expect(await e.start()).toBe(true)
    expect(e.cluster!.pods.size).toBe(1) // the node-scoped cache still has only node-a pods
    expect(e.peerFor('10.1.0.7')).toEqual({ kind: 'pod', ip: '10.1.0.7', k8s: { pod: { name: 'db-0', uid: expect.any(String), labels: { app: 'db' } }, namespace: { name: 'data' }, service: { name: 'db' } } })
    expect(e.peerFor('::ffff:10.96.0.20')).toEqual({ kind: 'service', ip: '10.96.0.20', k8s: { service: { name: 'db' }, namespace: { name: 'data' } } })
    expect(e.peerFor('192.168.1.10')).toEqual({ kind: 'external', ip: '192.168.1.10' })
    expect(e.peerFor('1.1.1.1').kind).toBe('external')
    // an HTTP exchange from a local process to the Service's ClusterIP names the Service as its peer
    const ex = await e.enrich({ type: 'http.exchange', process: { pid: process.pid }, tuple: { saddr: '10.1.0.3', sport: 40000, daddr: '10.96.0.20', dport: 5432 } })
    expect(ex.peer).toEqual({ kind: 'service', ip: '10.96.0.20', k8s: { service: { name: 'db' }, namespace: { name: 'data' } } })
    const ext = await e.enrich({ type: 'http.exchange', process: { pid: process.pid }, tuple: { saddr: '10.1.0.3', sport: 40001, daddr: '1.1.1.1', dport: 443 } })
    expect(ext.peer).toEqual({ kind: 'external', ip: '1.1.1.1' })
    server.remove(PODS, 'data', 'db-0')
    await until(() => e.peerFor('10.1.0.7').kind === 'external', 2000, 'pod delete')
  })
})
