/* Shared by the plaintext capture programs (tls.bpf.c, sockdata.bpf.c): the
 * ring record layout, the chunked emission of one call's bytes into ring
 * records, and reading a socket (and its addresses) from a file descriptor.
 *
 * Configure before including (after bpfkit.h):
 *   CAPTURE_EVENT     struct tag of the record header (its BTF name is what
 *                     user space decodes, e.g. tls_event, sock_event)
 *   CAPTURE_RING      the ring, declared with BPFKIT_RINGBUF(CAPTURE_RING, ...)
 *   CAPTURE_COUNTERS  name of the per-CPU array of __u64 counters this header
 *                     declares; its first indices are enum capture_counter
 *   CAPTURE_COUNTERS_MAX  its number of entries (the program's own counters follow)
 *   CAPTURE_PIDS      name of the pid filter map this header declares (its
 *                     user-space name, e.g. tls_pids, sock_pids)
 *
 * It declares the configuration both programs take the same way
 * (max_bytes_per_call, the pid and comm filters, wakeup_bytes) and the pid
 * filter map, so the two sensors filter processes identically.
 *
 * How a call's data becomes records: the call moved `moved` bytes, of which
 * at most `total` (the per-call cap) are copied, CAPTURE_CHUNK bytes per
 * record at most, each record reserved in the smallest power-of-two size
 * class that holds its data (a 100-byte write costs a 256-byte record, not
 * 16 KiB). The data may sit in one buffer or in an iovec array (writev,
 * sendmsg...): records never straddle two iovecs. Bytes that cannot be
 * delivered (ring full, unreadable memory) are counted and carried as
 * `pending_gap` into the next record of the same stream, and `stream_off`
 * places every record in its stream, so no loss is ever silent.
 */
#pragma once
#include "bpfkit.h"

#if !defined(CAPTURE_EVENT) || !defined(CAPTURE_RING) || !defined(CAPTURE_COUNTERS) || !defined(CAPTURE_COUNTERS_MAX) || \
    !defined(CAPTURE_PIDS)
#error "define CAPTURE_EVENT, CAPTURE_RING, CAPTURE_COUNTERS, CAPTURE_COUNTERS_MAX and CAPTURE_PIDS before including capture.h"
#endif

#define CAPTURE_CHUNK 16384
#define CAPTURE_COMM_LEN 16
/* iovecs walked per call at most (UIO_MAXIOV) */
#define CAPTURE_MAX_IOV 1024

/* record flags shared by all capture programs (programs add their own from bit 3) */
enum capture_flag {
  CAPTURE_F_FIRST = 1,     /* first chunk of the call */
  CAPTURE_F_LAST = 2,      /* last captured chunk of the call */
  CAPTURE_F_TRUNCATED = 4, /* the call moved more than the per-call cap */
  CAPTURE_F_CLOSE = 32,    /* no data: the connection ended; gap = its trailing losses */
};

/* the first counters of every capture program's counter array */
enum capture_counter {
  CAPTURE_C_CALLS = 0,             /* calls that moved data and were emitted */
  CAPTURE_C_RECORDS = 1,           /* records submitted */
  CAPTURE_C_RING_FULL_RECORDS = 2,
  CAPTURE_C_RING_FULL_BYTES = 3,
  CAPTURE_C_CAP_BYTES = 4,         /* bytes beyond the per-call cap */
  CAPTURE_C_FAULT_RECORDS = 5,     /* user memory could not be read (not resident, bad iovec) */
  CAPTURE_C_FAULT_BYTES = 6,
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CAPTURE_COUNTERS_MAX);
  __type(key, __u32);
  __type(value, __u64);
} CAPTURE_COUNTERS SEC(".maps");

/* One ring record: this header, then `len` data bytes (the record may be longer: size classes). */
struct CAPTURE_EVENT {
  __u64 ktime;       /* bpf_ktime_get_ns() at the call's return */
  __u64 conn;        /* connection object: SSL* / gnutls_session_t / *tls.Conn / struct sock* */
  __u64 seq;         /* per (conn, direction) record number, from 0 */
  __u64 stream_off;  /* position of data[0] in the (conn, direction) byte stream, gaps included */
  __u64 gap;         /* bytes of this stream lost just before this record */
  __u64 call_len;    /* bytes the call moved */
  __u32 call_off;    /* offset of this chunk in the call */
  __u32 len;         /* data bytes in this record */
  __u32 pid;
  __u32 tid;
  __s32 fd;          /* socket fd, -1 when unknown */
  __u16 sport;       /* host order */
  __u16 dport;       /* host order */
  __u8 family;       /* AF_INET (2) / AF_INET6 (10), 0 = no tuple */
  __u8 dir;          /* 0 egress (written), 1 ingress (read) */
  __u8 lib;          /* program-specific: TLS library, or the plain protocol verdict */
  __u8 flags;        /* enum capture_flag and program flags */
  __u32 _pad;
  char comm[CAPTURE_COMM_LEN];
  __u8 saddr[16];    /* IPv4 in the first 4 bytes */
  __u8 daddr[16];
};

