// NativeRingReader: the kernel side of a BPF_MAP_TYPE_RINGBUF consumer, with zero copies.
//
// The ring is mmap'ed the way libbpf's ringbuf.c does it (consumer page RW at offset 0; producer page plus the
// data area mapped twice, RO, at offset page_size, so records that wrap are contiguous). JS gets the data area
// itself as an external ArrayBuffer (read-only memory) and reads records where the kernel wrote them. The
// addon offers three steps, and the JS RingBuffer drives them (ringbuf.ts):
//   window(cursor)            where unread bytes start and how many there are; JS walks the kernel's record
//                             headers itself while decoding (one pass over memory, as libbpf's callback does);
//   fill(offsets, max, cursor) the same walk done here, writing (offset, length) pairs for a RecordBatch;
//   advance(bytes)            gives the walked bytes back to producers (store-release of consumer_pos), only
//                             after JS has read them.
// A uv_poll_t on a dup of the map fd (on the environment's own loop) calls JS's onReadable once per wake-up;
// libuv's epoll is level-triggered, so a wake-up that left records behind fires again.
//
// Lifetimes: the mapping is shared by the reader and every ArrayBuffer made over it, and unmapped when the last
// lets go. close() cannot wait for the GC to drop the buffers, so it maps zero pages over the ring: the kernel's
// memory is freed at once, and a view kept past close() reads zeros instead of faulting.
// The JS callback lives in a hidden array on the reader object (traced by the GC, not a root), so an idle reader
// that the program drops is collected. While polling, the reader holds a strong reference to itself.
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "common.h"

