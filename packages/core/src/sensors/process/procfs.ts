/**
 * Reads what the process table needs from /proc for processes that existed
 * before the sensor started. Every read tolerates the process vanishing
 * mid-way (it returns null) and hostile content (comm may hold spaces and
 * parentheses; cmdline is bounded).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

export interface ProcSnapshot {
  pid: number
  ppid: number
  comm: string
  /** /proc/PID/exe target, '' for kernel threads or when unreadable */
  executable: string
  args: string[]
  argsTruncated: boolean
  uid: number
  gid: number
  /** start time since boot in ns (clock-tick resolution), as task->start_boottime */
  startBoottimeNs: bigint
  /** cgroup v2 path from /proc/PID/cgroup, relative to our cgroup namespace root ('' if none) */
  cgroupPath: string
  kernelThread: boolean
}

const CLK_TCK = 100n // sysconf(_SC_CLK_TCK) is 100 on every Linux architecture Node supports
const MAX_ARGS_BYTES = 1024 // same bound as the BPF side (ARGS_MAX_LEN)

/** Pids currently in /proc. */
export function listPids(): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name)) out.push(Number(name))
  }
  return out
}

/** Parses /proc/PID/stat; comm is between the first '(' and the LAST ')'. */
export function parseStat(text: string): { comm: string; ppid: number; startTicks: bigint; flags: number } | null {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return null
  const rest = text.slice(close + 2).split(' ')
  // fields after comm start at field 3 (state): ppid is field 4, flags 9, starttime 22
  const ppid = Number(rest[1])
  const flags = Number(rest[6])
  const start = rest[19]
  if (!Number.isFinite(ppid) || start === undefined || !/^\d+$/.test(start)) return null
  return { comm: text.slice(open + 1, close), ppid, startTicks: BigInt(start), flags }
}

const PF_KTHREAD = 0x00200000

export function readProc(pid: number): ProcSnapshot | null {
  try {
    const stat = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    if (!stat) return null
    const kernelThread = (stat.flags & PF_KTHREAD) !== 0
    let executable = ''
    try {
      executable = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '')
    } catch {
      // kernel thread, or exited
    }
    const cmdline = readFileSync(`/proc/${pid}/cmdline`)
    const argsTruncated = cmdline.length > MAX_ARGS_BYTES
    const args = splitArgs(cmdline.subarray(0, MAX_ARGS_BYTES))
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? 0)
    const gid = Number(/^Gid:\s+(\d+)/m.exec(status)?.[1] ?? 0)
    let cgroupPath = ''
    try {
      cgroupPath = /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? ''
    } catch {
      // no cgroup v2
    }
    return {
      pid,
      ppid: stat.ppid,
      comm: stat.comm,
      executable,
      args,
      argsTruncated,
      uid,
      gid,
      startBoottimeNs: (stat.startTicks * 1_000_000_000n) / CLK_TCK,
      cgroupPath,
      kernelThread,
    }
  } catch {
    return null
  }
}

/** NUL-separated argv bytes → strings (a trailing partial argument is kept). */
export function splitArgs(raw: Uint8Array): string[] {
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8')
  const parts = text.split('\0')
  if (parts.length && parts[parts.length - 1] === '') parts.pop()
  return parts
}

