// Map and fd operations over libbpf's low-level bpf.h API, plus progTestRun/progLoadRaw.
//
// Buffer validation: every key/value Buffer is checked against the map's real sizes, fetched with one
// BPF_OBJ_GET_INFO_BY_FD per call (no cache: an fd number can be closed and reused behind our back, and a
// stale size would let the kernel write past a Buffer). Buffers may be larger than needed, never smaller.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common.h"

namespace bpfkit {

int PossibleCpus() {
  static std::atomic<int> cached{0};
  int n = cached.load(std::memory_order_relaxed);
  if (n > 0) return n;
  n = libbpf_num_possible_cpus();
  if (n > 0) cached.store(n, std::memory_order_relaxed);
  return n;
}

int MapInfoByFd(int fd, struct bpf_map_info* info) {
  memset(info, 0, sizeof(*info));
  __u32 len = sizeof(*info);
  if (bpf_obj_get_info_by_fd(fd, info, &len) != 0) return errno ? errno : EINVAL;
  return 0;
}

uint64_t UserValueSize(uint32_t mapType, uint32_t valueSize) {
  switch (mapType) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: {
      int cpus = PossibleCpus();
      if (cpus < 1) cpus = 1;
      return (((uint64_t)valueSize + 7) & ~7ULL) * (uint64_t)cpus;
    }
    default:
      return valueSize;
  }
}

namespace {

// Map sizes of `fd`, or throws (EBADF/EINVAL from the kernel when fd is not a map).
struct MapSizes {
  uint32_t type, key, value;
  uint64_t userValue;
};

bool GetSizes(Napi::Env env, int fd, const char* op, MapSizes* s) {
  struct bpf_map_info info;
  int err = MapInfoByFd(fd, &info);
  if (err) {
    ThrowErrno(env, op, err, "fd " + std::to_string(fd) + " is not a BPF map (BPF_OBJ_GET_INFO_BY_FD failed)");
    return false;
  }
  s->type = info.type;
  s->key = info.key_size;
  s->value = info.value_size;
  s->userValue = UserValueSize(info.type, info.value_size);
  return true;
}

// key: nullable; returns the pointer to hand to the kernel (NULL for key_size 0 maps).
bool CheckKey(Napi::Env env, const char* op, const char* what, const Bytes& key, const MapSizes& s, bool nullAllowed,
              void** out) {
  *out = nullptr;
  if (s.key == 0) return true;  // queue/stack/bloom filter: the kernel wants NULL
  if (!key.present) {
    if (nullAllowed) return true;
    ThrowInvalid(env, op, std::string(what) + " is required for this map (key size " + std::to_string(s.key) + ")");
    return false;
  }
  if (key.len < s.key) {
    ThrowInvalid(env, op, std::string(what) + " Buffer is " + std::to_string(key.len) + " bytes, the map's key size is " +
                              std::to_string(s.key));
    return false;
  }
  *out = key.data;
  return true;
}

bool CheckValue(Napi::Env env, const char* op, const char* what, const Bytes& v, const MapSizes& s, uint64_t count = 1) {
  uint64_t need = s.userValue * count;
  if (v.len < need) {
    std::string per = s.userValue != s.value ? " (per-CPU map: round_up(" + std::to_string(s.value) + ", 8) * " +
                                                   std::to_string(PossibleCpus()) + " possible CPUs)"
                                             : "";
    ThrowInvalid(env, op, std::string(what) + " Buffer is " + std::to_string(v.len) + " bytes, needs at least " +
                              std::to_string(need) + per);
    return false;
  }
  return true;
}

// Batch operations take `count` keys packed in one Buffer.
bool CheckBatchKeys(Napi::Env env, const char* op, const Bytes& keys, const MapSizes& s, uint32_t count) {
  if (keys.len >= (uint64_t)s.key * count) return true;
  ThrowInvalid(env, op, "keys Buffer is " + std::to_string(keys.len) + " bytes, needs count * keySize = " +
                            std::to_string((uint64_t)s.key * count));
  return false;
}

// A failed batch update/delete may have processed some elements; the error carries how many. The kernel
// writes the count back only from its element loop: after an early refusal (flags, BPF_F_LOCK without a
// spin lock) the count still holds the request. A loop failure leaves it below the request (all elements
// done would be a success), so an unchanged count means none was done.
void ThrowBatchErrno(Napi::Env env, const char* op, int err, uint32_t requested, uint32_t count) {
  Napi::Error e = MakeErrnoError(env, op, err);
  e.Set("count", Napi::Number::New(env, count >= requested ? 0 : count));
  e.ThrowAsJavaScriptException();
}

Napi::Value MapInfoFn(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_obj_get_info_by_fd";
  int fd;
  if (!ArgFd(info, 0, op, &fd)) return Napi::Value();
  struct bpf_map_info mi;
  int err = MapInfoByFd(fd, &mi);
  if (err) return ThrowErrno(env, op, err), Napi::Value();
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::Number::New(env, mi.type));
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("flags", Napi::Number::New(env, mi.map_flags));
  o.Set("name", Napi::String::New(env, std::string(mi.name, strnlen(mi.name, sizeof(mi.name)))));
  o.Set("id", Napi::Number::New(env, mi.id));
  return o;
}

