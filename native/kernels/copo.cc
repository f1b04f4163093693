// copoAdvantages on the CPU: the groups in order on the calling thread (each is O(G^2) in its
// answers), then the batch statistics over the groups in order, then the outputs per group. No
// thread splits a sum, so the result cannot depend on the thread count.
#include "copo.h"

#include <vector>

namespace rk {

void copo_advantages(const CopoArgs& a, float* entropy, float* global_reward, float* local_adv, float* global_adv,
                     float* gates) {
  const int64_t Q = a.num_groups;
  std::vector<double> H(static_cast<size_t>(Q)), R(static_cast<size_t>(Q));
  for (int64_t g = 0; g < Q; ++g) core::copo_group(a, g, entropy, global_reward, local_adv, &H[g], &R[g]);
  double mean = 0, sd = 0;
  core::copo_batch_stats(R.data(), Q, &mean, &sd);
  for (int64_t g = 0; g < Q; ++g) core::copo_group_out(a, g, H[g], R[g], mean, sd, local_adv, global_adv, gates);
}

}  // namespace rk
