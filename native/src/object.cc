// NativeObject: a libbpf bpf_object opened from memory.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "common.h"

namespace bpfkit {

namespace {

enum class State { Opened, Loaded, Failed, Closed };

class NativeObject : public Napi::ObjectWrap<NativeObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeObject",
                       {
                           InstanceMethod<&NativeObject::Info>("info"),
                           InstanceMethod<&NativeObject::SetMapMaxEntries>("setMapMaxEntries"),
                           InstanceMethod<&NativeObject::SetMapInitialValue>("setMapInitialValue"),
                           InstanceMethod<&NativeObject::SetMapPinPath>("setMapPinPath"),
                           InstanceMethod<&NativeObject::SetProgramAutoload>("setProgramAutoload"),
                           InstanceMethod<&NativeObject::Load>("load"),
                           InstanceMethod<&NativeObject::MapFd>("mapFd"),
                           InstanceMethod<&NativeObject::ProgramFd>("programFd"),
                           InstanceMethod<&NativeObject::AttachAuto>("attachAuto"),
                           InstanceMethod<&NativeObject::AttachTracepoint>("attachTracepoint"),
                           InstanceMethod<&NativeObject::AttachRawTracepoint>("attachRawTracepoint"),
                           InstanceMethod<&NativeObject::AttachTrace>("attachTrace"),
                           InstanceMethod<&NativeObject::AttachLsm>("attachLsm"),
                           InstanceMethod<&NativeObject::AttachKprobe>("attachKprobe"),
                           InstanceMethod<&NativeObject::AttachUprobe>("attachUprobe"),
                           InstanceMethod<&NativeObject::AttachCgroup>("attachCgroup"),
                           InstanceMethod<&NativeObject::Close>("close"),
                       });
  }

  explicit NativeObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeObject>(info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "bpf_object__open_mem";
    Bytes elf;
    if (!ArgBytes(info, 0, op, "elf", false, &elf)) return;
    std::string name, btfPath, pinRoot;
    bool hasName = false, hasBtf = false, hasPin = false;
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
      if (!info[1].IsObject()) {
        ThrowType(env, op, "options must be an object");
        return;
      }
      Napi::Object o = info[1].As<Napi::Object>();
      if (!OptString(env, o, "name", op, &name, &hasName)) return;
      if (!OptString(env, o, "btfCustomPath", op, &btfPath, &hasBtf)) return;
      if (!OptString(env, o, "pinRoot", op, &pinRoot, &hasPin)) return;
    }
    // libbpf may keep pointing into the image: keep a private copy for the object's lifetime. Copy first,
    // then validate the copy (a Buffer over a SharedArrayBuffer could change under us).
    elfCopy_ = (uint8_t*)malloc(elf.len ? elf.len : 1);
    if (!elfCopy_) {
      ThrowErrno(env, op, ENOMEM);
      return;
    }
    if (elf.len) memcpy(elfCopy_, elf.data, elf.len);
    elfLen_ = elf.len;
    std::string why;
    if (!CheckBpfElf(elfCopy_, elfLen_, &why)) {
      free(elfCopy_);
      elfCopy_ = nullptr;
      MakeCodeError(env, "LIBBPF_ERRNO__FORMAT", LIBBPF_ERRNO__FORMAT, op,
                    std::string(op) + " failed: LIBBPF_ERRNO__FORMAT (invalid BPF object): " + why)
          .ThrowAsJavaScriptException();
      return;
    }

    struct bpf_object_open_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    if (hasName) opts.object_name = name.c_str();
    if (hasBtf) opts.btf_custom_path = btfPath.c_str();
    if (hasPin) opts.pin_root_path = pinRoot.c_str();
    errno = 0;
    struct bpf_object* obj = bpf_object__open_mem(elfCopy_, elfLen_, &opts);
    long err = libbpf_get_error(obj);
    if (!obj || err) {
      free(elfCopy_);
      elfCopy_ = nullptr;
      int e = err ? (int)-err : (errno ? errno : EINVAL);
      ThrowErrno(env, op, e);
      return;
    }
    obj_ = obj;
    state_ = State::Opened;
    CollectRealNames();
  }

  ~NativeObject() override { Release(); }

 private:
  void Release() {
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
    free(elfCopy_);
    elfCopy_ = nullptr;
    state_ = State::Closed;
  }

  // libbpf 1.1 names internal maps '<obj>.rodata' (kernel name, truncated to 15 chars) but finds them by their
  // ELF section name ('.rodata', '.data.foo', '.kconfig'). Report the section name: it is what by-name
  // methods accept and what users write.
  void CollectRealNames() {
    std::vector<std::string> cands = {".kconfig"};
    {  // layout validated by CheckBpfElf
      Elf64_Ehdr eh;
      memcpy(&eh, elfCopy_, sizeof(eh));
      const Elf64_Shdr* sh = (const Elf64_Shdr*)(elfCopy_ + eh.e_shoff);
      uint64_t shnum = eh.e_shnum ? eh.e_shnum : sh[0].sh_size;
      uint64_t strndx = eh.e_shstrndx == SHN_XINDEX ? sh[0].sh_link : eh.e_shstrndx;
      const Elf64_Shdr& str = sh[strndx];  // bounds validated by CheckBpfElf
      for (uint64_t i = 1; i < shnum; i++) {
        const char* nm = (const char*)elfCopy_ + str.sh_offset + sh[i].sh_name;
        if (nm[0] == '.' && (sh[i].sh_type == SHT_PROGBITS || sh[i].sh_type == SHT_NOBITS)) cands.push_back(nm);
      }
    }
    struct bpf_map* m;
    bpf_object__for_each_map(m, obj_) {
      if (!bpf_map__is_internal(m)) continue;
      for (const std::string& c : cands) {
        if (bpf_object__find_map_by_name(obj_, c.c_str()) == m) {
          realNames_.emplace_back(m, c);
          break;
        }
      }
    }
  }

  std::string MapName(const struct bpf_map* m) {
    for (auto& p : realNames_)
      if (p.first == m) return p.second;
    return bpf_map__name(m);
  }

  bool Alive(Napi::Env env, const char* op) {
    if (!obj_ || state_ == State::Closed) {
      ThrowClosed(env, op, "NativeObject");
      return false;
    }
    return true;
  }

  std::string ProgramList() {
    std::string s;
    struct bpf_program* p;
    bpf_object__for_each_program(p, obj_) {
      if (!s.empty()) s += ", ";
      s += bpf_program__name(p);
    }
    return s.empty() ? "none" : s;
  }

  std::string MapList() {
    std::string s;
    struct bpf_map* m;
    bpf_object__for_each_map(m, obj_) {
      if (!s.empty()) s += ", ";
      s += MapName(m);
    }
    return s.empty() ? "none" : s;
  }

  struct bpf_program* FindProgram(const Napi::CallbackInfo& info, const char* op) {
    if (!Alive(info.Env(), op)) return nullptr;
    std::string name;
    if (!ArgString(info, 0, op, "program", &name)) return nullptr;
    struct bpf_program* p = bpf_object__find_program_by_name(obj_, name.c_str());
    if (!p) {
      ThrowNotFound(info.Env(), op, "no program named '" + name + "' in object '" + bpf_object__name(obj_) +
                                        "' (programs: " + ProgramList() + ")");
      return nullptr;
    }
    return p;
  }

  struct bpf_map* FindMap(const Napi::CallbackInfo& info, const char* op) {
    if (!Alive(info.Env(), op)) return nullptr;
    std::string name;
    if (!ArgString(info, 0, op, "map", &name)) return nullptr;
    struct bpf_map* m = bpf_object__find_map_by_name(obj_, name.c_str());
    if (!m) {
      ThrowNotFound(info.Env(), op,
                    "no map named '" + name + "' in object '" + bpf_object__name(obj_) + "' (maps: " + MapList() + ")");
      return nullptr;
    }
    return m;
  }

  bool RequireOpened(Napi::Env env, const char* op) {
    if (state_ == State::Opened) return true;
    ThrowState(env, op, std::string(op) + ": the object is already " +
                            (state_ == State::Loaded ? "loaded" : "past a failed load") +
                            "; settings can only change before load()");
    return false;
  }

  bool RequireLoaded(Napi::Env env, const char* op) {
    if (state_ == State::Loaded) return true;
    ThrowState(env, op, std::string(op) + ": the object is " +
                            (state_ == State::Opened ? "not loaded yet; call load() first" : "not loaded (load() failed)"));
    return false;
  }

  // -------------------------------------------------------------------------

  Napi::Value Info(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    if (!Alive(env, "info")) return Napi::Value();
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", bpf_object__name(obj_));

    Napi::Array progs = Napi::Array::New(env);
    uint32_t i = 0;
    struct bpf_program* p;
    bpf_object__for_each_program(p, obj_) {
      Napi::Object o = Napi::Object::New(env);
      enum bpf_prog_type t = bpf_program__type(p);
      enum bpf_attach_type at = bpf_program__expected_attach_type(p);
      const char* tn = libbpf_bpf_prog_type_str(t);
      const char* an = libbpf_bpf_attach_type_str(at);
      // expected_attach_type 0 is BPF_CGROUP_INET_INGRESS, which only means something for cgroup_skb.
      if (at == 0 && t != BPF_PROG_TYPE_CGROUP_SKB) an = "";
      o.Set("name", bpf_program__name(p));
      o.Set("section", bpf_program__section_name(p));
      o.Set("type", Napi::Number::New(env, (double)t));
      o.Set("typeName", tn ? tn : "");
      o.Set("expectedAttachType", Napi::Number::New(env, (double)at));
      o.Set("attachTypeName", an ? an : "");
      o.Set("autoload", Napi::Boolean::New(env, bpf_program__autoload(p)));
      o.Set("insnCount", Napi::Number::New(env, (double)bpf_program__insn_cnt(p)));
      progs.Set(i++, o);
    }
    out.Set("programs", progs);

    Napi::Array maps = Napi::Array::New(env);
    i = 0;
    struct bpf_map* m;
    bpf_object__for_each_map(m, obj_) {
      Napi::Object o = Napi::Object::New(env);
      enum bpf_map_type t = bpf_map__type(m);
      const char* tn = libbpf_bpf_map_type_str(t);
      bool internal = bpf_map__is_internal(m);
      o.Set("name", MapName(m));
      o.Set("type", Napi::Number::New(env, (double)t));
      o.Set("typeName", tn ? tn : "");
      o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(m)));
      o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(m)));
      o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(m)));
      o.Set("flags", Napi::Number::New(env, bpf_map__map_flags(m)));
      o.Set("internal", Napi::Boolean::New(env, internal));
      size_t sz = 0;
      const void* iv = internal ? bpf_map__initial_value(m, &sz) : nullptr;
      if (iv)
        o.Set("initialValue", Napi::Buffer<uint8_t>::Copy(env, (const uint8_t*)iv, sz));
      else
        o.Set("initialValue", env.Null());
      const char* pin = bpf_map__pin_path(m);
      if (pin)
        o.Set("pinPath", pin);
      else
        o.Set("pinPath", env.Null());
      o.Set("btfKeyTypeId", Napi::Number::New(env, bpf_map__btf_key_type_id(m)));
      o.Set("btfValueTypeId", Napi::Number::New(env, bpf_map__btf_value_type_id(m)));
      maps.Set(i++, o);
    }
    out.Set("maps", maps);

    struct btf* btf = bpf_object__btf(obj_);
    uint32_t btfSize = 0;
    const void* raw = btf ? btf__raw_data(btf, &btfSize) : nullptr;
    if (raw && btfSize)
      out.Set("btf", Napi::Buffer<uint8_t>::Copy(env, (const uint8_t*)raw, btfSize));
    else
      out.Set("btf", env.Null());
    return out;
  }

  Napi::Value SetMapMaxEntries(const Napi::CallbackInfo& info) {
    LogReset();
    const char* op = "bpf_map__set_max_entries";
    struct bpf_map* m = FindMap(info, op);
    if (!m || !RequireOpened(info.Env(), op)) return Napi::Value();
    uint32_t n;
    if (!ArgU32(info, 1, op, "maxEntries", &n)) return Napi::Value();
    int err = bpf_map__set_max_entries(m, n);
    if (err) return ThrowErrno(info.Env(), op, err), Napi::Value();
    return info.Env().Undefined();
  }

  Napi::Value SetMapInitialValue(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "bpf_map__set_initial_value";
    struct bpf_map* m = FindMap(info, op);
    if (!m || !RequireOpened(env, op)) return Napi::Value();
    Bytes data;
    if (!ArgBytes(info, 1, op, "data", false, &data)) return Napi::Value();
    if (!bpf_map__is_internal(m)) {
      ThrowInvalid(env, op, std::string("map '") + MapName(m) +
                                "' is not a global-data map (.data/.rodata/.bss); only those have an initial value");
      return Napi::Value();
    }
    size_t cur = 0;
    if (!bpf_map__initial_value(m, &cur)) {
      ThrowInvalid(env, op, std::string("map '") + MapName(m) + "' has no settable initial value (.kconfig?)");
      return Napi::Value();
    }
    if (data.len != bpf_map__value_size(m)) {
      ThrowInvalid(env, op, std::string("data for map '") + MapName(m) + "' must be exactly " +
                                std::to_string(bpf_map__value_size(m)) + " bytes, got " + std::to_string(data.len));
      return Napi::Value();
    }
    int err = bpf_map__set_initial_value(m, data.data, data.len);
    if (err) return ThrowErrno(env, op, err), Napi::Value();
    return env.Undefined();
  }

  Napi::Value SetMapPinPath(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "bpf_map__set_pin_path";
    struct bpf_map* m = FindMap(info, op);
    if (!m || !RequireOpened(env, op)) return Napi::Value();
    int err;
    if (info[1].IsNull() || info[1].IsUndefined()) {
      err = bpf_map__set_pin_path(m, nullptr);
    } else {
      std::string path;
      if (!ArgString(info, 1, op, "path", &path)) return Napi::Value();
      err = bpf_map__set_pin_path(m, path.c_str());
    }
    if (err) return ThrowErrno(env, op, err), Napi::Value();
    return env.Undefined();
  }

  Napi::Value SetProgramAutoload(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "bpf_program__set_autoload";
    struct bpf_program* p = FindProgram(info, op);
    if (!p || !RequireOpened(env, op)) return Napi::Value();
    bool on;
    if (!ArgBool(info, 1, op, "autoload", &on)) return Napi::Value();
    int err = bpf_program__set_autoload(p, on);
    if (err) return ThrowErrno(env, op, err), Napi::Value();
    return env.Undefined();
  }

  // Name of the program libbpf blamed in its log ("prog 'x': ..."), restricted to autoload programs.
  std::string BlamedInLog() {
    const std::string& log = LogText();
    size_t pos = log.size();
    while (pos > 0) {
      size_t at = log.rfind("prog '", pos - 1);
      if (at == std::string::npos) break;
      size_t start = at + 6, end = log.find('\'', start);
      if (end != std::string::npos) {
        std::string name = log.substr(start, end - start);
        struct bpf_program* p = bpf_object__find_program_by_name(obj_, name.c_str());
        if (p && bpf_program__autoload(p)) return name;
      }
      pos = at;
    }
    return "";
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "bpf_object__load";
    if (!Alive(env, op)) return Napi::Value();
    if (state_ == State::Loaded) return ThrowState(env, op, "the object is already loaded"), Napi::Value();
    if (state_ == State::Failed)
      return ThrowState(env, op, "a previous load() failed; libbpf objects cannot be loaded twice, open a new one"),
             Napi::Value();
    uint32_t logLevel = 1, logSize = 1u << 20;
    if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
      if (!info[0].IsObject()) return ThrowType(env, op, "options must be an object"), Napi::Value();
      Napi::Object o = info[0].As<Napi::Object>();
      if (!OptU32(env, o, "logLevel", op, &logLevel) || !OptU32(env, o, "logSize", op, &logSize)) return Napi::Value();
    }
    if (logLevel < 1 || logLevel > 7) return ThrowInvalid(env, op, "logLevel must be 1..7 (1 = normal, 2 = verbose, |4 = stats)"), Napi::Value();
    if (logSize < 128 || logSize > (UINT32_MAX >> 2))
      return ThrowInvalid(env, op, "logSize must be between 128 bytes and 1 GiB"), Napi::Value();

    struct Slot {
      struct bpf_program* prog;
      char* buf;
    };
    std::vector<Slot> slots;
    struct bpf_program* p;
    bool setupFailed = false;
    bpf_object__for_each_program(p, obj_) {
      if (!bpf_program__autoload(p)) continue;
      char* buf = (char*)calloc(1, logSize);
      if (!buf) {
        setupFailed = true;
        break;
      }
      slots.push_back({p, buf});
      bpf_program__set_log_buf(p, buf, logSize);
      // Level 0 (default) lets libbpf retry a failing program with level 1 into our buffer.
      if (logLevel > 1) bpf_program__set_log_level(p, logLevel);
    }
    auto cleanup = [&]() {
      for (auto& s : slots) {
        bpf_program__set_log_buf(s.prog, nullptr, 0);
        free(s.buf);
      }
      slots.clear();
    };
    if (setupFailed) {
      cleanup();
      return ThrowErrno(env, op, ENOMEM, "cannot allocate verifier log buffers"), Napi::Value();
    }

    errno = 0;
    int err = bpf_object__load(obj_);
    if (err == 0) {
      cleanup();
      state_ = State::Loaded;
      return env.Undefined();
    }
    state_ = State::Failed;
    int e = err < 0 ? -err : (errno ? errno : EINVAL);

    // The failing program is the last one (in load order) that wrote a log: with the default level only
    // the failing program is retried with a log; with logLevel > 1 programs load in order and libbpf stops
    // at the first failure.
    const Slot* failed = nullptr;
    for (auto& s : slots)
      if (s.buf[0]) failed = &s;
    std::string progName, vlog;
    bool truncated = false;
    if (failed) {
      progName = bpf_program__name(failed->prog);
      vlog.assign(failed->buf, strnlen(failed->buf, logSize));
      truncated = e == ENOSPC || vlog.size() >= (size_t)logSize - 1;
    } else {
      progName = BlamedInLog();
    }
    cleanup();

    std::string detail;
    if (!progName.empty()) {
      if (failed) {
        std::string last = VerifierSummary(vlog);
        detail = "program '" + progName + "' was rejected" + (last.empty() ? "" : ": " + last);
      } else {
        detail = "program '" + progName + "' failed to load";
      }
    }
    Napi::Error error = MakeErrnoError(env, op, e, detail);
    if (failed) {
      error.Set("verifierLog", Napi::String::New(env, vlog));
      error.Set("logTruncated", Napi::Boolean::New(env, truncated));
    }
    if (!progName.empty()) error.Set("program", Napi::String::New(env, progName));
    error.ThrowAsJavaScriptException();
    return Napi::Value();
  }

  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "mapFd";
    struct bpf_map* m = FindMap(info, op);
    if (!m || !RequireLoaded(env, op)) return Napi::Value();
    int fd = bpf_map__fd(m);
    if (fd < 0)
      return ThrowState(env, op, std::string("map '") + MapName(m) + "' has no fd (not created)"), Napi::Value();
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) return ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", errno), Napi::Value();
    return Napi::Number::New(env, GiveFdToJs(env, dup));
  }

  Napi::Value ProgramFd(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "programFd";
    struct bpf_program* p = FindProgram(info, op);
    if (!p || !RequireLoaded(env, op)) return Napi::Value();
    int fd = bpf_program__fd(p);
    if (fd < 0)
      return ThrowState(env, op, std::string("program '") + bpf_program__name(p) + "' is not loaded (autoload off?)"),
             Napi::Value();
    return Napi::Number::New(env, fd);
  }

  // Common path of attach*: check state, run `fn`, wrap the link.
  template <typename F>
  Napi::Value DoAttach(const Napi::CallbackInfo& info, const char* op, F fn) {
    LogReset();
    Napi::Env env = info.Env();
    struct bpf_program* p = FindProgram(info, op);
    if (!p || !RequireLoaded(env, op)) return Napi::Value();
    if (bpf_program__fd(p) < 0)
      return ThrowState(env, op, std::string("program '") + bpf_program__name(p) + "' is not loaded (autoload off?)"),
             Napi::Value();
    errno = 0;
    struct bpf_link* link = fn(p);
    if (env.IsExceptionPending()) return Napi::Value();  // argument error inside fn
    long err = libbpf_get_error(link);
    if (!link || err) {
      int e = err ? (int)-err : (errno ? errno : EINVAL);
      return ThrowErrno(env, op, e), Napi::Value();
    }
    return NewNativeLink(env, link);
  }

  Napi::Value AttachAuto(const Napi::CallbackInfo& info) {
    return DoAttach(info, "bpf_program__attach", [&](struct bpf_program* p) { return bpf_program__attach(p); });
  }

  Napi::Value AttachTracepoint(const Napi::CallbackInfo& info) {
    const char* op = "bpf_program__attach_tracepoint";
    return DoAttach(info, op, [&](struct bpf_program* p) -> struct bpf_link* {
      std::string cat, name;
      if (!ArgString(info, 1, op, "category", &cat) || !ArgString(info, 2, op, "name", &name)) return nullptr;
      return bpf_program__attach_tracepoint(p, cat.c_str(), name.c_str());
    });
  }

  Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info) {
    const char* op = "bpf_program__attach_raw_tracepoint";
    return DoAttach(info, op, [&](struct bpf_program* p) -> struct bpf_link* {
      std::string name;
      if (!ArgString(info, 1, op, "name", &name)) return nullptr;
      return bpf_program__attach_raw_tracepoint(p, name.c_str());
    });
  }

  Napi::Value AttachTrace(const Napi::CallbackInfo& info) {
    return DoAttach(info, "bpf_program__attach_trace",
                    [&](struct bpf_program* p) { return bpf_program__attach_trace(p); });
  }

  Napi::Value AttachLsm(const Napi::CallbackInfo& info) {
    return DoAttach(info, "bpf_program__attach_lsm", [&](struct bpf_program* p) { return bpf_program__attach_lsm(p); });
  }

  Napi::Value AttachKprobe(const Napi::CallbackInfo& info) {
    const char* op = "bpf_program__attach_kprobe_opts";
    return DoAttach(info, op, [&](struct bpf_program* p) -> struct bpf_link* {
      bool ret;
      std::string func;
      int64_t off = 0;
      if (!ArgBool(info, 1, op, "retprobe", &ret) || !ArgString(info, 2, op, "func", &func)) return nullptr;
      if (!info[3].IsUndefined() && !ArgI64(info, 3, op, "offset", &off)) return nullptr;
      if (off < 0) return ThrowInvalid(info.Env(), op, "offset must be >= 0"), nullptr;
      struct bpf_kprobe_opts o;
      memset(&o, 0, sizeof(o));
      o.sz = sizeof(o);
      o.retprobe = ret;
      o.offset = (size_t)off;
      return bpf_program__attach_kprobe_opts(p, func.c_str(), &o);
    });
  }

  Napi::Value AttachUprobe(const Napi::CallbackInfo& info) {
    const char* op = "bpf_program__attach_uprobe_opts";
    return DoAttach(info, op, [&](struct bpf_program* p) -> struct bpf_link* {
      Napi::Env env = info.Env();
      if (!info[1].IsObject()) return ThrowType(env, op, "options must be an object"), nullptr;
      Napi::Object o = info[1].As<Napi::Object>();
      Napi::Value retv = o.Get("retprobe"), pidv = o.Get("pid"), pathv = o.Get("binaryPath"), offv = o.Get("offset"),
                  refv = o.Get("refCtrOffset"), cookiev = o.Get("cookie");
      if (env.IsExceptionPending()) return nullptr;
      if (!retv.IsBoolean()) return ThrowType(env, op, "retprobe must be a boolean"), nullptr;
      if (!pidv.IsNumber()) return ThrowType(env, op, "pid must be a number"), nullptr;
      if (!pathv.IsString()) return ThrowType(env, op, "binaryPath must be a string"), nullptr;
      if (!offv.IsNumber()) return ThrowType(env, op, "offset must be a number"), nullptr;
      double pid = pidv.As<Napi::Number>().DoubleValue();
      double off = offv.As<Napi::Number>().DoubleValue();
      if (pid < -1 || pid > 2147483647.0 || pid != (double)(int64_t)pid)
        return ThrowInvalid(env, op, "pid must be -1 (all processes) or a process id"), nullptr;
      if (off < 0 || off > 9007199254740991.0 || off != (double)(int64_t)off)
        return ThrowInvalid(env, op, "offset must be a non-negative integer file offset"), nullptr;
      double ref = 0;
      if (!refv.IsUndefined() && !refv.IsNull()) {
        if (!refv.IsNumber()) return ThrowType(env, op, "refCtrOffset must be a number"), nullptr;
        ref = refv.As<Napi::Number>().DoubleValue();
        if (ref < 0 || ref > 9007199254740991.0 || ref != (double)(int64_t)ref)
          return ThrowInvalid(env, op, "refCtrOffset must be a non-negative integer"), nullptr;
      }
      uint64_t cookie = 0;
      if (!cookiev.IsUndefined() && !cookiev.IsNull()) {
        if (!cookiev.IsBigInt()) return ThrowType(env, op, "cookie must be a bigint"), nullptr;
        bool lossless;
        cookie = cookiev.As<Napi::BigInt>().Uint64Value(&lossless);
        if (!lossless) return ThrowInvalid(env, op, "cookie must fit in 64 unsigned bits"), nullptr;
      }
      std::string path = pathv.As<Napi::String>().Utf8Value();
      struct bpf_uprobe_opts uo;
      memset(&uo, 0, sizeof(uo));
      uo.sz = sizeof(uo);
      uo.retprobe = retv.As<Napi::Boolean>().Value();
      uo.ref_ctr_offset = (size_t)ref;
      uo.bpf_cookie = cookie;
      uo.func_name = nullptr;
      return bpf_program__attach_uprobe_opts(p, (pid_t)pid, path.c_str(), (size_t)off, &uo);
    });
  }

  Napi::Value AttachCgroup(const Napi::CallbackInfo& info) {
    const char* op = "bpf_program__attach_cgroup";
    return DoAttach(info, op, [&](struct bpf_program* p) -> struct bpf_link* {
      int fd;
      if (!ArgFd(info, 1, op, &fd)) return nullptr;
      return bpf_program__attach_cgroup(p, fd);
    });
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    LogReset();
    Release();
    return info.Env().Undefined();
  }

  struct bpf_object* obj_ = nullptr;
  uint8_t* elfCopy_ = nullptr;
  size_t elfLen_ = 0;
  State state_ = State::Closed;
  std::vector<std::pair<const struct bpf_map*, std::string>> realNames_;
};

}  // namespace

Napi::Object InitObject(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeObject", NativeObject::Define(env));
  return exports;
}

}  // namespace bpfkit
