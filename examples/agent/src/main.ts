/**
 * bpfkit demo agent: runs the built-in process sensor and prints a live,
 * readable stream of process activity on this machine, each event with its
 * ancestry (the parent chain up to PID 1). Later sensors (TLS, HTTP,
 * Kubernetes identity, LLM findings) plug into this same loop.
 *
 *   bash scripts/demo.sh [--duration SECONDS] [--json]
 */
import { ProcessSensor, type ProcessEvent } from '@bpfkit/core'

const argv = process.argv.slice(2)
const json = argv.includes('--json')
const at = argv.indexOf('--duration')
const duration = at >= 0 ? Number(argv[at + 1]) : 0

const color = process.stdout.isTTY && !json
const paint = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s)

function describe(ev: ProcessEvent): string {
  const p = ev.process
  const time = paint(90, ev.time.slice(11, 23))
  const who = `${paint(1, p.executable.name || p.command)}[${p.pid}] uid=${p.user.id}`
  const chain = (ev.ancestors ?? []).map((a) => `${a.executable.path.split('/').pop() || '?'}[${a.pid}]`).join(' ← ')
  switch (ev.type) {
    case 'process.exec': {
      const args = p.command_args.slice(1).join(' ')
      return `${time} ${paint(32, 'exec')} ${who} ${p.executable.path} ${args}${p.args_truncated ? ' …' : ''}\n             ${paint(90, `↳ ${chain}`)}`
    }
    case 'process.fork':
      return `${time} ${paint(36, 'fork')} ${who} → child ${ev.child.pid}`
    case 'process.exit': {
      const how = ev.exit.signal ? paint(31, `killed by signal ${ev.exit.signal}`) : `exit ${ev.exit.code}`
      return `${time} ${paint(33, 'exit')} ${who} ${how} after ${(Number(ev.exit.duration_ns) / 1e6).toFixed(1)} ms`
    }
  }
}

const sensor = new ProcessSensor()
sensor.ref()
let events = 0
sensor.on('event', (ev) => {
  events++
  if (ev.type === 'process.fork' && !json) return // forks are noisy; exec/exit tell the story
  console.log(json ? JSON.stringify(ev) : describe(ev))
})
sensor.on('lost', ({ count }) => console.error(paint(31, `!! ${count} events lost in the kernel (ring full)`)))

function stop(): void {
  sensor.close()
  console.error(`\nbpfkit agent: ${events} events, ${sensor.stats.lost} lost, ${sensor.table.size} processes known`)
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
if (duration > 0) setTimeout(stop, duration * 1000)
console.error(`bpfkit agent on ${sensor.host}: ${sensor.table.size} existing processes known; watching exec/exit (Ctrl-C to stop)`)
