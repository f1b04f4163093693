// The one native protocol of both addons, op(params, scalars, ...slots) (lib/op.ts), decoded once:
//   params   Float64Array of the packed options, read through the named offsets of layout.gen.h
//   scalars  Float64Array the kernel writes its scalar results into
//   slots    one argument per slot the op's descriptor declares, in its order: a TypedArray or null
//            (CPU addon), or [pointer: bigint, length, slot type code] or null (CUDA addon)
// Each op's decoder (native/binding/ops/<family>.h) turns an OpArgs into the kernel's argument struct
// and is shared by both addons: the CPU binding calls the C++ kernel with it, the CUDA binding the
// CUDA launch. Every length a kernel relies on is rechecked here, whatever the facade checked.
#pragma once
#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layout.gen.h"

namespace rkb {

// Slot element types (lib/op.ts SLOT_CODE). U16 holds bf16 or f16 bits; an option says which.
enum class SlotType : int { F32 = 0, U16 = 1, I32 = 2, U8 = 3, F64 = 4 };

struct Slot {
  void* data = nullptr;
  size_t length = 0;  // elements (once typed)
  SlotType type = SlotType::F32;
  bool present = false;
  // A host slot is read as (address, byte length), the one N-API call that does not walk the list of
  // TypedArray kinds; its element type is settled by Need/Maybe: the expected type where the decoder
  // accepts one (bounds come from the byte length, so any view stays memory-safe), the array's own
  // where it accepts several.
  bool typed = false;
  size_t bytes = 0;
  napi_value value = nullptr;
  // An output the kernel writes (marked by the decoder: OpArgs::Out / MaybeOut).
  bool out = false;
  // Async calls (HostSnapshot): `data` is native memory (a copy); `shared`: the caller's array is
  // over a SharedArrayBuffer and was left in place (not an Int32 slot).
  bool copied = false;
  bool shared = false;
  bool device = false;  // a device slot (CUDA addon): `data` is a device pointer
  template <typename T> T* as() const { return static_cast<T*>(data); }
};

// Async host calls work on native copies of the caller's arrays (docs/runtime.md, "Async calls and
// buffer safety"): whatever JavaScript does to an array while the call runs (transfer or detach it,
// let it be collected, shrink its resizable ArrayBuffer, rewrite its targets), the worker thread only
// touches memory this snapshot owns. Outputs are copied back on the main thread before the Promise
// settles, into the array as it is then, if it still has its byte length. Views over a
// SharedArrayBuffer (which can be neither detached nor shrunk, and which the call keeps alive) are
// used in place, except Int32 slots: indices are always copied.
class HostSnapshot;
// The on-main-thread completion of an Async call (rkb::Run runs it before settling the Promise).
using Completion = std::function<void(Napi::Env)>;

struct OpArgs {
  Napi::Env env;
  static constexpr size_t kMaxSlots = 16;  // the widest op (preferenceLoss) has 13
  mutable Slot slots[kMaxSlots];     // inline: no allocation per call
  size_t num_slots = 0;
  const char* const* names = nullptr;  // the slot names (layout.gen.h), for messages
  const double* params = nullptr;
  size_t num_params = 0;
  double* scalars = nullptr;
  size_t num_scalars = 0;

  explicit OpArgs(Napi::Env e) : env(e) {}
  const Slot& operator[](int i) const { return slots[static_cast<size_t>(i)]; }
  size_t size() const { return num_slots; }

  // The slot, which must be present, of one of `types`, of length `want` (when want >= 0).
  const Slot& Need(int i, std::initializer_list<SlotType> types, int64_t want = -1) const;
  // Same, but an absent slot is fine (returns it, present == false).
  const Slot& Maybe(int i, std::initializer_list<SlotType> types, int64_t want = -1) const;
  // Need / Maybe for an output the kernel writes (an Async call copies it back when it completes).
  const Slot& Out(int i, std::initializer_list<SlotType> types, int64_t want = -1) const;
  const Slot& MaybeOut(int i, std::initializer_list<SlotType> types, int64_t want = -1) const;
  // params[i] as a number in [lo, hi] (RangeError naming the option otherwise).
  double Param(int i, const char* name, double lo, double hi) const;
  // params[i] as an enum code in [0, count).
  int Enum(int i, const char* name, int count) const;
  Napi::Error Range(const std::string& msg) const { return Napi::RangeError::New(env, msg); }

  // Async host calls (ReadOpArgs with snapshot): the native copies the slots and scalars point into.
  mutable std::shared_ptr<HostSnapshot> snapshot;
  // What an Async call runs on the main thread when its kernel is done: copies the outputs and the
  // scalars back; keeps the copies alive until then. Empty without a snapshot (sync and device calls).
  Completion Done() const;

 private:
  void CopyIndices(Slot& s, size_t i) const;
};

// Reads the call's arguments as the protocol above. `device` selects the slot form; names are the
// descriptor's. `snapshot` (host Async calls): copy the host arrays and the scalars into native memory
// (HostSnapshot above); the decoder's Out / MaybeOut say which to copy back (OpArgs::Done).
OpArgs ReadOpArgs(const Napi::CallbackInfo& info, bool device, const char* const* slot_names, size_t num_slots,
                  size_t num_params, size_t num_scalars, bool snapshot = false);
// ReadOpArgs with the counts and names of op `L` (a namespace of layout.gen.h, e.g. rkl::policyLoss).
#define RK_READ_OP(info, device, L) \
  ::rkb::ReadOpArgs(info, device, L::kSlotNames, L::slot::kCount, L::param::kCount, L::scalar::kCount)
// A CPU call of op `L`: an Async one (async true) works on a HostSnapshot.
#define RK_READ_HOST_OP(info, async, L) \
  ::rkb::ReadOpArgs(info, false, L::kSlotNames, L::slot::kCount, L::param::kCount, L::scalar::kCount, async)

// The JS values to keep alive while an Async call runs (every TypedArray of the call).
std::vector<Napi::ObjectReference> KeepAlive(const Napi::CallbackInfo& info);

}  // namespace rkb
