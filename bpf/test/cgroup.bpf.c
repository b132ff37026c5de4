// SPDX-License-Identifier: GPL-2.0
/* Test object: a connect4 hook that refuses one TCP/UDP port for processes in
 * the cgroup it is attached to, and counts what it refused. */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u16 blocked_port = 0; /* host byte order */
__u64 denied = 0;

SEC("cgroup/connect4")
int deny_port(struct bpf_sock_addr *ctx)
{
  if (ctx->user_port == bpf_htons(blocked_port)) {
    __sync_fetch_and_add(&denied, 1);
    return 0; /* EPERM for the caller */
  }
  return 1;
}
