/** `bpfkit trace process`: live process exec/fork/exit events. */
import { ProcessSensor } from '../sensors/process/sensor.js'
import type { ProcessEvent } from '../sensors/process/events.js'
import { parse, UsageError, type Command } from './command.js'
import { LiveCounter, untilStopped } from './live-counter.js'

export const traceProcessCommand: Command = {
  name: 'trace process',
  summary: 'stream process exec/fork/exit events with ancestry',
  help: `usage: bpfkit trace process [--json] [--filter-comm NAME] [--pid N] [--duration S]

Streams process events from the built-in process sensor (tracepoints only).
Columns in a terminal, one JSON object per line (NDJSON) with --json.

  --json              NDJSON output (schema: docs/schema/events.schema.json)
  --filter-comm NAME  only events whose command (comm) or executable name is NAME
  --pid N             only events of process N and its descendants
  --duration S        stop after S seconds (default: until SIGINT/SIGTERM)`,
  async run(args) {
    const { values } = parse(args, {
      json: { type: 'boolean' },
      'filter-comm': { type: 'string' },
      pid: { type: 'string' },
      duration: { type: 'string' },
    }, false)
    const duration = values.duration === undefined ? 0 : Number(values.duration)
    if (!Number.isFinite(duration) || duration < 0) throw new UsageError(`--duration must be a number of seconds, got '${values.duration}'`)
    const pid = values.pid === undefined ? 0 : Number(values.pid)
    if (!Number.isInteger(pid) || pid < 0) throw new UsageError(`--pid must be a process id, got '${values.pid}'`)
    const comm = values['filter-comm']

    const sensor = new ProcessSensor()
    const out = new Output(!!values.json)
    const counter = new LiveCounter(() => ({ events: sensor.stats.events, lost: sensor.stats.lost }))
    sensor.on('lost', ({ count }) => process.stderr.write(`bpfkit: ${count} events lost in the kernel (ring full)\n`))
    sensor.on('event', (ev) => {
      if (comm && ev.process.command !== comm && ev.process.executable.name !== comm) return
      if (pid && ev.process.pid !== pid && !ev.ancestors?.some((a) => a.pid === pid)) return
      out.write(ev)
    })
    sensor.ref()
    await untilStopped(duration)
    counter.stop()
    sensor.close()
    out.end()
    return 0
  },
}

/** Columns for people, NDJSON for scripts; stdout errors (closed pipe) end quietly. */
class Output {
  #broken = false
  constructor(private readonly json: boolean) {
    process.stdout.on('error', () => (this.#broken = true))
    if (!json && process.stdout.isTTY) console.log('TIME                 EVENT  PID      PPID     UID    COMMAND')
  }

  write(ev: ProcessEvent): void {
    if (this.#broken) return
    if (this.json) return void process.stdout.write(JSON.stringify(ev) + '\n')
    const p = ev.process
    const kind = ev.type.slice('process.'.length).toUpperCase().padEnd(6)
    let what = ''
    if (ev.type === 'process.exec') what = `${p.executable.path} ${p.command_args.slice(1).join(' ')}${p.args_truncated ? ' …' : ''}`
    else if (ev.type === 'process.fork') what = `${p.command} -> child ${ev.child.pid}`
    else what = `${p.command} ${ev.exit.signal ? `signal ${ev.exit.signal}` : `code ${ev.exit.code}`} after ${(Number(ev.exit.duration_ns) / 1e6).toFixed(1)} ms`
    const chain = ev.ancestors?.length ? `  [${ev.ancestors.map((a) => a.executable.path.split('/').pop() || a.pid).join(' < ')}]` : ''
    process.stdout.write(`${ev.time.slice(11, 29)}  ${kind} ${String(p.pid).padEnd(8)} ${String(p.parent_pid).padEnd(8)} ${String(p.user.id).padEnd(6)} ${what}${chain}\n`)
  }

  end(): void {}
}