/* Configuration: .rodata, set by user space before load (the verifier sees constants). */
const volatile __u32 max_bytes_per_call = 1 << 20;
/* 1: only tgids present in CAPTURE_PIDS with value 1 are captured */
const volatile __u8 only_listed_pids = 0;
/* 1: only processes whose main thread's comm equals comm_filter */
const volatile __u8 comm_filter_on = 0;
const volatile char comm_filter[CAPTURE_COMM_LEN] = {};

/* tgid -> 1 (capture, with only_listed_pids) or 2 (never capture: the agent itself) */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, __u8);
} CAPTURE_PIDS SEC(".maps");

/* Wake the consumer only when unread data crosses this many bytes (0: on every record, the
 * ring's default). A wake-up costs ~11 us of BPF time per record in a VM (irq_work IPI); user
 * space drains the rest on a timer. Set by user space before load. */
const volatile __u64 wakeup_bytes = 1 << 20;

/* hide a value from the optimizer (keeps register loads where they are) */
#define opaque(v) asm volatile("" : "+r"(v))

static __always_inline void capture_count(__u32 which, __u64 n)
{
  __u64 *v = bpf_map_lookup_elem(&CAPTURE_COUNTERS, &which);
  if (v) *v += n;
}

/* The pid and comm filters: whether process `tgid` (the current one) may be captured. */
static __always_inline bool pid_allowed(__u32 tgid)
{
  __u8 *v = bpf_map_lookup_elem(&CAPTURE_PIDS, &tgid);
  if (only_listed_pids) {
    if (!v || *v != 1) return false;
  } else if (v && *v == 2) {
    return false;
  }
  if (comm_filter_on) {
    char comm[CAPTURE_COMM_LEN] = {};
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    BPF_CORE_READ_STR_INTO(&comm, task, group_leader, comm);
    for (int i = 0; i < CAPTURE_COMM_LEN; i++) {
      if (comm[i] != comm_filter[i]) return false;
      if (comm[i] == 0) break;
    }
  }
  return true;
}

/* The current thread's comm, as bpf_get_current_comm() gives it, with two direct loads through
 * the BTF task pointer instead of a helper call that copies byte by byte (~100 ns less a call). */
static __always_inline void capture_comm(char *dst)
{
  struct task_struct *task = bpf_get_current_task_btf();
  __u64 *src = (__u64 *)task->comm;
  ((__u64 *)dst)[0] = src[0];
  ((__u64 *)dst)[1] = src[1];
}