bool ArgFlags(const Napi::CallbackInfo& info, size_t i, const char* op, uint64_t* out) {
  *out = 0;
  if (info[i].IsUndefined()) return true;
  if (info[i].IsBigInt()) {
    bool lossless;
    *out = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    return true;
  }
  int64_t v;
  if (!ArgI64(info, i, op, "flags", &v)) return false;
  if (v < 0) return ThrowInvalid(info.Env(), op, "flags must be >= 0"), false;
  *out = (uint64_t)v;
  return true;
}

// The arguments every single-element call takes: (fd, key[, value]) checked against the map's own sizes.
struct ElemCall {
  int fd;
  Bytes key, value;
  MapSizes sizes;
  void* k;
};

static bool ParseElemCall(const Napi::CallbackInfo& info, const char* op, bool withValue, ElemCall* c) {
  Napi::Env env = info.Env();
  return ArgFd(info, 0, op, &c->fd) && ArgBytes(info, 1, op, "key", true, &c->key) &&
         (!withValue || ArgBytes(info, 2, op, "value", false, &c->value)) && GetSizes(env, c->fd, op, &c->sizes) &&
         CheckKey(env, op, "key", c->key, c->sizes, false, &c->k) &&
         (!withValue || CheckValue(env, op, "value", c->value, c->sizes));
}

// true when the call succeeded, false for ENOENT (no such element), a thrown error otherwise.
static Napi::Value FoundOrThrow(Napi::Env env, const char* op, int rc) {
  if (rc == 0) return Napi::Boolean::New(env, true);
  int e = errno;
  if (e == ENOENT) return Napi::Boolean::New(env, false);
  return ThrowErrno(env, op, e), Napi::Value();
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  LogReset();
  const char* op = "bpf_map_lookup_elem_flags";
  ElemCall c;
  uint64_t flags;
  if (!ParseElemCall(info, op, true, &c) || !ArgFlags(info, 3, op, &flags)) return Napi::Value();
  return FoundOrThrow(info.Env(), op, bpf_map_lookup_elem_flags(c.fd, c.k, c.value.data, flags));
}

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_map_update_elem";
  ElemCall c;
  uint64_t flags;
  if (!ParseElemCall(info, op, true, &c) || !ArgFlags(info, 3, op, &flags)) return Napi::Value();
  if (bpf_map_update_elem(c.fd, c.k, c.value.data, flags) != 0) return ThrowErrno(env, op, errno), Napi::Value();
  return env.Undefined();
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  LogReset();
  const char* op = "bpf_map_delete_elem";
  ElemCall c;
  if (!ParseElemCall(info, op, false, &c)) return Napi::Value();
  return FoundOrThrow(info.Env(), op, bpf_map_delete_elem(c.fd, c.k));
}

Napi::Value MapLookupAndDelete(const Napi::CallbackInfo& info) {
  LogReset();
  const char* op = "bpf_map_lookup_and_delete_elem";
  ElemCall c;
  if (!ParseElemCall(info, op, true, &c)) return Napi::Value();
  return FoundOrThrow(info.Env(), op, bpf_map_lookup_and_delete_elem(c.fd, c.k, c.value.data));
}

