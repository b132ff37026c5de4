// SPDX-License-Identifier: GPL-2.0
/* TLS plaintext capture: uprobes on the TLS libraries' read/write functions.
 *
 * Hooks (user space decides where; the attach cookie says what was hooked):
 *  - OpenSSL 1.1/3.x, BoringSSL, and executables that export them (node):
 *    SSL_write, SSL_read, SSL_write_ex, SSL_read_ex, SSL_write_ex2;
 *  - GnuTLS: gnutls_record_send, gnutls_record_recv;
 *    both through tls_enter (uprobe) + tls_return (uretprobe): 2 probe hits
 *    per call, the minimum that yields both the buffer and the byte count;
 *  - Go crypto/tls (*Conn).Write / (*Conn).Read: go_enter on the function
 *    entry and go_return on every RET instruction (never a uretprobe: Go moves
 *    goroutine stacks, and a uretprobe's rewritten return address would crash
 *    the program). Still 2 hits per call (only one RET executes).
 *
 * Nesting: a call that starts inside another one on the same thread is either
 * a wrapper's inner call of the same direction (SSL_write_ex -> SSL_write;
 * ignored, the outer call owns the data) or a call of its own in the other
 * direction (node writes a new connection's first request from a callback
 * inside SSL_read): that one is kept in tls_nested_calls, keyed by its entry
 * stack pointer, and emitted at its own return.
 *
 * Data is emitted at return, and only the bytes the call actually moved: the
 * return value, or *written / *readbytes for the _ex variants. Up to
 * max_bytes_per_call bytes of each call are copied into ring records of at
 * most CAPTURE_CHUNK data bytes (bpf_loop, one record per chunk); each record is
 * reserved in the smallest power-of-two size class that holds its data, so a
 * 100-byte write costs a 256-byte record, not 16 KiB. Every byte not
 * delivered (beyond the cap, ring full, unreadable user memory) is counted in
 * tls_counters and reported on the next record of the same connection and
 * direction as `gap`; stream_off positions every record in its stream so
 * downstream can place gaps exactly.
 *
 * Per-thread state (tls_tasks, task local storage: no hashing, freed with the
 * thread): the OpenSSL/GnuTLS call in flight, and the cached verdict of the
 * pid/comm filters (see task_allowed).
 *
 * Socket fd: while an OpenSSL/GnuTLS call is in flight on a thread, the
 * syscall tracepoints (sys_enter_{read,write,recvfrom,sendto,recvmsg,sendmsg})
 * find it in the thread's storage and record the fd they see, if it is a
 * socket. These run on every such syscall of the machine: a thread with no
 * call in flight costs one task-storage lookup (a pointer walk, no hash, no
 * allocation); the exits are not needed (the fd is an argument). Memory-BIO users
 * (Node's TLSWrap) do their socket I/O outside the SSL call, so they get fd
 * -1. Go: the fd is read from the runtime objects (tls.Conn.conn ->
 * *net.TCPConn -> *netFD -> poll.FD.Sysfd, layouts unchanged since Go 1.x).
 * From the fd, the 4-tuple is read out of the process's file table (CO-RE),
 * once per connection. A call with syscalls on two different sockets keeps
 * the connection's last known fd and is flagged TLS_F_FD_CONFLICT.
 *
 * Connection teardown (SSL_free, gnutls_deinit, (*Conn).Close; entry uprobe,
 * one hit per connection) drops the stream state, so an object reallocated at
 * the same address starts a new stream, and emits a TLS_F_CLOSE record.
 *
 * tls_exec (optional, sched_process_exec): SIGSTOPs a process whose
 * executable is not in tls_exe_known, after reserving a TLS_F_HOLD record that
 * tells user space to inspect/attach it and SIGCONT it; descendants of
 * agent_tgid are exempt.
 *
 * Wake-ups: records are submitted with BPF_RB_NO_WAKEUP unless unread data
 * just crossed wakeup_bytes: a wake-up per record costs ~11 us in a VM
 * (measured: tls_return 12.2 us -> 1.1 us per call); user space also drains
 * the ring on a timer.
 *
 * Needs: kernel 5.17+ (bpf_loop), 5.15+ (attach cookies), 5.11+ (task storage
 * in tracing programs), BTF; no kprobes.
 */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

