// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle sensor: exec, exit and fork, from tracepoints only, so it
 * works on kernels without kprobes. Needs: BTF (CO-RE), ring buffer (5.8),
 * tp_btf for fork (5.5). Events are fixed-size structs decoded through BTF.
 */
#include "bpfkit.h"

char LICENSE[] SEC("license") = "GPL";

#define COMM_LEN 16
#define PATH_MAX_LEN 256
#define ARGS_MAX_LEN 1024

enum process_event_kind { PROCESS_EXEC = 1, PROCESS_EXIT = 2, PROCESS_FORK = 3 };

struct process_event {
  __u32 kind;          /* enum process_event_kind */
  __u32 pid;           /* tgid */
  __u32 tid;
  __u32 ppid;          /* real parent's tgid */
  __u32 uid;
  __u32 gid;
  __u64 cgroup_id;     /* cgroup v2 id (inode of the cgroup directory) */
  __u64 ktime;         /* bpf_ktime_get_ns() at the event (CLOCK_MONOTONIC) */
  __u64 start_ktime;   /* process start time (CLOCK_MONOTONIC) */
  __u64 start_boottime;/* process start time (CLOCK_BOOTTIME, as /proc/PID/stat): exec_id */
  __u32 pidns;         /* inode of the pid namespace */
  __u32 child_pid;     /* fork: the new process */
  __s32 exit_code;     /* exit: exit status (0..255), -1 when killed by a signal */
  __u32 exit_signal;   /* exit: terminating signal, 0 when exited normally */
  __u16 path_len;      /* bytes of path used (without NUL) */
  __u16 args_len;      /* bytes of args used: NUL-separated argv */
  __u8 args_truncated; /* argv was longer than ARGS_MAX_LEN */
  __u8 path_truncated;
  __u8 _pad[2];
  char comm[COMM_LEN];
  char path[PATH_MAX_LEN];
  char args[ARGS_MAX_LEN];
};

/* Filters that user space can change while the sensor runs. */
struct process_filter {
  __u32 exclude_tgid;   /* the agent itself; 0 = none */
  __u32 pidns;          /* only this pid namespace inode; 0 = any */
  __u32 cgroup_filter;  /* 1 = only cgroup ids present in process_cgroups */
  __u32 _pad;
};

BPFKIT_RINGBUF(process_events, 16 << 20);

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct process_filter);
} process_filter SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u8);
} process_cgroups SEC(".maps");

BPFKIT_EXPORT_TYPE(process_event);

static __always_inline bool filtered_out(struct task_struct *task, __u32 tgid, __u64 cgid, __u32 pidns)
{
  __u32 k = 0;
  struct process_filter *f = bpf_map_lookup_elem(&process_filter, &k);
  if (!f) return false;
  if (f->exclude_tgid && f->exclude_tgid == tgid) return true;
  if (f->pidns && f->pidns != pidns) return true;
  if (f->cgroup_filter && !bpf_map_lookup_elem(&process_cgroups, &cgid)) return true;
  return false;
}

static __always_inline __u32 task_pidns(struct task_struct *task)
{
  struct pid *pid = BPF_CORE_READ(task, thread_pid);
  unsigned int level = BPF_CORE_READ(pid, level);
  return BPF_CORE_READ(pid, numbers[level].ns, ns.inum);
}

static __always_inline void fill_common(struct process_event *e, struct task_struct *task, __u32 kind)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u64 ugid = bpf_get_current_uid_gid();
  e->kind = kind;
  e->pid = id >> 32;
  e->tid = (__u32)id;
  e->ppid = BPF_CORE_READ(task, real_parent, tgid);
  e->uid = (__u32)ugid;
  e->gid = ugid >> 32;
  e->ktime = bpf_ktime_get_ns();
  e->start_ktime = BPF_CORE_READ(task, group_leader, start_time);
  e->start_boottime = BPF_CORE_READ(task, group_leader, start_boottime);
  e->child_pid = 0;
  e->exit_code = 0;
  e->exit_signal = 0;
  e->path_len = 0;
  e->args_len = 0;
  e->args_truncated = 0;
  e->path_truncated = 0;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* Applies the filters, reserves a record and fills the common fields; NULL when
 * filtered out or when the ring is full (then counted in process_events_lost). */
static __always_inline struct process_event *start_event(struct task_struct *task, __u32 tgid, __u32 kind)
{
  __u64 cgid = bpf_get_current_cgroup_id();
  __u32 pidns = task_pidns(task);
  if (filtered_out(task, tgid, cgid, pidns)) return NULL;
  struct process_event *e = bpfkit_reserve(process_events, sizeof(*e));
  if (!e) return NULL;
  fill_common(e, task, kind);
  e->cgroup_id = cgid;
  e->pidns = pidns;
  return e;
}

SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct process_event *e = start_event(task, bpf_get_current_pid_tgid() >> 32, PROCESS_EXEC);
  if (!e) return 0;

  unsigned int loc = ctx->__data_loc_filename & 0xFFFF;
  long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + loc);
  if (n > 0) {
    e->path_len = n - 1;
    e->path_truncated = n == sizeof(e->path);
  }

  struct mm_struct *mm = BPF_CORE_READ(task, mm);
  unsigned long start = BPF_CORE_READ(mm, arg_start);
  unsigned long end = BPF_CORE_READ(mm, arg_end);
  unsigned long len = end > start ? end - start : 0;
  if (len > ARGS_MAX_LEN) {
    len = ARGS_MAX_LEN;
    e->args_truncated = 1;
  }
  len &= (ARGS_MAX_LEN - 1) | ARGS_MAX_LEN; /* keep the verifier's bound */
  if (len > 0 && len <= ARGS_MAX_LEN && bpf_probe_read_user(e->args, len, (void *)start) == 0)
    e->args_len = len;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  /* Only the last thread of a process reports the process exit. */
  if (BPF_CORE_READ(task, signal, live.counter) != 0) return 0;
  struct process_event *e = start_event(task, bpf_get_current_pid_tgid() >> 32, PROCESS_EXIT);
  if (!e) return 0;
  int code = BPF_CORE_READ(task, exit_code);
  int sig = BPF_CORE_READ(task, signal, group_exit_code);
  if (sig) code = sig; /* exit_group()/fatal signal: the group's status */
  if (code & 0x7f) {
    e->exit_signal = code & 0x7f;
    e->exit_code = -1;
  } else {
    e->exit_code = (code >> 8) & 0xff;
  }
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
  /* Thread creation also fires this tracepoint; only new processes count. */
  if (child->pid != child->tgid) return 0;
  struct process_event *e = start_event(parent, parent->tgid, PROCESS_FORK);
  if (!e) return 0;
  e->child_pid = child->tgid;
  e->start_ktime = child->start_time;
  e->start_boottime = child->start_boottime;
  bpf_ringbuf_submit(e, 0);
  return 0;
}
