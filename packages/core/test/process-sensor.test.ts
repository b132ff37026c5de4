// The built-in process sensor on the real kernel: argv/ppid/ancestry of real
// processes, processes that predate the sensor, a fork/exec storm, in-kernel
// filters, and schema validation of every event.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { InvalidArgumentError, ProcessSensor, type ProcessEvent } from '../src/index.js'
import { executableName } from '../src/sensors/process/table.js'
import { catchErr, cgroup2Root, describeBpf, openFds } from './helpers.js'

function readComm(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return '' // exited meanwhile
  }
}
import { assertValidEvent } from './schema.js'

describeBpf('process sensor', () => {
  let sensor: ProcessSensor
  const events: ProcessEvent[] = []
  let preexisting: ReturnType<typeof spawn>

  beforeAll(() => {
    preexisting = spawn('sleep', ['60'], { stdio: 'ignore' })
    spawnSync('true') // make sure sleep has exec'd before the sensor seeds
    sensor = new ProcessSensor({ ringBytes: 64 << 20 })
    sensor.on('event', (e) => events.push(e))
  })
  afterAll(() => {
    preexisting.kill('SIGKILL')
    sensor.close()
    for (const e of events) assertValidEvent(e)
    expect(events.length).toBeGreaterThan(0)
  })

  const settle = async () => {
    await new Promise((r) => setTimeout(r, 100))
    sensor.flush()
  }

  it('names a kernel thread by its whole comm, "/" included', () => {
    // kworker threads are named like "kworker/u8:2-events_unbound"; their path is the bracketed comm
    const kworker = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((pid) => ({ pid: Number(pid), comm: readComm(pid) }))
      .find((p) => p.comm.startsWith('kworker/') && sensor.table.get(p.pid))
    expect(kworker, 'a kworker thread in /proc and in the table').toBeDefined()
    const entry = sensor.table.get(kworker!.pid)!
    expect(entry.path).toBe(`[${entry.comm}]`)
    expect(executableName(entry.path)).toBe(entry.comm)
    expect(executableName('/usr/bin/curl')).toBe('curl')
  })

  it("reports /bin/sh -c '/bin/true a b' with argv, ppid and ancestry", async () => {
    const sh = spawn('/bin/sh', ['-c', '/bin/true a b; exit 0'], { stdio: 'ignore' })
    await new Promise((r) => sh.on('exit', r))
    await settle()
    const exec = events.find((e) => e.type === 'process.exec' && e.process.executable.path === '/bin/true' && e.process.parent_pid === sh.pid)
    expect(exec, 'exec of /bin/true').toBeDefined()
    expect(exec!.process.command_args).toEqual(['/bin/true', 'a', 'b'])
    expect(exec!.process.executable.name).toBe('true')
    expect(exec!.process.user.id).toBe(process.getuid!())
    expect(BigInt(exec!.process.creation.ktime)).toBeLessThanOrEqual(BigInt(exec!.ktime))
    const chain = exec!.ancestors!.map((a) => a.pid)
    expect(chain[0]).toBe(sh.pid)
    expect(chain[1]).toBe(process.pid)
    expect(chain.at(-1)).toBe(1)
    const shExec = events.find((e) => e.type === 'process.exec' && e.process.pid === sh.pid)
    expect(shExec?.process.command_args).toEqual(['/bin/sh', '-c', '/bin/true a b; exit 0'])
    expect(exec!.ancestors![0]!.exec_id).toBe(shExec!.process.exec_id)
    // every ancestor is named by its comm too, also PID 1, whose executable may be unreadable (sandboxes)
    expect(exec!.ancestors![0]!.command).toBe('sh')
    expect(exec!.ancestors!.at(-1)!.command).toBe(readFileSync('/proc/1/comm', 'utf8').trim())
    const exit = events.find((e) => e.type === 'process.exit' && e.process.pid === exec!.process.pid)
    expect(exit?.type === 'process.exit' && exit.exit).toMatchObject({ code: 0, signal: null })
    const fork = events.find((e) => e.type === 'process.fork' && e.process.pid === sh.pid)
    expect(fork?.type === 'process.fork' && fork.child.pid).toBe(exec!.process.pid)
  })

  it('redacts credentials on command lines', async () => {
    const key = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'
    const sh = spawn('/bin/sh', ['-c', '/bin/true done; exit 0', 'curl', '-H', `Authorization: Bearer ${key}`, '--password', 'hunter2', 'https://bob:pa55@example.com/'], { stdio: 'ignore' })
    await new Promise((r) => sh.on('exit', r))
    await settle()
    const exec = events.find((e) => e.type === 'process.exec' && e.process.pid === sh.pid)
    expect(exec?.process.command_args).toEqual(['/bin/sh', '-c', '/bin/true done; exit 0', 'curl', '-H', 'Authorization: Bearer [REDACTED]', '--password', '[REDACTED]', 'https://bob:[REDACTED]@example.com/'])
    expect(JSON.stringify(events)).not.toMatch(/hunter2|pa55|AbCdEfGhIj/)
  })

  it('knows processes that existed before it started', async () => {
    const known = sensor.table.get(preexisting.pid!)
    expect(known?.path).toMatch(/\/sleep$/)
    expect(known?.args).toEqual(['sleep', '60'])
    preexisting.kill('SIGTERM')
    await new Promise((r) => preexisting.on('exit', r))
    await settle()
    const exit = events.find((e) => e.type === 'process.exit' && e.process.pid === preexisting.pid)
    expect(exit?.process.executable.path).toMatch(/\/sleep$/)
    expect(exit?.type === 'process.exit' && exit.exit).toMatchObject({ code: null, signal: 15 })
    expect(exit?.process.exec_id).toBe(known!.execId)
  })

  it('keeps up with 2,000 short processes: every exec and exit delivered or counted lost', async () => {
    const lostBefore = sensor.stats.lost
    const sh = spawn('/bin/sh', ['-c', 'i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done'], { stdio: 'ignore' })
    await new Promise((r) => sh.on('exit', r))
    await settle()
    const children = new Set(
      events.filter((e) => e.type === 'process.exec' && e.process.parent_pid === sh.pid && e.process.executable.path === '/bin/true').map((e) => e.process.pid),
    )
    const exits = events.filter((e) => e.type === 'process.exit' && children.has(e.process.pid)).length
    const lost = sensor.stats.lost - lostBefore
    console.info(`[bpfkit] storm: ${children.size} execs, ${exits} exits, ${lost} lost`)
    expect(children.size + exits + lost).toBeGreaterThanOrEqual(4000)
    if (lost === 0) {
      expect(children.size).toBe(2000)
      expect(exits).toBe(2000)
    }
  })

  it('filters in the kernel, and the filter can change while running', async () => {
    sensor.setFilter({ excludePid: process.pid, pidNamespace: 1 }) // no pid namespace has inode 1
    const hidden = spawn('/bin/true', ['hidden'], { stdio: 'ignore' })
    await new Promise((r) => hidden.on('exit', r))
    sensor.setFilter({ excludePid: process.pid })
    const shown = spawn('/bin/true', ['shown'], { stdio: 'ignore' })
    await new Promise((r) => shown.on('exit', r))
    await settle()
    expect(events.some((e) => e.process.pid === hidden.pid && e.type === 'process.exec')).toBe(false)
    expect(events.some((e) => e.process.pid === shown.pid && e.type === 'process.exec')).toBe(true)
  })

  it('filters by cgroup v2 id in the kernel', async () => {
    const dir = join(cgroup2Root(), `bpfkit-proc-${process.pid}`)
    mkdirSync(dir, { recursive: true })
    try {
      const id = statSync(dir, { bigint: true }).ino
      sensor.setFilter({ excludePid: process.pid, cgroupIds: [id] })
      const inside = spawn('/bin/sh', ['-c', 'read x; /bin/true inside'], { stdio: ['pipe', 'ignore', 'ignore'] })
      writeFileSync(join(dir, 'cgroup.procs'), String(inside.pid))
      inside.stdin!.end('go\n')
      const outside = spawn('/bin/true', ['outside'], { stdio: 'ignore' })
      await Promise.all([new Promise((r) => inside.on('exit', r)), new Promise((r) => outside.on('exit', r))])
      await settle()
      const execs = events.filter((e) => e.type === 'process.exec')
      const insideExec = execs.find((e) => e.process.command_args.join(' ') === '/bin/true inside')
      expect(insideExec?.cgroup.id).toBe(id.toString())
      expect(execs.some((e) => e.process.pid === outside.pid)).toBe(false)
    } finally {
      sensor.setFilter({ excludePid: process.pid })
      await new Promise((r) => setTimeout(r, 50))
      rmdirSync(dir)
    }
  })

  it('bad options are typed errors that name the option, and leave no fd behind', () => {
    const before = openFds()
    const bad: [string, () => unknown][] = [
      ['ringBytes', () => new ProcessSensor({ ringBytes: 1000 })],
      ['graceMs', () => new ProcessSensor({ graceMs: -5 })],
      ['filter.excludePid', () => new ProcessSensor({ filter: { excludePid: -1 } })],
      ['filter.pidNamespace', () => new ProcessSensor({ filter: { pidNamespace: 1.5 } })],
      ['filter.cgroupIds', () => new ProcessSensor({ filter: { cgroupIds: [1 as unknown as bigint] } })],
    ]
    for (const [option, make] of bad) {
      const e = catchErr(make)
      expect(e, option).toBeInstanceOf(InvalidArgumentError)
      expect((e as Error).message).toContain(option)
    }
    expect(openFds()).toBe(before)
  })

  it('never reports the agent itself', () => {
    expect(events.some((e) => e.process.pid === process.pid)).toBe(false)
  })
})
