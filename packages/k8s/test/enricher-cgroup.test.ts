// End to end on the real kernel: a cgroup2 mount in a temp dir with kubelet's
// directory layout for both cgroup drivers, real processes exec'ing inside
// those cgroups, the real core ProcessSensor, the matching pods served by the
// test API server, and the enricher joining them.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { K8sEnricher } from '../src/index.js'
import { TestApiServer, containerId, memoryLogger, podObject, until } from './apiserver.js'
import { assertValidEvent } from '../../core/test/schema.js'

/** Why this test cannot run here, or null. */
async function unavailable(): Promise<string | null> {
  if (process.platform !== 'linux') return 'not Linux'
  if (process.getuid?.() !== 0) return 'not root (needs to mount cgroup2 and load BPF)'
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'no kernel BTF at /sys/kernel/btf/vmlinux'
  try {
    await import('@bpfkit/core')
  } catch (e) {
    return `@bpfkit/core cannot load (${(e as Error).message.split('\n')[0]})`
  }
  return null
}

const reason = await unavailable()
// Under CI=true a missing privilege fails, never a silent skip (as packages/core/test/helpers.ts describeBpf).
const describeRoot = (name: string, fn: () => void) => {
  if (!reason) return describe(name, fn)
  if (process.env.CI === 'true') return describe(name, () => it('can run real-kernel tests', () => expect.fail(`cannot run under CI=true: ${reason}`)))
  console.warn(`[bpfkit/k8s] skipping "${name}": ${reason}`)
  return describe.skip(name, fn)
}

const PODS = '/api/v1/pods'
const uidA = '3f2a1b4c-1111-4a2b-9c3d-0123456789ab' // systemd driver, Deployment
const uidB = '7e6d5c4b-2222-4f3e-8d2c-ba9876543210' // cgroupfs driver, CronJob
const uidC = '0a1b2c3d-3333-4e5f-a6b7-c8d9e0f1a2b3' // cgroupfs guaranteed, pod appears late
const idA = containerId(`cg-a-${process.pid}`)
const idB = containerId(`cg-b-${process.pid}`)
const idC = containerId(`cg-c-${process.pid}`)

