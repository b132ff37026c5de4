// SPDX-License-Identifier: GPL-2.0
/* Test object: globals in every data section, several map types, and a
 * tracepoint that writes to them and to a ring buffer when `target_tgid`
 * calls getppid(). */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

struct value {
  __u64 count;
  __u32 pid;
  __u32 tag;
  char comm[16];
};

struct event {
  __u64 seq;
  __u32 pid;
  __u32 tag;
  char comm[16];
};

BPFKIT_EXPORT_TYPE(event);

const volatile __u32 target_tgid = 0;
const volatile __u32 tag = 7;
__u64 calls = 0;      /* .bss */
__u32 last_pid = 1;   /* .data */

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, struct value);
} by_pid SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} percpu SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u64);
} scratch SEC(".maps");

BPFKIT_RINGBUF(events, 1 << 20);

static __u64 seq;

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (tgid != target_tgid) return 0;
  __sync_fetch_and_add(&calls, 1);
  last_pid = tgid;

  __u32 k = 0;
  __u64 *c = bpf_map_lookup_elem(&counters, &k);
  if (c) __sync_fetch_and_add(c, 1);
  __u64 *pc = bpf_map_lookup_elem(&percpu, &k);
  if (pc) *pc += 1;

  struct value *v = bpf_map_lookup_elem(&by_pid, &tgid);
  if (v) {
    __sync_fetch_and_add(&v->count, 1);
  } else {
    struct value nv = { .count = 1, .pid = tgid, .tag = tag };
    bpf_get_current_comm(nv.comm, sizeof(nv.comm));
    bpf_map_update_elem(&by_pid, &tgid, &nv, BPF_NOEXIST);
  }

  struct event *e = bpfkit_reserve(events, sizeof(*e));
  if (!e) return 0;
  e->seq = __sync_fetch_and_add(&seq, 1);
  e->pid = tgid;
  e->tag = tag;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  bpf_ringbuf_submit(e, 0);
  return 0;
}
