// CPU entry points of vocabDivergence (sync and Promise forms), on the op protocol (slots.h); the
// decoding is shared with the CUDA addon (ops/divergence.h). The CPU kernel takes one row mask: the
// mask slot and the labels (rows whose label is ignoreIndex drop out) are merged into it here.
#include "common.h"

#include <string>
#include <vector>

#include "ops/divergence.h"

namespace {

Napi::Value Divergence(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LD);
  const rkb::VocabDivergenceCall c = rkb::DecodeVocabDivergence(a, false);
  return rkb::Run(info, async, [c]() -> std::string {
    std::vector<uint8_t> merged;
    const uint8_t* mask = c.mask;
    if (c.labels) {
      merged.resize(static_cast<size_t>(c.logits.rows));
      for (size_t r = 0; r < merged.size(); ++r) merged[r] = c.labels[r] != c.ignore && (!c.mask || c.mask[r] != 0);
      mask = merged.data();
    }
    rk::Status st = rk::vocab_divergence(c.logits, c.target, mask, c.p, c.div, c.grad_scale, c.grad_rows, c.grad);
    if (st.ok()) return "";
    return "vocabDivergence: invalid arguments (code " + std::to_string(st.code) + ", " + std::to_string(st.index) + ")";
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(divergence, RK_DIVERGENCE_OPS);
