// The pod informer against a test API server speaking the real list/watch
// protocol, driven by the real @kubernetes/client-node: field selectors,
// bookmarks, pagination, 410 Gone, churn, the server dying and coming back,
// and garbage on the wire.
import { afterEach, describe, expect, it } from 'vitest'
import { K8sEnricher, type K8sEnricherOptions } from '../src/index.js'
import { TestApiServer, containerId, memoryLogger, podObject, until } from './apiserver.js'

const PODS = '/api/v1/pods'
const fast = { backoff: { initialMs: 20, maxMs: 200 }, requestTimeoutMs: 2000, holdMs: 300 }

let server: TestApiServer
let enricher: K8sEnricher | undefined

afterEach(async () => {
  enricher?.close()
  enricher = undefined
  await server?.stop()
})

async function setup(opts: Partial<K8sEnricherOptions> = {}) {
  server = new TestApiServer()
  await server.start()
  const logger = memoryLogger()
  enricher = new K8sEnricher({ kubeConfig: server.kubeConfig(), nodeName: 'node-a', logger, key: (e: any) => ({ containerId: e.cid }), ...fast, ...opts })
  return { logger, enricher }
}

/** The node's pods as the server has them: uid → sorted container ids. */
function serverView(node = 'node-a') {
  const out = new Map<string, string>()
  for (const p of server.list(PODS)) {
    if (p.spec.nodeName !== node) continue
    out.set(p.metadata.uid!, (p.status.containerStatuses as Array<{ containerID?: string }>).map((c) => c.containerID?.split('://')[1]).filter(Boolean).sort().join(','))
  }
  return out
}

function cacheView(e: K8sEnricher) {
  const out = new Map<string, string>()
  for (const p of e.cluster!.pods.pods()) out.set(p.metadata.uid, (p.status?.containerStatuses ?? []).map((c) => c.containerID?.split('://')[1]).filter(Boolean).sort().join(','))
  return out
}

