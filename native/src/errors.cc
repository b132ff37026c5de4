// libbpf log capture, Error construction, argument validation.
#include <bpf/libbpf.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common.h"

namespace bpfkit {

namespace {

// Captured text per thread (worker_threads each run on their own thread).
// A heap string, never freed, so no thread_local destructor is registered.
thread_local std::string* tls_log = nullptr;
std::atomic<bool> g_debug{false};
constexpr size_t kMaxLog = 4u << 20;

std::string& Log() {
  if (!tls_log) tls_log = new std::string();
  return *tls_log;
}

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  bool debug = g_debug.load(std::memory_order_relaxed);
  if (level == LIBBPF_DEBUG && !debug) return 0;
  char stackbuf[1024];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, copy);
  va_end(copy);
  if (n < 0) return 0;
  std::string heap;
  const char* text = stackbuf;
  if ((size_t)n >= sizeof(stackbuf)) {
    heap.resize((size_t)n + 1);
    va_copy(copy, args);
    vsnprintf(&heap[0], heap.size(), fmt, copy);
    va_end(copy);
    heap.resize((size_t)n);
    text = heap.c_str();
  }
  if (debug) fputs(text, stderr);  // libbpf's messages carry their own "libbpf: " prefix
  if (level != LIBBPF_DEBUG) {
    std::string& log = Log();
    if (log.size() + (size_t)n <= kMaxLog) {
      log.append(text, (size_t)n);
    } else if (log.size() < kMaxLog + 1) {
      log.append("\n[bpfkit: libbpf log truncated]\n");
    }
  }
  return 0;
}

const char* const kErrnoNames[] = {
    "0", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG",
    "ENOEXEC", "EBADF", "ECHILD", "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK",
    "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR", "EISDIR", "EINVAL", "ENFILE",
    "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS", "EMLINK",
    "EPIPE", "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY",
    "ELOOP", "", "ENOMSG", "EIDRM", "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST",
    "ELNRNG", "EUNATCH", "ENOCSI", "EL2HLT", "EBADE", "EBADR", "EXFULL", "ENOANO",
    "EBADRQC", "EBADSLT", "", "EBFONT", "ENOSTR", "ENODATA", "ETIME", "ENOSR",
    "ENONET", "ENOPKG", "EREMOTE", "ENOLINK", "EADV", "ESRMNT", "ECOMM", "EPROTO",
    "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD", "EREMCHG", "ELIBACC",
    "ELIBBAD", "ELIBSCN", "ELIBMAX", "ELIBEXEC", "EILSEQ", "ERESTART", "ESTRPIPE", "EUSERS",
    "ENOTSOCK", "EDESTADDRREQ", "EMSGSIZE", "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP",
    "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN", "ENETUNREACH", "ENETRESET", "ECONNABORTED",
    "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN", "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT", "ECONNREFUSED",
    "EHOSTDOWN", "EHOSTUNREACH", "EALREADY", "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL",
    "EISNAM", "EREMOTEIO", "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED", "ENOKEY", "EKEYEXPIRED",
    "EKEYREVOKED", "EKEYREJECTED", "EOWNERDEAD", "ENOTRECOVERABLE", "ERFKILL", "EHWPOISON",
};

// Kernel-internal codes that BPF syscalls do leak to user space (include/linux/errno.h).
const char* const kKernelNames[] = {
    "ERESTARTSYS", "ERESTARTNOINTR", "ERESTARTNOHAND", "ENOIOCTLCMD", "ERESTART_RESTARTBLOCK",
    "EPROBE_DEFER", "EOPENSTALE", "ENOPARAM", "", "EBADHANDLE", "ENOTSYNC", "EBADCOOKIE",
    "ENOTSUPP", "ETOOSMALL", "ESERVERFAULT", "EBADTYPE", "EJUKEBOX", "EIOCBQUEUED", "ERECALLCONFLICT",
};

const char* const kLibbpfNames[] = {
    "LIBBPF_ERRNO__LIBELF", "LIBBPF_ERRNO__FORMAT", "LIBBPF_ERRNO__KVERSION", "LIBBPF_ERRNO__ENDIAN",
    "LIBBPF_ERRNO__INTERNAL", "LIBBPF_ERRNO__RELOC", "LIBBPF_ERRNO__LOAD", "LIBBPF_ERRNO__VERIFY",
    "LIBBPF_ERRNO__PROG2BIG", "LIBBPF_ERRNO__KVER", "LIBBPF_ERRNO__PROGTYPE", "LIBBPF_ERRNO__WRNGPID",
    "LIBBPF_ERRNO__INVSEQ", "LIBBPF_ERRNO__NLPARSE",
};

