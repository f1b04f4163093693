#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (issue 6). Needs nvcc, CMake and a C++ compiler;
# uses PyTorch (+ Triton) when importable; needs neither Node nor a network.
#   1. configures and builds rk_core, rk_cuda and rk_driver with plain CMake (no cmake-js), for the
#      card's own architecture (falls back to the project's list when nvidia-smi cannot say)
#   2. prints the card (nvidia-smi)
#   3. rk_driver check        the CPU kernels (quick sanity of the build)
#   4. rk_driver cuda-check   every CUDA kernel against the CPU kernel, awkward shapes
#   5. rk_driver cuda-bench   D2D copy bandwidth first, then the kernels at 8192 x 151936 bf16 / f32
#   6. scripts/torch_logprobs_bench.py: torch eager and torch.compile on the same card
#   7. a combined table
# Everything is logged to $OUT (when set, e.g. by the device runner) or ./gpu-check-out.
# Typical run: 2-4 minutes; every step has a timeout within a 540 s budget for the whole run.
# Exit status: 0 when the build and cuda-check passed on a GPU, 1 otherwise (also when no CUDA device
# is visible); the timings never fail it.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${OUT:-$ROOT/gpu-check-out}"
BUILD="${RK_GPU_BUILD_DIR:-/tmp/rk-gpu-build}"
mkdir -p "$OUTDIR"
exec > >(tee "$OUTDIR/gpu-check.log") 2>&1
T0=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }
# Whole-run budget (seconds; RK_GPU_BUDGET_S overrides): each step's timeout is its own cap or what is
# left of the budget, whichever is smaller, so the script ends well inside a 10-minute slot.
BUDGET="${RK_GPU_BUDGET_S:-540}"
tmo() {
  local cap=$1 left=$(( BUDGET - ($(date +%s) - T0) ))
  (( left < cap )) && cap=$left
  (( cap < 10 )) && cap=10
  echo "$cap"
}
status=0

stamp "reward-kernels GPU check, $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version,clocks.max.memory --format=csv | tee "$OUTDIR/gpu.txt"
  CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
else
  echo "nvidia-smi not found"
  CAP=""
fi
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [[ -x "$d/nvcc" ]]; then export PATH="$d:$PATH"; break; fi
  done
fi
nvcc --version 2>/dev/null | tail -1 || echo "nvcc not found"
cmake --version | head -1

# ---- 1. build ------------------------------------------------------------------------------
ARCH_ARGS=()
if [[ "$CAP" =~ ^[0-9]+$ ]]; then ARCH_ARGS=("-DCMAKE_CUDA_ARCHITECTURES=${CAP}-real"); fi
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
stamp "configure ($BUILD) ${ARCH_ARGS[*]:-default architectures}"
if ! timeout "$(tmo 90)" cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "${ARCH_ARGS[@]}" \
    > "$OUTDIR/configure.log" 2>&1; then
  tail -30 "$OUTDIR/configure.log"
  stamp "CONFIGURE FAILED"
  exit 1
fi
grep -E "reward-kernels:" "$OUTDIR/configure.log" || true
if grep -q "no CUDA compiler" "$OUTDIR/configure.log"; then
  stamp "CMake found no CUDA compiler (put nvcc on PATH or set CUDACXX): nothing to check"
  exit 1
fi
stamp "build"
if ! timeout "$(tmo 240)" cmake --build "$BUILD" -j "$(nproc)" > "$OUTDIR/build.log" 2>&1; then
  tail -40 "$OUTDIR/build.log"
  stamp "BUILD FAILED"
  exit 1
fi
DRIVER="$BUILD/rk_driver"
"$DRIVER" devices

# ---- 2. CPU sanity, CUDA parity ------------------------------------------------------------
stamp "rk_driver check (CPU kernels)"
timeout "$(tmo 60)" "$DRIVER" check > "$OUTDIR/cpu-check.txt" 2>&1 || { echo "CPU check FAILED"; status=1; }
tail -1 "$OUTDIR/cpu-check.txt"

stamp "rk_driver cuda-check"
timeout "$(tmo 150)" "$DRIVER" cuda-check 2>&1 | tee "$OUTDIR/cuda-check.txt"
rc=${PIPESTATUS[0]}
if [[ $rc -ne 0 ]]; then echo "cuda-check FAILED (exit $rc)"; status=1; fi
if grep -q '^no CUDA device' "$OUTDIR/cuda-check.txt"; then
  echo "cuda-check found no CUDA device: this script is meant for a GPU machine"; status=1
fi

# ---- 3. timings ----------------------------------------------------------------------------
stamp "rk_driver cuda-bench"
timeout "$(tmo 120)" "$DRIVER" cuda-bench 2>&1 | tee "$OUTDIR/cuda-bench.txt"
rc=${PIPESTATUS[0]}
if [[ $rc -ne 0 ]]; then echo "cuda-bench exited $rc"; fi

stamp "PyTorch baselines"
if command -v python3 >/dev/null 2>&1; then
  timeout "$(tmo 240)" python3 "$ROOT/scripts/torch_logprobs_bench.py" --out "$OUTDIR/torch-bench.json" 2>&1 \
    | tee "$OUTDIR/torch-bench.txt"
  rc=${PIPESTATUS[0]}
  if [[ $rc -ne 0 ]]; then echo "torch bench exited $rc (124 = timed out)"; fi
else
  echo "python3 not found: no PyTorch comparison" | tee "$OUTDIR/torch-bench.txt"
fi

# ---- 4. combined table ---------------------------------------------------------------------
stamp "combined table"
{
  echo "card: $(head -2 "$OUTDIR/gpu.txt" 2>/dev/null | tail -1 | cut -d, -f1)"
  grep -h '^RESULT|' "$OUTDIR/cuda-bench.txt" "$OUTDIR/torch-bench.txt" 2>/dev/null | awk -F'|' '
    /copy bandwidth/ { copy = $4 }
    { name[NR] = $2; ms[NR] = $3; gbs[NR] = $4; n = NR }
    END {
      printf "%-50s %10s %10s %9s\n", "kernel (8192 x 151936 unless noted)", "ms", "GB/s", "% copy"
      for (i = 1; i <= n; i++) {
        if (ms[i] == "FAILED") { printf "%-50s %10s  %s\n", name[i], "FAILED", gbs[i]; continue }
        pct = (copy > 0) ? sprintf("%8.1f%%", 100 * gbs[i] / copy) : "       ?"
        printf "%-50s %10.3f %10.1f %s\n", name[i], ms[i], gbs[i], pct
        if (name[i] ~ /^rk forward\+entropy bf16/) { rk = ms[i]; rkp = 100 * gbs[i] / copy }
        if (name[i] ~ /^torch eager/) eager = ms[i]
        if (name[i] ~ /^torch.compile/) comp = ms[i]
      }
      if (rk > 0) {
        printf "\nrk forward+entropy bf16: %.3f ms, %.1f%% of copy bandwidth (goal >= 85%%)", rk, rkp
        if (eager > 0) printf "; %.1fx faster than torch eager", eager / rk
        if (comp > 0) printf "; %.2fx vs torch.compile", comp / rk
        printf "\n"
      }
    }'
} | tee "$OUTDIR/summary.txt"
stamp "done, status $status"
exit $status
