// SPDX-License-Identifier: GPL-2.0
/* Plain (cleartext) TCP capture: the bytes HTTP/1 and HTTP/2 connections move
 * through read/write-family syscalls, selected in the kernel so that only
 * HTTP connections reach user space.
 *
 * Hooks: syscall tracepoints only (no kprobes, no fentry: both may be
 * unavailable), enter + exit of write, read, sendto, recvfrom, writev, readv,
 * sendmsg, recvmsg. At enter (sd_enter_*) the fd is resolved through the
 * task's file table to a struct sock (CO-RE); only TCP sockets (AF_INET /
 * AF_INET6, IPPROTO_TCP) whose verdict is not a "no" go on, and then the
 * call's buffer (or iovec array) is saved per thread. At exit (sd_exit) the
 * `ret` bytes the kernel moved are classified and/or copied.
 *
 * Selection, per socket (sock_conns, LRU keyed by the struct sock pointer):
 *  - the first bytes of each call are classified until a verdict is reached:
 *    an HTTP/1 request line ("GET ", "POST ", ...), an HTTP/1 status line
 *    ("HTTP/1."), the HTTP/2 client preface ("PRI * HTTP/2.0"), or an HTTP/2
 *    SETTINGS frame as the socket's very first bytes (servers that speak
 *    first) -> capture;
 *    a TLS record header (0x14-0x17, 0x03) -> never capture (the TLS sensor
 *    sees that plaintext); neither within UNDECIDED_MAX calls -> never capture.
 *    Since a verdict is taken at a call boundary, a connection joined after
 *    the sensor started is picked up at its next request; bytes that went by
 *    before are reported as a gap on each direction (never silently).
 *  - options, checked once per socket: ports (local or remote), pids, comm;
 *    the agent's own process is never captured.
 * Copying is chunked and bounded exactly like the TLS sensor (capture.h):
 * max_bytes_per_call per call, records of at most 16 KiB, every byte not
 * delivered counted and carried as `gap` on the next record.
 *
 * Connection end: tracepoint sock/inet_sock_set_state to TCP_CLOSE drops the
 * socket's state and, for captured sockets, emits a close record (CAPTURE_F_CLOSE) with
 * the trailing losses of both directions.
 *
 * Not seen: data moved without a user buffer in a syscall (sendfile, splice,
 * io_uring, zero-copy MSG_ZEROCOPY completion is seen as sendmsg), recvmmsg /
 * sendmmsg, and MSG_PEEK reads (skipped on purpose: the bytes are read again).
 *
 * Needs: kernel 5.17+ (bpf_loop), 5.8+ (ring buffer), BTF (CO-RE).
 */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

/* calls with data classified without a verdict before a socket is given up */
#define UNDECIDED_MAX 32
#define MSG_PEEK_ 2
#define TCP_SYN_SENT_ 2
#define TCP_CLOSE_ 7
#define TCP_LISTEN_ 10
#define IPPROTO_TCP_ 6

enum sock_verdict {
  V_UNDECIDED = 0,
  V_HTTP1 = 1,
  V_HTTP2 = 2,
  V_TLS = 3,      /* a TLS record was seen: never captured here */
  V_OTHER = 4,    /* not HTTP within UNDECIDED_MAX calls */
  V_FILTERED = 5, /* outside the ports option */
};

enum sock_dir { SOCK_EGRESS = 0, SOCK_INGRESS = 1 };

/* counters (sock_counters index); the first ones are enum capture_counter */
enum sock_counter {
  SOCK_C_CONN_FULL = 7,     /* socket state could not be stored: its calls are not captured */
  SOCK_C_CALL_FULL = 8,     /* per-thread call state could not be stored */
  SOCK_C_HTTP1 = 9,         /* connections recognised as HTTP/1 */
  SOCK_C_HTTP2 = 10,        /* connections recognised as HTTP/2 (prior knowledge preface) */
  SOCK_C_TLS = 11,          /* connections skipped because they carry TLS */
  SOCK_C_OTHER = 12,        /* connections given up as not HTTP */
  SOCK_C_JOINED_BYTES = 13, /* bytes of recognised connections that went by before recognition */
  SOCK_C_PEEK = 14,         /* MSG_PEEK reads skipped */
  SOCK_C_CLOSES = 15,       /* close records emitted */
  SOCK_C_MAX = 16
};

