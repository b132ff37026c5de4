/**
 * The CRI source against an in-process CRI server: a grpc-js server on a
 * unix socket serving runtime.v1.RuntimeService from the same descriptor the
 * source uses, holding a small set of pods and containers.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server as NetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CriError } from '../src/cri/errors.js'
import { runtimeServiceClient } from '../src/cri/proto.js'
import { CriContainerSource, findCriSocket } from '../src/cri/source.js'
import { K8sConfigError } from '../src/cluster.js'

const SANDBOX = 'aa11bb22'.repeat(8)
const APP = 'c0c0a0a0'.repeat(8)
const UNKNOWN = 'ffeeddcc'.repeat(8)
const ORPHAN = '0badf00d'.repeat(8)

interface FakeContainer {
  sandboxId: string
  name: string
  image: string
  imageRef: string
  labels: Record<string, string>
}
interface FakeSandbox {
  name: string
  uid: string
  namespace: string
  labels: Record<string, string>
  annotations: Record<string, string>
}

const sandboxes: Record<string, FakeSandbox> = {
  [SANDBOX]: {
    name: 'web-7d4b9c6f5-x2k8p',
    uid: '4b1e6a8c-2f3d-4e5a-9b7c-1d2e3f4a5b6c',
    namespace: 'shop',
    labels: {
      app: 'web',
      'pod-template-hash': '7d4b9c6f5',
      'io.kubernetes.pod.name': 'web-7d4b9c6f5-x2k8p',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': '4b1e6a8c-2f3d-4e5a-9b7c-1d2e3f4a5b6c',
      'io.cri-containerd.kind': 'sandbox',
    },
    annotations: {
      'kubernetes.io/config.source': 'api',
      'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{"env":[{"name":"TOKEN","value":"s3cr3t"}]}}',
    },
  },
}
const containers: Record<string, FakeContainer> = {
  [APP]: {
    sandboxId: SANDBOX,
    name: 'web',
    image: 'registry.example.com/shop/web:1.4.2',
    imageRef: 'registry.example.com/shop/web@sha256:' + 'ab'.repeat(32),
    labels: {
      'io.kubernetes.container.name': 'web',
      'io.kubernetes.pod.name': 'web-7d4b9c6f5-x2k8p',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': '4b1e6a8c-2f3d-4e5a-9b7c-1d2e3f4a5b6c',
    },
  },
  // A container whose runtime lost its sandbox and labels: no pod can be named.
  [ORPHAN]: { sandboxId: '', name: 'x', image: 'x', imageRef: '', labels: {} },
}

const calls: string[] = []
const notFound = (what: string) => ({ code: grpc.status.NOT_FOUND, details: `${what} not found` })

const runtimeImpl: grpc.UntypedServiceImplementation = {
  Version: (_call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
    calls.push('Version')
    cb(null, { version: '0.1.0', runtime_name: 'containerd', runtime_version: 'v2.0.0', runtime_api_version: 'v1' })
  },
  ContainerStatus: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
    calls.push('ContainerStatus')
    const c = containers[call.request.container_id]
    if (!c) return cb(notFound('container'))
    cb(null, { status: { id: call.request.container_id, metadata: { name: c.name }, image: { image: c.image }, image_ref: c.imageRef, labels: c.labels } })
  },
  ListContainers: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
    calls.push('ListContainers')
    const id = call.request.filter?.id
    const found = Object.entries(containers).filter(([cid]) => !id || cid === id)
    cb(null, {
      containers: found.map(([cid, c]) => ({
        id: cid,
        pod_sandbox_id: c.sandboxId,
        metadata: { name: c.name },
        image: { image: 'sha256:' + '12'.repeat(32) },
        image_ref: c.imageRef,
        labels: c.labels,
      })),
    })
  },
  PodSandboxStatus: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
    calls.push('PodSandboxStatus')
    const s = sandboxes[call.request.pod_sandbox_id]
    if (!s) return cb(notFound('sandbox'))
    cb(null, { status: { id: call.request.pod_sandbox_id, metadata: { name: s.name, uid: s.uid, namespace: s.namespace, attempt: 0 }, labels: s.labels, annotations: s.annotations } })
  },
}

const dir = mkdtempSync(join(tmpdir(), 'bpfkit-cri-'))
const servers: grpc.Server[] = []
const sources: CriContainerSource[] = []

async function serve(socket: string, setup: (server: grpc.Server) => void): Promise<void> {
  const server = new grpc.Server()
  setup(server)
  servers.push(server)
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  )
}

function source(options: ConstructorParameters<typeof CriContainerSource>[0]): CriContainerSource {
  const s = new CriContainerSource(options)
  sources.push(s)
  return s
}

async function criError(promise: Promise<unknown>): Promise<CriError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a CriError')
    },
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(CriError)
  return error as CriError
}

const criSocket = join(dir, 'containerd.sock')

beforeAll(async () => {
  await serve(criSocket, (server) => server.addService(runtimeServiceClient().service, runtimeImpl))
})

afterEach(() => {
  calls.length = 0
})

afterAll(() => {
  for (const s of sources) s.close()
  for (const server of servers) server.forceShutdown()
})

describe('CriContainerSource against a CRI server', () => {
  it('resolves a container to its pod, with pod labels and without bookkeeping labels', async () => {
    const cri = source({ socketPath: criSocket })
    const info = await cri.lookupContainer(APP)
    expect(info).toEqual({
      containerId: APP,
      containerName: 'web',
      image: 'registry.example.com/shop/web:1.4.2',
      podUid: '4b1e6a8c-2f3d-4e5a-9b7c-1d2e3f4a5b6c',
      podName: 'web-7d4b9c6f5-x2k8p',
      namespace: 'shop',
      labels: { app: 'web', 'pod-template-hash': '7d4b9c6f5' },
      runtime: 'containerd',
    })
    expect(calls.sort()).toEqual(['ContainerStatus', 'ListContainers', 'PodSandboxStatus', 'Version'])
  })

  it('answers repeated and concurrent lookups from one set of calls', async () => {
    const cri = source({ socketPath: criSocket })
    const [a, b] = await Promise.all([cri.lookupContainer(APP), cri.lookupContainer(APP.toUpperCase())])
    expect(a).toBe(b)
    const callsAfterFirst = calls.length
    expect(await cri.lookupContainer(APP)).toEqual(a)
    expect(calls.length).toBe(callsAfterFirst)
    expect(cri.stats()).toMatchObject({ lookups: 3, cacheHits: 1, cacheSize: 1 })
  })

  it('copies annotations only when asked, and never the last-applied configuration', async () => {
    const cri = source({ socketPath: criSocket, includeAnnotations: true })
    const info = await cri.lookupContainer(APP)
    expect(info?.annotations).toEqual({ 'kubernetes.io/config.source': 'api' })
    expect(JSON.stringify(info)).not.toContain('s3cr3t')
  })

  it('resolves a sandbox (pause container) id to its pod without a container name', async () => {
    const cri = source({ socketPath: criSocket })
    const info = await cri.lookupContainer(SANDBOX)
    expect(info).toMatchObject({ containerId: SANDBOX, podName: 'web-7d4b9c6f5-x2k8p', namespace: 'shop' })
    expect(info?.containerName).toBeUndefined()
  })

  it('returns undefined for an id the runtime does not know, and caches that briefly', async () => {
    const cri = source({ socketPath: criSocket })
    expect(await cri.lookupContainer(UNKNOWN)).toBeUndefined()
    const made = calls.length
    expect(await cri.lookupContainer(UNKNOWN)).toBeUndefined()
    expect(calls.length).toBe(made)
    expect(cri.stats()).toMatchObject({ notFound: 1, cacheHits: 1 })

    const short = source({ socketPath: criSocket, notFoundTtlMs: 1 })
    await short.lookupContainer(UNKNOWN)
    await new Promise((r) => setTimeout(r, 5))
    const before = calls.length
    await short.lookupContainer(UNKNOWN)
    expect(calls.length).toBeGreaterThan(before)
  })

  it('rejects a runtime answer that names no pod as a protocol error', async () => {
    const error = await criError(source({ socketPath: criSocket }).lookupContainer(ORPHAN))
    expect(error.code).toBe('protocol')
  })

  it('rejects ids that are not 64 hex with a typed error, without calling the runtime', async () => {
    const cri = source({ socketPath: criSocket })
    for (const bad of ['', 'abc', APP + '0', 'g'.repeat(64), 42 as unknown as string]) {
      expect((await criError(cri.lookupContainer(bad))).code).toBe('invalid-id')
    }
    expect(calls).toEqual([])
    expect(cri.stats().errors['invalid-id']).toBe(5)
  })

  it('rejects lookups after close', async () => {
    const cri = source({ socketPath: criSocket })
    cri.close()
    expect((await criError(cri.lookupContainer(APP))).code).toBe('closed')
  })

  it('finds the first existing socket among candidates', () => {
    const plainFile = join(dir, 'not-a-socket')
    writeFileSync(plainFile, '')
    expect(findCriSocket([join(dir, 'absent.sock'), plainFile, criSocket])).toBe(criSocket)
    expect(findCriSocket([join(dir, 'absent.sock')])).toBeUndefined()
  })
})

/** Minimal protobuf wire encoding, written from api.proto's field numbers independently of src/cri/proto.ts. */
const varint = (n: number): Buffer => {
  const bytes: number[] = []
  while (n > 127) {
    bytes.push((n & 127) | 128)
    n >>>= 7
  }
  bytes.push(n)
  return Buffer.from(bytes)
}
const field = (num: number, value: string | Buffer): Buffer => {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value
  return Buffer.concat([varint((num << 3) | 2), varint(bytes.length), bytes])
}
const entry = (num: number, key: string, value: string) => field(num, Buffer.concat([field(1, key), field(2, value)]))

