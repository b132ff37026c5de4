// SPDX-License-Identifier: GPL-2.0
/* Tiny programs that feature probes load and attach to learn, by trying,
 * what this kernel allows. Each is loaded alone (autoload off for the rest).
 * bpf_fentry_test1 exists on every kernel with BPF_PROG_TEST_RUN support.
 */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/bpf_fentry_test1")
int probe_kprobe(void *ctx) { return 0; }

SEC("fentry/bpf_fentry_test1")
int BPF_PROG(probe_fentry, int a) { return 0; }

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *file) { return 0; }

SEC("uprobe")
int probe_uprobe(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_enter_getpid")
int probe_tracepoint(void *ctx) { return 0; }

static long nop(__u32 i, void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_enter_getpid")
int probe_bpf_loop(void *ctx)
{
  bpf_loop(1, nop, NULL, 0);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int probe_send_signal(void *ctx)
{
  /* never reached with a real signal: loading is the probe */
  if (bpf_get_current_pid_tgid() == 0) bpf_send_signal(0);
  return 0;
}
