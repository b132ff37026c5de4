/**
 * Contract between @bpfkit/core and the native addon. The addon is a thin
 * layer over libbpf and a few raw syscalls; all policy (typed errors, codecs,
 * retries, lifecycles) lives in TypeScript.
 *
 * Every function that fails throws an `Error` carrying {@link NativeErrorFields}.
 */

/** Fields set on every Error thrown by the addon. */
export interface NativeErrorFields {
  /** positive errno, e.g. 1 for EPERM; 0 when not a syscall failure */
  errno: number
  /** errno name, e.g. 'EPERM', or 'EBPFKIT' for addon-level validation errors */
  code: string
  /** libbpf/syscall operation that failed, e.g. 'bpf_object__open_mem' */
  op: string
  /** everything libbpf printed (warn/info levels) while this call ran */
  libbpfLog: string
  /** load(): verifier log of the program that failed */
  verifierLog?: string
  /** load(): name of the program that failed */
  program?: string
  /** load(): true when the verifier log filled the buffer (ENOSPC or full) */
  logTruncated?: boolean
}

export interface NativeProgramInfo {
  name: string
  section: string
  /** enum bpf_prog_type value and libbpf's name for it ('tracepoint', 'kprobe', ...) */
  type: number
  typeName: string
  /** enum bpf_attach_type value and libbpf's name ('' when none) */
  expectedAttachType: number
  attachTypeName: string
  autoload: boolean
  /** number of BPF instructions */
  insnCount: number
}

export interface NativeMapInfo {
  name: string
  type: number
  typeName: string
  keySize: number
  valueSize: number
  maxEntries: number
  flags: number
  /** true for libbpf internal maps (.rodata, .data, .bss, .kconfig, .rodata.str1.1 ...) */
  internal: boolean
  /** copy of the initial value for internal (global data) maps, else null */
  initialValue: Buffer | null
  pinPath: string | null
  btfKeyTypeId: number
  btfValueTypeId: number
}

export interface NativeObjectInfo {
  name: string
  programs: NativeProgramInfo[]
  maps: NativeMapInfo[]
  /** raw .BTF as finalized by libbpf at open (DATASEC sizes/offsets fixed), or null */
  btf: Buffer | null
}

export interface OpenOptions {
  /** object name used by libbpf in messages */
  name?: string
  /** path to an external vmlinux BTF for CO-RE (btf_custom_path) */
  btfCustomPath?: string
  /** directory for maps declared with LIBBPF_PIN_BY_NAME (pin_root_path) */
  pinRoot?: string
}

export interface LoadOptions {
  /** verifier log level used for the failing program (1 or 2); default 1 */
  logLevel?: number
  /** bytes of verifier log buffer per program; default 1 MiB */
  logSize?: number
}

export interface UprobeAttachOptions {
  retprobe: boolean
  /** -1 for all processes */
  pid: number
  /** path of the ELF file the offset refers to */
  binaryPath: string
  /** file offset of the probe point (NOT a virtual address) */
  offset: number
  /** USDT-style semaphore reference counter offset, 0 for none */
  refCtrOffset?: number
  cookie?: bigint
}

/** A live kernel attachment (bpf_link). */
export declare class NativeLink {
  /** file descriptor of the link (or perf event) */
  readonly fd: number
  pin(path: string): void
  unpin(): void
  /** bpf_link__destroy: detaches. Idempotent. */
  destroy(): void
}

/** bpf_object opened from memory. One instance = one libbpf object. */
export declare class NativeObject {
  constructor(elf: Buffer, options?: OpenOptions)
  info(): NativeObjectInfo
  setMapMaxEntries(map: string, maxEntries: number): void
  /** data.length must equal the map's value size (internal maps only) */
  setMapInitialValue(map: string, data: Buffer): void
  setMapPinPath(map: string, path: string | null): void
  setProgramAutoload(program: string, autoload: boolean): void
  /** bpf_object__load. On failure throws with verifierLog/program/logTruncated. */
  load(options?: LoadOptions): void
  /** dup() of the loaded map's fd; the caller owns and must closeFd() it */
  mapFd(map: string): number
  /** the loaded program's fd (owned by the object, do not close) */
  programFd(program: string): number
  attachAuto(program: string): NativeLink
  attachTracepoint(program: string, category: string, name: string): NativeLink
  attachRawTracepoint(program: string, name: string): NativeLink
  /** fentry/fexit/fmod_ret/tp_btf (bpf_program__attach_trace) */
  attachTrace(program: string): NativeLink
  attachLsm(program: string): NativeLink
  attachKprobe(program: string, retprobe: boolean, func: string, offset: number): NativeLink
  attachUprobe(program: string, options: UprobeAttachOptions): NativeLink
  attachCgroup(program: string, cgroupFd: number): NativeLink
  /** bpf_object__close; programs' fds close, links stay. Idempotent. */
  close(): void
}

