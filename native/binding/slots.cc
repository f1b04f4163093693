// The op protocol's decoding (slots.h), shared by the CPU and the CUDA addon.
#include "slots.h"

#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>
#ifdef __linux__
#include <sys/mman.h>
#endif

namespace rkb {

#ifdef __linux__
namespace {
// Big copy blocks are kept for the next Async call instead of unmapped: a fresh mapping costs a page
// fault per page on the main thread (most of the copy's time), a reused one only the copy. At most
// kCachedBlocks blocks and kCachedBytes in all stay mapped; process-wide, so worker threads share it.
constexpr size_t kCachedBlocks = 4;
constexpr size_t kCachedBytes = size_t{2} << 30;
struct BlockCache {
  std::mutex m;
  std::vector<std::pair<void*, size_t>> free;  // (address, size), most recently released last
  size_t bytes = 0;
};
BlockCache& Cache() {
  static BlockCache* c = new BlockCache();  // never destroyed: may be used while the process exits
  return *c;
}
// A cached block of at least `size` bytes and at most twice that, or nullptr.
void* TakeCached(size_t size, size_t* got) {
  BlockCache& c = Cache();
  std::lock_guard<std::mutex> lock(c.m);
  for (size_t i = c.free.size(); i-- > 0;) {
    if (c.free[i].second >= size && c.free[i].second <= 2 * size) {
      void* p = c.free[i].first;
      *got = c.free[i].second;
      c.bytes -= *got;
      c.free.erase(c.free.begin() + static_cast<std::ptrdiff_t>(i));
      return p;
    }
  }
  return nullptr;
}
void Release(void* p, size_t size) {
  BlockCache& c = Cache();
  {
    std::lock_guard<std::mutex> lock(c.m);
    if (size <= kCachedBytes) {
      c.free.emplace_back(p, size);
      c.bytes += size;
      p = nullptr;
      while (c.free.size() > kCachedBlocks || c.bytes > kCachedBytes) {  // drop the oldest
        munmap(c.free.front().first, c.free.front().second);
        c.bytes -= c.free.front().second;
        c.free.erase(c.free.begin());
      }
    }
  }
  if (p) munmap(p, size);
}
}  // namespace
#endif

// The native copies of an Async host call (slots.h): blocks of memory the slots point into, and what
// to copy back on the main thread when the kernel is done.
class HostSnapshot {
 public:
  // `bytes` of native memory whose address has the alignment of `like` modulo 64 (so a copy keeps
  // the caller's alignment, and the kernels take the same code paths as on the caller's memory).
  uint8_t* Alloc(Napi::Env env, size_t bytes, uintptr_t like) {
    Block b;
    b.size = bytes + 128;
#ifdef __linux__
    // Big copies: a cached block (below) or a fresh mapping populated in one go by the kernel
    // (MAP_POPULATE): faulting the pages in one at a time as memcpy touches them made a first 297 MiB
    // copy take 283-333 ms on the 2-core Xeon, 170-175 ms populated. Asking for transparent huge pages
    // instead (MADV_HUGEPAGE) took 1.2 s there: the kernel compacts memory for them on the spot.
    if (b.size >= (size_t{4} << 20)) {
      size_t got = 0;
      if (void* c = TakeCached(b.size, &got)) {
        b.mem = static_cast<uint8_t*>(c);
        b.size = got;
        b.mapped = true;
      }
    }
    if (!b.mem && b.size >= (size_t{4} << 20)) {
      void* m = mmap(nullptr, b.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (m != MAP_FAILED) {
        b.mem = static_cast<uint8_t*>(m);
        b.mapped = true;
      }
    }
#endif
    if (!b.mem) b.mem = new (std::nothrow) uint8_t[b.size];
    // Named by the entry point like every other allocation failure: "<call>Async: out of memory".
    if (!b.mem) throw std::bad_alloc();
    const uintptr_t base = reinterpret_cast<uintptr_t>(b.mem);
    uint8_t* p = b.mem + ((64 - base % 64) % 64) + like % 64;
    blocks_.push_back(b);
    return p;
  }
  HostSnapshot() = default;
  HostSnapshot(const HostSnapshot&) = delete;
  HostSnapshot& operator=(const HostSnapshot&) = delete;
  ~HostSnapshot() {
    for (Block& b : blocks_) {
#ifdef __linux__
      if (b.mapped) {
        Release(b.mem, b.size);
        continue;
      }
#endif
      delete[] b.mem;
    }
  }
  // Copies every present, non-shared host slot (byte ranges that overlap share one copy, at the same
  // relative offsets, so in-place and aliasing calls behave as on the caller's memory).
  void CopySlots(Napi::Env env, Slot* slots, size_t n);
  // A shared Int32 slot: indices are copied whatever their buffer.
  void CopyOne(Napi::Env env, Slot& s) {
    uint8_t* p = Alloc(env, s.bytes, reinterpret_cast<uintptr_t>(s.data));
    std::memcpy(p, s.data, s.bytes);
    s.data = p;
    s.copied = true;
  }
  void AddBack(Napi::Env env, napi_value v, const void* from, size_t bytes) {
    back_.push_back({Napi::Persistent(Napi::Object(env, v)), from, bytes});
  }
  // On the main thread: each output into its array as it is now, if it still has its byte length
  // (a detached array has 0; a view over a shrunk resizable ArrayBuffer has fewer).
  void CopyBack(Napi::Env env) {
    for (Back& b : back_) {
      void* data = nullptr;
      size_t bytes = 0;
      if (napi_get_buffer_info(env, b.ref.Value(), &data, &bytes) == napi_ok && bytes == b.bytes && data != nullptr)
        std::memcpy(data, b.from, bytes);
    }
  }

  std::vector<double> scalars;
  napi_value scalars_value = nullptr;  // valid during the call only (Done() takes a reference)

 private:
  struct Back {
    Napi::ObjectReference ref;
    const void* from;
    size_t bytes;
  };
  struct Block {
    uint8_t* mem = nullptr;
    size_t size = 0;
    bool mapped = false;  // mmap'ed (else new[])
  };
  std::vector<Block> blocks_;
  std::vector<Back> back_;
};

void HostSnapshot::CopySlots(Napi::Env env, Slot* slots, size_t n) {
  struct Range {
    uintptr_t start, end;
    size_t slot;
  };
  Range r[OpArgs::kMaxSlots];
  size_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    Slot& s = slots[i];
    if (!s.present || s.bytes == 0 || s.shared) continue;
    const uintptr_t a = reinterpret_cast<uintptr_t>(s.data);
    r[m++] = {a, a + s.bytes, i};
  }
  std::sort(r, r + m, [](const Range& x, const Range& y) { return x.start < y.start; });
  for (size_t j = 0; j < m;) {
    const uintptr_t start = r[j].start;
    uintptr_t end = r[j].end;
    size_t k = j + 1;
    for (; k < m && r[k].start < end; ++k) end = std::max(end, r[k].end);
    uint8_t* p = Alloc(env, end - start, start);
    std::memcpy(p, reinterpret_cast<const void*>(start), end - start);
    for (; j < k; ++j) {
      Slot& s = slots[r[j].slot];
      s.data = p + (r[j].start - start);
      s.copied = true;
    }
  }
}

namespace {

// Whether the view v is over a SharedArrayBuffer (never detached, never shrunk: usable in place).
bool OverShared(napi_env env, napi_value v) {
  napi_value ab = nullptr;
  if (napi_get_typedarray_info(env, v, nullptr, nullptr, nullptr, &ab, nullptr) != napi_ok &&
      napi_get_dataview_info(env, v, nullptr, nullptr, &ab, nullptr) != napi_ok)
    return false;
  bool is_ab = true;
  return napi_is_arraybuffer(env, ab, &is_ab) == napi_ok && !is_ab;
}

const char* SlotTypeName(SlotType t) {
  switch (t) {
    case SlotType::F32: return "Float32Array";
    case SlotType::U16: return "Uint16Array";
    case SlotType::I32: return "Int32Array";
    case SlotType::U8: return "Uint8Array";
    case SlotType::F64: return "Float64Array";
  }
  return "?";
}

bool HostType(napi_typedarray_type t, SlotType* out) {
  switch (t) {
    case napi_float32_array: *out = SlotType::F32; return true;
    case napi_uint16_array: *out = SlotType::U16; return true;
    case napi_int32_array: *out = SlotType::I32; return true;
    case napi_uint8_array: *out = SlotType::U8; return true;
    case napi_float64_array: *out = SlotType::F64; return true;
    default: return false;
  }
}

// Fills `s` (a fresh, zeroed slot) in place: a Slot built on the stack and copied in stalls on store
// forwarding (its small fields are stored, then read back as 16-byte blocks), a third of the cost
// of decoding a small call.
void HostSlot(Napi::Env env, napi_value v, const char* name, Slot& s) {
  void* data = nullptr;
  size_t bytes = 0;
  // napi_get_buffer_info takes any ArrayBufferView: the first element's address and the byte length.
  if (napi_get_buffer_info(env, v, &data, &bytes) != napi_ok) {
    napi_valuetype t = napi_undefined;
    napi_typeof(env, v, &t);
    if (t == napi_null || t == napi_undefined) return;
    throw Napi::TypeError::New(env, std::string(name) + ": expected a TypedArray or null");
  }
  if (bytes > 0 && data == nullptr) throw Napi::TypeError::New(env, std::string(name) + ": its ArrayBuffer is detached");
  s.data = data;
  s.bytes = bytes;
  s.value = v;
  s.present = true;
}

size_t SlotTypeSize(SlotType t) {
  switch (t) {
    case SlotType::F32: case SlotType::I32: return 4;
    case SlotType::U16: return 2;
    case SlotType::U8: return 1;
    case SlotType::F64: return 8;
  }
  return 1;
}

// Settles a host slot's element type: `types`' only one, or the array's own when several are allowed.
void Settle(Napi::Env env, Slot& s, std::initializer_list<SlotType> types, const char* name) {
  if (s.typed || !s.present) return;
  if (types.size() == 1) {
    s.type = *types.begin();
  } else {
    napi_typedarray_type t;
    size_t len = 0;
    if (napi_get_typedarray_info(env, s.value, &t, &len, nullptr, nullptr, nullptr) != napi_ok || !HostType(t, &s.type))
      throw Napi::TypeError::New(env, std::string(name) + ": unsupported TypedArray type");
  }
  const size_t size = SlotTypeSize(s.type);
  if (s.bytes % size != 0)
    throw Napi::RangeError::New(env, std::string(name) + ": expected a whole number of " + std::to_string(size) + "-byte elements");
  s.length = s.bytes / size;
  s.typed = true;
}

Slot DeviceSlot(Napi::Env env, napi_value raw, const char* name) {
  Slot s;
  Napi::Value v(env, raw);
  if (v.IsNull() || v.IsUndefined()) return s;
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(name) + ": expected [pointer, length, type] or null");
  Napi::Array a = v.As<Napi::Array>();
  Napi::Value p = a.Get(0u), n = a.Get(1u), t = a.Get(2u);
  if (!p.IsBigInt() || !n.IsNumber() || !t.IsNumber())
    throw Napi::TypeError::New(env, std::string(name) + ": expected [pointer: bigint, length, type]");
  bool lossless = false;
  const uint64_t ptr = p.As<Napi::BigInt>().Uint64Value(&lossless);
  const double len = n.As<Napi::Number>().DoubleValue();
  const double type = t.As<Napi::Number>().DoubleValue();
  if (!lossless || !(len >= 0 && len <= 9007199254740992.0) || std::floor(len) != len || !(type >= 0 && type <= 4) ||
      std::floor(type) != type)
    throw Napi::RangeError::New(env, std::string(name) + ": bad device slot");
  s.data = reinterpret_cast<void*>(static_cast<uintptr_t>(ptr));
  s.length = static_cast<size_t>(len);
  s.type = static_cast<SlotType>(static_cast<int>(type));
  s.typed = true;
  s.device = true;
  if (s.length > 0 && s.data == nullptr) throw Napi::TypeError::New(env, std::string(name) + ": null device pointer with a nonzero length");
  s.present = true;
  return s;
}

const double* Doubles(Napi::Env env, napi_value v, size_t want, const char* what, size_t* got) {
  *got = 0;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok) {
    napi_valuetype t = napi_undefined;
    napi_typeof(env, v, &t);
    if (want == 0 && (t == napi_null || t == napi_undefined)) return nullptr;
    throw Napi::TypeError::New(env, std::string(what) + ": expected a Float64Array");
  }
  if (type != napi_float64_array) throw Napi::TypeError::New(env, std::string(what) + ": expected a Float64Array");
  if (length != want)
    throw Napi::RangeError::New(env, std::string(what) + ": expected length " + std::to_string(want) + ", received " +
                                         std::to_string(length));
  if (length > 0 && data == nullptr) throw Napi::TypeError::New(env, std::string(what) + ": its ArrayBuffer is detached");
  *got = want;
  return static_cast<const double*>(data);
}

}  // namespace

