// NativeRingReader: consumer of a BPF_MAP_TYPE_RINGBUF map.
//
// The ring is mmap'ed the way libbpf's ringbuf.c does it (consumer page RW at offset 0; producer page plus the
// data area mapped twice, RO, at offset page_size, so records that wrap are contiguous). Our own consumer loop
// copies committed records into one reusable JS ArrayBuffer (laid out as [offsets | data]: (offset, length)
// pairs first, then the record bytes), store-releases the consumer position for the whole batch, then calls JS
// once per batch. The per-batch path is a handful of N-API calls (buffer still attached? call), so small
// batches that stay in the CPU cache cost little more than big ones.
// A uv_poll_t on a dup of the map fd (on the environment's own loop) drives it; libuv's epoll is
// level-triggered, so a wake-up that delivered only maxBatchesPerWake batches fires again while data remains.
//
// Object lifetime: the JS callback and the buffer live in a hidden array on the reader object (traced by
// the GC, not a root), so an idle reader that the program drops is collected and its finalizer unmaps the ring.
// While polling, the reader holds a strong reference to itself (like an active handle).
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdlib>
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

// Copies one record payload. Small records (the common case) are copied in whole 32-byte chunks without a
// libc call: that may read up to 31 bytes past the payload (still inside the double-mapped data area, which
// is at least one page longer than any record of <= 256 bytes can reach) and write up to 31 bytes of padding
// past it (only when the destination has room; the next record overwrites them).
inline void CopyRecord(uint8_t* dst, const uint8_t* src, uint32_t sz, size_t room) {
  size_t chunked = ((size_t)sz + 31) & ~(size_t)31;
  if (sz <= 256 && chunked <= room) {
    for (size_t i = 0; i < chunked; i += 32) __builtin_memcpy(dst + i, src + i, 32);
  } else {
    memcpy(dst, src, sz);
  }
}

// Writes one byte per page so a fresh (calloc'ed, not yet faulted) buffer is resident before records arrive.
inline void Prefault(void* p, size_t len) {
  volatile uint8_t* b = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < len; i += 4096) b[i] = 0;
}

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
  void* prodMap = MAP_FAILED;
  size_t prodLen = 0;
  unsigned long* consumerPos = nullptr;
  const unsigned long* producerPos = nullptr;
  const uint8_t* data = nullptr;
  uint64_t mask = 0;
  EnvRings* env = nullptr;  // pending-close accounting
};