/* Submit flags: wake the consumer when unread data just crossed wakeup_bytes. */
static __always_inline __u64 capture_wake_flags(__u64 size)
{
  if (!wakeup_bytes) return 0;
  __u64 avail = bpf_ringbuf_query(&CAPTURE_RING, BPF_RB_AVAIL_DATA); /* includes this record */
  return avail >= wakeup_bytes && avail < wakeup_bytes + size + 8 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* One call being emitted. The caller fills hdr (a template: per-chunk fields are set here),
 * pending_gap, base_off, total, and either seg_buf/seg_left (one buffer) or iov/iov_left. */
struct capture_ctx {
  struct CAPTURE_EVENT hdr;
  __u64 pending_gap; /* bytes lost since the last delivered record of this stream */
  __u64 base_off;    /* stream offset of the call's first byte */
  __u32 total;       /* bytes to emit (<= the per-call cap) */
  __u32 done;        /* bytes emitted or accounted for so far */
  __u64 seg_buf;     /* current buffer */
  __u32 seg_left;    /* bytes left in it */
  __u32 iov_left;    /* iovecs not loaded yet (0 for a single buffer) */
  __u64 iov;         /* user pointer to the next struct iovec */
};

/* bpfkit_reserve pastes `ring##_lost`: expand CAPTURE_RING to the map's name first */
#define capture_reserve_(ring, size) bpfkit_reserve(ring, size)

/* Reserves one record of size class SZ, copies `len` bytes from `buf` into it and submits it. */
#define CAPTURE_EMIT_CLASS(SZ)                                                   \
  do {                                                                           \
    struct {                                                                     \
      struct CAPTURE_EVENT h;                                                    \
      __u8 d[SZ];                                                                \
    } *e = capture_reserve_(CAPTURE_RING, sizeof(*e));                           \
    if (!e) {                                                                    \
      capture_count(CAPTURE_C_RING_FULL_RECORDS, 1);                             \
      capture_count(CAPTURE_C_RING_FULL_BYTES, len);                             \
      c->pending_gap += len;                                                     \
      return;                                                                    \
    }                                                                            \
    __u64 n = len;                                                               \
    opaque(n); /* re-clamp here, where the verifier needs the bound */          \
    if (n > SZ) n = SZ;                                                          \
    if (bpf_probe_read_user(e->d, n, (void *)buf) != 0) {                        \
      bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);                                  \
      capture_count(CAPTURE_C_FAULT_RECORDS, 1);                                 \
      capture_count(CAPTURE_C_FAULT_BYTES, len);                                 \
      c->pending_gap += len;                                                     \
      return;                                                                    \
    }                                                                            \
    __builtin_memcpy(&e->h, &c->hdr, sizeof(struct CAPTURE_EVENT));              \
    e->h.stream_off = c->base_off + off;                                         \
    e->h.gap = c->pending_gap;                                                   \
    e->h.call_off = off;                                                         \
    e->h.len = n;                                                                \
    e->h.flags = flags;                                                          \
    bpf_ringbuf_submit(e, capture_wake_flags(sizeof(*e)));                       \
    c->hdr.seq++;                                                                \
    c->pending_gap = 0;                                                          \
    capture_count(CAPTURE_C_RECORDS, 1);                                         \
    return;                                                                      \
  } while (0)

static __always_inline void capture_emit_one(struct capture_ctx *c, __u64 buf, __u32 off, __u32 len, __u8 flags)
{
  if (len <= 64) CAPTURE_EMIT_CLASS(64);
  if (len <= 256) CAPTURE_EMIT_CLASS(256);
  if (len <= 1024) CAPTURE_EMIT_CLASS(1024);
  if (len <= 2048) CAPTURE_EMIT_CLASS(2048);
  if (len <= 4096) CAPTURE_EMIT_CLASS(4096);
  if (len <= 8192) CAPTURE_EMIT_CLASS(8192);
  CAPTURE_EMIT_CLASS(CAPTURE_CHUNK);
}

/* Applies the per-call cap: sets c->total to the bytes to copy, counts the rest and flags the
 * call truncated (the rest becomes a gap before the stream's next record). Returns c->total. */
static __always_inline __u32 capture_cap(struct capture_ctx *c, __u64 moved)
{
  __u64 cap = max_bytes_per_call;
  __u64 total = moved < cap ? moved : cap;
  if (moved > total) {
    c->hdr.flags |= CAPTURE_F_TRUNCATED;
    capture_count(CAPTURE_C_CAP_BYTES, moved - total);
  }
  c->total = total;
  return total;
}

/* bpf_loop callback: loads the next iovec, or emits the next chunk of the current buffer. */
static long capture_step(__u32 i, void *arg)
{
  struct capture_ctx *c = arg;
  if (c->done >= c->total) return 1;
  __u32 want = c->total - c->done;
  if (c->seg_left == 0) {
    if (c->iov_left == 0) return 1; /* the buffers hold less than the call moved: see capture_emit */
    struct iovec v = {};
    if (bpf_probe_read_user(&v, sizeof(v), (void *)c->iov) != 0) return 1;
    c->iov += sizeof(v);
    c->iov_left--;
    c->seg_buf = (__u64)v.iov_base;
    c->seg_left = v.iov_len < want ? v.iov_len : want;
    return 0;
  }
  __u32 len = c->seg_left;
  if (len > want) len = want;
  if (len > CAPTURE_CHUNK) len = CAPTURE_CHUNK;
  __u32 off = c->done;
  __u64 buf = c->seg_buf;
  __u8 flags = c->hdr.flags;
  if (off == 0) flags |= CAPTURE_F_FIRST;
  if (off + len >= c->total) flags |= CAPTURE_F_LAST;
  else flags &= ~CAPTURE_F_TRUNCATED;
  c->done += len;
  c->seg_buf += len;
  c->seg_left -= len;
  capture_emit_one(c, buf, off, len, flags);
  return 0;
}

