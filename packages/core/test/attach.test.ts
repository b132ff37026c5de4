// Attach points against real targets: uprobes on a test binary and on libc by
// library name, /proc/PID/root paths, a cgroup connect4 program denying a port
// for processes in a real cgroup, and the feature-probe fallbacks.
import { spawn } from 'node:child_process'
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { bundledObject, Collection, CollectionSpec, NotFoundError, NotSupportedError, probeFeature } from '../src/index.js'
import { catchErr, cgroup2Root, compileC, describeBpf, firstOutput, testObject } from './helpers.js'

const TARGET_C = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) int bpfkit_test_add(int a, int b) { __asm__ volatile(""); return a + b; }
int main(int argc, char **argv) {
  char c;
  if (read(0, &c, 1) != 1) return 1;       /* wait until the probes are attached */
  int n = atoi(argv[1]), s = 0;
  for (int i = 0; i < n; i++) { s += bpfkit_test_add(i, 2 * i); s += getppid() & 0; }
  printf("%d\\n", s);
  return 0;
}`

interface Call { pid: number; kind: number; a: bigint; b: bigint; ret: bigint; cookie: bigint }

function startTarget(binary: string, n: number) {
  const child = spawn(binary, [String(n)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<string>((resolve) => {
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    child.on('exit', () => resolve(out))
  })
  return { child, go: () => child.stdin!.end('g'), exited }
}

describeBpf('uprobes', () => {
  let binary: string
  beforeAll(() => {
    binary = compileC(TARGET_C, 'uprobe-target')
  })

  it('reads arguments at entry and the return value at return, for one pid', async () => {
    using coll = Collection.load(testObject('uprobe'))
    const t = startTarget(binary, 50)
    using entry = coll.program('on_entry').attachUprobe({ binary, symbol: 'bpfkit_test_add', pid: t.child.pid, cookie: 0xabcn })
    using ret = coll.program('on_return').attachUprobe({ binary, symbol: 'bpfkit_test_add', pid: t.child.pid, retprobe: true })
    expect(entry.description).toMatch(/uprobe .*uprobe-target:bpfkit_test_add/)
    const calls: Call[] = []
    using rb = coll.ringBuffer<Call>('calls', { codec: 'call' })
    rb.on('data', (c) => calls.push(c))
    t.go()
    expect((await t.exited).trim()).toBe(String(3 * (49 * 50) / 2))
    rb.consume()
    const entries = calls.filter((c) => c.kind === 1)
    const rets = calls.filter((c) => c.kind === 2)
    expect(entries.length).toBe(50)
    expect(rets.length).toBe(50)
    entries.forEach((c, i) => {
      expect(c).toMatchObject({ pid: t.child.pid, a: BigInt(i), b: BigInt(2 * i), cookie: 0xabcn })
    })
    rets.forEach((c, i) => expect(c.ret).toBe(BigInt(3 * i)))
  })

  it('finds a library by name in the target process, through /proc/PID/root', async () => {
    using coll = Collection.load(testObject('uprobe'))
    const t = startTarget(binary, 25)
    using link = coll.program('on_entry').attachUprobe({ binary: 'libc.so.6', symbol: 'getppid', pid: t.child.pid })
    expect(link.description).toContain(`/proc/${t.child.pid}/root/`)
    let hits = 0
    using rb = coll.ringBuffer<Call>('calls', { codec: 'call' })
    rb.on('data', (c) => c.pid === t.child.pid && hits++)
    t.go()
    await t.exited
    rb.consume()
    expect(hits).toBe(25)
  })

  it('resolves an absolute path inside the process\'s mount namespace', async () => {
    using coll = Collection.load(testObject('uprobe'))
    const t = startTarget(binary, 3)
    using link = coll.program('on_entry').attachUprobe({ binary, symbol: 'bpfkit_test_add', pid: t.child.pid })
    expect(link.description).toContain(`/proc/${t.child.pid}/root${binary}`)
    t.go()
    await t.exited
  })

  it('unknown symbols and missing libraries are NotFoundErrors', () => {
    using coll = Collection.load(testObject('uprobe'))
    expect(() => coll.program('on_entry').attachUprobe({ binary, symbol: 'no_such_function' })).toThrow(/no_such_function/)
    expect(() => coll.program('on_entry').attachUprobe({ binary: 'libdoesnotexist.so.9', symbol: 'x' })).toThrow(/libdoesnotexist/)
  })

  it("with a pid, a binary the process cannot see is an error, never the host's file of that name", async () => {
    using coll = Collection.load(testObject('uprobe'))
    // A process in its own mount namespace, with an empty tmpfs over the binary's directory.
    const dir = dirname(binary)
    const child = spawn('unshare', ['--mount', 'sh', '-c', `mount -t tmpfs none ${dir} && echo ready && exec sleep 30`], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      await firstOutput(child, `unshare --mount with a tmpfs over ${dir}`)
      const hidden = catchErr(() => coll.program('on_entry').attachUprobe({ binary, symbol: 'bpfkit_test_add', pid: child.pid }))
      expect(hidden).toBeInstanceOf(NotFoundError)
      expect((hidden as Error).message).toBe(`process ${child.pid} has no ${binary} in its mount namespace (looked at /proc/${child.pid}/root${binary})`)
    } finally {
      child.kill('SIGKILL')
    }
    const gone = catchErr(() => coll.program('on_entry').attachUprobe({ binary, symbol: 'bpfkit_test_add', pid: 2 ** 22 + 1 }))
    expect(gone).toBeInstanceOf(NotFoundError)
    expect((gone as Error).message).toBe(`no process with pid ${2 ** 22 + 1}`)
  })
})

describeBpf('cgroup connect4', () => {
  let servers: Server[] = []
  let cgroup: string
  beforeAll(() => {
    cgroup = join(cgroup2Root(), `bpfkit-test-${process.pid}`)
    mkdirSync(cgroup, { recursive: true })
  })
  afterAll(async () => {
    for (const s of servers) s.close()
    await new Promise((r) => setTimeout(r, 100))
    try {
      rmdirSync(cgroup)
    } catch {
      // a straggling child; the kernel removes the cgroup once it exits
    }
  })

  async function listen(): Promise<number> {
    const s = createServer((c) => c.end('ok'))
    servers.push(s)
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    return (s.address() as { port: number }).port
  }

  it('denies one port to processes in the cgroup only', async () => {
    const blocked = await listen()
    const open = await listen()
    const spec = CollectionSpec.fromFile(testObject('cgroup'))
    spec.variables.must('blocked_port').set(blocked)
    using coll = new Collection(spec)
    using link = coll.program('deny_port').attachCgroup(cgroup)
    expect(link.description).toContain(cgroup)

    const script = `