OpArgs ReadOpArgs(const Napi::CallbackInfo& info, bool device, const char* const* slot_names, size_t num_slots,
                  size_t num_params, size_t num_scalars, bool snapshot) {
  Napi::Env env = info.Env();
  OpArgs a(env);
  a.names = slot_names;
  a.num_slots = num_slots;
  if (num_slots > OpArgs::kMaxSlots) throw Napi::Error::New(env, "slots: more than OpArgs::kMaxSlots");
  if (info.Length() != 2 + num_slots)
    throw Napi::RangeError::New(env, "expected params, scalars and " + std::to_string(num_slots) + " slots, received " +
                                         std::to_string(info.Length()) + " arguments");
  a.params = Doubles(env, info[0], num_params, "params", &a.num_params);
  a.scalars = const_cast<double*>(Doubles(env, info[1], num_scalars, "scalars", &a.num_scalars));
  for (size_t i = 0; i < num_slots; ++i)
    if (device) a.slots[i] = DeviceSlot(env, info[2 + i], a.names[i]);
    else HostSlot(env, info[2 + i], a.names[i], a.slots[i]);
  if (snapshot && !device) {
    a.snapshot = std::make_shared<HostSnapshot>();
    HostSnapshot& h = *a.snapshot;
    for (size_t i = 0; i < num_slots; ++i)
      if (a.slots[i].present) a.slots[i].shared = OverShared(env, a.slots[i].value);
    h.CopySlots(env, a.slots, num_slots);
    if (a.num_scalars > 0) {
      h.scalars.assign(a.scalars, a.scalars + a.num_scalars);
      h.scalars_value = info[1];
      a.scalars = h.scalars.data();
    }
  }
  return a;
}