/* Configuration: .rodata, set by user space before load (max_bytes_per_call, the pid and comm
 * filters and wakeup_bytes are declared in capture.h). */
/* 1: only sockets whose local or remote port is in sock_ports */
const volatile __u8 ports_filter_on = 0;

BPFKIT_RINGBUF(sock_events, 32 << 20);

#define CAPTURE_EVENT sock_event
#define CAPTURE_RING sock_events
#define CAPTURE_COUNTERS sock_counters
#define CAPTURE_COUNTERS_MAX SOCK_C_MAX
#define CAPTURE_PIDS sock_pids
#include "capture.h"
_Static_assert(SOCK_C_CONN_FULL == CAPTURE_C_FAULT_BYTES + 1, "counters follow capture.h's");

/* One socket: verdict, stream positions per direction, addresses. */
struct sock_state {
  __u64 seq[2];
  __u64 off[2];
  __u64 gap[2];
  __u64 skipped[2]; /* bytes seen per direction before the verdict */
  __u16 sport;
  __u16 dport;
  __u8 family;
  __u8 verdict;     /* enum sock_verdict */
  __u8 undecided;   /* calls classified without a verdict */
  __u8 _pad;
  __u8 saddr[16];
  __u8 daddr[16];
};

/* One syscall in flight on a thread (enter -> exit). */
struct sock_call {
  __u64 sk;
  __u64 buf;     /* write/read/sendto/recvfrom: the buffer */
  __u64 iov;     /* writev/readv/sendmsg/recvmsg: the iovec array */
  __u32 iovcnt;
  __s32 fd;
  __u32 nr;      /* syscall number (the exit must be the same syscall) */
  __u8 dir;
  __u8 _pad[3];
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64); /* struct sock * */
  __type(value, struct sock_state);
} sock_conns SEC(".maps");

/* Not LRU: an evicted entry would lose a call's data without a trace. When full, the update
 * fails and is counted (SOCK_C_CALL_FULL); entries of threads that die inside a syscall are
 * removed at sched_process_exit. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64); /* pid_tgid */
  __type(value, struct sock_call);
} sock_calls SEC(".maps");

/* ports (host order) -> 1, with ports_filter_on */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u16);
  __type(value, __u8);
} sock_ports SEC(".maps");

BPFKIT_EXPORT_TYPE(sock_event);
BPFKIT_EXPORT_TYPE(sock_state);

static __always_inline bool port_listed(__u16 port)
{
  return bpf_map_lookup_elem(&sock_ports, &port) != NULL;
}

/* ---------------------------------------------------------------- classification */

static __always_inline bool has_prefix(const __u8 *b, __u32 n, const char *p, __u32 plen)
{
  if (n < plen) return false;
#pragma unroll
  for (int i = 0; i < 16; i++) {
    if (i >= plen) break;
    if (b[i] != (__u8)p[i]) return false;
  }
  return true;
}

/* The verdict the first n (<= 16) bytes of a call give, or V_UNDECIDED. `fresh`: nothing
 * has been seen on the socket before these bytes. */