/* Emits c->total bytes; whatever could not be walked (bad iovec) is counted and becomes a gap. */
static __always_inline void capture_emit(struct capture_ctx *c)
{
  if (!c->total) return;
  __u32 iovs = c->iov_left < CAPTURE_MAX_IOV ? c->iov_left : CAPTURE_MAX_IOV;
  c->iov_left = iovs;
  /* every step emits a chunk or loads an iovec: chunks <= total/CHUNK + segments */
  __u32 steps = c->total / CAPTURE_CHUNK + 2 * iovs + 2;
  if (iovs == 0 && c->total <= CAPTURE_CHUNK) capture_step(0, c); /* one chunk: no loop needed */
  else bpf_loop(steps, capture_step, c, 0);
  if (c->done < c->total) {
    __u32 rest = c->total - c->done;
    capture_count(CAPTURE_C_FAULT_RECORDS, 1);
    capture_count(CAPTURE_C_FAULT_BYTES, rest);
    c->pending_gap += rest;
    c->done = c->total;
  }
}

/* Reserves a close record (CAPTURE_F_CLOSE, no data) for a connection whose streams stand at
 * seq/off/gap (per direction): it carries the trailing losses of both directions, never reported
 * otherwise. The caller fills in who closed it and submits it with capture_submit. NULL: ring full. */
static __always_inline struct CAPTURE_EVENT *capture_close_record(__u64 conn, __u64 *seq, __u64 *off, __u64 *gap)
{
  struct CAPTURE_EVENT *e = capture_reserve_(CAPTURE_RING, sizeof(*e));
  if (!e) return NULL;
  __builtin_memset(e, 0, sizeof(*e));
  e->ktime = bpf_ktime_get_ns();
  e->conn = conn;
  e->seq = seq[0];
  e->stream_off = off[0];
  e->gap = gap[0] + gap[1];
  e->flags = CAPTURE_F_CLOSE;
  return e;
}

static __always_inline void capture_submit(struct CAPTURE_EVENT *e)
{
  bpf_ringbuf_submit(e, capture_wake_flags(sizeof(*e)));
}

/* ---------------------------------------------------------------- sockets */

#define CAPTURE_S_IFMT 00170000
#define CAPTURE_S_IFSOCK 0140000

/* The struct sock behind `fd` of the current process, or NULL if `fd` is not a socket.
 * Runs on every hooked syscall: the task -> files -> fdtable steps are direct loads through
 * the BTF task pointer (no helper call each); the rest needs probe reads. */
static __always_inline struct sock *fd_socket(__s32 fd)
{
  struct task_struct *task = bpf_get_current_task_btf();
  struct files_struct *files = task->files;
  if (!files) return NULL;
  struct fdtable *fdt = files->fdt;
  if (!fdt) return NULL;
  if ((unsigned int)fd >= fdt->max_fds) return NULL;
  struct file **fds = fdt->fd;
  struct file *f = NULL;
  if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) != 0 || !f) return NULL;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & CAPTURE_S_IFMT) != CAPTURE_S_IFSOCK) return NULL;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  if (!sock) return NULL;
  return BPF_CORE_READ(sock, sk);
}

/* Reads an AF_INET/AF_INET6 socket's addresses (ports in host order); family 0 for others. */
static __always_inline void sock_tuple(struct sock *sk, __u8 *family, __u16 *sport, __u16 *dport, __u8 *saddr, __u8 *daddr)
{
  *family = 0;
  __u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
  *sport = BPF_CORE_READ(sk, __sk_common.skc_num);
  *dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (fam == 2 /* AF_INET */) {
    __builtin_memset(saddr, 0, 16);
    __builtin_memset(daddr, 0, 16);
    BPF_CORE_READ_INTO((__u32 *)saddr, sk, __sk_common.skc_rcv_saddr);
    BPF_CORE_READ_INTO((__u32 *)daddr, sk, __sk_common.skc_daddr);
    *family = 2;
  } else if (fam == 10 /* AF_INET6 */) {
    BPF_CORE_READ_INTO((struct in6_addr *)saddr, sk, __sk_common.skc_v6_rcv_saddr);
    BPF_CORE_READ_INTO((struct in6_addr *)daddr, sk, __sk_common.skc_v6_daddr);
    *family = 10;
  }
}
