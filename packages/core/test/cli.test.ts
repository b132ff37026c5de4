// The real `bpfkit` binary (packages/core/dist/cli.js, built by setup).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, expect, it } from 'vitest'
import { compileBpf, describeBpf, repoRoot, sharedDir, testObject } from './helpers.js'
import { assertValidEvent } from './schema.js'

const cli = join(repoRoot, 'packages', 'core', 'dist', 'cli.js')

function run(args: string[], timeout = 30_000) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout })
}

/** Names of loaded BPF programs, from bpftool (independent of bpfkit). */
function loadedPrograms(): string[] {
  const out = execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })
  return (JSON.parse(out) as { name?: string }[]).map((p) => p.name ?? '')
}

describeBpf('bpfkit CLI', () => {
  beforeAll(() => {
    expect(existsSync(cli), 'dist/cli.js is built by scripts/setup.sh').toBe(true)
  })

  it('--help for every command, and usage errors exit 2', () => {
    const top = run(['--help'])
    expect(top.status).toBe(0)
    for (const cmd of ['features', 'trace process', 'trace tls', 'trace http', 'replay', 'load', 'gen types']) {
      expect(top.stdout).toContain(cmd)
      const r = run([...cmd.split(' '), '--help'])
      expect(r.status, cmd).toBe(0)
      expect(r.stdout).toMatch(/^usage: bpfkit /)
    }
    const bad = run(['trace', 'process', '--bogus'])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/^bpfkit: .*bogus/)
    expect(run(['nope']).status).toBe(2)
    // a command family without its second word says which commands it has
    const family = run(['trace'])
    expect(family.status).toBe(2)
    expect(family.stderr).toMatch(/'trace' needs one of: 'trace process', 'trace tls', 'trace http', 'trace llm'/)
  })

  it('features --json reports what the probes found, with reasons for every no', () => {
    const r = run(['features', '--json'])
    expect(r.status).toBe(0)
    const f = JSON.parse(r.stdout)
    for (const k of ['btf', 'ringbuf', 'uprobes', 'tracepoints', 'map_batch']) expect(f[k].supported, k).toBe(true)
    // kprobes: cross-check with the kernel's kprobe PMU, an independent witness
    expect(f.kprobes.supported).toBe(existsSync('/sys/bus/event_source/devices/kprobe'))
    for (const k of ['btf', 'ringbuf', 'bpf_loop', 'bpf_send_signal', 'uprobes', 'uprobe_multi', 'kprobes', 'fentry', 'lsm']) {
      if (!f[k].supported) {
        expect(f[k].reason, k).not.toBe('')
        expect(f[k].reason.length, k).toBeLessThan(1000) // the kernel's answer, not a stack of our own
      }
    }
    expect(f.capabilities.CAP_BPF).toBe(true)
    expect(f.mounts.bpffs).toBe('/sys/fs/bpf')
    const human = run(['features'])
    expect(human.stdout).toMatch(/kprobes\s+(yes|no )/)
  })

  it('trace process --json prints schema-valid NDJSON and --duration ends it', async () => {
    const child = spawn(process.execPath, [cli, 'trace', 'process', '--json', '--duration', '3'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    await new Promise((r) => setTimeout(r, 1500))
    spawnSync('/bin/echo', ['bpfkit-cli-marker'])
    const code = await new Promise((r) => child.on('exit', r))
    expect(code).toBe(0)
    const events = out.trim().split('\n').map((l) => JSON.parse(l))
    for (const e of events) assertValidEvent(e)
    expect(events.some((e) => e.type === 'process.exec' && e.process.command_args.includes('bpfkit-cli-marker'))).toBe(true)
  })

  it('SIGINT detaches everything', async () => {
    const child = spawn(process.execPath, [cli, 'trace', 'process', '--filter-comm', 'nothing-matches'], { stdio: ['ignore', 'pipe', 'pipe'] })
    await new Promise((r) => setTimeout(r, 1500))
    expect(loadedPrograms()).toContain('process_exec')
    child.kill('SIGINT')
    const code = await new Promise((r) => child.on('exit', r))
    expect(code).toBe(0)
    expect(loadedPrograms()).not.toContain('process_exec')
  })

  it('load runs a foreign object with --set and prints its ring buffer', async () => {
    const obj = compileBpf(join(sharedDir, 'peers', 'ringbuf', 'producer.bpf.c'))
    const target = spawn('python3', ['-c', 'import os,time\nwhile True:\n  os.getppid(); time.sleep(0.01)'], { stdio: 'ignore' })
    try {
      const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(process.execPath, [cli, 'load', obj, '--set', `target_tgid=${target.pid}`, '--set', 'batch=2', '--ringbuf', 'rb', '--json', '--duration', '2'])
        let out = ''
        let err = ''
        c.stdout.on('data', (d) => (out += d))
        c.stderr.on('data', (d) => (err += d))
        c.on('exit', (code) => resolve({ code, out, err }))
      })
      expect(r.code, r.err).toBe(0)
      const recs = r.out.trim().split('\n').map((l) => JSON.parse(l))
      expect(recs.length).toBeGreaterThan(10)
      expect(recs[0].map).toBe('rb')
      expect(recs[0].record).toMatch(/^[0-9a-f]{128}$/)
      // pid field at offset 16 is target_tgid as set on the command line
      expect(Buffer.from(recs[0].record, 'hex').readUInt32LE(16)).toBe(target.pid)
    } finally {
      target.kill('SIGKILL')
    }
    const bad = run(['load', obj, '--set', 'no_such_var=1'])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toMatch(/no variable named 'no_such_var'/)
  })

  it('gen types writes interfaces and codecs from an object\'s BTF', () => {
    const r = run(['gen', 'types', testObject('maps')])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/export interface Event\b/)
    expect(r.stdout).toMatch(/Codec/)
  })

  it('errors are one readable line', () => {
    const r = run(['load', '/nonexistent.bpf.o'])
    expect(r.status).toBe(1)
    expect(r.stderr.trim().split('\n').length).toBe(1)
    expect(r.stderr).toMatch(/^bpfkit: cannot read object file/)
    const replay = run(['replay', '/nonexistent.ndjson'])
    expect(replay.status).toBe(1)
    expect(replay.stderr.trim()).toMatch(/^bpfkit: cannot read capture file \/nonexistent\.ndjson: ENOENT/)
  })
})