std::string LastLogLine() {
  const std::string& log = LogText();
  size_t end = log.find_last_not_of(" \n\t");
  if (end == std::string::npos) return "";
  size_t start = log.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  std::string line = log.substr(start, end - start + 1);
  if (line.rfind("libbpf: ", 0) == 0) line = line.substr(8);
  return line;
}

}  // namespace

std::string VerifierSummary(const std::string& log) {
  size_t end = log.size();
  std::string fallback;
  while (end > 0) {
    size_t start = log.rfind('\n', end - 1);
    size_t from = start == std::string::npos ? 0 : start + 1;
    std::string line = log.substr(from, end - from);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) {
      if (fallback.empty()) fallback = line;
      if (line.rfind("processed ", 0) != 0 && line.rfind("verification time", 0) != 0 &&
          line.rfind("stack depth", 0) != 0 && line.rfind("-- END", 0) != 0)
        return line;
    }
    if (start == std::string::npos) break;
    end = start;
  }
  return fallback;
}

void InstallLibbpfPrint() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(LibbpfPrint); });
}

void LogReset() {
  if (tls_log) tls_log->clear();
}

const std::string& LogText() { return Log(); }

void SetLibbpfDebug(bool on) { g_debug.store(on); }

std::string ErrnoName(int err) {
  if (err < 0) err = -err;
  const size_t n = sizeof(kErrnoNames) / sizeof(kErrnoNames[0]);
  if ((size_t)err < n && kErrnoNames[err][0]) return kErrnoNames[err];
  if (err >= 512 && err < 512 + (int)(sizeof(kKernelNames) / sizeof(kKernelNames[0])) && kKernelNames[err - 512][0])
    return kKernelNames[err - 512];
  if (err >= 4000 && err < 4000 + (int)(sizeof(kLibbpfNames) / sizeof(kLibbpfNames[0])))
    return kLibbpfNames[err - 4000];
  return "E" + std::to_string(err);
}

std::string ErrnoText(int err) {
  if (err < 0) err = -err;
  if (err == 524) return "Operation not supported (kernel ENOTSUPP)";
  char buf[256];
  buf[0] = 0;
  if (libbpf_strerror(err, buf, sizeof(buf)) == 0 && buf[0]) return buf;
  return strerror(err);
}

Napi::Error MakeCodeError(Napi::Env env, const char* code, int err, const char* op, const std::string& message,
                          bool typeError) {
  Napi::Error e = typeError ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  // Raw napi calls: Napi::Object::Set aborts the process if the env is shutting down.
  napi_value obj = e.Value();
  napi_set_named_property(env, obj, "errno", Napi::Number::New(env, err));
  napi_set_named_property(env, obj, "code", Napi::String::New(env, code));
  napi_set_named_property(env, obj, "op", Napi::String::New(env, op));
  napi_set_named_property(env, obj, "libbpfLog", Napi::String::New(env, LogText()));
  return e;
}

Napi::Error MakeErrnoError(Napi::Env env, const char* op, int err, const std::string& detail) {
  if (err < 0) err = -err;
  std::string code = ErrnoName(err);
  std::string msg = std::string(op) + " failed: " + code + " (" + ErrnoText(err) + ")";
  std::string extra = detail.empty() ? LastLogLine() : detail;
  if (!extra.empty()) msg += ": " + extra;
  return MakeCodeError(env, code.c_str(), err, op, msg);
}


// Throws without node-addon-api's fatal fallback: during environment teardown napi_throw
// fails (JS cannot run), and an addon must never abort the process for that.
static void SafeThrow(const Napi::Error& e) {
  napi_throw(e.Env(), e.Value());
}

void ThrowErrno(Napi::Env env, const char* op, int err, const std::string& detail) {
  SafeThrow(MakeErrnoError(env, op, err, detail));
}

void ThrowInvalid(Napi::Env env, const char* op, const std::string& message) {
  SafeThrow(MakeCodeError(env, "EINVAL", 0, op, std::string(op) + ": " + message));  // errno 0: our check, not the kernel's
}

void ThrowType(Napi::Env env, const char* op, const std::string& message) {
  SafeThrow(MakeCodeError(env, "EINVAL", 0, op, std::string(op) + ": " + message, true));
}

void ThrowNotFound(Napi::Env env, const char* op, const std::string& message) {
  SafeThrow(MakeCodeError(env, "ENOENT", 0, op, message));  // errno 0: a name we did not find, not a syscall
}

