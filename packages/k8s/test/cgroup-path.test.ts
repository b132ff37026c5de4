import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAX_CGROUP_PATH_LENGTH, parseCgroupPath } from '../src/cgroup/path.js'

const CID = '3f7a1c9e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a'
const CID2 = '9b1d3f5a7c9e0b2d4f6a8c1e3b5d7f9a0c2e4b6d8f1a3c5e7b9d0f2a4c6e8b1d'
const NODE = 'e4c2a0b8d6f4e2c0a8b6d4f2e0c8a6b4d2f0e8c6a4b2d0f8e6c4a2b0d8f6e4c2'
const UID = '7f9c3c1e-5d2b-4a8e-9b61-2f0c8e4d1a37'
const UID_ = UID.replaceAll('-', '_')
const STATIC_UID = '5c4e1f0b7a2d9e3c8b6a1f4d2e0c9b7a'

/** Each row: a path as kubelet / the runtime writes it, and what it must parse to (undefined = nothing). */
const cases: Array<[name: string, path: string, expected: object | undefined]> = [
  // systemd driver + containerd
  [
    'systemd, containerd, besteffort',
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'besteffort', containerId: CID, runtime: 'containerd' },
  ],
  [
    'systemd, containerd, burstable',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'containerd' },
  ],
  [
    'systemd, containerd, guaranteed (pod directly under kubepods.slice)',
    `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'guaranteed', containerId: CID, runtime: 'containerd' },
  ],
  [
    'systemd, static pod (32-hex config hash as UID)',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC_UID}.slice/cri-containerd-${CID}.scope`,
    { driver: 'systemd', podUid: STATIC_UID, qos: 'burstable', containerId: CID, runtime: 'containerd' },
  ],
  [
    'systemd, process in a sub-cgroup of the container scope',
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope/init.scope`,
    { driver: 'systemd', podUid: UID, qos: 'besteffort', containerId: CID, runtime: 'containerd' },
  ],
  [
    'systemd, pod-level cgroup (no container)',
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`,
    { driver: 'systemd', podUid: UID, qos: 'besteffort' },
  ],
  // containerd without the systemd cgroup driver, kubelet with it
  [
    ':cri-containerd: under containerd.service',
    `/system.slice/containerd.service/kubepods-burstable-pod${UID_}.slice:cri-containerd:${CID}`,
    { driver: 'systemd', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'containerd' },
  ],
  [
    ':cri-containerd: guaranteed',
    `/system.slice/containerd.service/kubepods-pod${UID_}.slice:cri-containerd:${CID}`,
    { driver: 'systemd', podUid: UID, qos: 'guaranteed', containerId: CID, runtime: 'containerd' },
  ],
  // systemd driver + CRI-O
  [
    'systemd, cri-o, burstable',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'cri-o' },
  ],
  [
    'systemd, cri-o, container sub-cgroup',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-${CID}.scope/container`,
    { driver: 'systemd', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'cri-o' },
  ],
  [
    'systemd, cri-o conmon scope is not the container',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'burstable' },
  ],
  // systemd driver + cri-dockerd
  [
    'systemd, docker (cri-dockerd), guaranteed',
    `/kubepods.slice/kubepods-pod${UID_}.slice/docker-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'guaranteed', containerId: CID, runtime: 'docker' },
  ],
  // cgroupfs driver
  [
    'cgroupfs, containerd, besteffort',
    `/kubepods/besteffort/pod${UID}/${CID}`,
    { driver: 'cgroupfs', podUid: UID, qos: 'besteffort', containerId: CID, runtime: 'unknown' },
  ],
  [
    'cgroupfs, containerd, burstable',
    `/kubepods/burstable/pod${UID}/${CID}`,
    { driver: 'cgroupfs', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'unknown' },
  ],
  [
    'cgroupfs, guaranteed (pod directly under kubepods)',
    `/kubepods/pod${UID}/${CID}`,
    { driver: 'cgroupfs', podUid: UID, qos: 'guaranteed', containerId: CID, runtime: 'unknown' },
  ],
  [
    'cgroupfs, cri-o',
    `/kubepods/burstable/pod${UID}/crio-${CID}`,
    { driver: 'cgroupfs', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'cri-o' },
  ],
  [
    'cgroupfs, cri-o conmon',
    `/kubepods/burstable/pod${UID}/crio-conmon-${CID}`,
    { driver: 'cgroupfs', podUid: UID, qos: 'burstable' },
  ],
  ['cgroupfs, docker outside Kubernetes', `/docker/${CID}`, { driver: 'cgroupfs', containerId: CID, runtime: 'docker' }],
  // other runtimes outside Kubernetes
  [
    'docker, systemd driver',
    `/system.slice/docker-${CID}.scope`,
    { driver: 'systemd', containerId: CID, runtime: 'docker' },
  ],
  [
    'nerdctl',
    `/system.slice/nerdctl-${CID}.scope`,
    { driver: 'systemd', containerId: CID, runtime: 'nerdctl' },
  ],
  ['podman (libpod scope)', `/machine.slice/libpod-${CID}.scope`, { driver: 'systemd', containerId: CID, runtime: 'podman' }],
  [
    'rootless podman, container sub-cgroup',
    `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${CID}.scope/container`,
    { driver: 'systemd', containerId: CID, runtime: 'podman' },
  ],
  [
    'podman split cgroups (libpod-payload)',
    `/machine.slice/libpod-payload-${CID}`,
    { driver: 'cgroupfs', containerId: CID, runtime: 'podman' },
  ],
  ['podman conmon is not a container', `/machine.slice/libpod-conmon-${CID}.scope`, undefined],
  // nesting: kind / docker-in-docker / cgroup namespaces
  [
    'kind node (systemd): the pod container wins over the node container',
    `/system.slice/docker-${NODE}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/` +
      `kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'besteffort', containerId: CID, runtime: 'containerd' },
  ],
  [
    'kind node, guaranteed pod',
    `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod${UID_}.slice/cri-containerd-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'guaranteed', containerId: CID, runtime: 'containerd' },
  ],
  [
    'docker-in-docker with cgroupfs',
    `/docker/${NODE}/kubelet/kubepods/burstable/pod${UID}/${CID}`,
    { driver: 'cgroupfs', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'unknown' },
  ],
  [
    'a container running Docker inside a pod: the pod container, not the inner one',
    `/kubepods/besteffort/pod${UID}/${CID}/docker/${CID2}`,
    { driver: 'cgroupfs', podUid: UID, qos: 'besteffort', containerId: CID, runtime: 'unknown' },
  ],
  [
    'seen from inside a cgroup namespace (/.. prefix)',
    `/../../../kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`,
    { driver: 'systemd', podUid: UID, qos: 'burstable', containerId: CID, runtime: 'containerd' },
  ],
  // not containers
  ['root', '/', undefined],
  ['host init', '/init.scope', undefined],
  ['runtime daemon', '/system.slice/containerd.service', undefined],
  ['login session', '/user.slice/user-0.slice/session-3.scope', undefined],
  ['kubepods root', '/kubepods.slice', undefined],
  ['QoS slice', '/kubepods.slice/kubepods-burstable.slice', undefined],
  ['63-hex id', `/kubepods/besteffort/pod${UID}/${CID.slice(1)}`, { driver: 'cgroupfs', podUid: UID, qos: 'besteffort' }],
  ['65-hex id', `/system.slice/docker-${CID}0.scope`, undefined],
  ['non-hex id', `/system.slice/cri-containerd-${CID.replace(/./, 'z')}.scope`, undefined],
  ['docker mount unit', `/system.slice/docker-${CID}.mount`, undefined],
  ['pod UID too short', `/kubepods/besteffort/pod${UID.slice(2)}`, undefined],
  ['pod slice not under kubepods', `/system.slice/foo-pod${UID_}.slice`, undefined],
  ['empty string', '', undefined],
]