namespace bpfkit {

namespace {

constexpr uint32_t kBusyBit = 1u << 31;     // BPF_RINGBUF_BUSY_BIT
constexpr uint32_t kDiscardBit = 1u << 30;  // BPF_RINGBUF_DISCARD_BIT
constexpr uint32_t kHdrSize = 8;            // BPF_RINGBUF_HDR_SZ

constexpr size_t kPrefetchAhead = 4096;
// fill() stops after this many bytes, so the batch is still in the CPU's L2 cache when JS walks it (measured:
// docs/benchmarks.md, "Session 7")
constexpr uint64_t kFillBytes = 512 * 1024;

// The producer page and the double-mapped data area, shared by the reader and the ArrayBuffers over it.
struct RingMapping {
  uint8_t* addr = nullptr;
  size_t len = 0;
  int refs = 1;  // the reader's
};

void UnrefMapping(RingMapping* m) {
  if (--m->refs > 0) return;
  munmap(m->addr, m->len);
  delete m;
}

// Finalizer of an ArrayBuffer over the data area (runs when its backing store is freed).
void OnDataBufferFreed(napi_env, void*, void* hint) { UnrefMapping(static_cast<RingMapping*>(hint)); }

class NativeRingReader;

}  // namespace

// Registry of the live readers of one environment, shared by AddonData and the async cleanup hook.
struct EnvRings {
  std::unordered_set<NativeRingReader*> live;
  int pending = 0;  // uv_close() calls whose close callback has not run yet
  int refs = 1;     // AddonData (+1 while the cleanup hook is registered)
  bool cleaning = false;
  napi_async_cleanup_hook_handle hook = nullptr;
};

// Freed when nothing owns it and no uv_close() callback will still touch it.
static void DropEnvRings(EnvRings* er) {
  if (--er->refs == 0 && er->pending == 0) delete er;
}

void ReleaseEnvRings(EnvRings* rings) { DropEnvRings(rings); }

namespace {

void FinishCleanup(EnvRings* er) {
  if (!er->hook) return;
  napi_async_cleanup_hook_handle h = er->hook;
  er->hook = nullptr;
  napi_remove_async_cleanup_hook(h);
  DropEnvRings(er);
}

// Kernel-side resources of one reader. The struct (it holds the uv_poll_t) outlives the JS object while a
// uv_close() is in flight; the mappings and the fd do not (see ReleaseKernelSide).
struct Ring {
  uv_poll_t poll;
  bool pollInit = false;
  int fd = -1;
  void* consMap = MAP_FAILED;
  size_t consLen = 0;
  RingMapping* mapping = nullptr;  // producer page + data area twice
  unsigned long* consumerPos = nullptr;
  const unsigned long* producerPos = nullptr;
  const uint8_t* data = nullptr;
  uint64_t mask = 0;
  EnvRings* env = nullptr;  // pending-close accounting
};

// Releases the ring and closes our fd. Safe right after uv_close() (libuv: the fd "can be safely closed
// immediately after a call to uv_poll_stop() or uv_close()"), so the kernel can free the ring's memory
// without waiting for the next loop iteration: a program that opens and closes rings in a synchronous
// loop must not accumulate them. ArrayBuffers still over the data area get zero pages in its place.
void ReleaseKernelSide(Ring* r) {
  if (RingMapping* m = r->mapping) {
    r->mapping = nullptr;
    if (m->refs > 1) {
      void* z = mmap(m->addr, m->len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      (void)z;  // on failure the ring stays mapped until the last buffer is collected
    }
    UnrefMapping(m);
  }
  if (r->consMap != MAP_FAILED) munmap(r->consMap, r->consLen);
  if (r->fd >= 0) close(r->fd);
  r->consMap = MAP_FAILED;
  r->fd = -1;
}

void FreeRing(Ring* r) {
  ReleaseKernelSide(r);
  delete r;
}

void OnRingClosed(uv_handle_t* h) {
  Ring* r = static_cast<Ring*>(h->data);
  EnvRings* er = r->env;
  FreeRing(r);
  if (er) {
    er->pending--;
    if (er->pending == 0) {
      if (er->cleaning && er->hook) {
        FinishCleanup(er);  // drops the hook's reference (and frees er if AddonData is gone)
      } else if (er->refs == 0) {
        delete er;
      }
    }
  }
}

// The cursor a JS caller passes to window() and fill(): a Float64Array of at least 4 entries.
enum Cursor { kStart = 0, kBytes = 1, kSameSize = 2, kDrained = 3, kCursorLen = 4 };

// The walk behind fill(): from the consumer position, without advancing it, notes where each committed record
// starts (in the data area mapped twice, so offsets are < 2 * size) until `limit` records, kFillBytes bytes, an
// uncommitted (busy) record or the producer position.
struct FillResult {
  uint32_t n = 0;         // records noted
  uint64_t bytes = 0;     // bytes walked, headers and discarded records included
  uint32_t sameSize = 0;  // the size of every record when they all have one and sit back to back, else 0
  bool drained = false;   // stopped because nothing more was ready
};

inline FillResult FillOffsets(const Ring* r, uint32_t* __restrict offs, uint32_t limit) {
  const uint8_t* ring = r->data;
  const uint64_t mask = r->mask;
  const uint64_t start = __atomic_load_n(r->consumerPos, __ATOMIC_RELAXED);  // only we write it
  uint64_t prod = __atomic_load_n(r->producerPos, __ATOMIC_ACQUIRE);
  uint64_t cons = start;
  uint32_t n = 0;
  uint32_t same = UINT32_MAX;  // not set yet
  bool gap = false;            // a discarded record between two noted ones breaks the stride
  FillResult res;
  while (n < limit && cons - start < kFillBytes) {
    if (cons >= prod) {
      prod = __atomic_load_n(r->producerPos, __ATOMIC_ACQUIRE);
      if (cons >= prod) {
        res.drained = true;
        break;
      }
    }
    const uint8_t* hdr = ring + (cons & mask);
    // Software prefetch one page ahead: the hardware streamer stops at page boundaries, and this also
    // warms the TLB for the (4 KiB-page, vmalloc'ed) ring. A prefetch never faults.
    __builtin_prefetch(hdr + kPrefetchAhead);
    uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t*>(hdr), __ATOMIC_ACQUIRE);
    if (len & kBusyBit) {
      res.drained = true;
      break;
    }
    uint32_t sz = len & ~(kBusyBit | kDiscardBit);
    if (len & kDiscardBit) {
      if (n) gap = true;
    } else {
      offs[2 * n] = (uint32_t)(cons & mask) + kHdrSize;
      offs[2 * n + 1] = sz;
      if (same != sz) same = same == UINT32_MAX ? sz : 0;
      n++;
    }
    cons += ((uint64_t)sz + kHdrSize + 7) & ~7ULL;
  }
  res.n = n;
  res.bytes = cons - start;
  res.sameSize = same == UINT32_MAX || gap ? 0 : same;
  return res;
}

class NativeRingReader : public Napi::ObjectWrap<NativeRingReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeRingReader",
                       {
                           InstanceMethod<&NativeRingReader::Start>("start"),
                           InstanceMethod<&NativeRingReader::Stop>("stop"),
                           InstanceMethod<&NativeRingReader::RefFn>("ref"),
                           InstanceMethod<&NativeRingReader::UnrefFn>("unref"),
                           InstanceMethod<&NativeRingReader::DataBuffer>("dataBuffer"),
                           InstanceMethod<&NativeRingReader::Window>("window"),
                           InstanceMethod<&NativeRingReader::FillFn>("fill"),
                           InstanceMethod<&NativeRingReader::Advance>("advance"),
                           InstanceMethod<&NativeRingReader::Available>("available"),
                           InstanceAccessor<&NativeRingReader::Size>("size"),
                           InstanceMethod<&NativeRingReader::Close>("close"),
                       });
  }

  explicit NativeRingReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeRingReader>(info) {
    LogReset();
    Napi::Env env = info.Env();
    env_ = env;
    const char* op = "NativeRingReader";
    int mapFd;
    if (!ArgFd(info, 0, op, &mapFd)) return;
    if (!info[1].IsFunction()) {
      ThrowType(env, op, "onReadable must be a function");
      return;
    }

    struct bpf_map_info mi;
    int err = MapInfoByFd(mapFd, &mi);
    if (err) {
      ThrowErrno(env, "bpf_obj_get_info_by_fd", err, "fd " + std::to_string(mapFd) + " is not a BPF map");
      return;
    }
    if (mi.type != BPF_MAP_TYPE_RINGBUF) {
      ThrowInvalid(env, op, "map '" + std::string(mi.name) + "' (fd " + std::to_string(mapFd) +
                                       ") is not a BPF_MAP_TYPE_RINGBUF (type " + std::to_string(mi.type) + ")");
      return;
    }
    if (mi.max_entries == 0 || (mi.max_entries & (mi.max_entries - 1)) != 0) {
      ThrowInvalid(env, op, "ring size is not a power of two");
      return;
    }
    // Offsets into the double-mapped data area are u32s, so it must stay below 4 GiB.
    if (mi.max_entries > (1u << 30)) {
      ThrowInvalid(env, op, "ring buffers larger than 1 GiB are not supported (this one has " +
                                std::to_string(mi.max_entries) + " bytes)");
      return;
    }

    Ring* r = new Ring();
    r->fd = fcntl(mapFd, F_DUPFD_CLOEXEC, 3);
    if (r->fd < 0) {
      int e = errno;
      FreeRing(r);
      ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", e);
      return;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    r->consLen = page;
    r->consMap = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (r->consMap == MAP_FAILED) {
      int e = errno;
      FreeRing(r);
      ThrowErrno(env, "mmap", e, "consumer page of the ring buffer");
      return;
    }
    size_t prodLen = page + 2 * (size_t)mi.max_entries;
    void* prod = mmap(nullptr, prodLen, PROT_READ, MAP_SHARED, r->fd, (off_t)page);
    if (prod == MAP_FAILED) {
      int e = errno;
      FreeRing(r);
      ThrowErrno(env, "mmap", e, "producer page and data area of the ring buffer");
      return;
    }
    r->mapping = new RingMapping();
    r->mapping->addr = static_cast<uint8_t*>(prod);
    r->mapping->len = prodLen;
    r->consumerPos = static_cast<unsigned long*>(r->consMap);
    r->producerPos = static_cast<const unsigned long*>(prod);
    r->data = static_cast<const uint8_t*>(prod) + page;
    r->mask = mi.max_entries - 1;
    size_ = mi.max_entries;

    // Hidden holder [onReadable] on `this`; a weak reference to the callback for the poll path.
    Napi::Array holder = Napi::Array::New(env, 1);
    holder.Set(0u, info[1]);
    AddonData* ad = GetAddonData(env);
    napi_property_descriptor d = {};
    d.name = ad->holderKey.Value();
    d.value = holder;
    d.attributes = napi_default;
    if (env.IsExceptionPending() || napi_define_properties(env, info.This(), 1, &d) != napi_ok ||
        napi_create_reference(env, info[1], 0, &fnRef_) != napi_ok) {
      FreeRing(r);
      if (!env.IsExceptionPending()) ThrowErrno(env, op, ENOMEM);
      return;
    }
    ring_ = r;
    er_ = ad->rings;
    if (er_) er_->live.insert(this);
  }

  ~NativeRingReader() override {
    // GC'd (idle) reader or environment teardown: release the ring. No JS-facing calls here.
    DoClose(true);
    if (fnRef_) napi_delete_reference(env_, fnRef_);
    fnRef_ = nullptr;
  }

  // Called by the environment's async cleanup hook.
  void CloseForCleanup() { DoClose(false); }

  static void OnPoll(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<NativeRingReader*>(h->data);
    if (!self || !self->ring_ || !self->polling_) return;
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    LogReset();
    if (status < 0) {
      self->StopPoll();
      Napi::Error e = MakeErrnoError(env, "uv_poll", -status, "ring buffer poll failed; polling stopped");
      napi_fatal_exception(env, e.Value());
      return;
    }
    // During environment teardown (or after JS dropped the reader's state) JS cannot be
    // called and throwing would be fatal: stop quietly instead.
    napi_value fn = nullptr;
    if (napi_get_reference_value(self->env_, self->fnRef_, &fn) != napi_ok || !fn) {
      self->StopPoll();
      return;
    }
    napi_value recv, result;
    napi_get_global(env, &recv);  // napi_make_callback needs an object; the callback does not use `this`
    if (napi_make_callback(env, self->actx_, recv, fn, 0, nullptr, &result) != napi_ok) ReportPending(env);
  }

 private:
  bool Alive(Napi::Env env, const char* op) {
    if (!ring_) {
      ThrowClosed(env, op, "NativeRingReader");
      return false;
    }
    return true;
  }

  void StopPoll() {
    if (polling_) {
      uv_poll_stop(&ring_->poll);
      polling_ = false;
    }
  }

  void DoClose(bool fromDestructor) {
    if (!ring_) return;
    StopPoll();
    if (actx_ && !fromDestructor) napi_async_destroy(env_, actx_);
    actx_ = nullptr;
    if (strong_ && !fromDestructor) Unref();
    strong_ = false;
    Ring* r = ring_;
    ring_ = nullptr;
    EnvRings* er = er_;
    er_ = nullptr;
    if (er) er->live.erase(this);
    if (r->pollInit) {
      r->poll.data = r;
      r->env = er;
      if (er) er->pending++;
      uv_close(reinterpret_cast<uv_handle_t*>(&r->poll), OnRingClosed);  // frees the Ring (holds the uv_poll_t)
      ReleaseKernelSide(r);
    } else {
      FreeRing(r);
    }
  }

  static void ReportPending(napi_env env) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) return;
    napi_value ex;
    if (napi_get_and_clear_last_exception(env, &ex) == napi_ok) napi_fatal_exception(env, ex);
  }

  // The Float64Array cursor argument of window() and fill().
  bool ArgCursor(const Napi::CallbackInfo& info, size_t i, const char* op, double** out) {
    if (info.Length() > i && info[i].IsTypedArray()) {
      Napi::TypedArray t = info[i].As<Napi::TypedArray>();
      if (t.TypedArrayType() == napi_float64_array && t.ElementLength() >= kCursorLen) {
        *out = t.As<Napi::Float64Array>().Data();
        return true;
      }
    }
    ThrowType(info.Env(), op, "cursor must be a Float64Array of at least 4 entries");
    return false;
  }

  // -------------------------------------------------------------------------

  // A new ArrayBuffer over the data area (read-only memory, twice the ring size). Each holds the mapping.
  Napi::Value DataBuffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env, "dataBuffer")) return Napi::Value();
    RingMapping* m = ring_->mapping;
    napi_value ab;
    napi_status st = napi_create_external_arraybuffer(env, const_cast<uint8_t*>(ring_->data), 2 * (size_t)size_,
                                                      OnDataBufferFreed, m, &ab);
    if (st != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (!pending)
        ThrowState(env, "napi_create_external_arraybuffer",
                   "this Node.js cannot make an ArrayBuffer over the ring's memory (is the V8 sandbox on?)");
      return Napi::Value();
    }
    m->refs++;
    return Napi::Value(env, ab);
  }

  // window(cursor): the unread bytes: cursor[kStart] = their offset in the data buffer, returns their number
  // (at most the ring size). JS walks the record headers itself, then calls advance().
  Napi::Value Window(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double* cur;
    if (!Alive(env, "window") || !ArgCursor(info, 0, "window", &cur)) return Napi::Value();
    uint64_t cons = __atomic_load_n(ring_->consumerPos, __ATOMIC_RELAXED);
    uint64_t prod = __atomic_load_n(ring_->producerPos, __ATOMIC_ACQUIRE);
    uint64_t len = prod > cons ? prod - cons : 0;
    if (len > size_) len = size_;
    cur[kStart] = (double)(cons & ring_->mask);
    cur[kBytes] = (double)len;
    return Napi::Number::New(env, (double)len);
  }

  // fill(offsets: Uint32Array, maxRecords, cursor): notes the next committed records as (offset, length) pairs
  // in `offsets`; returns their number. cursor[kBytes] = bytes to advance() by once JS has read them,
  // cursor[kSameSize] = their one size or 0, cursor[kDrained] = 1 when nothing more was ready.
  Napi::Value FillFn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "fill";
    if (!Alive(env, op)) return Napi::Value();
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      return ThrowType(env, op, "offsets must be a Uint32Array"), Napi::Value();
    Napi::Uint32Array offs = info[0].As<Napi::Uint32Array>();
    uint32_t max;
    double* cur;
    if (!ArgU32(info, 1, op, "maxRecords", &max) || !ArgCursor(info, 2, op, &cur)) return Napi::Value();
    size_t room = offs.ElementLength() / 2;
    if (max > room) max = (uint32_t)room;
    FillResult res = FillOffsets(ring_, offs.Data(), max);
    cur[kBytes] = (double)res.bytes;
    cur[kSameSize] = (double)res.sameSize;
    cur[kDrained] = res.drained ? 1 : 0;
    return Napi::Number::New(env, res.n);
  }

  // advance(bytes): the consumer has read this many bytes (whole records, as window() or fill() walked them);
  // their space goes back to the producers.
  Napi::Value Advance(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* op = "advance";
    int64_t bytes;
    if (!Alive(env, op) || !ArgI64(info, 0, op, "bytes", &bytes)) return Napi::Value();
    uint64_t cons = __atomic_load_n(ring_->consumerPos, __ATOMIC_RELAXED);
    uint64_t prod = __atomic_load_n(ring_->producerPos, __ATOMIC_ACQUIRE);
    if (bytes < 0 || (bytes & 7) != 0 || (uint64_t)bytes > prod - cons)
      return ThrowInvalid(env, op, "cannot advance by " + std::to_string(bytes) + " bytes (" + std::to_string(prod - cons) +
                                       " unread)"),
             Napi::Value();
    if (bytes) __atomic_store_n(ring_->consumerPos, (unsigned long)(cons + bytes), __ATOMIC_RELEASE);
    return env.Undefined();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "uv_poll_start";
    if (!Alive(env, op)) return Napi::Value();
    if (polling_) return env.Undefined();
    if (!ring_->pollInit) {
      uv_loop_s* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop)
        return ThrowState(env, op, "no event loop for this environment"), Napi::Value();
      int rc = uv_poll_init(loop, &ring_->poll, ring_->fd);
      if (rc != 0) return ThrowErrno(env, "uv_poll_init", -rc), Napi::Value();
      ring_->pollInit = true;
      ring_->poll.data = this;
      if (!refed_) uv_unref(reinterpret_cast<uv_handle_t*>(&ring_->poll));
    }
    if (!actx_) {
      napi_value name = Napi::String::New(env, "bpfkit:RingReader");
      if (napi_async_init(env, nullptr, name, &actx_) != napi_ok)
        return ThrowState(env, "napi_async_init", "cannot create the async context"), Napi::Value();
    }
    int rc = uv_poll_start(&ring_->poll, UV_READABLE, OnPoll);
    if (rc != 0) return ThrowErrno(env, op, -rc), Napi::Value();
    polling_ = true;
    if (!strong_) {
      Ref();
      strong_ = true;
    }
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    LogReset();
    if (!ring_) return info.Env().Undefined();  // nothing to stop after close()
    StopPoll();
    if (strong_) {
      Unref();
      strong_ = false;
    }
    return info.Env().Undefined();
  }

  Napi::Value RefFn(const Napi::CallbackInfo& info) {
    LogReset();
    if (!Alive(info.Env(), "uv_ref")) return Napi::Value();
    refed_ = true;
    if (ring_->pollInit) uv_ref(reinterpret_cast<uv_handle_t*>(&ring_->poll));
    return info.Env().Undefined();
  }

  Napi::Value UnrefFn(const Napi::CallbackInfo& info) {
    LogReset();
    if (!Alive(info.Env(), "uv_unref")) return Napi::Value();
    refed_ = false;
    if (ring_->pollInit) uv_unref(reinterpret_cast<uv_handle_t*>(&ring_->poll));
    return info.Env().Undefined();
  }

  Napi::Value Available(const Napi::CallbackInfo& info) {
    if (!Alive(info.Env(), "available")) return Napi::Value();
    uint64_t cons = __atomic_load_n(ring_->consumerPos, __ATOMIC_ACQUIRE);
    uint64_t prod = __atomic_load_n(ring_->producerPos, __ATOMIC_ACQUIRE);
    return Napi::Number::New(info.Env(), (double)(prod - cons));
  }

  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), size_); }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    LogReset();
    DoClose(false);
    return info.Env().Undefined();
  }

  napi_env env_ = nullptr;
  Ring* ring_ = nullptr;
  EnvRings* er_ = nullptr;
  napi_ref fnRef_ = nullptr;
  napi_async_context actx_ = nullptr;
  uint32_t size_ = 0;
  bool polling_ = false, refed_ = false, strong_ = false;
};

void AsyncCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  EnvRings* er = static_cast<EnvRings*>(arg);
  er->cleaning = true;
  er->hook = handle;
  std::vector<NativeRingReader*> live(er->live.begin(), er->live.end());
  for (NativeRingReader* r : live) r->CloseForCleanup();
  if (er->pending == 0) FinishCleanup(er);
}

}  // namespace

Napi::Object InitRingbuf(Napi::Env env, Napi::Object exports) {
  AddonData* ad = GetAddonData(env);
  EnvRings* er = new EnvRings();
  ad->rings = er;
  if (napi_add_async_cleanup_hook(env, AsyncCleanup, er, &er->hook) == napi_ok) er->refs++;
  exports.Set("NativeRingReader", NativeRingReader::Define(env));
  return exports;
}

}  // namespace bpfkit