static __always_inline __u8 classify(const __u8 *b, __u32 n, bool fresh)
{
  if (n < 3) return V_UNDECIDED;
  /* TLS record header: content type 20-23 (ccs, alert, handshake, data), version major 3 */
  if (b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03) return V_TLS;
  if (has_prefix(b, n, "PRI * HTTP/2.0", 14)) return V_HTTP2;
  /* An HTTP/2 server may send its SETTINGS frame before it reads the client's preface (node
   * does): as the very first bytes, a SETTINGS frame header (length a multiple of 6, under
   * 256, type 4, flags 0, stream 0) is taken as HTTP/2, so that frame is not lost. */
  if (fresh && n >= 9 && b[0] == 0 && b[1] == 0 && b[2] % 6 == 0 && b[3] == 4 && b[4] == 0 && b[5] == 0 && b[6] == 0 &&
      b[7] == 0 && b[8] == 0)
    return V_HTTP2;
  if (has_prefix(b, n, "HTTP/1.", 7)) return V_HTTP1;
  switch (b[0]) {
  case 'G':
    return has_prefix(b, n, "GET ", 4) ? V_HTTP1 : V_UNDECIDED;
  case 'P':
    if (has_prefix(b, n, "POST ", 5) || has_prefix(b, n, "PUT ", 4) || has_prefix(b, n, "PATCH ", 6)) return V_HTTP1;
    return V_UNDECIDED;
  case 'H':
    return has_prefix(b, n, "HEAD ", 5) ? V_HTTP1 : V_UNDECIDED;
  case 'D':
    return has_prefix(b, n, "DELETE ", 7) ? V_HTTP1 : V_UNDECIDED;
  case 'O':
    return has_prefix(b, n, "OPTIONS ", 8) ? V_HTTP1 : V_UNDECIDED;
  case 'C':
    return has_prefix(b, n, "CONNECT ", 8) ? V_HTTP1 : V_UNDECIDED;
  case 'T':
    return has_prefix(b, n, "TRACE ", 6) ? V_HTTP1 : V_UNDECIDED;
  }
  return V_UNDECIDED;
}

/* First bytes of what the call moved (up to 16): from its buffer or its first non-empty iovec. */
static __always_inline __u32 first_bytes(struct sock_call *call, __u64 moved, __u8 *out)
{
  __u64 buf = call->buf, len = moved;
  if (call->iov) {
    struct iovec v = {};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      if (i >= call->iovcnt) return 0;
      if (bpf_probe_read_user(&v, sizeof(v), (void *)(call->iov + i * sizeof(v))) != 0) return 0;
      if (v.iov_len) break;
    }
    buf = (__u64)v.iov_base;
    if (v.iov_len < len) len = v.iov_len;
  }
  __u32 n = len < 16 ? len : 16;
  if (n == 0) return 0;
  if (bpf_probe_read_user(out, 16, (void *)buf) != 0) {
    /* fewer than 16 readable bytes (end of a mapping): read exactly n */
    n &= 15;
    if (n == 0 || bpf_probe_read_user(out, n, (void *)buf) != 0) return 0;
  }
  return n;
}

/* ---------------------------------------------------------------- enter */

/* A TCP socket that is (or was) connected. A closed socket is not: its ports are gone, and state
 * made for it now would outlive its TCP_CLOSE and be inherited by the next socket allocated at
 * the same address. */
static __always_inline bool is_tcp_conn(struct sock *sk)
{
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != 2 && family != 10) return false;
  if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP_) return false;
  __u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
  return state != TCP_CLOSE_ && state != TCP_LISTEN_ && state != TCP_SYN_SENT_;
}

/* State of a TCP socket seen for the first time: addresses and the ports option. */
static __always_inline struct sock_state *new_state(struct sock *sk, __u64 key)
{
  struct sock_state st = {};
  sock_tuple(sk, &st.family, &st.sport, &st.dport, st.saddr, st.daddr);
  if (ports_filter_on && !port_listed(st.sport) && !port_listed(st.dport)) st.verdict = V_FILTERED;
  bpf_map_update_elem(&sock_conns, &key, &st, BPF_NOEXIST);
  struct sock_state *p = bpf_map_lookup_elem(&sock_conns, &key);
  if (!p) capture_count(SOCK_C_CONN_FULL, 1);
  return p;
}

