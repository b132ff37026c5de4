/**
 * A loaded program and the ways to attach it. Every attach returns a Link;
 * closing the Link detaches. Minimum kernels: tracepoint 4.7, raw tracepoint
 * 4.17, tp_btf/fentry/fexit 5.5, LSM 5.7, uprobe via perf link 4.x (bpf_link
 * 5.15+ for uprobe links is used when available by libbpf), cgroup links 5.7.
 */
import { closeSync, openSync, statfsSync } from 'node:fs'
import type { NativeLink } from '@bpfkit/native'
import { TRACING_CAPS, NETWORK_CAPS } from './caps.js'
import type { ObjectHandle } from './object-handle.js'
import { BpfError, InvalidArgumentError, NotFoundError, NotSupportedError } from './errors.js'
import { probeFeature, type FeatureName } from './probes.js'
import { Link } from './link.js'
import { native, toBpfError } from './native.js'
import { Resource } from './resource.js'
import { resolveUprobeTarget, type UprobeTarget } from './uprobe-target.js'

const CGROUP2_SUPER_MAGIC = 0x63677270

/** Options of Program.attachUprobe(). */
export interface UprobeOptions extends UprobeTarget {
  /** attach to the function's return instead of its entry */
  retprobe?: boolean
  /** only fire in this process (default: every process that maps the file) */
  pid?: number
  /** BPF cookie readable with bpf_get_attach_cookie() (kernel 5.15+) */
  cookie?: bigint
}

export class Program extends Resource {
  readonly name: string
  readonly section: string
  /** libbpf's name for the program type, e.g. 'tracepoint', 'tracing', 'cgroup_sock_addr' */
  readonly type: string
  readonly attachType: string
  readonly #handle: ObjectHandle

  /** @internal created by Collection */
  constructor(handle: ObjectHandle, name: string, section: string, type: string, attachType: string) {
    handle.retain()
    super(`program '${name}'`, () => handle.releaseRef())
    this.#handle = handle
    this.name = name
    this.section = section
    this.type = type
    this.attachType = attachType
  }

  /** The program's file descriptor (owned by the collection's object). */
  get fd(): number {
    this.assertOpen()
    return this.#handle.object.programFd(this.name)
  }

  /**
   * Attaches by section name, as libbpf does ('tracepoint/sched/x',
   * 'raw_tp/x', 'tp_btf/x', 'fentry/x', 'lsm/x', 'uprobe/path:func', ...).
   */
  attach(): Link {
    if (this.section.startsWith('cgroup')) {
      throw new InvalidArgumentError(`program '${this.name}' (${this.section}) needs a cgroup: use attachCgroup(path)`)
    }
    const feature = featureOfSection(this.section)
    return this.#attach(`${this.section} <- ${this.name}`, feature, TRACING_CAPS, (o) => o.attachAuto(this.name))
  }