/* a call is taken as nested inside a still-running one on the same thread only this soon after it */
#define NEST_WINDOW_NS 1000000000ULL

enum tls_lib { TLS_LIB_OPENSSL = 1, TLS_LIB_GNUTLS = 2, TLS_LIB_GO = 3, TLS_LIB_BORINGSSL = 4 };

/* what a probe is attached to (cookie bits 8..15) */
enum tls_fn {
  TLS_FN_WRITE = 1,    /* SSL_write, gnutls_record_send, Go Write: rc = bytes */
  TLS_FN_READ = 2,     /* SSL_read, gnutls_record_recv, Go Read: rc = bytes */
  TLS_FN_WRITE_EX = 3, /* SSL_write_ex(ssl, buf, num, size_t *written): rc 1 = ok */
  TLS_FN_READ_EX = 4,  /* SSL_read_ex(ssl, buf, num, size_t *readbytes) */
  TLS_FN_WRITE_EX2 = 5 /* SSL_write_ex2(ssl, buf, num, flags, size_t *written) */
};

enum tls_dir { TLS_EGRESS = 0, TLS_INGRESS = 1 };

enum tls_flag {
  TLS_F_FIRST = 1,       /* first chunk of the call (CAPTURE_F_FIRST) */
  TLS_F_LAST = 2,        /* last captured chunk of the call (CAPTURE_F_LAST) */
  TLS_F_TRUNCATED = 4,   /* the call moved more than max_bytes_per_call (CAPTURE_F_TRUNCATED) */
  TLS_F_FD_CONFLICT = 8, /* syscalls on different fds inside the call */
  TLS_F_FD_FROM_CALL = 16, /* fd seen inside this very call (else: the connection's last known fd) */
  TLS_F_CLOSE = 32,      /* no data: the connection object was freed (SSL_free, gnutls_deinit, Conn.Close) */
  TLS_F_HOLD = 64        /* no data: process `pid` was stopped at exec (tls_exec); user space resumes it */
};

/* per-reason drop and activity counters (tls_counters index) */
enum tls_counter {
  TLS_C_CALLS = 0,           /* calls that moved data and were emitted (some records may still fail) */
  TLS_C_RECORDS = 1,         /* records submitted */
  TLS_C_RING_FULL_RECORDS = 2,
  TLS_C_RING_FULL_BYTES = 3,
  TLS_C_CAP_BYTES = 4,       /* bytes beyond max_bytes_per_call */
  TLS_C_FAULT_RECORDS = 5,   /* user memory could not be read (not resident) */
  TLS_C_FAULT_BYTES = 6,
  TLS_C_NO_ENTRY = 7,        /* return without the matching entry (state evicted, attached mid-call) */
  TLS_C_NO_ENTRY_BYTES = 8,
  TLS_C_STATE_FULL = 9,      /* call state could not be stored */
  TLS_C_FD_CONFLICT = 10,
  TLS_C_CONN_FULL = 11,      /* connection state could not be stored: records carry seq 0 */
  TLS_C_HOLDS = 12,          /* processes stopped at exec for inspection */
  TLS_C_HOLD_FAILED = 13,    /* an exec that should have been held was not (ring full, signal failed) */
  TLS_C_MAX = 14
};

/* Configuration: .rodata, set by user space before load (the verifier sees constants).
 * max_bytes_per_call, the pid and comm filters and wakeup_bytes are declared in capture.h. */
/* the agent: its descendants are never held at exec (it may wait for them synchronously) */
const volatile __u32 agent_tgid = 0;
/* tls_exec holds only descendants of this process when set (tests, scoped agents) */
const volatile __u32 hold_root_tgid = 0;

/* The ring record (struct tls_event), its chunked emission, the counters and the pid filter
 * are shared with the plain socket sensor: capture.h. The ring must be declared before it. */
BPFKIT_RINGBUF(tls_events, 64 << 20);