const Slot& OpArgs::Need(int i, std::initializer_list<SlotType> types, int64_t want) const {
  Slot& s = slots[static_cast<size_t>(i)];
  const char* name = names[static_cast<size_t>(i)];
  if (!s.present) throw Napi::TypeError::New(env, std::string(name) + ": expected an array, received null");
  Settle(env, s, types, name);
  // An Int32 output (Out marks it first) is written, never read: it stays in place.
  if (s.type == SlotType::I32 && !s.out && !s.device && !s.copied && s.bytes > 0) CopyIndices(s, static_cast<size_t>(i));
  bool ok = false;
  for (SlotType t : types) ok = ok || s.type == t;
  if (!ok) {
    std::string allowed;
    for (SlotType t : types) allowed += (allowed.empty() ? "" : " or ") + std::string(SlotTypeName(t));
    throw Napi::TypeError::New(env, std::string(name) + ": expected " + allowed + ", received " + SlotTypeName(s.type));
  }
  if (want >= 0 && s.length != static_cast<size_t>(want))
    throw Napi::RangeError::New(env, std::string(name) + ": expected length " + std::to_string(want) + ", received " +
                                         std::to_string(s.length));
  return s;
}

const Slot& OpArgs::Maybe(int i, std::initializer_list<SlotType> types, int64_t want) const {
  const Slot& s = slots[static_cast<size_t>(i)];
  return s.present ? Need(i, types, want) : s;
}

