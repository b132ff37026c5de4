/**
 * Effective capabilities of this process, read from /proc/self/status. Used to
 * tell "you lack a privilege" (PermissionError) apart from "the kernel refuses
 * this even to root" (NotSupportedError), which both surface as EPERM.
 */
import { readFileSync } from 'node:fs'

const CAP_BITS: Record<string, number> = {
  CAP_NET_ADMIN: 12,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_RESOURCE: 24,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
}

/** Names of the capabilities bpfkit cares about that are effective now. */
export function effectiveCapabilities(): Set<string> {
  const out = new Set<string>()
  let eff = 0n
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    if (m) eff = BigInt('0x' + m[1])
  } catch {
    return out
  }
  for (const [name, bit] of Object.entries(CAP_BITS)) if (eff & (1n << BigInt(bit))) out.add(name)
  return out
}

/**
 * True when every capability named in `spec` is effective. `spec` is text such
 * as 'CAP_BPF and CAP_PERFMON'; CAP_SYS_ADMIN stands in for CAP_BPF/CAP_PERFMON
 * as the kernel allows.
 */
export function hasCapability(spec: string): boolean {
  const caps = effectiveCapabilities()
  const wanted = spec.match(/CAP_[A-Z_]+/g) ?? []
  return wanted.every((c) => caps.has(c) || ((c === 'CAP_BPF' || c === 'CAP_PERFMON') && caps.has('CAP_SYS_ADMIN')))
}

/** Capabilities to load and attach tracing programs (kernel 5.8+ split). */
export const TRACING_CAPS = 'CAP_BPF and CAP_PERFMON'
/** Capabilities to attach cgroup/network programs. */
export const NETWORK_CAPS = 'CAP_BPF and CAP_NET_ADMIN'
