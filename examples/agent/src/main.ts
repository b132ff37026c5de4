/**
 * bpfkit demo agent: loads the bundled process sensor object, attaches its
 * tracepoints and prints every exec, fork and exit on this machine as it
 * happens. Run as root: `bash scripts/demo.sh [--duration SECONDS] [--json]`.
 */
import { bundledObject, Collection, CollectionSpec } from '@bpfkit/core'

interface ProcessEvent {
  kind: number
  pid: number
  tid: number
  ppid: number
  uid: number
  gid: number
  cgroup_id: bigint
  ktime: bigint
  start_ktime: bigint
  child_pid: number
  exit_code: number
  exit_signal: number
  path_len: number
  args_len: number
  args_truncated: number
  comm: string
  path: string
  args: number[] | Uint8Array | string
}

const argv = process.argv.slice(2)
const json = argv.includes('--json')
const durationIdx = argv.indexOf('--duration')
const duration = durationIdx >= 0 ? Number(argv[durationIdx + 1]) : 0

const spec = CollectionSpec.fromFile(bundledObject('process.bpf.o'))
const sensor = new Collection(spec)
// never report the agent's own activity
sensor.map('process_filter').update(0, { exclude_tgid: process.pid, pidns: 0, cgroup_filter: 0, _pad: 0 })
const links = sensor.attachAll()
const events = sensor.ringBuffer<ProcessEvent>('process_events', { codec: 'process_event', ref: true })

let count = 0
events.on('data', (e) => {
  count++
  if (json) return void console.log(JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
  const time = new Date().toISOString().slice(11, 23)
  if (e.kind === 1) {
    const args = argsOf(e)
    console.log(`${time} EXEC  pid=${e.pid} ppid=${e.ppid} uid=${e.uid} comm=${e.comm} ${e.path} ${args.slice(1).join(' ')}${e.args_truncated ? ' …' : ''}`)
  } else if (e.kind === 2) {
    const life = Number(e.ktime - e.start_ktime) / 1e6
    const how = e.exit_signal ? `signal ${e.exit_signal}` : `code ${e.exit_code}`
    console.log(`${time} EXIT  pid=${e.pid} comm=${e.comm} ${how} after ${life.toFixed(1)} ms`)
  } else if (e.kind === 3) {
    console.log(`${time} FORK  pid=${e.pid} -> child=${e.child_pid} comm=${e.comm}`)
  }
})
events.on('lost', ({ count: n, total }) => console.error(`!! ${n} events lost in the kernel (ring full), ${total} in all`))

function argsOf(e: ProcessEvent): string[] {
  const raw = typeof e.args === 'string' ? Buffer.from(e.args, 'latin1') : Buffer.from(e.args as Uint8Array)
  return raw.subarray(0, e.args_len).toString('utf8').split('\0').filter((s) => s.length > 0)
}

function stop(): void {
  events.consume()
  events.close()
  for (const l of links) l.close()
  sensor.close()
  console.error(`bpfkit agent: ${count} events, ${events.stats.lost} lost`)
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
if (duration > 0) setTimeout(stop, duration * 1000)
console.error('bpfkit agent: watching process exec/fork/exit (Ctrl-C to stop)')