describe('parseCgroupPath', () => {
  it.each(cases)('%s', (_name, path, expected) => {
    const ref = parseCgroupPath(path)
    if (expected === undefined) expect(ref).toBeUndefined()
    else expect(ref).toEqual({ path, ...expected })
  })

  it('normalises upper-case ids and UIDs to lower case', () => {
    const ref = parseCgroupPath(`/kubepods/besteffort/pod${UID.toUpperCase()}/${CID.toUpperCase()}`)
    expect(ref).toMatchObject({ podUid: UID, containerId: CID })
  })
})

describe('parseCgroupPath on hostile input', () => {
  const valid = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`

  it('refuses inputs longer than PATH_MAX without parsing them', () => {
    const long = '/a'.repeat(MAX_CGROUP_PATH_LENGTH) + valid
    expect(parseCgroupPath(long)).toBeUndefined()
    expect(parseCgroupPath('/'.repeat(10_000_000))).toBeUndefined()
  })

  it('returns undefined for values that are not strings', () => {
    for (const value of [undefined, null, 42, 42n, {}, [], { length: 5 }, Symbol('x')]) {
      expect(parseCgroupPath(value as unknown as string)).toBeUndefined()
    }
  })

  it('ignores over-long segments, NUL bytes and repeated markers', () => {
    expect(parseCgroupPath(`/${'kubepods-pod'.repeat(300)}.slice/cri-containerd-${CID}.scope`)).toMatchObject({
      containerId: CID,
    })
    expect(parseCgroupPath(`/kubepods/pod${UID}\0/${CID}`)).toMatchObject({ containerId: CID })
    expect(parseCgroupPath(`/${':cri-containerd:'.repeat(200)}`)).toBeUndefined()
    expect(parseCgroupPath(`/${'-pod'.repeat(60)}.slice`)).toBeUndefined()
  })

  it('parses worst-case inputs in linear time', () => {
    const adversarial = [
      '/' + 'a/'.repeat(MAX_CGROUP_PATH_LENGTH / 2 - 1),
      '/' + `kubepods-pod${'_'.repeat(240)}.slice/`.repeat(16),
      '/' + `${'0'.repeat(250)}/`.repeat(16),
      '/' + 'x:cri-containerd:'.repeat(240),
    ]
    const started = performance.now()
    for (let i = 0; i < 200; i++) for (const input of adversarial) parseCgroupPath(input)
    // 800 parses of 4 KiB inputs: well under a millisecond each even on a slow shared runner.
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('never throws on random strings (fuzz)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })), (input) => {
        const ref = parseCgroupPath(input)
        if (ref) checkShape(ref, input)
      }),
      { numRuns: 2000 },
    )
  })

  it('never throws on mutated valid paths (fuzz)', () => {
    const seeds = cases.map(([, path]) => path).filter((p) => p.length > 0)
    const mutation = fc.record({
      seed: fc.constantFrom(...seeds),
      at: fc.nat(),
      cut: fc.nat({ max: 80 }),
      insert: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('/', '_', '-', '.slice', '.scope', ':cri-containerd:', 'pod', 'crio-')),
    })
    fc.assert(
      fc.property(mutation, ({ seed, at, cut, insert }) => {
        const i = at % (seed.length + 1)
        const input = seed.slice(0, i) + insert + seed.slice(i + cut)
        const ref = parseCgroupPath(input)
        if (ref) checkShape(ref, input)
      }),
      { numRuns: 3000 },
    )
  })

  it('is not fooled by prefixes of unrelated directories (fuzz)', () => {
    const seeds = cases.filter(([, , expected]) => expected !== undefined).map(([, path]) => path)
    const unrelatedSegment = fc.stringMatching(/^[a-z][a-z0-9@.]{0,15}$/).filter((s) => !/^(pod|docker|kubepods)/.test(s))
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(unrelatedSegment, { maxLength: 6 }), (seed, prefix) => {
        const nested = prefix.map((s) => `/${s}`).join('') + seed
        const { path: _a, ...plain } = parseCgroupPath(seed)!
        const { path: _b, ...inner } = parseCgroupPath(nested)!
        // cgroupfs QoS is read from the pod's parent, which a prefix never replaces.
        expect(inner).toEqual(plain)
      }),
      { numRuns: 500 },
    )
  })
})

function checkShape(ref: NonNullable<ReturnType<typeof parseCgroupPath>>, input: string): void {
  expect(ref.path).toBe(input)
  expect(ref.podUid !== undefined || ref.containerId !== undefined).toBe(true)
  if (ref.containerId !== undefined) expect(ref.containerId).toMatch(/^[0-9a-f]{64}$/)
  if (ref.podUid !== undefined) expect(ref.podUid).toMatch(/^[0-9a-f-]{32,36}$/)
  expect(['systemd', 'cgroupfs']).toContain(ref.driver)
}
