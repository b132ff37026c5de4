/**
 * CgroupResolver against a real cgroup v2 hierarchy: a cgroup2 mount in a
 * temp dir, directories laid out as kubelet lays them out (both drivers) and
 * real processes moved into them. Needs root; under CI=true a missing
 * privilege fails instead of skipping (the rule of core's describeBpf).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCgroupPath } from '../src/cgroup/path.js'
import { CgroupResolver, parseProcCgroup } from '../src/cgroup/resolver.js'

function unavailableReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux'
  if (process.getuid?.() !== 0) return 'not root (mounting cgroup2 and moving processes needs root)'
  return null
}

function describeRoot(name: string, fn: () => void): void {
  const reason = unavailableReason()
  if (!reason) {
    describe(name, fn)
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('can run cgroup tests', () => {
        throw new Error(`cgroup integration tests cannot run under CI=true: ${reason}`)
      })
    })
  } else {
    console.warn(`[bpfkit] skipping "${name}": ${reason}`)
    describe.skip(name, fn)
  }
}

const UID_SYSTEMD = '0d2c7a4e-9f3b-4c61-8e5a-b7d1f0c3e926'
const UID_CGROUPFS = 'a61f0e3d-2c4b-4d7a-9e8f-13b5c7d9e0f2'
const CID_SYSTEMD = 'c0ffee12' + '3456789a'.repeat(7)
const CID_CGROUPFS = 'deadbeef' + '0123abcd'.repeat(7)
const CID_CONMON = '5eed5eed' + '89abcdef'.repeat(7)

describeRoot('CgroupResolver on a real cgroup2 hierarchy', () => {
  let mount: string
  let base: string
  let systemdDir: string
  let cgroupfsDir: string
  let conmonDir: string
  const created: string[] = []
  const children: ChildProcess[] = []

  /** mkdir -p under the mount, remembering each directory for cleanup. */
  function makeCgroup(rel: string): string {
    let dir = mount
    for (const part of rel.split('/').filter(Boolean)) {
      dir = join(dir, part)
      if (!existsSync(dir)) {
        mkdirSync(dir)
        created.push(dir)
      }
    }
    return dir
  }

  async function sleeperIn(dir: string): Promise<ChildProcess> {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' })
    children.push(child)
    await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject))
    writeFileSync(join(dir, 'cgroup.procs'), String(child.pid))
    return child
  }

  const relOf = (dir: string) => dir.slice(mount.length)
  const idOf = (dir: string) => statSync(dir, { bigint: true }).ino

  beforeAll(() => {
    mount = mkdtempSync(join(tmpdir(), 'bpfkit-k8s-cg2-'))
    execFileSync('mount', ['-t', 'cgroup2', 'none', mount])
    // One private top directory, like a kind node: the parser must see through it.
    base = `/bpfkit-test-${process.pid}-${Date.now()}`
    systemdDir = makeCgroup(
      `${base}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SYSTEMD.replaceAll('-', '_')}.slice/` +
        `cri-containerd-${CID_SYSTEMD}.scope`,
    )
    conmonDir = makeCgroup(`${base}/kubepods.slice/kubepods-pod${UID_SYSTEMD.replaceAll('-', '_')}.slice/crio-conmon-${CID_CONMON}.scope`)
    cgroupfsDir = makeCgroup(`${base}/kubepods/besteffort/pod${UID_CGROUPFS}/${CID_CGROUPFS}`)
  })

  afterAll(async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            child.once('exit', () => resolve())
            child.kill('SIGKILL')
          }),
      ),
    )
    for (const dir of created.reverse()) {
      try {
        rmdirSync(dir)
      } catch {
        // already removed by a test
      }
    }
    if (mount) {
      execFileSync('umount', [mount])
      rmdirSync(mount)
    }
  })

  it('finds the cgroup path and the pod of a process (systemd driver)', async () => {
    const child = await sleeperIn(systemdDir)
    const resolver = new CgroupResolver({ cgroup2Mount: mount })
    expect(resolver.pathForPid(child.pid!)).toBe(relOf(systemdDir))
    expect(resolver.refForPid(child.pid!)).toEqual({
      path: relOf(systemdDir),
      driver: 'systemd',
      podUid: UID_SYSTEMD,
      qos: 'burstable',
      containerId: CID_SYSTEMD,
      runtime: 'containerd',
    })
    resolver.close()
  })

  it('finds the cgroup path and the pod of a process (cgroupfs driver)', async () => {
    const child = await sleeperIn(cgroupfsDir)
    const resolver = new CgroupResolver({ cgroup2Mount: mount })
    expect(resolver.refForPid(child.pid!)).toMatchObject({
      path: relOf(cgroupfsDir),
      driver: 'cgroupfs',
      podUid: UID_CGROUPFS,
      qos: 'besteffort',
      containerId: CID_CGROUPFS,
    })
    resolver.close()
  })

  it('maps cgroup ids (directory inodes) to paths and refs with one walk', () => {
    const resolver = new CgroupResolver({ cgroup2Mount: mount })
    expect(resolver.pathForId(idOf(systemdDir))).toBe(relOf(systemdDir))
    expect(resolver.refForId(idOf(cgroupfsDir))).toMatchObject({ podUid: UID_CGROUPFS, containerId: CID_CGROUPFS })
    // The conmon scope is in the pod but is not a container.
    expect(resolver.refForId(idOf(conmonDir))).toEqual({
      path: relOf(conmonDir),
      driver: 'systemd',
      podUid: UID_SYSTEMD,
      qos: 'guaranteed',
    })
    expect(resolver.pathForId(idOf(mount))).toBe('/')
    const stats = resolver.stats()
    expect(stats.walks).toBe(1)
    expect(stats.hits).toBe(4)
    expect(stats.misses).toBe(0)
    expect(stats.cacheSize).toBeGreaterThanOrEqual(created.length + 1)
    resolver.close()
    expect(resolver.pathForId(idOf(systemdDir))).toBeUndefined()
  })

  it('the id of a process cgroup from /proc and from the walk agree', async () => {
    const child = await sleeperIn(systemdDir)
    const resolver = new CgroupResolver({ cgroup2Mount: mount })
    expect(resolver.pathForId(idOf(join(mount, resolver.pathForPid(child.pid!)!)))).toBe(relOf(systemdDir))
    resolver.close()
  })

  it('rate-limits walks under a flood of unknown ids and counts every miss', () => {
    const resolver = new CgroupResolver({ cgroup2Mount: mount, minWalkIntervalMs: 60_000 })
    for (let i = 0; i < 5000; i++) expect(resolver.pathForId(0xfffffff0000n + BigInt(i))).toBeUndefined()
    const stats = resolver.stats()
    expect(stats.walks).toBe(1)
    expect(stats.misses).toBe(5000)
    expect(stats.rateLimitedMisses).toBe(4999)
    resolver.close()
  })

  it('finds a cgroup created after the last walk once a walk is allowed', () => {
    const resolver = new CgroupResolver({ cgroup2Mount: mount, minWalkIntervalMs: 60_000 })
    resolver.refresh()
    const late = makeCgroup(`${base}/kubepods/besteffort/pod${UID_CGROUPFS}/${CID_SYSTEMD}`)
    expect(resolver.pathForId(idOf(late))).toBeUndefined() // within the interval: no walk
    expect(resolver.stats().rateLimitedMisses).toBe(1)
    resolver.refresh()
    expect(resolver.refForId(idOf(late))).toMatchObject({ podUid: UID_CGROUPFS, containerId: CID_SYSTEMD })
    resolver.close()
  })

  it('keeps a removed cgroup resolvable for tombstoneMs, then forgets it', () => {
    const gone = makeCgroup(`${base}/kubepods/besteffort/pod${UID_CGROUPFS}/${CID_CONMON}`)
    const id = idOf(gone)
    const keeping = new CgroupResolver({ cgroup2Mount: mount, tombstoneMs: 60_000 })
    const forgetting = new CgroupResolver({ cgroup2Mount: mount, tombstoneMs: 0 })
    keeping.refresh()
    forgetting.refresh()
    rmdirSync(gone)
    keeping.refresh()
    forgetting.refresh()
    expect(keeping.refForId(id)).toMatchObject({ containerId: CID_CONMON })
    expect(keeping.stats().tombstones).toBe(1)
    expect(forgetting.stats().tombstones).toBe(0)
    expect(forgetting.pathForId(id)).toBeUndefined()
    keeping.close()
    forgetting.close()
  })

  it('bounds the cache at maxEntries and reports the truncated walk', () => {
    const resolver = new CgroupResolver({ cgroup2Mount: mount, maxEntries: 3 })
    resolver.refresh()
    expect(resolver.stats()).toMatchObject({ cacheSize: 3, truncatedWalks: 1 })
    resolver.close()
  })

  it('finds the cgroup2 mount itself from /proc/self/mountinfo', async () => {
    const child = await sleeperIn(cgroupfsDir)
    const resolver = new CgroupResolver()
    expect(resolver.mount).toBeDefined()
    // Every cgroup2 mount shows the same hierarchy: same ids, same paths.
    expect(resolver.pathForId(idOf(cgroupfsDir))).toBe(relOf(cgroupfsDir))
    expect(resolver.pathForPid(child.pid!)).toBe(relOf(cgroupfsDir))
    resolver.close()
  })

  it('reads the path of a process outside the reader cgroup namespace (/.. prefix)', async () => {
    const target = await sleeperIn(systemdDir)
    // A reader in its own cgroup namespace rooted at the cgroupfs pod container.
    const text = execFileSync('sh', [
      '-c',
      `echo $$ > ${join(cgroupfsDir, 'cgroup.procs')} && exec unshare --cgroup cat /proc/${target.pid}/cgroup`,
    ]).toString()
    const path = parseProcCgroup(text)!
    expect(path.startsWith('/..')).toBe(true)
    const { path: _a, ...viaNamespace } = parseCgroupPath(path)!
    const { path: _b, ...direct } = new CgroupResolver({ cgroup2Mount: mount }).refForPid(target.pid!)!
    expect(viaNamespace).toEqual(direct)
  })

  it('returns undefined, without throwing, for gone processes, bad pids and a missing mount', () => {
    const resolver = new CgroupResolver({ cgroup2Mount: mount })
    expect(resolver.pathForPid(2 ** 30)).toBeUndefined()
    for (const pid of [-1, 0, 1.5, Number.NaN]) expect(resolver.pathForPid(pid)).toBeUndefined()
    expect(resolver.pathForId(5 as unknown as bigint)).toBeUndefined()
    resolver.close()
    const missing = new CgroupResolver({ cgroup2Mount: join(mount, 'does-not-exist') })
    expect(missing.pathForId(1n)).toBeUndefined()
    expect(missing.stats()).toMatchObject({ walks: 1, walkErrors: 1, cacheSize: 0 })
  })
})

describe('parseProcCgroup', () => {
  it('takes the cgroup v2 line of a hybrid /proc/PID/cgroup', () => {
    const text = '12:pids:/system.slice/x\n1:name=systemd:/system.slice/x\n0::/system.slice/docker-ab.scope\n'
    expect(parseProcCgroup(text)).toBe('/system.slice/docker-ab.scope')
    expect(parseProcCgroup('4:memory:/kubepods\n')).toBeUndefined()
    expect(parseProcCgroup('0::garbage')).toBeUndefined()
  })
})
