/**
 * The process event schema: plain JSON-serialisable objects whose field names
 * follow OpenTelemetry semantic conventions (process.pid, process.parent_pid,
 * process.executable.path, process.command_args, process.user.id, ...).
 * docs/schema/events.schema.json is the normative JSON Schema; tests validate
 * every emitted event against it.
 */

/** A process as events describe it. */
export interface ProcessInfo {
  pid: number
  parent_pid: number
  /** stable across pid reuse: base64 of "host:start_boottime_ns:pid" (like Tetragon) */
  exec_id: string
  parent_exec_id?: string
  executable: { path: string; name: string }
  /** argv, bounded (see args_truncated) */
  command_args: string[]
  args_truncated: boolean
  /** the kernel's comm (thread name, 15 bytes) */
  command: string
  user: { id: number }
  group: { id: number }
  /** start time: wall clock, and CLOCK_MONOTONIC ns as a decimal string */
  creation: { time: string; ktime: string }
  /** thread that triggered the event, when it differs from pid */
  thread?: { id: number }
}

/** One step of a process's ancestry (nearest parent first). */
export interface AncestorInfo {
  pid: number
  exec_id: string
  executable: { path: string }
  command_args?: string[]
  /** the kernel's comm: names the process when its executable cannot be read (path '') */
  command: string
}

export interface EventBase {
  type: string
  /** wall-clock time, ISO 8601 with nanoseconds */
  time: string
  /** kernel CLOCK_MONOTONIC ns, as a decimal string (exceeds 2^53) */
  ktime: string
  host: { name: string }
  process: ProcessInfo
  cgroup: { id: string }
  ancestors?: AncestorInfo[]
}

export interface ProcessExecEvent extends EventBase {
  type: 'process.exec'
}

export interface ProcessExitEvent extends EventBase {
  type: 'process.exit'
  exit: {
    /** exit status 0..255, or null when killed by a signal */
    code: number | null
    /** terminating signal number, or null */
    signal: number | null
    time: string
    /** lifetime in ns as a decimal string */
    duration_ns: string
  }
}

export interface ProcessForkEvent extends EventBase {
  type: 'process.fork'
  child: { pid: number; exec_id: string }
}

export type ProcessEvent = ProcessExecEvent | ProcessExitEvent | ProcessForkEvent

/** Tetragon-style execution id: unique per (host, process start, pid), so pid reuse cannot alias. */
export function execId(host: string, startBoottimeNs: bigint, pid: number): string {
  // /proc start times have clock-tick (10 ms) resolution; round kernel values the same way
  const ticks = startBoottimeNs / 10_000_000n
  return Buffer.from(`${host}:${ticks * 10_000_000n}:${pid}`).toString('base64')
}
