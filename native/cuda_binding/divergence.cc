// CUDA entry points of vocabDivergence (cuda/divergence.h), sync and Promise forms, on the op
// protocol (native/binding/slots.h) with the decoding shared with the CPU addon (ops/divergence.h).
// The kernel itself refuses a gradient that overlaps the target or partly overlaps the logits.
// Labels are only compared on the device (no bad-row slot), so the only errors after the launch are
// CUDA errors. The call waits for the legacy default stream (the Promise form waits on a libuv
// thread), like the log-prob entry points.
#include <cuda_runtime.h>

#include <string>

#include "cuda_common.h"
#include "divergence.h"
#include "ops/divergence.h"

namespace {

static_assert(rkcuda::kForwardKL == static_cast<int>(rk::DivergenceKind::ForwardKL) &&
                  rkcuda::kReverseKL == static_cast<int>(rk::DivergenceKind::ReverseKL) &&
                  rkcuda::kJSD == static_cast<int>(rk::DivergenceKind::JSD),
              "rkcuda::DivergenceKind and rk::DivergenceKind disagree");

Napi::Value Divergence(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LD);
  const rkb::VocabDivergenceCall c = rkb::DecodeVocabDivergence(oa, true);
  rkcuda::DivergenceArgs a;
  a.logits = c.logits.data;
  a.target = c.target.data;
  a.dtype = static_cast<int>(c.logits.dtype);
  a.rows = c.logits.rows;
  a.vocab = c.logits.vocab;
  a.kind = static_cast<int>(c.p.kind);
  a.beta = c.p.beta;
  a.temperature = static_cast<float>(c.p.temperature);
  a.row_mask = c.mask;
  a.labels = c.labels;
  a.ignore_index = c.ignore;
  a.div = c.div;
  a.grad = c.grad;
  a.grad_scale = c.grad_scale;
  a.grad_rows = c.grad_rows;
  // The kernels are asynchronous on the stream: wait for them so errors surface in this call.
  return rkcb::RunDevice(
      info, async,
      [a]() {
        rkcuda::Result r = rkcuda::vocab_divergence(a, nullptr);
        if (!r.ok()) return r;
        const cudaError_t e = cudaStreamSynchronize(nullptr);
        if (e != cudaSuccess) {
          r.code = rkcuda::kCudaError;
          r.cuda_error = static_cast<int>(e);
          r.where = "vocab_divergence (cudaStreamSynchronize)";
        }
        return r;
      },
      // never called: vocab_divergence has no bad-target result
      [](int64_t row, int64_t y) { return "labels[" + std::to_string(row) + "]: unexpected value " + std::to_string(y); });
}

}  // namespace

RK_REGISTER_OPS(cuda_divergence, RK_DIVERGENCE_OPS);