// Int32 slots hold indices (targets, labels, group ids, lengths) that a kernel checks and then uses:
// they are copied, so that nothing (a Worker writing the SharedArrayBuffer a sync call reads, JS
// rewriting an Async call's targets) can change them between the check and the use. An Async call
// copies into its snapshot (only shared ones are left: ReadOpArgs copied the rest); a sync call into
// a per-thread buffer per slot (up to 64 KiB, reused: no allocation) or else a snapshot of its own.
void OpArgs::CopyIndices(Slot& s, size_t i) const {
  constexpr size_t kArenaBytes = 64 * 1024;
  if (!snapshot && s.bytes <= kArenaBytes) {
    thread_local std::vector<int32_t> arena[kMaxSlots];
    std::vector<int32_t>& v = arena[i];
    if (v.size() * sizeof(int32_t) < s.bytes) v.resize(kArenaBytes / sizeof(int32_t));
    std::memcpy(v.data(), s.data, s.bytes);
    s.data = v.data();
    s.copied = true;
    return;
  }
  if (!snapshot) snapshot = std::make_shared<HostSnapshot>();
  snapshot->CopyOne(env, s);
}

const Slot& OpArgs::Out(int i, std::initializer_list<SlotType> types, int64_t want) const {
  slots[static_cast<size_t>(i)].out = true;
  return Need(i, types, want);
}