void ThrowClosed(Napi::Env env, const char* op, const std::string& what) {
  SafeThrow(MakeCodeError(env, "ECLOSED", 0, op, what + " is closed"));
}

void ThrowState(Napi::Env env, const char* op, const std::string& message) {
  SafeThrow(MakeCodeError(env, "EBPFKIT", 0, op, message));
}

// ---------------------------------------------------------------------------

bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* op, int* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) {
    ThrowType(info.Env(), op, "fd must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 2147483647.0) || std::floor(d) != d) {
    ThrowInvalid(info.Env(), op, "fd must be a non-negative integer, got " + v.ToString().Utf8Value());
    return false;
  }
  *out = (int)d;
  return true;
}

static bool NumberIn(Napi::Env env, Napi::Value v, const char* op, const char* what, double lo, double hi,
                     double* out) {
  if (!v.IsNumber()) {
    ThrowType(env, op, std::string(what) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d) {
    ThrowInvalid(env, op, std::string(what) + " must be an integer in [" + std::to_string((long long)lo) + ", " +
                              std::to_string((long long)hi) + "], got " + v.ToString().Utf8Value());
    return false;
  }
  *out = d;
  return true;
}

bool ArgU32(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, uint32_t* out) {
  double d;
  if (!NumberIn(info.Env(), info[i], op, what, 0, 4294967295.0, &d)) return false;
  *out = (uint32_t)d;
  return true;
}

bool ArgI64(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, int64_t* out) {
  double d;
  if (!NumberIn(info.Env(), info[i], op, what, -9007199254740991.0, 9007199254740991.0, &d)) return false;
  *out = (int64_t)d;
  return true;
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, bool* out) {
  Napi::Value v = info[i];
  if (!v.IsBoolean()) {
    ThrowType(info.Env(), op, std::string(what) + " must be a boolean");
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, std::string* out) {
  Napi::Value v = info[i];
  if (!v.IsString()) {
    ThrowType(info.Env(), op, std::string(what) + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowInvalid(info.Env(), op, std::string(what) + " must not contain NUL characters");
    return false;
  }
  return true;
}

bool ValueBytes(Napi::Env env, Napi::Value v, const char* op, const char* what, bool nullable, Bytes* out) {
  *out = Bytes();
  if (v.IsNull() || v.IsUndefined()) {
    if (nullable) return true;
    ThrowType(env, op, std::string(what) + " must be a Buffer");
    return false;
  }
  napi_env e = env;
  bool is;
  if (napi_is_typedarray(e, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset;
    void* data;
    napi_value ab;
    if (napi_get_typedarray_info(e, v, &type, &length, &data, &ab, &offset) != napi_ok) return false;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    out->data = (uint8_t*)data;
    out->len = length * elem;
    out->present = true;
    return true;
  }
  if (napi_is_dataview(e, v, &is) == napi_ok && is) {
    size_t length, offset;
    void* data;
    napi_value ab;
    if (napi_get_dataview_info(e, v, &length, &data, &ab, &offset) != napi_ok) return false;
    out->data = (uint8_t*)data;
    out->len = length;
    out->present = true;
    return true;
  }
  if (napi_is_arraybuffer(e, v, &is) == napi_ok && is) {
    void* data;
    size_t length;
    if (napi_get_arraybuffer_info(e, v, &data, &length) != napi_ok) return false;
    out->data = (uint8_t*)data;
    out->len = length;
    out->present = true;
    return true;
  }
  ThrowType(env, op, std::string(what) + " must be a Buffer" + (nullable ? " or null" : ""));
  return false;
}

bool ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, bool nullable, Bytes* out) {
  return ValueBytes(info.Env(), info[i], op, what, nullable, out);
}

bool OptU32(Napi::Env env, Napi::Object o, const char* key, const char* op, uint32_t* out) {
  Napi::Value v = o.Get(key);
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined() || v.IsNull()) return true;
  double d;
  if (!NumberIn(env, v, op, key, 0, 4294967295.0, &d)) return false;
  *out = (uint32_t)d;
  return true;
}

bool OptString(Napi::Env env, Napi::Object o, const char* key, const char* op, std::string* out, bool* present) {
  *present = false;
  Napi::Value v = o.Get(key);
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsString()) {
    ThrowType(env, op, std::string(key) + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowInvalid(env, op, std::string(key) + " must not contain NUL characters");
    return false;
  }
  *present = true;
  return true;
}

}  // namespace bpfkit
