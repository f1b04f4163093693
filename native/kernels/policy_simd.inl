// The hot loop of policy.cc that vectorises, compiled once per ISA (see simd.h). Included by
// policy_avx512.cc, policy_avx2.cc and policy_scalar.cc.
#include "policy.h"
#include "simd.h"

namespace rk {
namespace RK_ISA_NS {
namespace {

// out[i] = exp(clamp(a[i] - b[i], lo, hi)) in f32 (~2e-7 relative); a NaN difference stays NaN.
void exp_diff(const float* a, const float* b, int64_t n, float lo, float hi, float* out) {
  const VF vlo = set1(lo), vhi = set1(hi), l2e = set1(kLog2e);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    VF d = load(a + i) - load(b + i);
    d = vmax(vlo, vmin(vhi, d));  // operand order keeps a NaN d
    store(out + i, exp2v(d * l2e));
  }
  if (i < n) {
    VF d = load_tail_dt<kF32>(a, i, n - i, 0.0f) - load_tail_dt<kF32>(b, i, n - i, 0.0f);
    d = vmax(vlo, vmin(vhi, d));
    store_tail(out + i, n - i, exp2v(d * l2e));
  }
}

// out[i] = exp(clamp(x[i], lo, hi)) in f32.
void exp_clamped(const float* x, int64_t n, float lo, float hi, float* out) {
  const VF vlo = set1(lo), vhi = set1(hi), l2e = set1(kLog2e);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) store(out + i, exp2v(vmax(vlo, vmin(vhi, load(x + i))) * l2e));
  if (i < n) {
    VF v = load_tail_dt<kF32>(x, i, n - i, 0.0f);
    store_tail(out + i, n - i, exp2v(vmax(vlo, vmin(vhi, v)) * l2e));
  }
}

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
const PolicyKernels& RK_CAT(policy_kernels_, RK_ISA_NS)() {
  static const PolicyKernels k{&RK_ISA_NS::exp_diff, &RK_ISA_NS::exp_clamped};
  return k;
}
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