Napi::Value MapGetNextKey(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_map_get_next_key";
  int fd;
  Bytes key, next;
  MapSizes s;
  void* k;
  if (!ArgFd(info, 0, op, &fd) || !ArgBytes(info, 1, op, "key", true, &key) ||
      !ArgBytes(info, 2, op, "nextKey", false, &next) || !GetSizes(env, fd, op, &s) ||
      !CheckKey(env, op, "key", key, s, true, &k))
    return Napi::Value();
  if (next.len < s.key)
    return ThrowInvalid(env, op, "nextKey Buffer is " + std::to_string(next.len) + " bytes, the map's key size is " +
                                     std::to_string(s.key)),
           Napi::Value();
  return FoundOrThrow(env, op, bpf_map_get_next_key(fd, k, next.data));
}

Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  bool andDelete = info[6].ToBoolean().Value();
  const char* op = andDelete ? "bpf_map_lookup_and_delete_batch" : "bpf_map_lookup_batch";
  int fd;
  Bytes in, out, keys, values;
  uint32_t count;
  MapSizes s;
  if (!ArgFd(info, 0, op, &fd) || !ArgBytes(info, 1, op, "inBatch", true, &in) ||
      !ArgBytes(info, 2, op, "outBatch", false, &out) || !ArgBytes(info, 3, op, "keys", false, &keys) ||
      !ArgBytes(info, 4, op, "values", false, &values) || !ArgU32(info, 5, op, "count", &count) ||
      !GetSizes(env, fd, op, &s))
    return Napi::Value();
  if (count == 0) return ThrowInvalid(env, op, "count must be >= 1"), Napi::Value();
  // The cursor is a u32 bucket index for hash maps and a key for the generic (array) implementation.
  size_t cursor = s.key > 4 ? s.key : 4;
  if (in.present && in.len < cursor)
    return ThrowInvalid(env, op, "inBatch Buffer must hold at least " + std::to_string(cursor) + " bytes"), Napi::Value();
  if (out.len < cursor)
    return ThrowInvalid(env, op, "outBatch Buffer must hold at least " + std::to_string(cursor) + " bytes"),
           Napi::Value();
  if (!CheckBatchKeys(env, op, keys, s, count)) return Napi::Value();
  if (!CheckValue(env, op, "values", values, s, count)) return Napi::Value();
  struct bpf_map_batch_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  __u32 n = count;
  int ret = andDelete ? bpf_map_lookup_and_delete_batch(fd, in.present ? in.data : nullptr, out.data, keys.data,
                                                        values.data, &n, &opts)
                      : bpf_map_lookup_batch(fd, in.present ? in.data : nullptr, out.data, keys.data, values.data, &n,
                                             &opts);
  bool done = false;
  if (ret != 0) {
    int e = errno;
    if (e != ENOENT) {
      return ThrowErrno(env, op, e), Napi::Value();
    }
    done = true;
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("count", Napi::Number::New(env, n));
  r.Set("done", Napi::Boolean::New(env, done));
  return r;
}

Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_map_update_batch";
  int fd;
  Bytes keys, values;
  uint32_t count;
  uint64_t flags;
  MapSizes s;
  if (!ArgFd(info, 0, op, &fd) || !ArgBytes(info, 1, op, "keys", false, &keys) ||
      !ArgBytes(info, 2, op, "values", false, &values) || !ArgU32(info, 3, op, "count", &count) ||
      !ArgFlags(info, 4, op, &flags) || !GetSizes(env, fd, op, &s))
    return Napi::Value();
  if (!CheckBatchKeys(env, op, keys, s, count)) return Napi::Value();
  if (!CheckValue(env, op, "values", values, s, count)) return Napi::Value();
  if (count == 0) return Napi::Number::New(env, 0);
  struct bpf_map_batch_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.elem_flags = flags;
  __u32 n = count;
  if (bpf_map_update_batch(fd, keys.data, values.data, &n, &opts) != 0) {
    return ThrowBatchErrno(env, op, errno, count, n), Napi::Value();
  }
  return Napi::Number::New(env, n);
}

Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_map_delete_batch";
  int fd;
  Bytes keys;
  uint32_t count;
  MapSizes s;
  if (!ArgFd(info, 0, op, &fd) || !ArgBytes(info, 1, op, "keys", false, &keys) ||
      !ArgU32(info, 2, op, "count", &count) || !GetSizes(env, fd, op, &s))
    return Napi::Value();
  if (!CheckBatchKeys(env, op, keys, s, count)) return Napi::Value();
  if (count == 0) return Napi::Number::New(env, 0);
  struct bpf_map_batch_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  __u32 n = count;
  if (bpf_map_delete_batch(fd, keys.data, &n, &opts) != 0) {
    return ThrowBatchErrno(env, op, errno, count, n), Napi::Value();
  }
  return Napi::Number::New(env, n);
}

Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_map_create";
  uint32_t type, ks, vs, max, flags;
  std::string name;
  if (!ArgU32(info, 0, op, "type", &type)) return Napi::Value();
  if (!info[1].IsNull() && !info[1].IsUndefined() && !ArgString(info, 1, op, "name", &name)) return Napi::Value();
  if (!ArgU32(info, 2, op, "keySize", &ks) || !ArgU32(info, 3, op, "valueSize", &vs) ||
      !ArgU32(info, 4, op, "maxEntries", &max) || !ArgU32(info, 5, op, "flags", &flags))
    return Napi::Value();
  if (name.size() >= BPF_OBJ_NAME_LEN) name.resize(BPF_OBJ_NAME_LEN - 1);
  struct bpf_map_create_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.map_flags = flags;
  int fd = bpf_map_create((enum bpf_map_type)type, name.empty() ? nullptr : name.c_str(), ks, vs, max, &opts);
  if (fd < 0) return ThrowErrno(env, op, errno), Napi::Value();
  return Napi::Number::New(env, GiveFdToJs(env, fd));
}

Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_obj_pin";
  int fd;
  std::string path;
  if (!ArgFd(info, 0, op, &fd) || !ArgString(info, 1, op, "path", &path)) return Napi::Value();
  if (bpf_obj_pin(fd, path.c_str()) != 0) return ThrowErrno(env, op, errno, "path " + path), Napi::Value();
  return env.Undefined();
}

Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_obj_get";
  std::string path;
  if (!ArgString(info, 0, op, "path", &path)) return Napi::Value();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ThrowErrno(env, op, errno, "path " + path), Napi::Value();
  return Napi::Number::New(env, GiveFdToJs(env, fd));
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "close", &fd)) return Napi::Value();
  GetAddonData(env)->jsFds.erase(fd);
  if (close(fd) != 0 && errno != EINTR) return ThrowErrno(env, "close", errno), Napi::Value();
  return env.Undefined();
}

