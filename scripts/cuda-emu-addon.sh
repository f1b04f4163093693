#!/usr/bin/env bash
# Local only (never CI: heavy, one OS thread per CUDA thread): builds the CUDA addon against the host
# emulation of the CUDA runtime (cuda/emu) so the device tests run on a CPU-only machine:
#   bash scripts/cuda-emu-addon.sh [OUT_DIR]
#   REWARD_KERNELS_CUDA_MODULE=OUT_DIR/reward_kernels_cuda.node nice -n 19 npx vitest run tests/cuda
# Needs build/librk_core.a (npx cmake-js compile) and g++ with C++20. EMU_FLAGS=-fsanitize=address
# adds AddressSanitizer (then run node with LD_PRELOAD=$(gcc -print-file-name=libasan.so)).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-/tmp/rk-cuda-emu}
mkdir -p "$W"
python3 - "$ROOT" "$W" <<'PY'
import re, sys, glob, os
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
headers = [os.path.basename(h) for h in glob.glob(f'{root}/cuda/*.h') + glob.glob(f'{root}/cuda/*.cuh')]
rep = lambda m: f'{m.group(1)}rkemu::launch({split_top(m.group(3))[0]}, {split_top(m.group(3))[1]}, {m.group(2)}, '
# Headers with launches (template kernels, e.g. kernel<Op><<<grid, threads, 0, st>>>(...)): a rewritten
# copy in the work dir, its own includes made absolute; the .cu files include that copy.
launch_headers = ('seq_driver.cuh',)
for h in launch_headers:
    src, n = pat.subn(rep, open(f'{root}/cuda/{h}').read())
    src = re.sub(r'#include "([^"]+)"', lambda m: f'#include "{root}/cuda/{m.group(1)}"', src)
    open(f'{out}/{h}', 'w').write(src)
    print(f'{h}: {n} launches rewritten')
for name in ('result', 'logprobs', 'divergence', 'policy', 'preference', 'advantages', 'seq_ops.gen', 'rollout_correction', 'truncation', 'copo', 'moo', 'drakes', 'preference_strength', 'p3o', 'policy_logits'):
    src = open(f'{root}/cuda/{name}.cu').read()
    src, n = pat.subn(rep, src)
    for h in launch_headers:
        src = src.replace(f'#include "{h}"', f'#include "{out}/{h}"')
    for h in headers:
        src = src.replace(f'#include "{h}"', f'#include "{root}/cuda/{h}"')
    open(f'{out}/{name}_emu.cc', 'w').write(src)
    print(f'{name}.cu: {n} launches rewritten')
PY
nice -n 19 g++ -std=c++20 -O1 -shared -fPIC -pthread ${EMU_FLAGS:-} -DRK_CUDA_EMULATION=1 -DNAPI_VERSION=8 \
  -DNODE_ADDON_API_DISABLE_DEPRECATED -DNAPI_CPP_EXCEPTIONS -fvisibility=hidden \
  -I"$ROOT/cuda/emu" -I"$ROOT/cuda" -I"$ROOT/native/kernels" -I"$ROOT/native/core" -I"$ROOT/native/binding" \
  -I"$ROOT/node_modules/node-api-headers/include" -I"$ROOT/node_modules/node-addon-api" \
  "$W"/*_emu.cc "$ROOT"/native/cuda_binding/*.cc "$ROOT/native/binding/common.cc" "$ROOT/native/binding/slots.cc" \
  "$ROOT/build/librk_core.a" -o "$W/reward_kernels_cuda.node"
echo "built $W/reward_kernels_cuda.node"
