#!/usr/bin/env bash
# The whole test suite: build, unit, interop and real-server plugin tests,
# then the same under AddressSanitizer+UBSan and under valgrind, the
# bounded fuzz runs and a short benchmark.  What CI runs.
# SPDX-License-Identifier: GPL-2.0-or-later
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh || { echo "dependency installation failed"; exit 1; }

# Missing servers or node must fail the run, never skip silently.
export E2EE_REQUIRE_SERVERS=1 E2EE_REQUIRE_NODE=1

status=0
summary=()
step() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then summary+=("PASS $name"); else summary+=("FAIL $name"); status=1; fi
}

setup() { # dir, extra meson args...
  local dir=$1; shift
  [ -d "$dir" ] && rm -rf "$dir"
  meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  ninja -C "$dir" || return 1
}

step "build" setup build-test
step "tests" meson test -C build-test --print-errorlogs --no-rebuild --num-processes 2 --logbase all

# The Debian package: built on this machine, lintian-clean, installed with
# apt-get, and the demo and the BitlBee test run against the installed plugin.
# Its own unit-test pass is skipped (the suites above already ran them).
step "Debian package (build, lintian, install, demo and BitlBee on the installed plugin)" \
  env DEB_BUILD_OPTIONS=nocheck bash scripts/package.sh

step "asan-ubsan build" setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Leak checking on our own programs; libpurple itself leaks at exit (its
# protocol modules are unloaded before LeakSanitizer runs), so the plugin
# suite runs with address and UB checks but without leak reports.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  step "core tests under asan+ubsan" meson test -C build-asan --print-errorlogs --no-rebuild \
  --num-processes 2 --suite core --suite interop --logbase asan-core
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  step "plugin tests under asan+ubsan" meson test -C build-asan --print-errorlogs --no-rebuild \
  --num-processes 1 --suite plugin --timeout-multiplier 3 --logbase asan-plugin

# E2EE_QUICK_TESTS shortens the long randomised loops (they ran in full above).
E2EE_QUICK_TESTS=1 step "tests under valgrind" meson test -C build-test --suite core --no-rebuild --print-errorlogs \
  --logbase valgrind \
  --timeout-multiplier 10 \
  --wrap="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --track-origins=yes --suppressions=$root/tests/valgrind.supp --quiet"

# The long-lived scalar must take libgcrypt's constant-time ladder: the
# instruction count of our ECDH may not depend on the key.
if [ -f bench/callgrind-ecdh.sh ] && [ -x build-test/bench/e2ee-bench ]; then
  step "ECDH instruction count independent of the key (callgrind)" sh bench/callgrind-ecdh.sh build-test
fi
if [ -x tests/fuzz/run-fuzzers.sh ]; then
  step "fuzzing (bounded)" bash tests/fuzz/run-fuzzers.sh "${E2EE_FUZZ_SECONDS:-45}"
fi
if [ -f bench/meson.build ] && grep -q "benchmark(" bench/meson.build; then
  step "benchmark (quick)" env E2EE_BENCH_QUICK=1 meson test -C build-test --benchmark --no-rebuild --print-errorlogs --logbase bench
fi

# One closing line over every test meson ran.
python3 - "$root" <<'PY'
import json, os, sys
root = sys.argv[1]
passed = failed = skipped = 0
logs = [os.path.join(root, d, "meson-logs", b + ".json")
        for d, b in (("build-test", "all"), ("build-asan", "asan-core"),
                     ("build-asan", "asan-plugin"), ("build-test", "valgrind"))]
for log in logs:
    if not os.path.exists(log):
        continue
    for line in open(log):
        try:
            t = json.loads(line)
        except ValueError:
            continue
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print("\nmeson test programs (plain, ASan+UBSan, valgrind): %d passed, %d failed, %d skipped"
      % (passed, failed, skipped))
PY
echo
printf '%s\n' "${summary[@]}"
fails=$(printf '%s\n' "${summary[@]}" | grep -c '^FAIL' || true)
passes=$(printf '%s\n' "${summary[@]}" | grep -c '^PASS' || true)
echo "$passes passed, $fails failed"
exit $status