describe('pod informer', () => {
  it('lists and watches only this node’s pods (fieldSelector), receives bookmarks, and resolves containers', async () => {
    const { enricher: e } = await setup()
    server.put(PODS, podObject({ name: 'web-1', node: 'node-a', containers: [{ name: 'app', id: containerId('web-1') }] }))
    server.put(PODS, podObject({ name: 'other', node: 'node-b', containers: [{ name: 'app', id: containerId('other') }] }))
    expect(await e.start()).toBe(true)
    expect(e.cluster!.pods.size).toBe(1)
    expect(server.requests.some((r) => r.startsWith('/api/v1/pods?') && r.includes('fieldSelector=spec.nodeName%3Dnode-a') && !r.includes('watch'))).toBe(true)
    await until(() => server.requests.some((r) => r.includes('watch=1') && r.includes('allowWatchBookmarks=true') && r.includes('fieldSelector=spec.nodeName%3Dnode-a')), 2000, 'the watch')

    server.put(PODS, podObject({ name: 'web-2', node: 'node-a', containers: [{ name: 'app', id: containerId('web-2') }] }))
    server.put(PODS, podObject({ name: 'other-2', node: 'node-b', containers: [{ name: 'app', id: containerId('other-2') }] }))
    await until(() => e.cluster!.pods.size === 2, 3000, 'web-2 via watch')
    await until(() => e.stats().api.bookmarks > 0, 3000, 'a bookmark')
    expect(e.cluster!.pods.container(containerId('other-2'))).toBeUndefined()
    const out = await e.enrich({ cid: containerId('web-2') })
    expect(out.k8s.identity.state).toBe('complete')
    expect(out.k8s.pod?.name).toBe('web-2')
    // cached pods are slimmed: no managedFields, annotations only when asked for
    const cached = e.cluster!.pods.pods().next().value as any
    expect(cached.metadata.managedFields).toBeUndefined()
    expect(cached.metadata.annotations).toBeUndefined()
  })

  it('pages large lists with limit/continue', async () => {
    const { enricher: e } = await setup()
    for (let i = 0; i < 1200; i++) server.put(PODS, podObject({ name: `p${i}`, containers: [{ name: 'c', id: containerId(i) }] }))
    expect(await e.start()).toBe(true)
    expect(e.cluster!.pods.size).toBe(1200)
    expect(server.requests.filter((r) => r.includes('continue=')).length).toBe(2)
  })

  it('1,000 pods churning, with 410 Gone as a watch event and as HTTP 410: the final cache matches the server exactly', async () => {
    const { enricher: e } = await setup({ watchTimeoutSeconds: 1 })
    const live: string[] = []
    let n = 0
    const add = () => {
      const name = `churn-${n++}`
      server.put(PODS, podObject({ name, node: n % 7 === 0 ? 'node-b' : 'node-a', containers: [{ name: 'c', id: containerId(name) }] }))
      live.push(name)
    }
    for (let i = 0; i < 1000; i++) add()
    expect(await e.start()).toBe(true)
    expect(cacheView(e)).toEqual(serverView())
    let rand = 42
    const next = () => (rand = (rand * 1103515245 + 12345) & 0x7fffffff)
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 300; i++) {
        const r = next() % 3
        if (r === 0 && live.length) {
          const [name] = live.splice(next() % live.length, 1)
          server.remove(PODS, 'default', name!)
        } else if (r === 1 && live.length) {
          // a container restart: new id, same pod
          const name = live[next() % live.length]!
          const p = server.collections.get(PODS)!.objects.get(`default/${name}`)!
          server.put(PODS, podObject({ name, uid: p.metadata.uid, node: p.spec.nodeName, containers: [{ name: 'c', id: containerId(`${name}-${round}-${i}`) }] }))
        } else add()
      }
      if (round === 1) {
        // the informer's resourceVersion is now too old: it gets a watch ERROR 410 and must relist
        server.compact()
        server.faults.push({ kind: 'expire-watch', as: 'event', path: PODS })
        server.endWatches()
      }
      if (round === 3) {
        server.faults.push({ kind: 'expire-watch', as: 'http', path: PODS })
        server.endWatches()
      }
      await new Promise((r) => setTimeout(r, 150))
    }
    await until(() => JSON.stringify([...cacheView(e)].sort()) === JSON.stringify([...serverView()].sort()), 10_000, 'cache to converge')
    expect(e.cluster!.pods.size).toBe(serverView().size)
    // every live container resolves, and no deleted one is live
    for (const [uid, ids] of serverView()) for (const id of ids.split(',')) expect(e.cluster!.pods.container(id)?.entry.podUid).toBe(uid)
    expect(e.stats().cache.containers).toBe(serverView().size)
    expect(e.stats().api.relists).toBeGreaterThanOrEqual(2)
    expect(e.stats().api.expired).toBeGreaterThanOrEqual(2)
    expect(e.stats().api.errors).toBe(0)
  })

  it('API server dies and comes back: the cache is served meanwhile, misses are partial, then it recovers', async () => {
    const { enricher: e, logger } = await setup()
    server.put(PODS, podObject({ name: 'keep', containers: [{ name: 'app', id: containerId('keep') }] }))
    server.put(PODS, podObject({ name: 'doomed', containers: [{ name: 'app', id: containerId('doomed') }] }))
    expect(await e.start()).toBe(true)
    const port = server.port
    await server.stop()
    await until(() => !e.health().ok, 3000, 'the enricher to notice')
    // meanwhile: the server's state changes (etcd lives on)
    server.put(PODS, podObject({ name: 'born-while-down', containers: [{ name: 'app', id: containerId('born') }] }))
    server.remove(PODS, 'default', 'doomed')
    await new Promise((r) => setTimeout(r, 400)) // several failed retries
    const cached = await e.enrich({ cid: containerId('keep') })
    expect(cached.k8s.identity.state).toBe('complete')
    const t0 = Date.now()
    const unknown = await e.enrich({ cid: containerId('born') })
    expect(Date.now() - t0).toBeLessThan(200) // no hold while the API is down
    expect(unknown.k8s.identity).toMatchObject({ state: 'partial' })
    expect(unknown.k8s.identity.reason).toMatch(/API server unreachable/)
    expect(unknown.container?.id).toBe(containerId('born'))
    const h = e.health()
    expect(h.informers[0]).toMatchObject({ connected: false, synced: true })
    expect(h.informers[0]!.lastError).toMatch(/ECONNREFUSED|connect/i)
    const errorLines = logger.lines.filter((l) => /retrying/.test(l)).length
    expect(errorLines).toBeGreaterThanOrEqual(1)
    expect(errorLines).toBeLessThanOrEqual(2) // logged once per problem, not once per retry
    expect(e.stats().api.errors).toBeGreaterThan(errorLines)

    const resolved: any[] = []
    e.on('k8s.identity.resolved', (r) => resolved.push(r))
    await server.start(port)
    await until(() => e.health().ok && e.cluster!.pods.container(containerId('born')), 5000, 'recovery')
    expect(e.cluster!.pods.container(containerId('doomed'))?.dead).toBe(true)
    expect(cacheView(e)).toEqual(serverView())
    expect(logger.lines.some((l) => /reachable again/.test(l))).toBe(true)
    // the partial event gets its follow-up
    await until(() => resolved.length === 1, 2000, 'follow-up')
    expect(resolved[0].k8s.pod.name).toBe('born-while-down')
    expect(resolved[0].k8s.identity.state).toBe('complete')
  })

  it('garbage from the server (invalid JSON lines, truncated chunks, invalid list JSON, 500s): no crash, partial meanwhile, errors counted', async () => {
    const { enricher: e, logger } = await setup()
    server.put(PODS, podObject({ name: 'a', containers: [{ name: 'app', id: containerId('a') }] }))
    server.faults.push({ kind: 'status', status: 500, path: PODS, times: 3 }, { kind: 'invalid-list-json', path: PODS })
    expect(await e.start()).toBe(true) // after retries with backoff
    expect(e.stats().api.errors).toBeGreaterThanOrEqual(4)
    expect(e.stats().api.garbage).toBeGreaterThanOrEqual(1)

    // a garbage line mid-stream: events may be lost, so the informer relists
    const relists = e.stats().api.relists
    server.faults.push({ kind: 'garbage-line', path: PODS })
    await forceRewatch()
    await until(() => e.stats().api.relists > relists, 5000, 'relist after garbage')
    server.put(PODS, podObject({ name: 'b', containers: [{ name: 'app', id: containerId('b') }] }))
    await until(() => e.cluster!.pods.container(containerId('b')), 3000, 'b after garbage')

    // a chunk cut in the middle of an event: the watch resumes from the last good event
    server.faults.push({ kind: 'truncate-watch', path: PODS })
    const garbage = e.stats().api.garbage
    await forceRewatch()
    await until(() => e.stats().api.garbage > garbage, 3000, 'truncation counted')
    server.put(PODS, podObject({ name: 'c', containers: [{ name: 'app', id: containerId('c') }] }))
    await until(() => e.cluster!.pods.container(containerId('c')), 3000, 'c after truncation')

    // 500s while relisting: unknown containers are partial, the cache keeps serving
    server.faults.push({ kind: 'expire-watch', as: 'http', path: PODS }, { kind: 'status', status: 500, path: PODS, times: 50 })
    await forceRewatch()
    await until(() => !e.health().ok, 3000, 'failing relist')
    expect((await e.enrich({ cid: containerId('a') })).k8s.identity.state).toBe('complete')
    const miss = await e.enrich({ cid: containerId('nope') })
    expect(miss.k8s.identity.state).toBe('partial')
    server.faults.length = 0
    await until(() => e.health().ok, 5000, 'recovery after 500s')
    expect(cacheView(e)).toEqual(serverView())
    expect(logger.lines.some((l) => /HTTP 500/.test(l))).toBe(true)
    expect(logger.lines.some((l) => /not a watch event/.test(l))).toBe(true)
  })
})

