#!/usr/bin/env bash
# npm run test:sanitize: the CPU addon and the native driver built with ASan + UBSan into build/asan/
# (beside, never over, build/Release/), then `rk_driver check` and the whole vitest suite against
# the sanitized addon.
#
#   scripts/sanitize.sh [--no-build] [vitest args...]     e.g. scripts/sanitize.sh tests/policy.test.ts
#
# How (docs/design.md, "Sanitizers"):
# - cmake-js --out build/asan with the flags in CMAKE_CXX_FLAGS_RELEASE (cmake-js appends its own
#   CMAKE_CXX_FLAGS, so flags put there are lost) and the link flags, CUDA off. The addon must hold
#   __asan_report_* symbols, else the script fails (a silently plain build proves nothing).
# - Node itself is not instrumented: libasan is LD_PRELOADed so its interceptors come first, and
#   leak detection is off (Node leaks at exit by design). Any ASan report aborts the process; a UBSan
#   "runtime error" halts too (halt_on_error) and is also searched for in the log.
# - node-gyp-build(packageRoot) loads build/Release/*.node: vitest runs in a temporary copy of the
#   working tree (node_modules linked) whose build/Release/ holds the sanitized addon. How users load
#   the package is unchanged.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=build/asan
build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi

san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize=vptr -g"
start=$(date +%s)
if [ "$build" = 1 ]; then
  echo "sanitize: building $out/ (ASan + UBSan, CUDA off)"
  nice npx cmake-js compile --out "$out" --CDRK_CUDA=OFF \
    "--CDCMAKE_CXX_FLAGS_RELEASE=-O1 $san" \
    "--CDCMAKE_SHARED_LINKER_FLAGS=$san" "--CDCMAKE_EXE_LINKER_FLAGS=$san" || { echo "sanitize: FAIL build"; exit 1; }
fi
addon=$(ls "$out"/Release/*.node 2>/dev/null | head -1)
if [ -z "$addon" ] || [ ! -x "$out/rk_driver" ]; then echo "sanitize: FAIL no addon or driver in $out/"; exit 1; fi
for f in "$addon" "$out/rk_driver"; do
  n=$(nm "$f" 2>/dev/null | grep -c '__asan_report' || true)
  u=$(nm "$f" 2>/dev/null | grep -c '__ubsan_handle' || true)
  if [ "$n" -eq 0 ] || [ "$u" -eq 0 ]; then echo "sanitize: FAIL $f is not instrumented ($n __asan_report, $u __ubsan_handle symbols)"; exit 1; fi
  echo "sanitize: $f instrumented ($n __asan_report, $u __ubsan_handle references)"
done

libasan=$(gcc -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "sanitize: FAIL libasan.so not found ($libasan)"; exit 1; }
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
log=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$log"' EXIT
failed=0

echo "sanitize: rk_driver check"
if "$out/rk_driver" check >"$log" 2>&1 && ! grep -q 'runtime error:' "$log"; then
  tail -2 "$log"
  echo "sanitize: PASS rk_driver check"
else
  tail -40 "$log"
  echo "sanitize: FAIL rk_driver check"
  failed=1
fi

# The package tree (tracked and untracked files, as git sees them; no build/, no prebuilds/), in a
# git repository of its own (tests/repo.test.ts lists files with git), with the sanitized addon
# where node-gyp-build looks.
git ls-files -z -co --exclude-standard | grep -zv '^prebuilds/' | xargs -0 cp --parents -t "$tmp" 2>/dev/null
(cd "$tmp" && git init -q && git add -A >/dev/null 2>&1)
ln -s "$root/node_modules" "$tmp/node_modules"
mkdir -p "$tmp/build/Release"
cp "$addon" "$tmp/build/Release/"
[ -x "$out/rk_driver" ] && cp "$out/rk_driver" "$tmp/build/"

echo "sanitize: vitest under ASan + UBSan ($(basename "$addon"), LD_PRELOAD=$libasan)"
t0=$(date +%s)
(cd "$tmp" && RK_SANITIZE=1 LD_PRELOAD="$libasan" NO_COLOR=1 nice npx vitest run "$@") 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$log"
rc=${PIPESTATUS[0]}
t1=$(date +%s)
grep -E 'Test Files|Tests +[0-9]|ERROR: AddressSanitizer|runtime error:|SUMMARY: ' "$log" | head -20
if [ "$rc" -ne 0 ] || grep -qE 'ERROR: AddressSanitizer|runtime error:' "$log"; then
  grep -B5 -A40 -m1 -E 'ERROR: AddressSanitizer|runtime error:' "$log" || tail -60 "$log"
  echo "sanitize: FAIL vitest (exit $rc, $((t1 - t0)) s)"
  failed=1
else
  echo "sanitize: PASS vitest ($((t1 - t0)) s)"
fi
echo "sanitize: total $(( $(date +%s) - start )) s"
exit $failed
