/**
 * Finding the cgroup2 mounts and the directory of a /proc/PID/cgroup path,
 * from plain text, then for real: a reader in its own cgroup namespace (as an
 * agent in a pod is) must give processes in other cgroups their true cgroup
 * id, the inode of their directory, and 0 (unknown), never a wrong one.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CgroupPaths, parseCgroup2Mounts, pickCgroup2Mount, rankCgroup2Mounts } from '../src/cgroup-mounts.js'
import { cgroup2Root, describeBpf, repoRoot, tempDir } from './helpers.js'

describe('cgroup2 mounts from mountinfo', () => {
  it('reads cgroup2 mounts with their roots and escaped mount points', () => {
    const mountinfo = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw',
      '77 50 0:38 /kubepods.slice /host\\040cg rw master:9 - cgroup2 none rw',
      'garbage',
    ].join('\n')
    expect(parseCgroup2Mounts(mountinfo)).toEqual([
      { root: '/', mountPoint: '/sys/fs/cgroup/unified' },
      { root: '/kubepods.slice', mountPoint: '/host cg' },
    ])
  })

  it('ranks first the mount that shows the whole node, not a container-scoped one', () => {
    // Inside a pod with its own cgroup namespace: the runtime's mount shows the
    // pod container ('/'), the host's /sys/fs/cgroup mounted over it shows the node.
    const inPod = [
      { root: '/', mountPoint: '/sys/fs/cgroup' },
      { root: '/../../..', mountPoint: '/host/sys/fs/cgroup' },
      { root: '/kubepods.slice', mountPoint: '/sub' },
    ]
    expect(pickCgroup2Mount(inPod)).toBe('/host/sys/fs/cgroup')
    expect(rankCgroup2Mounts(inPod).map((m) => m.mountPoint)).toEqual(['/host/sys/fs/cgroup', '/sys/fs/cgroup', '/sub'])
    expect(pickCgroup2Mount([{ root: '/sub', mountPoint: '/a' }, { root: '/', mountPoint: '/b' }])).toBe('/b')
    expect(pickCgroup2Mount([{ root: '/', mountPoint: '/x' }, { root: '/', mountPoint: '/y' }])).toBe('/y')
    expect(pickCgroup2Mount([])).toBeUndefined()
  })

  it('maps a /proc/PID/cgroup path to a directory only under a mount that shows it', () => {
    const host = new CgroupPaths([{ root: '/', mountPoint: '/sys/fs/cgroup' }])
    expect(host.directoryOf('/system.slice/x.service')).toBe('/sys/fs/cgroup/system.slice/x.service')
    expect(host.directoryOf('/')).toBe('/sys/fs/cgroup')
    expect(host.directoryOf('/../x')).toBeUndefined()

    // In a pod, with the mounts only on paper (no directories): our root's names
    // cannot be found, so only paths that climb as far as the host mount's root resolve.
    const inPod = new CgroupPaths([
      { root: '/', mountPoint: '/nonexistent/own' },
      { root: '/../../..', mountPoint: '/nonexistent/host/' },
    ])
    expect(inPod.directoryOf('/../../../kubepods/pod1/c1')).toBe('/nonexistent/host/kubepods/pod1/c1')
    expect(inPod.directoryOf('/')).toBe('/nonexistent/own')
    expect(inPod.directoryOf('/child')).toBe('/nonexistent/own/child')
    expect(inPod.directoryOf('/../../sibling')).toBeUndefined()
    expect(inPod.namespaceRoot).toBeNull()
    expect(inPod.idOf('/../../sibling')).toBe(0n)

    const subtree = new CgroupPaths([{ root: '/kubepods.slice', mountPoint: '/sub' }])
    expect(subtree.directoryOf('/kubepods.slice/pod/c')).toBe('/sub/pod/c')
    expect(subtree.directoryOf('/kubepods.slice')).toBe('/sub')
    expect(subtree.directoryOf('/kubepods.slicex/c')).toBeUndefined()

    for (const bad of ['', 'relative/path', '/a/../b']) expect(host.directoryOf(bad)).toBeUndefined()
  })
})

describeBpf('cgroup ids seen from inside a cgroup namespace', () => {
  const base = join(cgroup2Root(), `bpfkit-cgns-${process.pid}`)
  const nsRoot = join(base, 'agent', 'container')
  const aboveNs = join(base, 'agent')
  const otherPod = join(base, 'pods', 'pod1', 'c1')
  const sleepers: ChildProcess[] = []
  const pids = { otherPod: 0, aboveNs: 0, hierarchyRoot: 0 }

  beforeAll(() => {
    for (const dir of [nsRoot, otherPod]) mkdirSync(dir, { recursive: true })
    pids.otherPod = sleeperIn(otherPod)
    pids.aboveNs = sleeperIn(aboveNs)
    pids.hierarchyRoot = sleeperIn(cgroup2Root())
  })

  afterAll(async () => {
    for (const s of sleepers) s.kill('SIGKILL')
    await Promise.all(sleepers.map((s) => new Promise((r) => (s.exitCode !== null || s.signalCode ? r(null) : s.once('exit', r)))))
    for (const dir of [otherPod, join(base, 'pods', 'pod1'), join(base, 'pods'), nsRoot, aboveNs, base]) {
      try {
        rmdirSync(dir)
      } catch {
        // already gone
      }
    }
  })

  /** A `sleep` moved into the cgroup directory `dir`. */
  function sleeperIn(dir: string): number {
    const s = spawn('sleep', ['60'], { stdio: 'ignore' })
    sleepers.push(s)
    writeFileSync(join(dir, 'cgroup.procs'), String(s.pid))
    return s.pid!
  }

  const inode = (dir: string) => String(statSync(dir, { bigint: true }).ino)

  /** Runs the fixture in a new cgroup namespace rooted at nsRoot, after `setup` (shell) in it. */
  function seenFromNamespace(setup: string): { self: number; mounts: unknown[]; namespaceRoot: string[] | null; ids: Record<string, string> } {
    const fixture = join(repoRoot, 'packages', 'core', 'test', 'fixtures', 'cgroupns-child.mjs')
    const coreDist = join(repoRoot, 'packages', 'core', 'dist', 'index.js')
    const run = `${setup} exec ${process.execPath} ${fixture} ${coreDist} ${pids.otherPod} ${pids.aboveNs} ${pids.hierarchyRoot}`
    const out = execFileSync('sh', ['-c', `echo $$ > ${join(nsRoot, 'cgroup.procs')} && exec unshare --cgroup --mount sh -c '${run}'`], {
      encoding: 'utf8',
    })
    return JSON.parse(out)
  }

  it('with a mount of its own namespace, as in a pod: every process gets its true cgroup id', () => {
    // Like an agent's container: the runtime's cgroup2 mount of the namespace
    // (root '/'), and the host's mount, whose root is '/../../..' from inside.
    const nsMount = tempDir('bpfkit-cgns-mnt-')
    const seen = seenFromNamespace(`mount -t cgroup2 none ${nsMount} &&`)
    rmdirSync(nsMount)
    expect(seen.mounts[0]).toEqual({ root: '/../../..', mountPoint: cgroup2Root() })
    expect(seen.mounts).toContainEqual({ root: '/', mountPoint: nsMount })
    expect(seen.namespaceRoot).toEqual([`bpfkit-cgns-${process.pid}`, 'agent', 'container'])
    expect(seen.ids[pids.otherPod]).toBe(inode(otherPod))
    expect(seen.ids[pids.aboveNs]).toBe(inode(aboveNs))
    expect(seen.ids[pids.hierarchyRoot]).toBe(inode(cgroup2Root()))
    expect(seen.ids[seen.self]).toBe(inode(nsRoot))
  })

  it('with only the host mount: ids it cannot place are 0, never another cgroup\'s', () => {
    const seen = seenFromNamespace('')
    expect(seen.namespaceRoot).toBeNull()
    // '/../../..' climbs exactly to the host mount's root: that one is known.
    expect(seen.ids[pids.hierarchyRoot]).toBe(inode(cgroup2Root()))
    // '/' (ourselves), '/..' and '/../../pods/...': the names above our root are unknown.
    expect(seen.ids[seen.self]).toBe('0')
    expect(seen.ids[pids.aboveNs]).toBe('0')
    expect(seen.ids[pids.otherPod]).toBe('0')
  })
})