#define CAPTURE_EVENT tls_event
#define CAPTURE_RING tls_events
#define CAPTURE_COUNTERS tls_counters
#define CAPTURE_COUNTERS_MAX TLS_C_MAX
#define CAPTURE_PIDS tls_pids
#include "capture.h"
_Static_assert(TLS_F_FIRST == CAPTURE_F_FIRST && TLS_F_LAST == CAPTURE_F_LAST && TLS_F_TRUNCATED == CAPTURE_F_TRUNCATED &&
                   TLS_F_CLOSE == CAPTURE_F_CLOSE,
               "flags");
_Static_assert(TLS_C_RECORDS == CAPTURE_C_RECORDS && TLS_C_RING_FULL_BYTES == CAPTURE_C_RING_FULL_BYTES &&
               TLS_C_FAULT_BYTES == CAPTURE_C_FAULT_BYTES && TLS_C_CAP_BYTES == CAPTURE_C_CAP_BYTES, "counters");

/* State of one TLS call in flight (from entry to return). */
struct tls_call {
  __u64 conn;
  __u64 buf;
  __u64 out_len;     /* _ex: user pointer to the size_t out-parameter */
  __u64 sp;          /* stack pointer at entry: tells nested calls apart */
  __u64 ktime;
  __s32 fd;          /* -1 until a socket syscall is seen inside the call */
  __u8 fn;
  __u8 lib;
  __u8 fd_conflict;
  __u8 _pad;
};

struct go_call_key {
  __u32 tgid;
  __u32 fn;
  __u64 g;           /* the goroutine (runtime.g pointer, R14 on amd64) */
};

struct conn_key {
  __u64 conn;
  __u32 tgid;
  __u32 _pad;
};

/* Per connection: stream positions per direction, last known fd and tuple. */
struct conn_state {
  __u64 seq[2];
  __u64 off[2];
  __u64 gap[2];
  __s32 fd;          /* fd the tuple below belongs to; -1 = none yet */
  __u16 sport;
  __u16 dport;
  __u8 family;
  __u8 _pad[7];
  __u8 saddr[16];
  __u8 daddr[16];
};

/* Per thread. The filter verdict depends on the thread's process (tgid, never changes), its
 * main thread's comm (changes at exec, which replaces the mm) and tls_pids (user space bumps
 * tls_filter_gen after changing it): cached with the (mm, generation) it was computed for, so
 * the comm is read and compared once per thread and image, not on every call. A rename
 * without exec (prctl PR_SET_NAME) is not seen until the next generation. */
struct tls_task {
  struct tls_call call; /* the OpenSSL/GnuTLS call in flight on this thread, when active */
  __u64 filter_mm;      /* the mm (program image) `allowed` was computed for; 0 = none */
  __u32 filter_gen;     /* the tls_filter_gen it was computed with */
  __u8 allowed;
  __u8 active;          /* `call` is in flight */
  __u8 _pad[2];
};

struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct tls_task);
} tls_tasks SEC(".maps");

/* [0]: generation of the filters (tls_pids); user space bumps it after every change */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} tls_filter_gen SEC(".maps");

/* A call made from inside another TLS call of the other direction on the same thread (node
 * writes pending data from a callback that runs inside SSL_read when the handshake completes).
 * Keyed by the stack pointer at entry, which the return probe sees as sp - 8 on x86-64. */
struct nested_call_key {
  __u64 id; /* pid_tgid */
  __u64 sp; /* stack pointer at the call's first instruction */
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, struct nested_call_key);
  __type(value, struct tls_call);
} tls_nested_calls SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct go_call_key);
  __type(value, struct tls_call);
} tls_go_calls SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct conn_key);
  __type(value, struct conn_state);
} tls_conns SEC(".maps");

/* Executables user space has inspected (kernel dev_t, inode): their execs are not held. */
struct exe_key {
  __u64 dev;
  __u64 ino;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct exe_key);
  __type(value, __u8);
} tls_exe_known SEC(".maps");

BPFKIT_EXPORT_TYPE(tls_event);
BPFKIT_EXPORT_TYPE(conn_state);