import socket, sys
sys.stdin.readline()
for port in (${blocked}, ${open}):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port)); print(port, "ok")
    except OSError as e:
        print(port, e.errno)
    s.close()
`
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    writeFileSync(join(cgroup, 'cgroup.procs'), String(child.pid))
    child.stdin!.write('go\n')
    await new Promise((r) => child.on('exit', r))
    expect(out.trim().split('\n')).toEqual([`${blocked} 1`, `${open} ok`]) // 1 = EPERM

    // this process is not in the cgroup: it still reaches the blocked port
    const { connect } = await import('node:net')
    await new Promise<void>((resolve, reject) => connect(blocked, '127.0.0.1', resolve).on('error', reject))
    // the .bss counter the program bumps is readable as a live variable
    expect(coll.variable<bigint>('denied').get()).toBe(1n)
  })

  it('refuses a directory that is not a cgroup v2', () => {
    using coll = Collection.load(testObject('cgroup'))
    expect(() => coll.program('deny_port').attachCgroup('/tmp')).toThrow(/not on a cgroup v2 file system/)
  })
})

describeBpf('feature-gated attach points', () => {
  function probesSpec(only: string) {
    const spec = CollectionSpec.fromFile(bundledObject('probes.bpf.o'))
    for (const p of spec.programs.values()) p.autoload = p.name === only
    return spec
  }

  it('kprobe: attaches where the kernel has kprobes, else NotSupportedError naming them', () => {
    using coll = new Collection(probesSpec('probe_kprobe'))
    const probe = probeFeature('kprobes')
    console.info(`[bpfkit] kprobes supported here: ${probe.supported} ${probe.reason}`)
    if (probe.supported) {
      coll.program('probe_kprobe').attachKprobe('bpf_fentry_test1').close()
    } else {
      const err = catchErr(() => coll.program('probe_kprobe').attachKprobe('bpf_fentry_test1'))
      expect(err).toBeInstanceOf(NotSupportedError)
      expect((err as NotSupportedError).feature).toMatch(/kprobes/)
    }
  })

  it('fentry: loads where trampolines work, else NotSupportedError naming them', () => {
    const probe = probeFeature('fentry')
    console.info(`[bpfkit] fentry supported here: ${probe.supported} ${probe.reason}`)
    if (probe.supported) {
      using coll = new Collection(probesSpec('probe_fentry'))
      coll.program('probe_fentry').attachTracing().close()
    } else {
      const err = catchErr(() => new Collection(probesSpec('probe_fentry')))
      expect(err).toBeInstanceOf(NotSupportedError)
      expect((err as NotSupportedError).feature).toMatch(/fentry/)
    }
  })

  it('LSM: loads where BPF LSM works, else NotSupportedError naming it', () => {
    const probe = probeFeature('lsm')
    console.info(`[bpfkit] BPF LSM supported here: ${probe.supported} ${probe.reason}`)
    if (probe.supported) {
      using coll = new Collection(probesSpec('probe_lsm'))
      coll.program('probe_lsm').attachLsm().close()
    } else {
      const err = catchErr(() => new Collection(probesSpec('probe_lsm')))
      expect(err).toBeInstanceOf(NotSupportedError)
      expect((err as NotSupportedError).feature).toMatch(/LSM/)
    }
  })

  it('uprobes, tracepoints and ring buffers are available (needed by every sensor)', () => {
    expect(probeFeature('uprobes')).toMatchObject({ supported: true })
    expect(probeFeature('tracepoints')).toMatchObject({ supported: true })
    expect(probeFeature('ringbuf')).toMatchObject({ supported: true })
  })
})
