// SPDX-License-Identifier: GPL-2.0
/* Test object the verifier must reject: a map value is dereferenced without
 * the NULL check (a hash map: recent kernels prove constant-key array lookups non-NULL), so the log says "invalid mem access 'map_value_or_null'". */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} values SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int no_null_check(void *ctx)
{
  __u32 k = 0;
  __u64 *v = bpf_map_lookup_elem(&values, &k);
  return *v; /* missing: if (!v) return 0; */
}