static __always_inline void count(__u32 which, __u64 n)
{
  capture_count(which, n);
}

/* pid_allowed, cached in the thread's storage (see struct tls_task). The generation is read
 * before tls_pids, so a change that lands meanwhile is picked up on the next call. */
static __always_inline bool task_allowed(struct tls_task *t, struct task_struct *task, __u32 tgid)
{
  __u32 zero = 0;
  __u32 *g = bpf_map_lookup_elem(&tls_filter_gen, &zero);
  __u32 gen = g ? *g : 0;
  __u64 mm = (__u64)task->mm;
  if (mm && t->filter_mm == mm && t->filter_gen == gen) return t->allowed;
  bool ok = pid_allowed(tgid);
  t->allowed = ok;
  t->filter_gen = gen;
  t->filter_mm = mm;
  return ok;
}

/* Reads the socket's addresses for `fd` of the current process into `cs`. */
static __always_inline void resolve_tuple(struct conn_state *cs, __s32 fd)
{
  cs->fd = fd;
  cs->family = 0;
  struct sock *sk = fd_socket(fd);
  if (!sk) return;
  sock_tuple(sk, &cs->family, &cs->sport, &cs->dport, cs->saddr, cs->daddr);
}

/* Emits the bytes one call moved, as chunk records; accounts for what it cannot emit. */
static __always_inline void emit_call(__u64 id, struct tls_call *call, __u8 dir, __u64 moved)
{
  __u32 tgid = id >> 32;
  struct conn_key ck = { .conn = call->conn, .tgid = tgid };
  struct conn_state *cs = bpf_map_lookup_elem(&tls_conns, &ck);
  if (!cs) {
    struct conn_state fresh = { .fd = -1 };
    bpf_map_update_elem(&tls_conns, &ck, &fresh, BPF_NOEXIST);
    cs = bpf_map_lookup_elem(&tls_conns, &ck);
    if (!cs) count(TLS_C_CONN_FULL, 1);
  }
  struct capture_ctx c = {};
  __u8 d = dir & 1;
  c.hdr.ktime = bpf_ktime_get_ns();
  c.hdr.conn = call->conn;
  c.hdr.call_len = moved;
  c.hdr.pid = tgid;
  c.hdr.tid = (__u32)id;
  c.hdr.dir = d;
  c.hdr.lib = call->lib;
  c.hdr.fd = -1;
  capture_comm(c.hdr.comm);
  __u8 flags = 0;
  if (call->fd_conflict) {
    flags |= TLS_F_FD_CONFLICT;
    count(TLS_C_FD_CONFLICT, 1);
  }
  if (cs) {
    if (call->fd >= 0 && !call->fd_conflict) {
      if (call->fd != cs->fd) resolve_tuple(cs, call->fd);
      flags |= TLS_F_FD_FROM_CALL;
    }
    c.hdr.fd = cs->fd;
    c.hdr.sport = cs->sport;
    c.hdr.dport = cs->dport;
    c.hdr.family = cs->family;
    __builtin_memcpy(c.hdr.saddr, cs->saddr, 16);
    __builtin_memcpy(c.hdr.daddr, cs->daddr, 16);
    c.hdr.seq = cs->seq[d];
    c.base_off = cs->off[d];
    c.pending_gap = cs->gap[d];
  } else if (call->fd >= 0 && !call->fd_conflict) {
    c.hdr.fd = call->fd;
    flags |= TLS_F_FD_FROM_CALL;
  }
  c.hdr.flags = flags;
  __u32 total = capture_cap(&c, moved);
  c.seg_buf = call->buf;
  c.seg_left = total;
  count(TLS_C_CALLS, 1);
  capture_emit(&c);
  if (cs) {
    cs->seq[d] = c.hdr.seq;
    cs->off[d] = c.base_off + moved;
    cs->gap[d] = c.pending_gap + (moved - total);
  }
}

static __always_inline __u8 fn_dir(__u8 fn)
{
  return (fn == TLS_FN_READ || fn == TLS_FN_READ_EX) ? TLS_INGRESS : TLS_EGRESS;
}