// Unmaps the ring and closes our fd. Safe right after uv_close() (libuv: the fd "can be safely closed
// immediately after a call to uv_poll_stop() or uv_close()"), so the kernel can free the ring's memory
// without waiting for the next loop iteration: a program that opens and closes rings in a synchronous
// loop must not accumulate them.
void ReleaseKernelSide(Ring* r) {
  if (r->prodMap != MAP_FAILED) munmap(r->prodMap, r->prodLen);
  if (r->consMap != MAP_FAILED) munmap(r->consMap, r->consLen);
  if (r->fd >= 0) close(r->fd);
  r->prodMap = r->consMap = MAP_FAILED;
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

struct BatchBufs {
  napi_value fn = nullptr, buffer = nullptr;
};

enum class FillStop { Limit, Empty, Busy, Full, NeedGrow };

struct Fill {
  uint64_t cons = 0;     // in: consumer position; out: position after the last record taken
  uint32_t n = 0;        // records copied
  uint32_t needSize = 0; // NeedGrow: size of the record that does not fit
  uint32_t sameSize = 0; // the size of every record copied when they all have one size, else 0
};

// The hot loop: copies committed records from the ring into dst (8-byte aligned offsets) until `limit`
// records, a full dst, an uncommitted (busy) record or the producer position.
inline FillStop FillBatch(const Ring* r, uint8_t* __restrict dst, size_t cap, uint32_t* __restrict offs,
                          uint32_t limit, Fill* f) {
  const uint8_t* ring = r->data;
  const uint64_t mask = r->mask;
  const unsigned long* prodPtr = r->producerPos;
  uint64_t cons = f->cons;
  uint64_t prod = __atomic_load_n(prodPtr, __ATOMIC_ACQUIRE);
  size_t off = 0;
  uint32_t n = 0;
  uint32_t same = UINT32_MAX;  // not set yet
  FillStop why = FillStop::Limit;
  while (n < limit) {
    if (cons >= prod) {
      prod = __atomic_load_n(prodPtr, __ATOMIC_ACQUIRE);
      if (cons >= prod) {
        why = FillStop::Empty;
        break;
      }
    }
    const uint8_t* hdr = ring + (cons & mask);
    // Software prefetch one page ahead: the hardware streamer stops at page boundaries, and this also
    // warms the TLB for the (4 KiB-page, vmalloc'ed) ring. A prefetch never faults.
    __builtin_prefetch(hdr + kPrefetchAhead);
    uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t*>(hdr), __ATOMIC_ACQUIRE);
    if (len & kBusyBit) {
      why = FillStop::Busy;
      break;
    }
    uint32_t sz = len & ~(kBusyBit | kDiscardBit);
    if (!(len & kDiscardBit)) {
      if (off + sz > cap) {
        if (n == 0) {
          f->needSize = sz;
          why = FillStop::NeedGrow;
        } else {
          why = FillStop::Full;  // deliver what we have; this record starts the next batch
        }
        break;
      }
      CopyRecord(dst + off, hdr + kHdrSize, sz, cap - off);
      offs[2 * n] = (uint32_t)off;
      offs[2 * n + 1] = sz;
      if (same != sz) same = same == UINT32_MAX ? sz : 0;
      n++;
      off += ((size_t)sz + 7) & ~(size_t)7;
    }
    cons += ((uint64_t)sz + kHdrSize + 7) & ~7ULL;
  }
  f->cons = cons;
  f->n = n;
  f->sameSize = same == UINT32_MAX ? 0 : same;
  return why;
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
                           InstanceMethod<&NativeRingReader::Consume>("consume"),
                           InstanceMethod<&NativeRingReader::Available>("available"),
                           InstanceAccessor<&NativeRingReader::Size>("size"),
                           InstanceAccessor<&NativeRingReader::DataOffset>("dataOffset"),
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
      ThrowType(env, op, "onBatch must be a function");
      return;
    }
    uint32_t bufferSize = 4u << 20, maxRecords = 65536, maxBatches = 16;
    if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
      if (!info[2].IsObject()) {
        ThrowType(env, op, "options must be an object");
        return;
      }
      Napi::Object o = info[2].As<Napi::Object>();
      if (!OptU32(env, o, "bufferSize", op, &bufferSize) || !OptU32(env, o, "maxRecordsPerBatch", op, &maxRecords) ||
          !OptU32(env, o, "maxBatchesPerWake", op, &maxBatches))
        return;
    }
    if (bufferSize < 8 || bufferSize > (1u << 30)) {
      ThrowInvalid(env, op, "bufferSize must be 8 bytes .. 1 GiB");
      return;
    }
    if (maxRecords < 1 || maxRecords > (1u << 24)) {
      ThrowInvalid(env, op, "maxRecordsPerBatch must be 1 .. 16777216");
      return;
    }
    if (maxBatches < 1) {
      ThrowInvalid(env, op, "maxBatchesPerWake must be >= 1");
      return;
    }
    dataCap_ = (bufferSize + 7) & ~7u;
    maxRecords_ = maxRecords;
    dataOffset_ = (size_t)maxRecords * 8;
    maxBatchesPerWake_ = maxBatches;

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
    r->prodLen = page + 2 * (size_t)mi.max_entries;
    r->prodMap = mmap(nullptr, r->prodLen, PROT_READ, MAP_SHARED, r->fd, (off_t)page);
    if (r->prodMap == MAP_FAILED) {
      int e = errno;
      FreeRing(r);
      ThrowErrno(env, "mmap", e, "producer page and data area of the ring buffer");
      return;
    }
    r->consumerPos = static_cast<unsigned long*>(r->consMap);
    r->producerPos = static_cast<const unsigned long*>(r->prodMap);
    r->data = static_cast<const uint8_t*>(r->prodMap) + page;
    r->mask = mi.max_entries - 1;
    size_ = mi.max_entries;

    // Hidden holder [onBatch, buffer] on `this`; weak references to both for the per-batch path.
    Napi::Array holder = Napi::Array::New(env, 2);
    holder.Set(0u, info[1]);
    AddonData* ad = GetAddonData(env);
    napi_property_descriptor d = {};
    d.name = ad->holderKey.Value();
    d.value = holder;
    d.attributes = napi_default;
    BatchBufs b;
    if (env.IsExceptionPending() || napi_define_properties(env, info.This(), 1, &d) != napi_ok ||
        napi_create_reference(env, holder, 0, &holder_) != napi_ok ||
        napi_create_reference(env, info[1], 0, &fnRef_) != napi_ok || !NewBuffer(env, dataCap_, &b)) {
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
    for (napi_ref* ref : {&holder_, &fnRef_, &bufRef_}) {
      if (*ref) napi_delete_reference(env_, *ref);
      *ref = nullptr;
    }
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
    self->Drain(env, UINT64_MAX, self->maxBatchesPerWake_, true);
  }

 private:
  bool Alive(Napi::Env env, const char* op) {
    if (!ring_ || closeRequested_) {
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
    if (inBatch_ && !fromDestructor) {  // close() from inside onBatch: finish the batch first
      closeRequested_ = true;
      StopPoll();
      return;
    }
    StopPoll();
    if (actx_ && !fromDestructor) napi_async_destroy(env_, actx_);
    actx_ = nullptr;
    if (strong_ && !fromDestructor) Unref();
    strong_ = false;
    Ring* r = ring_;
    ring_ = nullptr;
    closeRequested_ = false;
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

  // Fetches the callback and the buffer; replaces the buffer if JS detached it (for example by transferring it).
  // The hot path: two reference lookups and one detach check; the raw pointers are cached in the reader.
  bool GetBufs(napi_env env, BatchBufs* b) {
    if (napi_get_reference_value(env, fnRef_, &b->fn) != napi_ok || !b->fn) {
      ThrowState(env, "NativeRingReader", "internal state of the reader was collected");
      return false;
    }
    bool detached = true;
    if (napi_get_reference_value(env, bufRef_, &b->buffer) == napi_ok && b->buffer &&
        napi_is_detached_arraybuffer(env, b->buffer, &detached) == napi_ok && !detached)
      return true;
    return NewBuffer(env, dataCap_, b);
  }

  // Allocates the [offsets | data] buffer with `cap` data bytes and makes it the current one.
  bool NewBuffer(napi_env env, size_t cap, BatchBufs* b) {
    napi_value holder;
    if (napi_get_reference_value(env, holder_, &holder) != napi_ok || !holder) {
      ThrowState(env, "NativeRingReader", "internal state of the reader was collected");
      return false;
    }
    void* p;
    napi_value ab;
    if (napi_create_arraybuffer(env, dataOffset_ + cap, &p, &ab) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (!pending)
        ThrowErrno(env, "NativeRingReader", ENOMEM, "cannot allocate a " + std::to_string(dataOffset_ + cap) + "-byte buffer");
      return false;
    }
    napi_ref ref;
    if (napi_set_element(env, holder, 1, ab) != napi_ok || napi_create_reference(env, ab, 0, &ref) != napi_ok) return false;
    if (bufRef_) napi_delete_reference(env, bufRef_);
    bufRef_ = ref;
    Prefault(p, dataOffset_ + cap);
    offsets_ = static_cast<uint32_t*>(p);
    data_ = static_cast<uint8_t*>(p) + dataOffset_;
    dataCap_ = cap;
    b->buffer = ab;
    return true;
  }

  // A record larger than the data area: a bigger buffer (kept for later batches).
  bool Grow(napi_env env, uint32_t need, BatchBufs* b) {
    size_t cap = dataCap_ * 2;
    size_t want = ((size_t)need + 7) & ~(size_t)7;
    if (cap < want) cap = want;
    if (cap > ((size_t)1 << 31)) cap = want;
    return NewBuffer(env, cap, b);
  }

  // Calls onBatch(count, buffer, drained, sameSize). Returns false when it threw (poll path: reported as an
  // uncaught exception). `drained`: the ring was empty (or the next record still being written) when the batch
  // ended. `sameSize`: every record has this size (then record i starts at i * round_up(sameSize, 8)), or 0.
  bool Deliver(napi_env env, const BatchBufs& b, uint32_t n, bool drained, uint32_t sameSize, bool fromPoll) {
    napi_value argv[4];
    napi_value recv;
    napi_create_uint32(env, n, &argv[0]);
    argv[1] = b.buffer;
    napi_get_boolean(env, drained, &argv[2]);
    napi_create_uint32(env, sameSize, &argv[3]);
    napi_get_global(env, &recv);  // napi_make_callback needs an object; the callback does not use `this`
    napi_value result;
    inBatch_ = true;
    napi_status st = fromPoll ? napi_make_callback(env, actx_, recv, b.fn, 4, argv, &result)
                              : napi_call_function(env, recv, b.fn, 4, argv, &result);
    inBatch_ = false;
    if (st == napi_ok) return true;
    if (fromPoll) ReportPending(env);
    return false;
  }

  static void ReportPending(napi_env env) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) return;
    napi_value ex;
    if (napi_get_and_clear_last_exception(env, &ex) == napi_ok) napi_fatal_exception(env, ex);
  }

  // The consumer loop. Delivers at most maxRecords records in at most maxBatches onBatch calls.
  uint64_t Drain(Napi::Env env, uint64_t maxRecords, uint32_t maxBatches, bool fromPoll) {
    uint64_t delivered = 0;
    Ring* r = ring_;
    bool failed = false;
    for (uint32_t batch = 0; batch < maxBatches && delivered < maxRecords; batch++) {
      BatchBufs b;
      if (!GetBufs(env, &b)) {
        failed = true;
        break;
      }
      uint64_t limit = maxRecords - delivered;
      if (limit > maxRecords_) limit = maxRecords_;
      Fill f;
      f.cons = __atomic_load_n(r->consumerPos, __ATOMIC_ACQUIRE);
      uint64_t startCons = f.cons;
      FillStop why = FillBatch(r, data_, dataCap_, offsets_, (uint32_t)limit, &f);
      if (why == FillStop::NeedGrow) {  // first record of the batch does not fit the buffer
        if (Grow(env, f.needSize, &b)) {
          why = FillBatch(r, data_, dataCap_, offsets_, (uint32_t)limit, &f);
        } else {
          failed = true;
        }
      }
      uint32_t n = f.n;
      uint64_t cons = f.cons;
      bool advanced = cons != startCons, busy = why == FillStop::Busy;
      bool drained = busy || why == FillStop::Empty;
      if (failed && n == 0 && !advanced) break;
      // The records are already copied out of the ring, so the space goes back to the
      // producers before JS runs: code that runs inside the callback (including promise
      // continuations drained by napi_make_callback) then sees a consistent ring.
      if (advanced) __atomic_store_n(r->consumerPos, (unsigned long)cons, __ATOMIC_RELEASE);
      bool ok = true;
      if (n) ok = Deliver(env, b, n, drained, f.sameSize, fromPoll);
      delivered += n;
      if (!ok) return FinishDrain(delivered);  // exception pending (consume) or already reported (poll)
      if (failed || !advanced || busy || closeRequested_ || (fromPoll && !polling_)) break;
    }
    if (failed && fromPoll) {  // allocation failure in the poll path: stop, report
      StopPoll();
      ReportPending(env);
    }
    return FinishDrain(delivered);
  }

  uint64_t FinishDrain(uint64_t delivered) {
    if (closeRequested_) {
      closeRequested_ = false;
      DoClose(false);
    }
    return delivered;
  }

  // -------------------------------------------------------------------------

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

  Napi::Value Consume(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    const char* op = "consume";
    if (!Alive(env, op)) return Napi::Value();
    if (inBatch_)
      return ThrowState(env, op, "consume() cannot be called from inside onBatch"), Napi::Value();
    uint64_t max = UINT64_MAX;
    if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
      int64_t v;
      if (!ArgI64(info, 0, op, "maxRecords", &v)) return Napi::Value();
      if (v < 0) return ThrowInvalid(env, op, "maxRecords must be >= 0"), Napi::Value();
      max = (uint64_t)v;
    }
    if (max == 0) return Napi::Number::New(env, 0);
    uint64_t n = Drain(env, max, UINT32_MAX, false);
    if (env.IsExceptionPending()) return Napi::Value();
    return Napi::Number::New(env, (double)n);
  }

  Napi::Value Available(const Napi::CallbackInfo& info) {
    if (!Alive(info.Env(), "available")) return Napi::Value();
    uint64_t cons = __atomic_load_n(ring_->consumerPos, __ATOMIC_ACQUIRE);
    uint64_t prod = __atomic_load_n(ring_->producerPos, __ATOMIC_ACQUIRE);
    return Napi::Number::New(info.Env(), (double)(prod - cons));
  }

  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), size_); }

  Napi::Value DataOffset(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)dataOffset_); }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    LogReset();
    DoClose(false);
    return info.Env().Undefined();
  }

  napi_env env_ = nullptr;
  Ring* ring_ = nullptr;
  EnvRings* er_ = nullptr;
  napi_ref holder_ = nullptr, fnRef_ = nullptr, bufRef_ = nullptr;
  // The current buffer: [offsets (dataOffset_ bytes) | data (dataCap_ bytes)].
  uint32_t* offsets_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t dataOffset_ = 0, dataCap_ = 0;
  napi_async_context actx_ = nullptr;
  uint32_t size_ = 0;
  uint32_t maxRecords_ = 0, maxBatchesPerWake_ = 0;
  bool polling_ = false, refed_ = false, strong_ = false, inBatch_ = false, closeRequested_ = false;
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
