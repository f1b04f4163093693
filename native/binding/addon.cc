// The CPU addon's entry point (reward_kernels.node): every file of native/binding/ registers its
// functions with RK_REGISTER_BINDING; common.cc stays free of NODE_API_MODULE so the CUDA addon
// (native/cuda_binding/addon.cc) can link it too.
#include "common.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return rkb::InitAll(env, exports); }
NODE_API_MODULE(reward_kernels, InitAddon)