/* -------------------------------------------------- OpenSSL / BoringSSL / GnuTLS */

SEC("uprobe")
int tls_enter(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  struct task_struct *task = bpf_get_current_task_btf();
  struct tls_task *t = bpf_task_storage_get(&tls_tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!t) {
    if (pid_allowed(id >> 32)) count(TLS_C_STATE_FULL, 1);
    return 0;
  }
  if (!task_allowed(t, task, id >> 32)) return 0;
  __u64 cookie = bpf_get_attach_cookie(ctx);
  __u64 sp = PT_REGS_SP(ctx);
  __u64 now = bpf_ktime_get_ns();
  /* A deeper call this soon after a running one on the same thread is nested in it. */
  bool nested = t->active && sp < t->call.sp && now - t->call.ktime < NEST_WINDOW_NS;
  __u8 fn = (cookie >> 8) & 0xff;
  /* SSL_write_ex -> SSL_write (BoringSSL), SSL_write_ex -> SSL_write_ex2 (OpenSSL 3.3+): a wrapper
   * calling the same-direction function; the outermost call owns the data. */
  if (nested && fn_dir(t->call.fn) == fn_dir(fn)) return 0;
  struct tls_call call = {
    .conn = PT_REGS_PARM1(ctx),
    .buf = PT_REGS_PARM2(ctx),
    .sp = sp,
    .ktime = now,
    .fd = -1,
    .fn = (cookie >> 8) & 0xff,
    .lib = cookie & 0xff,
  };
  /* load both registers unconditionally: a computed ctx offset would not verify */
  __u64 p4 = PT_REGS_PARM4(ctx), p5 = PT_REGS_PARM5(ctx);
  opaque(p4);
  opaque(p5);
  if (call.fn == TLS_FN_WRITE_EX || call.fn == TLS_FN_READ_EX) call.out_len = p4;
  else if (call.fn == TLS_FN_WRITE_EX2) call.out_len = p5;
  if (nested) {
    /* the other direction, called from inside the outer call: a call of its own */
    struct nested_call_key nk = { .id = id, .sp = sp };
    if (bpf_map_update_elem(&tls_nested_calls, &nk, &call, BPF_ANY) != 0) count(TLS_C_STATE_FULL, 1);
    return 0;
  }
  t->call = call;
  t->active = 1;
  return 0;
}

SEC("uretprobe")
int tls_return(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  struct task_struct *task = bpf_get_current_task_btf();
  struct tls_task *t = bpf_task_storage_get(&tls_tasks, task, 0, 0);
  long rc = PT_REGS_RC(ctx);
  if (!t || !t->active) {
    if (t ? task_allowed(t, task, id >> 32) : pid_allowed(id >> 32)) {
      count(TLS_C_NO_ENTRY, 1);
      if (rc > 1) count(TLS_C_NO_ENTRY_BYTES, rc);
    }
    return 0;
  }
  struct tls_call call;
  __u64 sp = PT_REGS_SP(ctx);
  if (sp <= t->call.sp) {
    /* the return of a nested call (its stack pointer is below the owner's): a wrapped
     * same-direction call (nothing to do) or a call of its own in tls_nested_calls */
    struct nested_call_key nk = { .id = id, .sp = sp - 8 };
    struct tls_call *n = bpf_map_lookup_elem(&tls_nested_calls, &nk);
    if (!n) return 0;
    call = *n;
    bpf_map_delete_elem(&tls_nested_calls, &nk);
  } else {
    call = t->call;
    t->active = 0;
  }
  /* SSL_* return int: the upper half of RAX is undefined. gnutls returns ssize_t. */
  if (call.lib != TLS_LIB_GNUTLS) rc = (int)rc;
  __u64 moved = 0;
  if (call.fn == TLS_FN_WRITE_EX || call.fn == TLS_FN_READ_EX || call.fn == TLS_FN_WRITE_EX2) {
    size_t n = 0;
    if (rc == 1 && call.out_len && bpf_probe_read_user(&n, sizeof(n), (void *)call.out_len) == 0) moved = n;
  } else if (rc > 0) {
    moved = rc;
  }
  if (moved == 0) return 0;
  emit_call(id, &call, fn_dir(call.fn), moved);
  return 0;
}