export interface NativeMapFdInfo {
  type: number
  keySize: number
  valueSize: number
  maxEntries: number
  flags: number
  name: string
  id: number
}

export interface BatchResult {
  /** number of elements processed */
  count: number
  /** true when the iteration reached the end of the map (ENOENT) */
  done: boolean
}

/**
 * Kernel side of a BPF_MAP_TYPE_RINGBUF consumer, with zero copies: JS reads records in the
 * ring's own memory (see ringbuf.cc). It uses a uv_poll handle on the map fd on the calling environment's loop
 * (no thread) and calls `onReadable` once per wake-up; the JS side then walks with window() or fill() and gives
 * the space back with advance() after it has read the records.
 */
export declare class NativeRingReader {
  constructor(mapFd: number, onReadable: () => void)
  /** start polling (uv_poll_start); the handle is unref'd unless ref() */
  start(): void
  /** stop polling; unread data stays in the kernel ring */
  stop(): void
  ref(): void
  unref(): void
  /**
   * A new ArrayBuffer over the ring's data area, mapped twice (2 * size bytes, so a record that wraps is
   * contiguous). Read-only memory: writing to it kills the process. After close() it reads zeros.
   */
  dataBuffer(): ArrayBuffer
  /** Unread bytes (kernel record headers included, at most `size`); cursor[0] = where they start in dataBuffer(). */
  window(cursor: Float64Array): number
  /**
   * Notes the next committed records (at most maxRecords, about 512 KiB) as (offset, length) u32 pairs in
   * `offsets`, without consuming them; returns their number. cursor[1] = bytes to advance() by afterwards,
   * cursor[2] = the one size of every record when they sit back to back (else 0), cursor[3] = 1 when nothing
   * more was ready.
   */
  fill(offsets: Uint32Array, maxRecords: number, cursor: Float64Array): number
  /** Gives `bytes` (whole records, as walked) back to the producers. */
  advance(bytes: number): void
  /** bytes the producer has committed that are not consumed yet */
  available(): number
  /** size of the ring data area (max_entries) */
  readonly size: number
  /** uv_close the poll handle, then unmap the ring (zero pages replace it under live buffers) and close the dup'd fd. Idempotent. */
  close(): void
}

export interface ProbeResult { supported: boolean; errno: number; message: string }

export interface NativeBinding {
  NativeObject: typeof NativeObject
  NativeLink: typeof NativeLink
  NativeRingReader: typeof NativeRingReader
  libbpfVersion(): string
  /** libbpf_num_possible_cpus() */
  possibleCpus(): number
  /** 1 = print libbpf debug output to stderr */
  setLibbpfDebug(on: boolean): void

  mapInfo(fd: number): NativeMapFdInfo
  /** returns false when the key does not exist */
  mapLookup(fd: number, key: Buffer | null, value: Buffer, flags: number): boolean
  mapUpdate(fd: number, key: Buffer | null, value: Buffer, flags: number): void
  /** returns false when the key does not exist */
  mapDelete(fd: number, key: Buffer): boolean
  /** returns false when the key does not exist */
  mapLookupAndDelete(fd: number, key: Buffer | null, value: Buffer): boolean
  /** key null = first key. returns false at the end */
  mapGetNextKey(fd: number, key: Buffer | null, nextKey: Buffer): boolean
  /** BPF_MAP_LOOKUP_BATCH / LOOKUP_AND_DELETE_BATCH; inBatch null = start. outBatch receives the cursor */
  mapLookupBatch(fd: number, inBatch: Buffer | null, outBatch: Buffer, keys: Buffer, values: Buffer, count: number, andDelete: boolean): BatchResult
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags: number): number
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number
  /** bpf_map_create (for standalone maps and probes); returns an owned fd */
  mapCreate(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags: number): number
  objPin(fd: number, path: string): void
  /** returns an owned fd */
  objGet(path: string): number
  closeFd(fd: number): void
  dupFd(fd: number): number

  /** BPF_PROG_TEST_RUN */
  progTestRun(fd: number, dataIn: Buffer | null, repeat: number): { retval: number; duration: number }
  /** libbpf_probe_bpf_prog_type / map_type / helper */
  probeProgramType(type: number): ProbeResult
  probeMapType(type: number): ProbeResult
  probeHelper(programType: number, helperId: number): ProbeResult
  /** BPF_TRACE_UPROBE_MULTI links (6.6+): supported when link_create fails with EBADF on path "/" */
  probeUprobeMulti(): ProbeResult
  /** BPF_PROG_LOAD of raw instructions (8-byte struct bpf_insn each). Returns owned fd, or throws with verifierLog */
  progLoadRaw(type: number, insns: Buffer, license: string, options: { expectedAttachType?: number; attachBtfId?: number; logSize?: number }): number
  /** btf id of a kernel type/func by name in vmlinux BTF, -errno (negative) if missing */
  vmlinuxBtfId(name: string, kind: 'func' | 'struct' | 'typedef'): number
}

declare const binding: NativeBinding
export = binding
