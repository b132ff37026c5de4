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
 * Callback of a RingReader: one call per batch of records. `buffer` holds the (offset, length) pairs of the
 * batch's records as u32s from byte 0, and the records from byte `dataOffset`; offsets are relative to
 * `dataOffset`. The same buffer is passed every time until it is replaced (after a detach, or to fit a record
 * larger than it). `drained`: the ring was empty when the batch ended (a natural point for housekeeping).
 * `sameSize`: when every record of the batch has this one size, record i starts at i * round_up(sameSize, 8)
 * (a walk needs no offsets); 0 when sizes differ.
 */
export type RingBatchCallback = (count: number, buffer: ArrayBuffer, drained: boolean, sameSize: number) => void

export interface RingReaderOptions {
  /** initial size of the data part of the reusable copy buffer; grows for records larger than it. default 4 MiB */
  bufferSize?: number
  /** most records per onBatch call (size of the offsets array / 2). default 65536 */
  maxRecordsPerBatch?: number
  /** most onBatch calls per event-loop wake-up, so bursts cannot starve the loop. default 16 */
  maxBatchesPerWake?: number
}

/**
 * Consumer of a BPF_MAP_TYPE_RINGBUF map. Uses a uv_poll handle on the map fd
 * on the calling environment's loop (no thread). Records are copied into one
 * reusable ArrayBuffer (see RingBatchCallback for its layout). The data is only
 * valid during the callback. The consumer position is committed (released to
 * producers) before the callback runs; the copy stays valid during it.
 */
export declare class NativeRingReader {
  constructor(mapFd: number, onBatch: RingBatchCallback, options?: RingReaderOptions)
  /** start polling (uv_poll_start); the handle is unref'd unless ref() */
  start(): void
  /** stop polling; unread data stays in the kernel ring */
  stop(): void
  ref(): void
  unref(): void
  /** drain synchronously, calling onBatch; returns records delivered. maxRecords default: all available */
  consume(maxRecords?: number): number
  /** bytes the producer has committed that are not consumed yet */
  available(): number
  /** size of the ring data area (max_entries) */
  readonly size: number
  /** byte offset of the record data in the callback's buffer (maxRecordsPerBatch * 8) */
  readonly dataOffset: number
  /** uv_close the poll handle, then munmap and close the dup'd fd. Idempotent. */
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