/* The connection object goes away: forget its stream state (a later object at the same
 * address is a new connection) and tell user space, if anything was captured on it. */
static __always_inline void conn_freed(__u64 id, __u64 conn, __u8 lib)
{
  struct conn_key ck = { .conn = conn, .tgid = id >> 32 };
  struct conn_state *cs = bpf_map_lookup_elem(&tls_conns, &ck);
  if (!cs) return;
  struct tls_event *e = capture_close_record(conn, cs->seq, cs->off, cs->gap);
  if (e) {
    e->pid = id >> 32;
    e->tid = (__u32)id;
    e->fd = cs->fd;
    e->lib = lib;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    capture_submit(e);
  }
  bpf_map_delete_elem(&tls_conns, &ck);
}

/* SSL_free(ssl), gnutls_deinit(session) */
SEC("uprobe")
int tls_free(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  conn_freed(id, PT_REGS_PARM1(ctx), bpf_get_attach_cookie(ctx) & 0xff);
  return 0;
}

/* Socket syscalls inside a TLS call on this thread reveal its fd. */
SEC("tracepoint/syscalls/sys_enter_write")
int tls_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
  struct tls_task *t = bpf_task_storage_get(&tls_tasks, bpf_get_current_task_btf(), 0, 0);
  if (!t || !t->active) return 0;
  struct tls_call *call = &t->call;
  __s32 fd = (__s32)ctx->args[0];
  if (fd == call->fd) return 0;
  /* only sockets count: a library may also touch pipes, eventfds or log files meanwhile */
  if (!fd_socket(fd)) return 0;
  if (call->fd < 0) call->fd = fd;
  else call->fd_conflict = 1;
  return 0;
}

/* Stops a process at exec when its executable has not been inspected yet, so that user space
 * can attach to TLS code inside it (node, Go) before it runs its first instruction. The stop is
 * only sent once the ring record that tells user space to resume it is reserved. */
SEC("tracepoint/sched/sched_process_exec")
int tls_exec(void *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  /* never stop PID 1 or the agent itself */
  if ((id >> 32) <= 1 || (id >> 32) == agent_tgid) return 0;
  if (!pid_allowed(id >> 32)) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  /* nor kernel threads (PF_KTHREAD) */
  if (BPF_CORE_READ(task, flags) & 0x00200000) return 0;
  /* a descendant of the agent could be waited for synchronously (spawnSync): never hold it */
  struct task_struct *p = task;
  bool in_scope = hold_root_tgid == 0;
#pragma unroll
  for (int i = 0; i < 16; i++) {
    p = BPF_CORE_READ(p, real_parent);
    if (!p) break;
    __u32 ptgid = BPF_CORE_READ(p, tgid);
    if (ptgid == agent_tgid) return 0;
    if (hold_root_tgid && ptgid == hold_root_tgid) in_scope = true;
    if (ptgid <= 1) break;
  }
  if (!in_scope) return 0;
  struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
  if (!inode) return 0;
  struct exe_key k = { .dev = BPF_CORE_READ(inode, i_sb, s_dev), .ino = BPF_CORE_READ(inode, i_ino) };
  if (bpf_map_lookup_elem(&tls_exe_known, &k)) return 0;
  struct tls_event *e = bpfkit_reserve(tls_events, sizeof(*e));
  if (!e) {
    count(TLS_C_HOLD_FAILED, 1);
    return 0;
  }
  if (bpf_send_signal(19 /* SIGSTOP */) != 0) {
    bpf_ringbuf_discard(e, 0);
    count(TLS_C_HOLD_FAILED, 1);
    return 0;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->ktime = bpf_ktime_get_ns();
  e->conn = k.ino;
  e->call_len = k.dev;
  e->pid = id >> 32;
  e->tid = (__u32)id;
  e->fd = -1;
  e->flags = TLS_F_HOLD;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
  count(TLS_C_HOLDS, 1);
  return 0;
}

/* ---------------------------------------------------------------- Go */

#if defined(__TARGET_ARCH_x86)
#define GO_PARM1(x) ((x)->ax)
#define GO_PARM2(x) ((x)->bx)
#define GO_PARM3(x) ((x)->cx)
#define GO_RET1(x) ((x)->ax)
#define GO_G(x) ((x)->r14)
#elif defined(__TARGET_ARCH_arm64)
#define GO_PARM1(x) (((struct user_pt_regs *)(x))->regs[0])
#define GO_PARM2(x) (((struct user_pt_regs *)(x))->regs[1])
#define GO_PARM3(x) (((struct user_pt_regs *)(x))->regs[2])
#define GO_RET1(x) (((struct user_pt_regs *)(x))->regs[0])
#define GO_G(x) (((struct user_pt_regs *)(x))->regs[28])
#endif

/* *tls.Conn -> conn (net.Conn iface: tab, data) -> *net.TCPConn{conn{fd *netFD}} -> netFD.pfd.Sysfd */
static __always_inline __s32 go_conn_fd(__u64 conn)
{
  __u64 data = 0, netfd = 0;
  __s64 sysfd = -1;
  if (bpf_probe_read_user(&data, sizeof(data), (void *)(conn + 8)) != 0 || !data) return -1;
  if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) != 0 || !netfd) return -1;
  /* poll.FD: fdmu fdMutex {state uint64; rsema, wsema uint32} (16 bytes), then Sysfd int */
  if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + 16)) != 0) return -1;
  if (sysfd < 0 || sysfd > (1 << 24)) return -1;
  return (__s32)sysfd;
}

