// CUDA device discovery shared by the CUDA kernel families (kernels arrive with the CUDA issue).
#pragma once

namespace rkcuda {

// Number of CUDA devices, 0 when there is no driver or no device (never throws).
int device_count();
// Name of device `i` into buf (at most len bytes, NUL-terminated); false when it cannot be read.
bool device_name(int i, char* buf, int len);

}  // namespace rkcuda
