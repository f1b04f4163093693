// The CUDA addon's entry point (build/Release/cuda/reward_kernels_cuda.node, loaded by lib/cuda.ts
// only when a `cuda.*` function or a DeviceArray is used). The files of native/cuda_binding/
// register their functions with RK_REGISTER_BINDING into this module's own registry
// (native/binding/common.cc is linked into both addons).
#include "common.h"

static Napi::Object InitCudaAddon(Napi::Env env, Napi::Object exports) { return rkb::InitAll(env, exports); }
NODE_API_MODULE(reward_kernels_cuda, InitCudaAddon)
