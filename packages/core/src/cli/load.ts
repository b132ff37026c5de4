/**
 * `bpfkit load <object.bpf.o>`: drive any libbpf object from a script: set
 * globals, load, auto-attach by section name, print ring-buffer records
 * decoded through the object's BTF.
 */
import { Collection } from '../collection.js'
import type { Link } from '../link.js'
import type { RingBuffer } from '../ringbuf.js'
import { CollectionSpec, type VariableSpec } from '../spec.js'
import { parse, UsageError, type Command } from './command.js'
import { LiveCounter, untilStopped } from './live-counter.js'

export const loadCommand: Command = {
  name: 'load',
  summary: 'load any BPF object, auto-attach it and print its ring-buffer records',
  help: `usage: bpfkit load <object.bpf.o> [--set NAME=VALUE ...] [--ringbuf MAP[:STRUCT] ...] [--json] [--duration S]

Opens the object, sets global variables, loads it, attaches every program by
its section name (as libbpf does) and prints the records of the named ring
buffers, decoded through the object's BTF when STRUCT is given (hex otherwise).

  --set NAME=VALUE     set a .rodata/.data/.bss variable before load (repeatable)
  --ringbuf MAP[:T]    print records of ring buffer MAP decoded as struct T (repeatable)
  --json               NDJSON output: {"map":…, "record":…}
  --duration S         stop after S seconds (default: until SIGINT/SIGTERM)`,
  async run(args) {
    const { values, positionals } = parse(args, {
      set: { type: 'string', multiple: true },
      ringbuf: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      duration: { type: 'string' },
    })
    if (positionals.length !== 1) throw new UsageError('load needs exactly one object file')
    const duration = values.duration === undefined ? 0 : Number(values.duration)
    if (!Number.isFinite(duration) || duration < 0) throw new UsageError(`--duration must be seconds, got '${values.duration}'`)

    const spec = CollectionSpec.fromFile(positionals[0]!)
    for (const assignment of values.set ?? []) setVariable(spec, assignment)
    const coll = new Collection(spec)
    const links: Link[] = []
    const rings: RingBuffer<unknown>[] = []
    try {
      links.push(...coll.attachAll())
      for (const r of values.ringbuf ?? []) {
        const [map, type] = r.split(':', 2) as [string, string | undefined]
        const rb = coll.ringBuffer<unknown>(map, type ? { codec: type } : {})
        rb.on('data', (rec) => print(map, rec, !!values.json))
        rb.on('lost', ({ count }) => process.stderr.write(`bpfkit: ${count} records lost in the kernel on '${map}'\n`))
        rb.on('error', (e) => process.stderr.write(`bpfkit: ${e.message}\n`))
        rb.ref()
        rings.push(rb)
      }
      process.stderr.write(`bpfkit: loaded ${spec.name}: ${links.map((l) => l.description).join(', ') || 'no programs attached'}\n`)
      const counter = new LiveCounter(() => ({
        events: rings.reduce((n, r) => n + r.stats.records, 0),
        lost: rings.reduce((n, r) => n + r.stats.lost, 0),
      }))
      await untilStopped(duration)
      counter.stop()
      for (const r of rings) r.consume()
    } finally {
      for (const r of rings) r.close()
      for (const l of links) l.close()
      coll.close()
    }
    return 0
  },
}

/** NAME=VALUE, with VALUE parsed to the variable's type (number, bigint, string, boolean). */
function setVariable(spec: CollectionSpec, assignment: string): void {
  const eq = assignment.indexOf('=')
  if (eq <= 0) throw new UsageError(`--set needs NAME=VALUE, got '${assignment}'`)
  const name = assignment.slice(0, eq)
  const text = assignment.slice(eq + 1)
  const v: VariableSpec = spec.variables.must(name)
  const current = v.get()
  let value: unknown
  if (typeof current === 'bigint') {
    if (!/^-?(0x[0-9a-f]+|\d+)$/i.test(text)) throw new UsageError(`${name} is a 64-bit integer; '${text}' is not`)
    value = BigInt(text)
  } else if (typeof current === 'number') {
    value = Number(text)
    if (!Number.isFinite(value as number) || text.trim() === '') throw new UsageError(`${name} is a number; '${text}' is not`)
  } else if (typeof current === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new UsageError(`${name} is a boolean: use true or false`)
    value = text === 'true'
  } else if (typeof current === 'string') {
    value = text
  } else {
    throw new UsageError(`${name} has a compound type; --set takes scalars and strings only`)
  }
  v.set(value)
}

function print(map: string, rec: unknown, json: boolean): void {
  const plain = toPlain(rec)
  if (json) process.stdout.write(JSON.stringify({ map, record: plain }) + '\n')
  else process.stdout.write(`${map}: ${typeof plain === 'string' ? plain : JSON.stringify(plain)}\n`)
}

/** bigint → decimal string, bytes → hex, recursively, so records are JSON-safe. */
function toPlain(x: unknown): unknown {
  if (typeof x === 'bigint') return x.toString()
  if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex')
  if (Array.isArray(x)) return x.map(toPlain)
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toPlain(v)]))
  return x
}
