// Shared declarations of the bpfkit native addon.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>

struct bpf_map_info;

namespace bpfkit {

// ---------------------------------------------------------------------------
// libbpf log capture and errors (errors.cc)

// Installs the libbpf print callback (process-wide, idempotent).
void InstallLibbpfPrint();
// Clears this thread's captured libbpf log. Every entry point calls it first.
void LogReset();
// What libbpf printed (warn/info) on this thread since the last LogReset().
const std::string& LogText();
void SetLibbpfDebug(bool on);

// errno name ('EPERM'), 'LIBBPF_ERRNO__FORMAT' for libbpf's own codes, or 'E<n>'.
std::string ErrnoName(int err);
// strerror-like text, also for libbpf's 4000+ codes.
std::string ErrnoText(int err);

// The most telling line of a verifier log: the last line that is not a statistics trailer.
std::string VerifierSummary(const std::string& log);

// Builds an Error with the contract fields (errno, code, op, libbpfLog).
// `detail` is appended to the message; the message is "<op> failed: <code> (<text>)[: detail]".
Napi::Error MakeErrnoError(Napi::Env env, const char* op, int err, const std::string& detail = "");
// Error with an explicit code (EINVAL, ENOENT, ECLOSED, EBPFKIT).
Napi::Error MakeCodeError(Napi::Env env, const char* code, int err, const char* op, const std::string& message,
                          bool typeError = false);

// Throw helpers; they return nothing so call sites do `return ThrowX(...), Napi::Value();` or similar.
void ThrowErrno(Napi::Env env, const char* op, int err, const std::string& detail = "");
void ThrowInvalid(Napi::Env env, const char* op, const std::string& message);   // EINVAL, errno 22
void ThrowType(Napi::Env env, const char* op, const std::string& message);      // TypeError, EINVAL
void ThrowNotFound(Napi::Env env, const char* op, const std::string& message);  // ENOENT, errno 2
void ThrowClosed(Napi::Env env, const char* op, const std::string& what);       // ECLOSED, errno 0
void ThrowState(Napi::Env env, const char* op, const std::string& message);     // EBPFKIT, errno 0

// ---------------------------------------------------------------------------
// Argument helpers (errors.cc). All of them throw (and return false) on bad input.

struct Bytes {
  uint8_t* data = nullptr;
  size_t len = 0;
  bool present = false;  // false for null/undefined when nullable
};

bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* op, int* out);
bool ArgU32(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, uint32_t* out);
bool ArgI64(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, int64_t* out);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, bool* out);
bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, std::string* out);
// Buffer / any TypedArray / DataView / ArrayBuffer. nullable: null or undefined gives present=false.
bool ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, bool nullable, Bytes* out);
bool ValueBytes(Napi::Env env, Napi::Value v, const char* op, const char* what, bool nullable, Bytes* out);
// Optional numeric property of an options object (undefined -> keep default).
bool OptU32(Napi::Env env, Napi::Object o, const char* key, const char* op, uint32_t* out);
bool OptString(Napi::Env env, Napi::Object o, const char* key, const char* op, std::string* out, bool* present);

// elfcheck.cc: structural validation of a BPF ELF image (false + reason when corrupt).
bool CheckBpfElf(const uint8_t* data, size_t len, std::string* why);

// ---------------------------------------------------------------------------
// Per-environment state (addon.cc)

struct EnvRings;

struct AddonData {
  Napi::FunctionReference linkCtor;
  Napi::Reference<Napi::Symbol> holderKey;  // private symbol for hidden properties
  EnvRings* rings = nullptr;  // owned jointly with the async cleanup hook (ringbuf.cc)
  // Fds handed to JS as plain numbers (map fds). JS closes them with closeFd(); a
  // FinalizationRegistry callback never runs when a worker's environment is torn down,
  // so whatever is still open then is closed by ~AddonData.
  std::unordered_set<int> jsFds;
  ~AddonData();
};

// An fd that JS now owns (closed at env teardown unless closeFd() closed it first).
int GiveFdToJs(Napi::Env env, int fd);

// ringbuf.cc: drops AddonData's share of the per-env ring registry.
void ReleaseEnvRings(EnvRings* rings);

AddonData* GetAddonData(Napi::Env env);

// ---------------------------------------------------------------------------
// Module parts

Napi::Object InitObject(Napi::Env env, Napi::Object exports);
Napi::Object InitLink(Napi::Env env, Napi::Object exports);
Napi::Object InitMapOps(Napi::Env env, Napi::Object exports);
Napi::Object InitRingbuf(Napi::Env env, Napi::Object exports);
Napi::Object InitProbe(Napi::Env env, Napi::Object exports);

// link.cc: wraps a bpf_link* (takes ownership) in a new NativeLink object.
Napi::Value NewNativeLink(Napi::Env env, struct bpf_link* link);

// map_ops.cc
int PossibleCpus();
// BPF_OBJ_GET_INFO_BY_FD on a map; returns 0 or positive errno.
int MapInfoByFd(int fd, struct bpf_map_info* info);
// bytes of one value as user space sees it (per-CPU maps: round_up(value_size, 8) * possible CPUs)
uint64_t UserValueSize(uint32_t mapType, uint32_t valueSize);

}  // namespace bpfkit
