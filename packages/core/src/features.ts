/**
 * features(): what this kernel and this process can do, each answer from a
 * probe (a tiny program loaded and attached, a tiny map created, a file
 * system looked up), never from the kernel version. Every "no" carries the
 * reason the kernel gave.
 */
import { existsSync, readFileSync } from 'node:fs'
import { release } from 'node:os'
import { effectiveCapabilities } from './caps.js'
import { bpffsMount, cgroup2Mount, tracefsMount } from './mounts.js'
import { native } from './native.js'
import { activeLsms, probeFeature, type FeatureName } from './probes.js'

export interface Answer {
  supported: boolean
  /** why not, as the kernel said it ('' when supported) */
  reason: string
}

export interface FeatureReport {
  kernel: string
  btf: Answer
  ringbuf: Answer
  bpf_loop: Answer
  bpf_send_signal: Answer
  map_batch: Answer
  tracepoints: Answer
  uprobes: Answer
  uprobe_multi: Answer
  kprobes: Answer
  fentry: Answer
  lsm: Answer & { active: boolean; activeLsms: string[] }
  mounts: { cgroup2: string | null; bpffs: string | null; tracefs: string | null }
  capabilities: { CAP_BPF: boolean; CAP_PERFMON: boolean; CAP_SYS_ADMIN: boolean; CAP_NET_ADMIN: boolean }
  lockdown: 'none' | 'integrity' | 'confidentiality' | 'unknown'
}

/** Runs every probe (results of program probes are cached per process). */
export function features(): FeatureReport {
  const caps = effectiveCapabilities()
  const lsms = activeLsms()
  const lsm = answer('lsm')
  return {
    kernel: release(),
    btf: probeBtf(),
    ringbuf: answer('ringbuf'),
    bpf_loop: answer('bpf_loop'),
    bpf_send_signal: answer('send_signal'),
    map_batch: answer('map_batch'),
    tracepoints: answer('tracepoints'),
    uprobes: answer('uprobes'),
    uprobe_multi: probeUprobeMulti(),
    kprobes: answer('kprobes'),
    fentry: answer('fentry'),
    lsm: { ...lsm, active: lsms.includes('bpf'), activeLsms: lsms },
    mounts: { cgroup2: cgroup2Mount(), bpffs: bpffsMount(), tracefs: tracefsMount() },
    capabilities: {
      CAP_BPF: caps.has('CAP_BPF'),
      CAP_PERFMON: caps.has('CAP_PERFMON'),
      CAP_SYS_ADMIN: caps.has('CAP_SYS_ADMIN'),
      CAP_NET_ADMIN: caps.has('CAP_NET_ADMIN'),
    },
    lockdown: lockdownMode(),
  }
}

function answer(name: FeatureName): Answer {
  const p = probeFeature(name)
  return { supported: p.supported, reason: p.reason }
}

/** Kernel BTF: present and parsable by libbpf (a type lookup in it succeeds). */
function probeBtf(): Answer {
  if (!existsSync('/sys/kernel/btf/vmlinux')) return { supported: false, reason: '/sys/kernel/btf/vmlinux is missing (CONFIG_DEBUG_INFO_BTF off)' }
  try {
    const id = native().vmlinuxBtfId('task_struct', 'struct')
    return id > 0 ? { supported: true, reason: '' } : { supported: false, reason: `struct task_struct not found in vmlinux BTF (${id})` }
  } catch (e) {
    return { supported: false, reason: (e as Error).message }
  }
}

/** BPF_TRACE_UPROBE_MULTI links (6.6+): a link_create with a bad path tells supported (EBADF/ENOENT) from not (EINVAL). */
function probeUprobeMulti(): Answer {
  try {
    const r = native().probeUprobeMulti()
    return { supported: r.supported, reason: r.supported ? '' : r.message }
  } catch (e) {
    return { supported: false, reason: (e as Error).message }
  }
}

function lockdownMode(): FeatureReport['lockdown'] {
  try {
    const m = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/security/lockdown', 'utf8'))
    const mode = m?.[1]
    return mode === 'none' || mode === 'integrity' || mode === 'confidentiality' ? mode : 'unknown'
  } catch {
    return 'unknown'
  }
}