const Slot& OpArgs::MaybeOut(int i, std::initializer_list<SlotType> types, int64_t want) const {
  const Slot& s = slots[static_cast<size_t>(i)];
  return s.present ? Out(i, types, want) : s;
}

Completion OpArgs::Done() const {
  if (!snapshot) return nullptr;
  HostSnapshot& h = *snapshot;
  for (size_t i = 0; i < num_slots; ++i) {
    const Slot& s = slots[i];
    if (s.present && s.out && s.copied && s.bytes > 0) h.AddBack(env, s.value, s.data, s.bytes);
  }
  if (h.scalars_value != nullptr) h.AddBack(env, h.scalars_value, h.scalars.data(), h.scalars.size() * sizeof(double));
  std::shared_ptr<HostSnapshot> keep = snapshot;
  return [keep](Napi::Env e) { keep->CopyBack(e); };
}

double OpArgs::Param(int i, const char* name, double lo, double hi) const {
  const double v = params[i];
  if (!(v >= lo && v <= hi))
    throw Napi::RangeError::New(env, std::string("params.") + name + ": expected a value in [" + JsNumber(lo) +
                                         ", " + JsNumber(hi) + "], received " + JsNumber(v));
  return v;
}

int OpArgs::Enum(int i, const char* name, int count) const {
  const double v = Param(i, name, 0, count - 1);
  if (std::floor(v) != v) throw Napi::RangeError::New(env, std::string("params.") + name + ": expected an integer code");
  return static_cast<int>(v);
}

std::vector<Napi::ObjectReference> KeepAlive(const Napi::CallbackInfo& info) {
  std::vector<Napi::ObjectReference> keep;
  for (size_t i = 0; i < info.Length(); ++i)
    if (info[i].IsTypedArray()) keep.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  return keep;
}

}  // namespace rkb
