/**
 * Reads the container id, pod UID and QoS class out of a cgroup v2 path.
 *
 * The kernel only gives us a cgroup (its id or its path); everything
 * Kubernetes-shaped is encoded in the directory names kubelet and the
 * container runtime choose. This parser knows those names for both kubelet
 * cgroup drivers and the common runtimes (see docs/k8s-deploy.md for the
 * table). It works segment by segment with plain string operations, so it is
 * linear in the input, never backtracks and never throws: anything it does
 * not recognise yields `undefined`.
 */
import type { CgroupContainerRef, ContainerRuntime, QosClass } from './types.js'

/** Longer inputs are not cgroup paths (PATH_MAX); refuse them without looking. */
export const MAX_CGROUP_PATH_LENGTH = 4096
/** Longer segments are not directory names (NAME_MAX). */
const MAX_SEGMENT_LENGTH = 255

const HEX64 = /^[0-9a-f]{64}$/

/** Runtime scope prefixes, most specific first (`crio-conmon-` before `crio-`). */
const CONTAINER_PREFIXES: ReadonlyArray<readonly [prefix: string, runtime: ContainerRuntime | 'conmon']> = [
  ['cri-containerd-', 'containerd'],
  ['crio-conmon-', 'conmon'],
  ['crio-', 'cri-o'],
  ['docker-', 'docker'],
  ['nerdctl-', 'nerdctl'],
  ['libpod-conmon-', 'conmon'],
  ['libpod-payload-', 'podman'],
  ['libpod-', 'podman'],
]

/** containerd without the systemd cgroup driver writes kubelet's "slice:prefix:id" literally. */
const CRI_CONTAINERD_COLON = ':cri-containerd:'

interface PodPart {
  uid: string
  qos?: QosClass
  systemd: boolean
}

interface ContainerPart {
  id: string
  runtime: ContainerRuntime
  systemd: boolean
}

/**
 * Parses a cgroup v2 path (as in /proc/PID/cgroup's `0::` line or relative to
 * the cgroup2 mount). Returns undefined when the path names neither a pod nor
 * a container. Prefixes from nesting (kind, docker-in-docker, a cgroup
 * namespace's `/..`) are skipped: the innermost pod and the first container
 * below it win.
 */
export function parseCgroupPath(path: string): CgroupContainerRef | undefined {
  if (typeof path !== 'string' || path.length === 0 || path.length > MAX_CGROUP_PATH_LENGTH) return undefined
  try {
    return parseSegments(path)
  } catch {
    // Defensive: the parser feeds every event; a bug here must not take the pipeline down.
    return undefined
  }
}

function parseSegments(path: string): CgroupContainerRef | undefined {
  const segments = path.split('/')
  let pod: PodPart | undefined
  let container: ContainerPart | undefined
  let previous = ''
  for (const segment of segments) {
    if (segment === '' || segment.length > MAX_SEGMENT_LENGTH) continue
    const colon = segment.indexOf(CRI_CONTAINERD_COLON)
    if (colon >= 0) {
      // "<pod slice>:cri-containerd:<id>" is both the pod and the container.
      const podPart = parsePodSlice(segment.slice(0, colon))
      const id = segment.slice(colon + CRI_CONTAINERD_COLON.length).toLowerCase()
      if (podPart) {
        pod = podPart
        container = undefined
      }
      if (container === undefined && HEX64.test(id)) container = { id, runtime: 'containerd', systemd: true }
    } else {
      const podPart = parsePodSegment(segment, previous)
      if (podPart) {
        // A container seen before the (innermost) pod is an outer layer, e.g. the kind node.
        pod = podPart
        container = undefined
      } else if (container === undefined) {
        const found = parseContainerSegment(segment, previous)
        if (found !== 'conmon') container = found
      }
    }
    previous = segment
  }
  if (!pod && !container) return undefined
  const systemd = pod ? pod.systemd : container!.systemd
  const ref: CgroupContainerRef = { path, driver: systemd ? 'systemd' : 'cgroupfs' }
  if (pod) {
    ref.podUid = pod.uid
    if (pod.qos) ref.qos = pod.qos
  }
  if (container) {
    ref.containerId = container.id
    ref.runtime = container.runtime
  }
  return ref
}

/** `pod<uid>` (cgroupfs) or `…kubepods[-qos]-pod<uid_with_underscores>.slice` (systemd). */
function parsePodSegment(segment: string, parent: string): PodPart | undefined {
  if (segment.endsWith('.slice')) return parsePodSlice(segment)
  if (!segment.startsWith('pod')) return undefined
  const uid = normalisePodUid(segment.slice(3))
  if (!uid) return undefined
  return { uid, qos: qosFromCgroupfsParent(parent), systemd: false }
}

function parsePodSlice(slice: string): PodPart | undefined {
  if (!slice.endsWith('.slice')) return undefined
  const name = slice.slice(0, -'.slice'.length)
  const at = name.lastIndexOf('-pod')
  if (at < 0) return undefined
  const uid = normalisePodUid(name.slice(at + 4))
  if (!uid) return undefined
  const owner = name.slice(0, at)
  let qos: QosClass
  if (owner.endsWith('kubepods-besteffort')) qos = 'besteffort'
  else if (owner.endsWith('kubepods-burstable')) qos = 'burstable'
  // Guaranteed pods sit directly under kubepods.slice.
  else if (owner.endsWith('kubepods')) qos = 'guaranteed'
  else return undefined
  return { uid, qos, systemd: true }
}

function qosFromCgroupfsParent(parent: string): QosClass | undefined {
  if (parent === 'besteffort') return 'besteffort'
  if (parent === 'burstable') return 'burstable'
  if (parent === 'kubepods') return 'guaranteed'
  return undefined
}

/**
 * A pod UID is a UUID (or, for static pods, a 32-hex config hash). systemd
 * slices cannot hold '-' inside a unit name component, so kubelet writes '_'.
 */
function normalisePodUid(raw: string): string | undefined {
  if (raw.length < 32 || raw.length > 36) return undefined
  let hex = 0
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    const isHex = (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
    if (isHex) hex++
    else if (c !== 45 /* - */ && c !== 95 /* _ */) return undefined
  }
  if (hex !== 32) return undefined
  return raw.replaceAll('_', '-').toLowerCase()
}

/** `<runtime>-<64hex>[.scope]` or a bare 64-hex directory; 'conmon' for the runtime monitor's scope. */
function parseContainerSegment(segment: string, parent: string): ContainerPart | 'conmon' | undefined {
  const systemd = segment.endsWith('.scope')
  const name = (systemd ? segment.slice(0, -'.scope'.length) : segment).toLowerCase()
  for (const [prefix, runtime] of CONTAINER_PREFIXES) {
    if (!name.startsWith(prefix)) continue
    if (runtime === 'conmon') return 'conmon'
    const id = name.slice(prefix.length)
    return HEX64.test(id) ? { id, runtime, systemd } : undefined
  }
  if (!HEX64.test(name)) return undefined
  // cgroupfs layouts name the directory by the bare id; only docker's own parent says who made it.
  return { id: name, runtime: parent === 'docker' ? 'docker' : 'unknown', systemd }
}
