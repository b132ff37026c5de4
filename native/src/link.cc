// NativeLink: one libbpf bpf_link (a kernel attachment).
#include <bpf/libbpf.h>

#include "common.h"

namespace bpfkit {

namespace {

const napi_type_tag kLinkTag = {0x6270666b69744c6bULL, 0x4c696e6b45787431ULL};

class NativeLink : public Napi::ObjectWrap<NativeLink> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeLink",
                       {
                           InstanceAccessor<&NativeLink::Fd>("fd"),
                           InstanceMethod<&NativeLink::Pin>("pin"),
                           InstanceMethod<&NativeLink::Unpin>("unpin"),
                           InstanceMethod<&NativeLink::Destroy>("destroy"),
                       });
  }

  explicit NativeLink(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeLink>(info) {
    bool tagged = false;
    if (info.Length() >= 1 && info[0].IsExternal())
      napi_check_object_type_tag(info.Env(), info[0], &kLinkTag, &tagged);
    if (!tagged) {
      ThrowState(info.Env(), "NativeLink", "NativeLink cannot be constructed directly; use NativeObject.attach*()");
      return;
    }
    link_ = info[0].As<Napi::External<struct bpf_link>>().Data();
  }

  ~NativeLink() override {
    // Safety net for links the program forgot to destroy: detach now.
    if (link_) bpf_link__destroy(link_);
    link_ = nullptr;
  }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), link_ ? bpf_link__fd(link_) : -1);
  }

  Napi::Value Pin(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    if (!link_) return ThrowClosed(env, "bpf_link__pin", "NativeLink"), Napi::Value();
    std::string path;
    if (!ArgString(info, 0, "bpf_link__pin", "path", &path)) return Napi::Value();
    int err = bpf_link__pin(link_, path.c_str());
    if (err) return ThrowErrno(env, "bpf_link__pin", err), Napi::Value();
    return env.Undefined();
  }

  Napi::Value Unpin(const Napi::CallbackInfo& info) {
    LogReset();
    Napi::Env env = info.Env();
    if (!link_) return ThrowClosed(env, "bpf_link__unpin", "NativeLink"), Napi::Value();
    int err = bpf_link__unpin(link_);
    if (err) return ThrowErrno(env, "bpf_link__unpin", err), Napi::Value();
    return env.Undefined();
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    LogReset();
    if (link_) {
      struct bpf_link* l = link_;
      link_ = nullptr;
      int err = bpf_link__destroy(l);
      // The link is gone either way; report a detach failure once.
      if (err) return ThrowErrno(info.Env(), "bpf_link__destroy", err), Napi::Value();
    }
    return info.Env().Undefined();
  }

  struct bpf_link* link_ = nullptr;
};

}  // namespace

Napi::Value NewNativeLink(Napi::Env env, struct bpf_link* link) {
  AddonData* data = GetAddonData(env);
  Napi::Value ext = Napi::External<struct bpf_link>::New(env, link);
  napi_type_tag_object(env, ext, &kLinkTag);
  Napi::Object obj = data->linkCtor.New({ext});
  if (env.IsExceptionPending()) {
    bpf_link__destroy(link);
    return Napi::Value();
  }
  return obj;
}

Napi::Object InitLink(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = NativeLink::Define(env);
  GetAddonData(env)->linkCtor = Napi::Persistent(ctor);
  exports.Set("NativeLink", ctor);
  return exports;
}

}  // namespace bpfkit