describe('misbehaving API server', () => {
  it('watches that close at once with no events are retried with backoff, not in a busy loop', async () => {
    const { enricher: e } = await setup()
    expect(await e.start()).toBe(true)
    for (let i = 0; i < 1000; i++) server.faults.push({ kind: 'empty-watch', path: PODS })
    const before = server.requests.length
    server.endWatches()
    await new Promise((r) => setTimeout(r, 600))
    const watches = server.requests.slice(before).filter((r) => r.includes('watch=1')).length
    expect(watches).toBeGreaterThan(2)
    expect(watches).toBeLessThan(20)
    server.faults.length = 0
    server.put(PODS, podObject({ name: 'after', containers: [{ name: 'app', id: containerId('after') }] }))
    await until(() => e.cluster!.pods.container(containerId('after')), 3000, 'watch to resume')
  })

  it('a list that never answers times out, is logged, and is retried', async () => {
    const { enricher: e, logger } = await setup({ requestTimeoutMs: 150 })
    server.put(PODS, podObject({ name: 'a', containers: [{ name: 'app', id: containerId('slow-a') }] }))
    server.faults.push({ kind: 'hang', path: PODS })
    const t0 = Date.now()
    expect(await e.start()).toBe(true)
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(e.cluster!.pods.size).toBe(1)
    expect(e.health().informers[0]!.errors).toBe(1)
    expect(logger.lines.some((l) => /no answer in 150 ms/.test(l))).toBe(true)
  })
})

/** Ends the current watch streams so the informer re-watches (and meets the next injected fault). */
async function forceRewatch() {
  const before = server.requests.length
  server.endWatches()
  await until(() => server.requests.length > before, 3000, 're-watch')
}