/* Entry of (*Conn).Write(b) / (*Conn).Read(b): receiver and slice in registers (ABIInternal). */
SEC("uprobe")
int go_enter(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  struct task_struct *task = bpf_get_current_task_btf();
  struct tls_task *t = bpf_task_storage_get(&tls_tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (t ? !task_allowed(t, task, id >> 32) : !pid_allowed(id >> 32)) return 0;
  __u64 cookie = bpf_get_attach_cookie(ctx);
  struct go_call_key key = { .tgid = id >> 32, .fn = (cookie >> 8) & 0xff, .g = GO_G(ctx) };
  struct tls_call call = {
    .conn = GO_PARM1(ctx),
    .buf = GO_PARM2(ctx),
    .ktime = bpf_ktime_get_ns(),
    .fd = -1,
    .fn = key.fn,
    .lib = cookie & 0xff,
  };
  /* Stack growth re-enters the function from the top: same goroutine, same arguments, same key. */
  if (bpf_map_update_elem(&tls_go_calls, &key, &call, BPF_ANY) != 0) count(TLS_C_STATE_FULL, 1);
  return 0;
}

/* (*Conn).Close(c) */
SEC("uprobe")
int go_free(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  conn_freed(id, GO_PARM1(ctx), TLS_LIB_GO);
  return 0;
}

/* On each RET of the same function: n in the first result register. */
SEC("uprobe")
int go_return(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u64 cookie = bpf_get_attach_cookie(ctx);
  struct go_call_key key = { .tgid = id >> 32, .fn = (cookie >> 8) & 0xff, .g = GO_G(ctx) };
  struct tls_call *p = bpf_map_lookup_elem(&tls_go_calls, &key);
  long n = (long)GO_RET1(ctx);
  if (!p) {
    struct task_struct *task = bpf_get_current_task_btf();
    struct tls_task *t = bpf_task_storage_get(&tls_tasks, task, 0, 0);
    if (t ? task_allowed(t, task, id >> 32) : pid_allowed(id >> 32)) {
      count(TLS_C_NO_ENTRY, 1);
      if (n > 0) count(TLS_C_NO_ENTRY_BYTES, n);
    }
    return 0;
  }
  struct tls_call call = *p;
  bpf_map_delete_elem(&tls_go_calls, &key);
  if (n <= 0) return 0;
  call.fd = go_conn_fd(call.conn);
  emit_call(id, &call, fn_dir(call.fn), n);
  return 0;
}
