/**
 * What links an event to a container: the kernel cgroup id, a pid, or ids the
 * caller already knows. The default extractor reads the fields bpfkit's own
 * events carry: process events have `cgroup.id` (decimal string) and
 * `process.pid`; HTTP events have `process.pid`.
 */

export interface IdentityKey {
  /** cgroup v2 id (bpf_get_current_cgroup_id); preferred: it survives the process exiting. A number (from JSON) is accepted when it is a safe integer */
  cgroupId?: bigint | number
  /** host pid, used when there is no cgroup id or the id is unknown */
  pid?: number
  /** a full container id, when the caller already has one */
  containerId?: string
  /** a pod UID, when the caller already has one */
  podUid?: string
}

/** Extracts the key from an event; return undefined when the event has none. */
export type KeyFunction<E> = (event: E) => IdentityKey | undefined

export function defaultKey(event: unknown): IdentityKey | undefined {
  if (!event || typeof event !== 'object') return undefined
  const e = event as { cgroup?: { id?: unknown }; process?: { pid?: unknown } }
  const key: IdentityKey = {}
  const id = cgroupIdOf(e.cgroup?.id)
  if (id !== undefined) key.cgroupId = id
  const pid = e.process?.pid
  if (typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0) key.pid = pid
  return key.cgroupId !== undefined || key.pid !== undefined ? key : undefined
}

/** A cgroup id as a bigint, from a bigint, a decimal string or a safe-integer number; undefined for anything else. */
export function cgroupIdOf(id: unknown): bigint | undefined {
  if (typeof id === 'bigint') return id >= 0n ? id : undefined
  if ((typeof id === 'string' && /^\d{1,20}$/.test(id)) || (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0)) return BigInt(id)
  return undefined
}