  /** Attaches to a tracepoint such as ('sched', 'sched_process_exec'). */
  attachTracepoint(category: string, name: string): Link {
    this.#requireType('attachTracepoint', 'tracepoint')
    checkName('tracepoint category', category)
    checkName('tracepoint name', name)
    return this.#attach(`tracepoint ${category}/${name} <- ${this.name}`, undefined, TRACING_CAPS, (o) =>
      o.attachTracepoint(this.name, category, name),
      () => new NotFoundError('tracepoint', `${category}/${name}`),
    )
  }

  /** Attaches to a raw tracepoint (BPF_PROG_TYPE_RAW_TRACEPOINT). */
  attachRawTracepoint(name: string): Link {
    this.#requireType('attachRawTracepoint', 'raw_tracepoint', 'raw_tracepoint_writable')
    checkName('raw tracepoint', name)
    return this.#attach(`raw_tp ${name} <- ${this.name}`, undefined, TRACING_CAPS, (o) => o.attachRawTracepoint(this.name, name),
      () => new NotFoundError('raw tracepoint', name))
  }

  /** Attaches a BTF-typed program: tp_btf, fentry, fexit or fmod_ret (target set at load). */
  attachTracing(): Link {
    this.#requireType('attachTracing', 'tracing')
    return this.#attach(`${this.section} <- ${this.name}`, this.section.startsWith('tp_btf') ? undefined : 'fentry', TRACING_CAPS, (o) =>
      o.attachTrace(this.name),
    )
  }

  /** Attaches a BPF LSM program (kernel 5.7+, 'bpf' in the active LSM list). */
  attachLsm(): Link {
    this.#requireType('attachLsm', 'lsm')
    return this.#attach(`${this.section} <- ${this.name}`, 'lsm', TRACING_CAPS, (o) => o.attachLsm(this.name))
  }

  /** Attaches to a kernel function entry (or return) with a kprobe. Needs CONFIG_KPROBES. */
  attachKprobe(func: string, options: { retprobe?: boolean; offset?: number } = {}): Link {
    this.#requireType('attachKprobe', 'kprobe')
    checkName('kernel function', func)
    return this.#attach(`${options.retprobe ? 'kretprobe' : 'kprobe'} ${func} <- ${this.name}`, 'kprobes', TRACING_CAPS, (o) =>
      o.attachKprobe(this.name, !!options.retprobe, func, options.offset ?? 0),
    )
  }

  /**
   * Attaches to a user-space function: `binary` is a path or a library name
   * ('libssl.so.3', resolved like ld.so), `symbol` is looked up in .dynsym and
   * .symtab and turned into a file offset. With `pid`, paths resolve inside
   * that process's mount namespace (/proc/PID/root) for containers; a binary
   * that process cannot see is a NotFoundError, never the host's file of that name.
   */
  attachUprobe(options: UprobeOptions): Link {
    this.assertOpen()
    this.#requireType('attachUprobe', 'kprobe')
    const target = resolveUprobeTarget(options)
    const kind = options.retprobe ? 'uretprobe' : 'uprobe'
    return this.#attach(`${kind} ${target.path}:${target.label} <- ${this.name}`, 'uprobes', TRACING_CAPS, (o) =>
      o.attachUprobe(this.name, {
        retprobe: !!options.retprobe,
        pid: options.pid ?? -1,
        binaryPath: target.path,
        offset: target.offset,
        cookie: options.cookie,
      }),
    )
  }

  /** Attaches a cgroup program (sock_addr, skb, sock, ...) to a cgroup v2 directory. */
  attachCgroup(cgroupPath: string): Link {
    this.assertOpen()
    if (!this.type.startsWith('cgroup') && this.type !== 'sock_ops') {
      throw new InvalidArgumentError(`attachCgroup needs a cgroup_* (cgroup_sock_addr, cgroup_skb, ...) or sock_ops program; '${this.name}' is a ${this.type} program (section ${this.section})`)
    }
    let magic: number
    try {
      magic = Number(statfsSync(cgroupPath).type)
    } catch (cause) {
      throw new NotFoundError('cgroup directory', cgroupPath)
    }
    if (magic !== CGROUP2_SUPER_MAGIC) {
      throw new InvalidArgumentError(`${cgroupPath} is not on a cgroup v2 file system (mount one with: mount -t cgroup2 none DIR)`)
    }
    const fd = openSync(cgroupPath, 'r')
    try {
      return this.#attach(`cgroup ${cgroupPath} (${this.attachType}) <- ${this.name}`, undefined, NETWORK_CAPS, (o) =>
        o.attachCgroup(this.name, fd),
      )
    } finally {
      closeSync(fd)
    }
  }

  /** Runs the program once on `data` with BPF_PROG_TEST_RUN (types that support it). */
  testRun(data: Buffer | null = null, repeat = 1): { retval: number; duration: number } {
    const fd = this.fd
    try {
      return native().progTestRun(fd, data, repeat)
    } catch (err) {
      throw toBpfError(err, { action: `test run of program '${this.name}'`, capability: 'CAP_BPF' })
    }
  }

  protected release(): void {
    this.#handle.releaseRef()
  }

  /** The kernel answers a wrong program type with a bare EINVAL; say what is wrong instead. */
  #requireType(method: string, ...types: string[]): void {
    if (types.includes(this.type)) return
    const want = types[0] === 'kprobe' ? 'kprobe/uprobe (BPF_PROG_TYPE_KPROBE)' : types.join(' or ')
    throw new InvalidArgumentError(`${method} needs a ${want} program; '${this.name}' is a ${this.type} program (section ${this.section})`)
  }

  #attach(
    description: string,
    feature: FeatureName | undefined,
    capability: string,
    fn: (o: ObjectHandle['object']) => NativeLink,
    notFound?: () => BpfError,
  ): Link {
    this.assertOpen()
    try {
      return new Link(fn(this.#handle.object), description)
    } catch (err) {
      const typed = toBpfError(err, { action: `attach ${description}`, capability })
      if (feature) {
        const probe = probeFeature(feature)
        if (!probe.supported) throw new NotSupportedError(probe.feature, probe.reason, { errno: typed.errno, cause: typed })
      }
      if (notFound && typed.code === 'ENOENT') throw notFound()
      throw typed
    }
  }
}

function featureOfSection(section: string): FeatureName | undefined {
  if (/^k(ret)?probe/.test(section) || section.startsWith('ksyscall')) return 'kprobes'
  if (/^f(entry|exit)|^fmod_ret/.test(section)) return 'fentry'
  if (section.startsWith('lsm')) return 'lsm'
  if (/^u(ret)?probe/.test(section)) return 'uprobes'
  return undefined
}

/** Names end up in tracefs paths: refuse anything that could escape them. */
function checkName(what: string, name: string): void {
  if (!/^[A-Za-z0-9_.:-]{1,256}$/.test(name)) throw new InvalidArgumentError(`invalid ${what} '${name}'`)
}
