// SPDX-License-Identifier: GPL-2.0
/* Test object: reads the arguments and the return value of a user function. */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

struct call {
  __u32 pid;
  __u32 kind; /* 1 = entry, 2 = return */
  __s64 a;
  __s64 b;
  __s64 ret;
  __u64 cookie;
};

BPFKIT_RINGBUF(calls, 1 << 16);
BPFKIT_EXPORT_TYPE(call);

SEC("uprobe")
int on_entry(struct pt_regs *ctx)
{
  struct call *c = bpfkit_reserve(calls, sizeof(*c));
  if (!c) return 0;
  c->pid = bpf_get_current_pid_tgid() >> 32;
  c->kind = 1;
  c->a = (int)PT_REGS_PARM1(ctx);
  c->b = (int)PT_REGS_PARM2(ctx);
  c->ret = 0;
  c->cookie = bpf_get_attach_cookie(ctx);
  bpf_ringbuf_submit(c, 0);
  return 0;
}

SEC("uretprobe")
int on_return(struct pt_regs *ctx)
{
  struct call *c = bpfkit_reserve(calls, sizeof(*c));
  if (!c) return 0;
  c->pid = bpf_get_current_pid_tgid() >> 32;
  c->kind = 2;
  c->a = 0;
  c->b = 0;
  c->ret = (int)PT_REGS_RC(ctx);
  c->cookie = bpf_get_attach_cookie(ctx);
  bpf_ringbuf_submit(c, 0);
  return 0;
}
