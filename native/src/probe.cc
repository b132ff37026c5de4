// Feature probes and vmlinux BTF lookups.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/btf.h>

#include <cerrno>
#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>
#include <mutex>

#include "common.h"

namespace bpfkit {

namespace {

Napi::Value ProbeResult(Napi::Env env, int ret) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("supported", Napi::Boolean::New(env, ret == 1));
  int e = ret < 0 ? -ret : 0;
  r.Set("errno", Napi::Number::New(env, e));
  std::string msg;
  if (ret == 0) {
    msg = "not supported by the running kernel";
  } else if (ret < 0) {
    msg = ErrnoName(e) + " (" + ErrnoText(e) + ")";
    const std::string& log = LogText();
    if (!log.empty()) {
      size_t end = log.find_last_not_of(" \n");
      if (end != std::string::npos) {
        size_t start = log.rfind('\n', end);
        start = start == std::string::npos ? 0 : start + 1;
        msg += ": " + log.substr(start, end - start + 1);
      }
    }
  }
  r.Set("message", Napi::String::New(env, msg));
  return r;
}

Napi::Value ProbeProgramType(const Napi::CallbackInfo& info) {
  LogReset();
  uint32_t t;
  if (!ArgU32(info, 0, "libbpf_probe_bpf_prog_type", "type", &t)) return Napi::Value();
  return ProbeResult(info.Env(), libbpf_probe_bpf_prog_type((enum bpf_prog_type)t, nullptr));
}

Napi::Value ProbeMapType(const Napi::CallbackInfo& info) {
  LogReset();
  uint32_t t;
  if (!ArgU32(info, 0, "libbpf_probe_bpf_map_type", "type", &t)) return Napi::Value();
  return ProbeResult(info.Env(), libbpf_probe_bpf_map_type((enum bpf_map_type)t, nullptr));
}

Napi::Value ProbeHelper(const Napi::CallbackInfo& info) {
  LogReset();
  uint32_t t, h;
  if (!ArgU32(info, 0, "libbpf_probe_bpf_helper", "programType", &t) ||
      !ArgU32(info, 1, "libbpf_probe_bpf_helper", "helperId", &h))
    return Napi::Value();
  return ProbeResult(info.Env(), libbpf_probe_bpf_helper((enum bpf_prog_type)t, (enum bpf_func_id)h, nullptr));
}

// vmlinux BTF is parsed once per process and shared by all environments (read-only after load).
std::mutex g_btfMutex;
struct btf* g_vmlinux = nullptr;

Napi::Value VmlinuxBtfId(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "btf__find_by_name_kind";
  std::string name, kind;
  if (!ArgString(info, 0, op, "name", &name) || !ArgString(info, 1, op, "kind", &kind)) return Napi::Value();
  __u32 k;
  if (kind == "func")
    k = BTF_KIND_FUNC;
  else if (kind == "struct")
    k = BTF_KIND_STRUCT;
  else if (kind == "typedef")
    k = BTF_KIND_TYPEDEF;
  else
    return ThrowInvalid(env, op, "kind must be 'func', 'struct' or 'typedef', got '" + kind + "'"), Napi::Value();
  std::lock_guard<std::mutex> lock(g_btfMutex);
  if (!g_vmlinux) {
    errno = 0;
    struct btf* b = btf__load_vmlinux_btf();
    long err = libbpf_get_error(b);
    if (!b || err) {
      int e = err ? (int)-err : (errno ? errno : ENOENT);
      return ThrowErrno(env, "btf__load_vmlinux_btf", e), Napi::Value();
    }
    g_vmlinux = b;
  }
  int id = btf__find_by_name_kind(g_vmlinux, name.c_str(), k);
  return Napi::Number::New(env, id);
}

// BPF_TRACE_UPROBE_MULTI links (kernel 6.6+), probed the way cilium/ebpf does: a kprobe-type
// program with that expected attach type, then BPF_LINK_CREATE on path "/" with one offset.
// A kernel that knows uprobe_multi fails to open "/" as an ELF (EBADF); one that does not
// rejects the attach type (EINVAL). libbpf 1.1 predates uprobe_multi, so the attr is raw.
Napi::Value ProbeUprobeMulti(const Napi::CallbackInfo& info) {
  LogReset();
  const uint32_t kAttachUprobeMulti = 48;  // enum bpf_attach_type BPF_TRACE_UPROBE_MULTI
  struct bpf_insn insns[2];
  memset(insns, 0, sizeof(insns));
  insns[0].code = 0xb7;  // r0 = 0 (BPF_ALU64 | BPF_MOV | BPF_K)
  insns[1].code = 0x95;  // exit
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.expected_attach_type = (enum bpf_attach_type)kAttachUprobeMulti;
  int pfd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "probe_upm", "GPL", insns, 2, &opts);
  if (pfd < 0) return ProbeResult(info.Env(), -errno);
  alignas(8) unsigned char attr[128];
  memset(attr, 0, sizeof(attr));
  const char* path = "/";
  uint64_t offset = 0;
  uint32_t head[4] = {(uint32_t)pfd, 0, kAttachUprobeMulti, 0};
  memcpy(attr, head, sizeof(head));
  uint64_t pathPtr = (uint64_t)(uintptr_t)path, offsetsPtr = (uint64_t)(uintptr_t)&offset;
  memcpy(attr + 16, &pathPtr, 8);     // uprobe_multi.path
  memcpy(attr + 24, &offsetsPtr, 8);  // uprobe_multi.offsets
  uint32_t cnt = 1;
  memcpy(attr + 48, &cnt, 4);         // uprobe_multi.cnt
  long fd = syscall(__NR_bpf, 28 /* BPF_LINK_CREATE */, attr, sizeof(attr));
  int e = errno;
  if (fd >= 0) close((int)fd);
  close(pfd);
  if (fd >= 0 || e == EBADF) return ProbeResult(info.Env(), 1);
  return ProbeResult(info.Env(), -e);
}

}  // namespace

Napi::Object InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeProgramType", Napi::Function::New(env, ProbeProgramType, "probeProgramType"));
  exports.Set("probeMapType", Napi::Function::New(env, ProbeMapType, "probeMapType"));
  exports.Set("probeHelper", Napi::Function::New(env, ProbeHelper, "probeHelper"));
  exports.Set("probeUprobeMulti", Napi::Function::New(env, ProbeUprobeMulti, "probeUprobeMulti"));
  exports.Set("vmlinuxBtfId", Napi::Function::New(env, VmlinuxBtfId, "vmlinuxBtfId"));
  return exports;
}

}  // namespace bpfkit