describe('CriContainerSource on the wire', () => {
  it('speaks the field numbers of runtime.v1 api.proto', async () => {
    const socket = join(dir, 'wire.sock')
    const POD_UID = '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b'
    const requests: Record<string, Buffer> = {}
    const responses: Record<string, Buffer> = {
      // VersionResponse.runtime_name = 2
      Version: field(2, 'cri-o'),
      // ContainerStatusResponse.status = 1 { metadata = 2 { name = 1 }, image = 8 { image = 1 }, labels = 12 }
      ContainerStatus: field(1, Buffer.concat([
        field(1, APP),
        field(2, field(1, 'api')),
        field(8, field(1, 'quay.io/acme/api:2.0')),
        entry(12, 'io.kubernetes.pod.name', 'api-0'),
      ])),
      // ListContainersResponse.containers = 1 { id = 1, pod_sandbox_id = 2 }
      ListContainers: field(1, Buffer.concat([field(1, APP), field(2, SANDBOX)])),
      // PodSandboxStatusResponse.status = 1 { metadata = 2 { name = 1, uid = 2, namespace = 3 }, labels = 7, annotations = 8 }
      PodSandboxStatus: field(1, Buffer.concat([
        field(1, SANDBOX),
        field(2, Buffer.concat([field(1, 'api-0'), field(2, POD_UID), field(3, 'acme')])),
        entry(7, 'app', 'api'),
        entry(8, 'team', 'payments'),
      ])),
    }
    const service: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {}
    const impl: grpc.UntypedServiceImplementation = {}
    for (const method of Object.keys(responses)) {
      service[method] = {
        path: `/runtime.v1.RuntimeService/${method}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      }
      impl[method] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        requests[method] = call.request
        cb(null, responses[method]!)
      }
    }
    await serve(socket, (server) => server.addService(service, impl))
    const info = await source({ socketPath: socket, includeAnnotations: true }).lookupContainer(APP)
    expect(info).toEqual({
      containerId: APP,
      containerName: 'api',
      image: 'quay.io/acme/api:2.0',
      podUid: POD_UID,
      podName: 'api-0',
      namespace: 'acme',
      labels: { app: 'api' },
      annotations: { team: 'payments' },
      runtime: 'cri-o',
    })
    // Requests: ContainerStatusRequest.container_id = 1 (verbose = 2 false: omitted), ListContainersRequest.filter = 1
    // { id = 1 }, PodSandboxStatusRequest.pod_sandbox_id = 1, VersionRequest.version = 1.
    expect(requests).toEqual({
      ContainerStatus: field(1, APP),
      ListContainers: field(1, field(1, APP)),
      PodSandboxStatus: field(1, SANDBOX),
      Version: field(1, '0.1.0'),
    })
  })
})

describe('CriContainerSource when the runtime misbehaves', () => {
  it('rejects with "unavailable" when the socket is absent, then fails fast', async () => {
    const cri = source({ socketPath: join(dir, 'absent.sock'), retryAfterMs: 60_000 })
    const first = await criError(cri.lookupContainer(APP))
    expect(first.code).toBe('unavailable')
    const second = await criError(cri.lookupContainer(APP))
    expect(second.code).toBe('unavailable')
    expect(cri.stats()).toMatchObject({ fastFailures: 1 })
  })

  it('rejects with "timeout" when the runtime never answers', async () => {
    const socket = join(dir, 'stuck.sock')
    const stuck = Object.fromEntries(Object.keys(runtimeImpl).map((name) => [name, () => {}]))
    await serve(socket, (server) => server.addService(runtimeServiceClient().service, stuck))
    const started = Date.now()
    const error = await criError(source({ socketPath: socket, timeoutMs: 200 }).lookupContainer(APP))
    expect(error.code).toBe('timeout')
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('a lookup in flight when close() is called rejects with "closed", not "unavailable"; an empty socket path is a config error', async () => {
    const socket = join(dir, 'stuck-close.sock')
    const stuck = Object.fromEntries(Object.keys(runtimeImpl).map((name) => [name, () => {}]))
    await serve(socket, (server) => server.addService(runtimeServiceClient().service, stuck))
    const cri = source({ socketPath: socket, timeoutMs: 300 })
    const pending = criError(cri.lookupContainer(APP))
    await new Promise((r) => setTimeout(r, 50))
    cri.close()
    expect((await pending).code).toBe('closed')
    expect(() => new CriContainerSource({ socketPath: '' })).toThrow(K8sConfigError)
  })

  it('rejects with "unsupported" when the runtime does not serve runtime.v1', async () => {
    const socket = join(dir, 'v1alpha2.sock')
    await serve(socket, () => {})
    expect((await criError(source({ socketPath: socket }).lookupContainer(APP))).code).toBe('unsupported')
  })

  it('rejects with "protocol" when responses are not CRI messages', async () => {
    const socket = join(dir, 'garbage-response.sock')
    const raw = (path: string): grpc.MethodDefinition<Buffer, Buffer> => ({
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (b) => b,
      requestDeserialize: (b) => b,
      responseSerialize: (b) => b,
      responseDeserialize: (b) => b,
    })
    const service: grpc.ServiceDefinition = {
      ContainerStatus: raw('/runtime.v1.RuntimeService/ContainerStatus'),
      ListContainers: raw('/runtime.v1.RuntimeService/ListContainers'),
      Version: raw('/runtime.v1.RuntimeService/Version'),
    }
    // Field 1 with wire type 7 does not exist: no protobuf decoder accepts it.
    const garbage = (_: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from([0x0f, 0xff, 0xff, 0xff]))
    await serve(socket, (server) => server.addService(service, { ContainerStatus: garbage, ListContainers: garbage, Version: garbage }))
    const error = await criError(source({ socketPath: socket }).lookupContainer(APP))
    expect(error.code).toBe('protocol')
  })

  it('rejects with "unavailable" when the socket speaks something other than gRPC', async () => {
    const socket = join(dir, 'garbage.sock')
    const net: NetServer = createServer((conn) => conn.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')))
    await new Promise<void>((resolve) => net.listen(socket, resolve))
    try {
      const error = await criError(source({ socketPath: socket, timeoutMs: 2000 }).lookupContainer(APP))
      expect(error.code).toBe('unavailable')
    } finally {
      net.close()
    }
  })
})
