/**
 * Kubernetes enrichment cost (issue 4/5).
 *
 * Serves 10,000 pods (with the noise real pods carry: managedFields,
 * annotations, labels, owner references, two containers each) from the test
 * API server in packages/k8s/test, lets a real K8sEnricher list them through
 * @kubernetes/client-node, then measures in the same run:
 *   - memory per cached pod (heap delta after GC / pods)
 *   - warm-cache cost per event of identityFor() (container id → full k8s
 *     fields) and of enrich() (the same plus the event copy and the promise)
 *   - the reference: a plain Map.get on a 10,000-entry Map in the same run
 * and prints the ratio against the reference. The final line is JSON.
 *
 *   cd bench && pnpm exec tsx k8s/lookup.ts [pods]
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { K8sEnricher } from '../../packages/k8s/src/index.js'
import { TestApiServer, containerId, podObject } from '../../packages/k8s/test/apiserver.js'
import { median, round } from '../common.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const PODS = Number(process.argv[2] ?? 10_000)
const LOOKUPS = 1_000_000
const RUNS = 5

function heap(): number {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

const server = new TestApiServer()
await server.start()
const ids: string[] = []
for (let i = 0; i < PODS; i++) {
  const name = `svc-${i % 400}-6f7d9b-${i.toString(36).padStart(5, '0')}`
  const app = containerId(`app-${i}`)
  ids.push(app)
  server.put('/api/v1/pods', podObject({
    name,
    namespace: `team-${i % 40}`,
    serviceAccount: `svc-${i % 400}`,
    labels: { app: `svc-${i % 400}`, 'pod-template-hash': '6f7d9b', tier: 'backend', 'app.kubernetes.io/part-of': 'shop', version: 'v1' },
    annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090', 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' },
    owner: { kind: 'ReplicaSet', name: `svc-${i % 400}-6f7d9b` },
    ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    containers: [
      { name: 'app', id: app, image: `registry.local/shop/svc-${i % 400}:1.${i % 10}` },
      { name: 'sidecar', id: containerId(`side-${i}`), image: 'envoyproxy/envoy:v1.31' },
    ],
  }))
}

const before = heap()
const enricher = new K8sEnricher<{ type: string; cid: string }>({
  kubeConfig: server.kubeConfig(),
  nodeName: 'node-a',
  key: (e) => ({ containerId: e.cid }),
  logger: { warn: () => {} },
})
const t0 = performance.now()
if (!(await enricher.start())) throw new Error('informer did not sync')
const syncMs = performance.now() - t0
await server.stop() // the server's copies must not count; the enricher keeps serving its cache
const after = heap()
const cached = enricher.cluster!.pods.size
if (cached !== PODS) throw new Error(`cache has ${cached} pods, expected ${PODS}`)
const bytesPerPod = (after - before) / cached

// Reference: the cheapest possible lookup of the same keys.
const ref = new Map<string, { i: number }>()
ids.forEach((id, i) => ref.set(id, { i }))

function timeRef(): number {
  let sink = 0
  const s = process.hrtime.bigint()
  for (let n = 0; n < LOOKUPS; n++) sink += ref.get(ids[n % ids.length]!)!.i
  const ns = Number(process.hrtime.bigint() - s) / LOOKUPS
  if (sink < 0) console.log(sink)
  return ns
}

function timeIdentity(): number {
  let complete = 0
  const s = process.hrtime.bigint()
  for (let n = 0; n < LOOKUPS; n++) if (enricher.identityFor({ containerId: ids[n % ids.length]! }).k8s.identity.state === 'complete') complete++
  const ns = Number(process.hrtime.bigint() - s) / LOOKUPS
  if (complete !== LOOKUPS) throw new Error(`only ${complete}/${LOOKUPS} lookups complete`)
  return ns
}

async function timeEnrich(): Promise<number> {
  const n = LOOKUPS / 10
  let complete = 0
  const s = process.hrtime.bigint()
  for (let i = 0; i < n; i++) if ((await enricher.enrich({ type: 'process.exec', cid: ids[i % ids.length]! })).k8s.identity.state === 'complete') complete++
  const ns = Number(process.hrtime.bigint() - s) / n
  if (complete !== n) throw new Error(`only ${complete}/${n} events complete`)
  return ns
}

timeRef()
timeIdentity()
await timeEnrich() // warm-up
const refNs: number[] = []
const idNs: number[] = []
const enrichNs: number[] = []
for (let r = 0; r < RUNS; r++) {
  refNs.push(timeRef())
  idNs.push(timeIdentity())
  enrichNs.push(await timeEnrich())
}
enricher.close()

const result = {
  bench: 'k8s-lookup',
  pods: cached,
  sync_ms: round(syncMs, 1),
  bytes_per_pod: Math.round(bytesPerPod),
  identity_ns: round(median(idNs), 1),
  enrich_ns: round(median(enrichNs), 1),
  map_get_ns: round(median(refNs), 1),
  identity_vs_map_get: round(median(idNs) / median(refNs), 1),
  enrich_vs_map_get: round(median(enrichNs) / median(refNs), 1),
}
console.log(`pods cached              ${result.pods} (listed in ${result.sync_ms} ms through client-node, 500 per page)`)
console.log(`memory per pod           ${result.bytes_per_pod} bytes (heap delta after GC / pods; slimmed pod + indexes)`)
console.log(`identityFor() warm       ${result.identity_ns} ns/event   (container id → complete k8s.* fields)`)
console.log(`enrich() warm            ${result.enrich_ns} ns/event   (plus event copy and promise)`)
console.log(`reference Map.get        ${result.map_get_ns} ns/event`)
console.log(`ratio identityFor/Map.get ${result.identity_vs_map_get}x, enrich/Map.get ${result.enrich_vs_map_get}x`)
console.log(JSON.stringify(result))
