#!/usr/bin/env bash
# npm run test:tsan: the thread pool (native/kernels/threadpool.cc) under ThreadSanitizer, driven by
# rk_driver's pool check (native/driver/pool_check.cc: small jobs from three threads while the pool
# is resized, and jobs that throw). Built here with g++ -fsanitize=thread into a temporary
# directory; any data race makes ThreadSanitizer print a report and the run exit non-zero.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
cat > "$W/main.cc" <<'CC'
#include "core_check.h"
int main() { return rkdriver::pool_check(); }
CC
g++ -std=c++17 -O1 -g -fsanitize=thread -I"$ROOT/native/kernels" -I"$ROOT/native/driver" \
  "$W/main.cc" "$ROOT/native/driver/pool_check.cc" "$ROOT/native/kernels/threadpool.cc" -o "$W/pool" -lpthread
TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$W/pool"
echo "tsan-pool: PASS (no data race reported)"