Napi::Value DupFd(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "fcntl(F_DUPFD_CLOEXEC)", &fd)) return Napi::Value();
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", errno), Napi::Value();
  return Napi::Number::New(env, GiveFdToJs(env, d));
}

Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_prog_test_run_opts";
  int fd;
  Bytes in;
  uint32_t repeat = 1;
  if (!ArgFd(info, 0, op, &fd) || !ArgBytes(info, 1, op, "dataIn", true, &in)) return Napi::Value();
  if (!info[2].IsUndefined() && !ArgU32(info, 2, op, "repeat", &repeat)) return Napi::Value();
  if (repeat > INT32_MAX) return ThrowInvalid(env, op, "repeat too large"), Napi::Value();
  if (in.present && in.len > UINT32_MAX) return ThrowInvalid(env, op, "dataIn too large"), Napi::Value();
  struct bpf_test_run_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  if (in.present && in.len) {
    opts.data_in = in.data;
    opts.data_size_in = (__u32)in.len;
  }
  opts.repeat = (int)repeat;
  if (bpf_prog_test_run_opts(fd, &opts) != 0) return ThrowErrno(env, op, errno), Napi::Value();
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", Napi::Number::New(env, opts.retval));
  r.Set("duration", Napi::Number::New(env, opts.duration));
  return r;
}

