#!/usr/bin/env bash
# Runs rk_driver's CUDA parity check on the HOST through a CUDA emulation (cuda/emu: one OS thread
# per CUDA thread), for machines without a GPU. It checks the kernels' logic (index ranges, unaligned
# heads and tails, row splits, reductions, bad targets) against the CPU kernels; it says nothing about
# speed, and ex2.approx is emulated with exp2. Slow: by default only cases up to 400k elements.
# Needs g++ with C++20 and a built librk_core.a (BUILD=path of a CMake build dir, default ./build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
# nvcc's launch syntax k<<<grid, block, smem, stream>>>(args) -> rkemu::launch(grid, block, k, args)
python3 - "$ROOT" "$W" <<'PY'
import re, sys
root, out = sys.argv[1], sys.argv[2]
def split_top(s):
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch in '(<[': depth += 1
        if ch in ')>]': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]
pat = re.compile(r'^(\s*)(\S.*?)<<<(.*?)>>>\(', re.M)
def rep(m):
    cfg = split_top(m.group(3))
    return f'{m.group(1)}rkemu::launch({cfg[0]}, {cfg[1]}, {m.group(2)}, '
# Headers with launches (template kernels, e.g. kernel<Op><<<grid, threads, 0, st>>>(...)): a rewritten
# copy in the work dir, its own includes made absolute; the .cu files include that copy.
launch_headers = ('seq_driver.cuh',)
for h in launch_headers:
    src, n = pat.subn(rep, open(f'{root}/cuda/{h}').read())
    src = re.sub(r'#include "([^"]+)"', lambda m: f'#include "{root}/cuda/{m.group(1)}"', src)
    open(f'{out}/{h}', 'w').write(src)
    print(f'{h}: {n} launches rewritten')
for name in ('result', 'logprobs', 'bench_util', 'divergence', 'policy', 'preference', 'advantages', 'seq_ops.gen', 'rollout_correction', 'truncation', 'copo', 'moo', 'drakes', 'preference_strength', 'p3o', 'policy_logits'):
    src = open(f'{root}/cuda/{name}.cu').read()
    src, n = pat.subn(rep, src)
    for h in launch_headers:
        src = src.replace(f'#include "{h}"', f'#include "{out}/{h}"')
    src = src.replace('#include "logprobs.h"', f'#include "{root}/cuda/logprobs.h"')
    src = src.replace('#include "bench_util.h"', f'#include "{root}/cuda/bench_util.h"')
    src = src.replace('#include "divergence.h"', f'#include "{root}/cuda/divergence.h"')
    for h in ('result.h', 'policy.h', 'preference.h', 'advantages.h', 'small_common.cuh', 'row_common.cuh', 'host_common.cuh',
              'seq_ops.gen.h', 'rollout_correction.h', 'truncation.h', 'copo.h', 'moo.h', 'drakes.h', 'preference_strength.h', 'p3o.h',
              'policy_logits.h', 'logprobs_stats.cuh', 'policy_token.cuh'):
        src = src.replace(f'#include "{h}"', f'#include "{root}/cuda/{h}"')
    open(f'{out}/{name}.cc', 'w').write(src)
    print(f'{name}.cu: {n} launches rewritten')
PY
cat > "$W/main.cc" <<'CC'
#include "cuda_driver.h"
int main() { return rkdriver::cuda_check(); }
CC
# EMU_FLAGS="-fsanitize=address" also catches any out-of-bounds access of the kernels.
g++ -std=c++20 -O2 -pthread ${EMU_FLAGS:-} -DRK_WITH_CUDA=1 -DRK_CUDA_EMULATION=1 -I"$ROOT/cuda/emu" -I"$ROOT/native/kernels" -I"$ROOT/native/core" \
  -I"$ROOT/native/driver" "$W/result.cc" "$W/logprobs.cc" "$W/bench_util.cc" "$W/divergence.cc" "$W/policy.cc" "$W/preference.cc" "$W/advantages.cc" \
  "$W/seq_ops.gen.cc" "$W/rollout_correction.cc" "$W/truncation.cc" "$W/copo.cc" "$W/moo.cc" "$W/drakes.cc" "$W/preference_strength.cc" "$W/p3o.cc" "$W/policy_logits.cc" "$ROOT/native/driver/parity.cc" "$W/main.cc" \
  "$BUILD/librk_core.a" -o "$W/rk_cuda_emu"
# RK_CUDA_CHECK_OPS=op1,op2 runs only those rows of the harness (native/driver/parity.cc).
RK_CUDA_CHECK_MAX_ELEMS="${RK_CUDA_CHECK_MAX_ELEMS:-400000}" "$W/rk_cuda_emu"
