#include "device.h"

#include <cuda_runtime.h>

#include <cstring>

namespace rkcuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

bool device_name(int i, char* buf, int len) {
  cudaDeviceProp prop;
  if (len <= 0 || cudaGetDeviceProperties(&prop, i) != cudaSuccess) return false;
  std::strncpy(buf, prop.name, static_cast<size_t>(len) - 1);
  buf[len - 1] = '\0';
  return true;
}

}  // namespace rkcuda