static __always_inline int on_enter(void *ctx, __s32 fd, __u64 buf, __u64 iov, __u64 iovcnt, __u8 dir)
{
  __u64 id = bpf_get_current_pid_tgid();
  if (!pid_allowed(id >> 32)) return 0;
  struct sock *sk = fd_socket(fd);
  if (!sk) return 0;
  __u64 key = (__u64)sk;
  struct sock_state *st = bpf_map_lookup_elem(&sock_conns, &key);
  if (!st) {
    if (!is_tcp_conn(sk)) return 0;
    st = new_state(sk, key);
    if (!st) return 0;
  }
  if (st->verdict > V_HTTP2) return 0;
  struct sock_call call = {
    .sk = key,
    .buf = buf,
    .iov = iov,
    .iovcnt = iovcnt > CAPTURE_MAX_IOV ? CAPTURE_MAX_IOV : iovcnt,
    .fd = fd,
    .nr = ((struct trace_event_raw_sys_enter *)ctx)->id,
    .dir = dir,
  };
  if (bpf_map_update_elem(&sock_calls, &id, &call, BPF_ANY) != 0) capture_count(SOCK_C_CALL_FULL, 1);
  return 0;
}

/* write(fd, buf, count), read(fd, buf, count), sendto(fd, buf, len, flags, ...), recvfrom(...) */
SEC("tracepoint/syscalls/sys_enter_write")
int sd_enter_write(struct trace_event_raw_sys_enter *ctx)
{
  return on_enter(ctx, ctx->args[0], ctx->args[1], 0, 0, SOCK_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_read")
int sd_enter_read(struct trace_event_raw_sys_enter *ctx)
{
  return on_enter(ctx, ctx->args[0], ctx->args[1], 0, 0, SOCK_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sd_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
  return on_enter(ctx, ctx->args[0], ctx->args[1], 0, 0, SOCK_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sd_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
  if (ctx->args[3] & MSG_PEEK_) {
    capture_count(SOCK_C_PEEK, 1);
    return 0;
  }
  return on_enter(ctx, ctx->args[0], ctx->args[1], 0, 0, SOCK_INGRESS);
}

/* writev(fd, iov, iovcnt), readv(fd, iov, iovcnt) */
SEC("tracepoint/syscalls/sys_enter_writev")
int sd_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
  return on_enter(ctx, ctx->args[0], 0, ctx->args[1], ctx->args[2], SOCK_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int sd_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
  return on_enter(ctx, ctx->args[0], 0, ctx->args[1], ctx->args[2], SOCK_INGRESS);
}

/* sendmsg(fd, msg, flags), recvmsg(fd, msg, flags): the iovec array is in the user msghdr */
static __always_inline int on_enter_msg(struct trace_event_raw_sys_enter *ctx, __u8 dir)
{
  struct user_msghdr m = {};
  if (bpf_probe_read_user(&m, sizeof(m), (void *)ctx->args[1]) != 0) return 0;
  return on_enter(ctx, ctx->args[0], 0, (__u64)m.msg_iov, m.msg_iovlen, dir);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sd_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
  return on_enter_msg(ctx, SOCK_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sd_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
  if (ctx->args[2] & MSG_PEEK_) {
    capture_count(SOCK_C_PEEK, 1);
    return 0;
  }
  return on_enter_msg(ctx, SOCK_INGRESS);
}

/* ---------------------------------------------------------------- exit */

/* Emits the bytes one call moved, as chunk records; accounts for what it cannot emit. */
static __always_inline void emit_call(__u64 id, struct sock_state *st, struct sock_call *call, __u64 moved)
{
  __u8 d = call->dir & 1;
  struct capture_ctx c = {};
  c.hdr.ktime = bpf_ktime_get_ns();
  c.hdr.conn = call->sk;
  c.hdr.call_len = moved;
  c.hdr.pid = id >> 32;
  c.hdr.tid = (__u32)id;
  c.hdr.fd = call->fd;
  c.hdr.dir = d;
  c.hdr.lib = st->verdict;
  c.hdr.sport = st->sport;
  c.hdr.dport = st->dport;
  c.hdr.family = st->family;
  __builtin_memcpy(c.hdr.saddr, st->saddr, 16);
  __builtin_memcpy(c.hdr.daddr, st->daddr, 16);
  capture_comm(c.hdr.comm);
  c.hdr.seq = st->seq[d];
  c.base_off = st->off[d];
  c.pending_gap = st->gap[d];
  __u32 total = capture_cap(&c, moved);
  if (call->iov) {
    c.iov = call->iov;
    c.iov_left = call->iovcnt;
  } else {
    c.seg_buf = call->buf;
    c.seg_left = total;
  }
  capture_count(CAPTURE_C_CALLS, 1);
  capture_emit(&c);
  st->seq[d] = c.hdr.seq;
  st->off[d] = c.base_off + moved;
  st->gap[d] = c.pending_gap + (moved - total);
}

/* Takes a verdict on an undecided socket from the first bytes of this call; true if it is HTTP now. */
static __always_inline bool decide(struct sock_state *st, struct sock_call *call, __u64 moved)
{
  __u8 b[16] = {};
  __u32 n = first_bytes(call, moved, b);
  __u8 v = classify(b, n, st->undecided == 0);
  __u8 d = call->dir & 1;
  if (v == V_UNDECIDED) {
    st->skipped[d] += moved;
    if (++st->undecided >= UNDECIDED_MAX) {
      st->verdict = V_OTHER;
      capture_count(SOCK_C_OTHER, 1);
    }
    return false;
  }
  st->verdict = v;
  if (v == V_TLS) {
    capture_count(SOCK_C_TLS, 1);
    return false;
  }
  capture_count(v == V_HTTP2 ? SOCK_C_HTTP2 : SOCK_C_HTTP1, 1);
  /* Bytes that went by before are a gap at the start of each direction: a parser must not take
   * what follows in the other direction for the start of a message. */
#pragma unroll
  for (int i = 0; i < 2; i++) {
    st->off[i] = st->skipped[i];
    st->gap[i] = st->skipped[i];
    if (st->skipped[i]) capture_count(SOCK_C_JOINED_BYTES, st->skipped[i]);
  }
  return true;
}

SEC("tracepoint/syscalls/sys_exit_write")
int sd_exit(struct trace_event_raw_sys_exit *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  struct sock_call *p = bpf_map_lookup_elem(&sock_calls, &id);
  if (!p) return 0;
  struct sock_call call = *p;
  bpf_map_delete_elem(&sock_calls, &id);
  long ret = ctx->ret;
  if (ret <= 0 || call.nr != (__u32)ctx->id) return 0;
  struct sock_state *st = bpf_map_lookup_elem(&sock_conns, &call.sk);
  if (!st) return 0; /* closed (TCP_CLOSE) or evicted meanwhile */
  if (st->verdict == V_UNDECIDED && !decide(st, &call, ret)) return 0;
  if (st->verdict != V_HTTP1 && st->verdict != V_HTTP2) return 0;
  emit_call(id, st, &call, ret);
  return 0;
}

/* A thread that exits inside a syscall (killed while blocked in read) never reaches sys_exit. */
SEC("tracepoint/sched/sched_process_exit")
int sd_thread_exit(void *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  bpf_map_delete_elem(&sock_calls, &id);
  return 0;
}

/* ---------------------------------------------------------------- close */

SEC("tracepoint/sock/inet_sock_set_state")
int sd_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
  if (ctx->newstate != TCP_CLOSE_ || ctx->protocol != IPPROTO_TCP_) return 0;
  __u64 key = (__u64)ctx->skaddr;
  struct sock_state *st = bpf_map_lookup_elem(&sock_conns, &key);
  if (!st) return 0;
  if (st->verdict == V_HTTP1 || st->verdict == V_HTTP2) {
    struct sock_event *e = capture_close_record(key, st->seq, st->off, st->gap);
    if (e) {
      e->fd = -1;
      e->lib = st->verdict;
      e->family = st->family;
      e->sport = st->sport;
      e->dport = st->dport;
      __builtin_memcpy(e->saddr, st->saddr, 16);
      __builtin_memcpy(e->daddr, st->daddr, 16);
      capture_submit(e);
      capture_count(SOCK_C_CLOSES, 1);
    }
  }
  bpf_map_delete_elem(&sock_conns, &key);
  return 0;
}