Napi::Value ProgLoadRaw(const Napi::CallbackInfo& info) {
  LogReset();
  Napi::Env env = info.Env();
  const char* op = "bpf_prog_load";
  uint32_t type;
  Bytes insns;
  std::string license;
  if (!ArgU32(info, 0, op, "type", &type) || !ArgBytes(info, 1, op, "insns", false, &insns) ||
      !ArgString(info, 2, op, "license", &license))
    return Napi::Value();
  uint32_t eat = 0, btfId = 0, logSize = 1u << 20;
  if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull()) {
    if (!info[3].IsObject()) return ThrowType(env, op, "options must be an object"), Napi::Value();
    Napi::Object o = info[3].As<Napi::Object>();
    if (!OptU32(env, o, "expectedAttachType", op, &eat) || !OptU32(env, o, "attachBtfId", op, &btfId) ||
        !OptU32(env, o, "logSize", op, &logSize))
      return Napi::Value();
  }
  if (insns.len == 0 || insns.len % sizeof(struct bpf_insn) != 0)
    return ThrowInvalid(env, op, "insns must be a non-empty multiple of 8 bytes (struct bpf_insn), got " +
                                     std::to_string(insns.len)),
           Napi::Value();
  if (logSize < 128 || logSize > (UINT32_MAX >> 2))
    return ThrowInvalid(env, op, "logSize must be between 128 bytes and 1 GiB"), Napi::Value();
  // Copy: the kernel wants aligned struct bpf_insn, a Buffer slice may not be.
  size_t cnt = insns.len / sizeof(struct bpf_insn);
  struct bpf_insn* code = (struct bpf_insn*)malloc(insns.len);
  if (!code) return ThrowErrno(env, op, ENOMEM), Napi::Value();
  memcpy(code, insns.data, insns.len);

  struct bpf_prog_load_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.expected_attach_type = (enum bpf_attach_type)eat;
  opts.attach_btf_id = btfId;
  // First try without a log (fast path, as libbpf does); on failure retry with a level-1 log.
  int fd = bpf_prog_load((enum bpf_prog_type)type, nullptr, license.c_str(), code, cnt, &opts);
  if (fd >= 0) {
    free(code);
    return Napi::Number::New(env, GiveFdToJs(env, fd));
  }
  int e = errno;
  char* log = (char*)calloc(1, logSize);
  if (log) {
    opts.log_buf = log;
    opts.log_size = logSize;
    opts.log_level = 1;
    fd = bpf_prog_load((enum bpf_prog_type)type, nullptr, license.c_str(), code, cnt, &opts);
    if (fd >= 0) {  // passed on the retry (transient failure): keep it
      free(code);
      free(log);
      return Napi::Number::New(env, GiveFdToJs(env, fd));
    }
    e = errno;
  }
  free(code);
  std::string vlog = log ? std::string(log, strnlen(log, logSize)) : std::string();
  free(log);
  std::string last = VerifierSummary(vlog);
  Napi::Error err = MakeErrnoError(env, op, e, last);
  err.Set("verifierLog", Napi::String::New(env, vlog));
  err.Set("logTruncated", Napi::Boolean::New(env, e == ENOSPC || vlog.size() >= (size_t)logSize - 1));
  err.ThrowAsJavaScriptException();
  return Napi::Value();
}

}  // namespace

Napi::Object InitMapOps(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Function::Callback cb) { exports.Set(name, Napi::Function::New(env, cb, name)); };
  fn("mapInfo", MapInfoFn);
  fn("mapLookup", MapLookup);
  fn("mapUpdate", MapUpdate);
  fn("mapDelete", MapDelete);
  fn("mapLookupAndDelete", MapLookupAndDelete);
  fn("mapGetNextKey", MapGetNextKey);
  fn("mapLookupBatch", MapLookupBatch);
  fn("mapUpdateBatch", MapUpdateBatch);
  fn("mapDeleteBatch", MapDeleteBatch);
  fn("mapCreate", MapCreate);
  fn("objPin", ObjPin);
  fn("objGet", ObjGet);
  fn("closeFd", CloseFd);
  fn("dupFd", DupFd);
  fn("progTestRun", ProgTestRun);
  fn("progLoadRaw", ProgLoadRaw);
  return exports;
}

}  // namespace bpfkit