describeRoot('enricher on the real kernel (cgroup2 + ProcessSensor)', () => {
  let mount: string
  const created: string[] = [] // every directory we made, parents first
  let server: TestApiServer
  let enricher: K8sEnricher
  let sensor: import('@bpfkit/core').ProcessSensor
  const out: any[] = []

  const mk = (rel: string) => {
    let path = mount
    for (const part of rel.split('/').filter(Boolean)) {
      path = join(path, part)
      if (!existsSync(path)) {
        mkdirSync(path)
        created.push(path)
      }
    }
    return path
  }

  const leafA = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uidA.replaceAll('-', '_')}.slice/cri-containerd-${idA}.scope`
  const leafB = `/kubepods/besteffort/pod${uidB}/${idB}`
  const leafC = `/kubepods/pod${uidC}/${idC}`

  beforeAll(async () => {
    const { ProcessSensor } = await import('@bpfkit/core')
    mount = mkdtempSync(join(tmpdir(), 'bpfkit-k8s-cg2-'))
    execFileSync('mount', ['-t', 'cgroup2', 'none', mount])
    for (const leaf of [leafA, leafB, leafC]) mk(leaf)
    server = new TestApiServer()
    await server.start()
    server.put(PODS, podObject({
      name: 'checkout-6f7d9b-abcde', namespace: 'shop', uid: uidA, serviceAccount: 'checkout', labels: { app: 'checkout', 'pod-template-hash': '6f7d9b' },
      owner: { kind: 'ReplicaSet', name: 'checkout-6f7d9b' }, containers: [{ name: 'server', id: idA, image: 'ghcr.io/shop/checkout:2.0' }],
    }))
    server.put(PODS, podObject({ name: 'report-29000000-xyz', namespace: 'batch', uid: uidB, owner: { kind: 'Job', name: 'report-29000000' }, containers: [{ name: 'job', id: idB }] }))
    enricher = new K8sEnricher({ kubeConfig: server.kubeConfig(), nodeName: 'node-a', cgroup: { cgroup2Mount: mount, minWalkIntervalMs: 0 }, holdMs: 3000, logger: memoryLogger() })
    expect(await enricher.start()).toBe(true)
    const ids = [leafA, leafB, leafC].map((l) => statSync(join(mount, l), { bigint: true }).ino)
    sensor = new ProcessSensor({ filter: { excludePid: process.pid, cgroupIds: ids } })
    sensor.on('event', (e) => enricher.push(e))
    enricher.on('event', (e) => out.push(e))
  })

  afterAll(async () => {
    sensor?.close()
    enricher?.close()
    await server?.stop()
    if (!mount) return
    for (const dir of created.reverse()) {
      try {
        rmdirSync(dir)
      } catch {
        /* still populated by a straggler: the unmount below is lazy */
      }
    }
    execFileSync('umount', ['-l', mount])
    rmdirSync(mount)
  })

  /** Runs `sleep` exec'd inside the cgroup (the shell moves itself in first) and waits for it to exit. */
  async function runIn(leaf: string, arg: string) {
    const child = spawn('/bin/sh', ['-c', `echo $$ > ${join(mount, leaf, 'cgroup.procs')} && exec /bin/sleep ${arg}`], { stdio: 'ignore' })
    await new Promise((r) => child.on('exit', r))
    return child.pid!
  }

  const flush = async () => {
    await new Promise((r) => setTimeout(r, 50))
    sensor.flush()
  }

  it('a cgroup id handed over as a number (from JSON) resolves like the bigint', () => {
    const id = statSync(join(mount, leafA), { bigint: true }).ino
    const viaBigint = enricher.identityFor({ cgroupId: id })
    expect(viaBigint.k8s.pod?.name).toBe('checkout-6f7d9b-abcde')
    expect(enricher.identityFor({ cgroupId: Number(id) })).toEqual(viaBigint)
  })

  it('process.exec in a systemd-driver container cgroup comes out with pod, container and Deployment, complete', async () => {
    const pid = await runIn(leafA, '0.11')
    await flush()
    const ev = await until(() => out.find((e) => e.type === 'process.exec' && e.process.pid === pid && e.process.executable.name === 'sleep'), 5000, 'exec event')
    expect(ev.process.command_args).toEqual(['/bin/sleep', '0.11'])
    expect(ev.k8s).toMatchObject({
      identity: { state: 'complete', source: 'apiserver' },
      pod: { name: 'checkout-6f7d9b-abcde', uid: uidA, labels: { app: 'checkout' } },
      namespace: { name: 'shop' },
      container: { name: 'server' },
      service_account: { name: 'checkout' },
      workload: { kind: 'Deployment', name: 'checkout' },
      deployment: { name: 'checkout' },
    })
    expect(ev.container).toEqual({ id: idA, runtime: 'containerd', image: { name: 'ghcr.io/shop/checkout', tags: ['2.0'] } })
    assertValidEvent(ev) // the enriched event still matches docs/schema/events.schema.json, k8s and container included
    const exit = await until(() => out.find((e) => e.type === 'process.exit' && e.process.pid === pid), 5000, 'exit event')
    expect(exit.k8s.pod.name).toBe('checkout-6f7d9b-abcde')
  })

  it('process.exec in a cgroupfs-driver container cgroup is attributed to its CronJob', async () => {
    const pid = await runIn(leafB, '0.12')
    await flush()
    const ev = await until(() => out.find((e) => e.type === 'process.exec' && e.process.pid === pid && e.process.executable.name === 'sleep'), 5000, 'exec event')
    expect(ev.k8s).toMatchObject({
      identity: { state: 'complete' },
      pod: { name: 'report-29000000-xyz', uid: uidB },
      namespace: { name: 'batch' },
      container: { name: 'job' },
      workload: { kind: 'CronJob', name: 'report' },
      job: { name: 'report-29000000' },
      cronjob: { name: 'report' },
    })
    expect(ev.container.id).toBe(idB)
  })

  it('an exec before its pod is known is held, then comes out complete once the pod appears', async () => {
    const pid = await runIn(leafC, '0.13')
    await flush()
    await until(() => enricher.stats().pending > 0, 3000, 'the event to be held')
    expect(out.find((e) => e.process?.pid === pid && e.type === 'process.exec')).toBeUndefined()
    server.put(PODS, podObject({ name: 'late-pod', uid: uidC, owner: { kind: 'DaemonSet', name: 'agent' }, containers: [{ name: 'agent', id: idC }] }))
    const ev = await until(() => out.find((e) => e.type === 'process.exec' && e.process.pid === pid && e.process.executable.name === 'sleep'), 5000, 'held exec event')
    expect(ev.k8s).toMatchObject({ identity: { state: 'complete' }, pod: { name: 'late-pod', uid: uidC }, workload: { kind: 'DaemonSet', name: 'agent' }, daemonset: { name: 'agent' } })
    expect(enricher.stats().holdLatency.count).toBeGreaterThan(0)
  })
})
