// Module entry: per-environment data and the small global functions.
#include <bpf/libbpf.h>

#include <unistd.h>

#include "common.h"

#ifndef BPFKIT_LIBBPF_VERSION
#define BPFKIT_LIBBPF_VERSION ""
#endif

namespace bpfkit {

AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

AddonData::~AddonData() {
  for (int fd : jsFds) close(fd);
  if (rings) ReleaseEnvRings(rings);
}

int GiveFdToJs(Napi::Env env, int fd) {
  if (fd >= 0) GetAddonData(env)->jsFds.insert(fd);
  return fd;
}

namespace {

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  const char* built = BPFKIT_LIBBPF_VERSION;
  if (built[0]) return Napi::String::New(info.Env(), built);
  return Napi::String::New(info.Env(),
                           std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()));
}

Napi::Value PossibleCpusFn(const Napi::CallbackInfo& info) {
  LogReset();
  int n = PossibleCpus();
  if (n < 0) {
    ThrowErrno(info.Env(), "libbpf_num_possible_cpus", -n);
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(), n);
}

Napi::Value SetLibbpfDebugFn(const Napi::CallbackInfo& info) {
  SetLibbpfDebug(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  auto* data = new AddonData();
  data->holderKey = Napi::Persistent(Napi::Symbol::New(env, "bpfkit.native.holder"));
  env.SetInstanceData<AddonData>(data);  // deleted by the default finalizer at env teardown

  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion, "libbpfVersion"));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpusFn, "possibleCpus"));
  exports.Set("setLibbpfDebug", Napi::Function::New(env, SetLibbpfDebugFn, "setLibbpfDebug"));
  InitLink(env, exports);
  InitObject(env, exports);
  InitMapOps(env, exports);
  InitRingbuf(env, exports);
  InitProbe(env, exports);
  return exports;
}

}  // namespace
}  // namespace bpfkit

static Napi::Object InitBpfkit(Napi::Env env, Napi::Object exports) { return bpfkit::Init(env, exports); }

NODE_API_MODULE(bpfkit, InitBpfkit)
