// SPDX-License-Identifier: GPL-2.0
/* Test object: ring-buffer records of one size or of several sizes (with
 * discarded reservations between them), so user space is tested on both
 * kinds of batch. Each getppid() by `target_tgid` emits `count` records; every
 * record starts with a u64 sequence number. */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u32 count = 10;
/* 0: every record 24 bytes; 1: 16, 24 and 40 bytes in turn, every fifth reservation discarded */
const volatile __u32 mixed = 0;

BPFKIT_RINGBUF(records, 1 << 20);

__u64 seq = 0;

static long emit(__u64 i, void *ctx) {
  __u64 *r;
  __u32 pick = mixed ? (__u32)(i % 5) : 1;
  if (pick == 0 || pick == 2)
    r = bpfkit_reserve(records, 16);
  else if (pick == 1)
    r = bpfkit_reserve(records, 24);
  else
    r = bpfkit_reserve(records, 40);
  if (!r) return 0;
  if (pick == 4) {
    bpf_ringbuf_discard(r, 0);
    return 0;
  }
  *r = __sync_fetch_and_add(&seq, 1);
  bpf_ringbuf_submit(r, 0);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) {
  if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
  bpf_loop(count, emit, NULL, 0);
  return 0;
}
