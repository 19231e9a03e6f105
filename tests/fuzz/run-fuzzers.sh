#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time and fails on any crash,
# leak, timeout or sanitizer report.
#   tests/fuzz/run-fuzzers.sh [SECONDS-PER-TARGET]   (default 60)
# Sets up build-fuzz (clang, ASan+UBSan, -Dfuzz=true) when it is missing.
# Each target starts from a copy of its seed corpus (tests/fuzz/corpus/<t>),
# so the committed corpus is never modified; the saved crashers under
# tests/fuzz/regressions/<t> are replayed first.  Findings are written to
# build-fuzz/fuzz-artifacts/.  Prints the executions per target.
# SPDX-License-Identifier: GPL-2.0-or-later
set -uo pipefail
secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${E2EE_FUZZ_BUILD:-$root/build-fuzz}
targets=(envelope fragment jwk keyset offer keyring session-receive backup database)
targets+=(envelope-v2 v2 keyset-v2)

command -v clang >/dev/null || { echo "clang is needed for fuzzing"; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dplugin=disabled -Dbench=false >"$build.setup.log" 2>&1 \
    || { cat "$build.setup.log"; exit 1; }
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz-%s ' "${targets[@]}") >/dev/null \
  || { ninja -C "$build" $(printf 'tests/fuzz/fuzz-%s ' "${targets[@]}"); exit 1; }

max_len() {
  case $1 in
    session-receive|keyring) echo 8192 ;;
    backup) echo 16384 ;;
    envelope-v2) echo 16384 ;;
    database) echo 65536 ;;
    *) echo 4096 ;;
  esac
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
status=0
total=0
report=()

for t in "${targets[@]}"; do
  exe=$build/tests/fuzz/fuzz-$t
  log=$artifacts/$t.log
  work=$(mktemp -d)
  cp "$here/corpus/$t/"* "$work/" 2>/dev/null
  ok=1

  # Crashers found before: each must now pass.
  if [ -d "$here/regressions/$t" ] && [ -n "$(ls -A "$here/regressions/$t")" ]; then
    if ! "$exe" -runs=1 "$here/regressions/$t"/* >"$artifacts/$t.regressions.log" 2>&1; then
      echo "FAIL $t: a saved regression input fails again:"
      tail -n 30 "$artifacts/$t.regressions.log"
      ok=0
    fi
  fi

  "$exe" -max_total_time="$secs" -max_len="$(max_len "$t")" -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t-" "$work" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  execs=${execs:-0}
  total=$((total + execs))
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==[0-9]+==ERROR' "$log"; then
    echo "FAIL $t (exit $rc); log $log:"
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written|check failed' "$log" | head -n 20
    ok=0
  fi
  rm -rf "$work"
  if [ $ok = 1 ]; then
    report+=("$(printf 'ok   %-16s %12s executions in %ss' "$t" "$execs" "$secs")")
  else
    report+=("$(printf 'FAIL %-16s %12s executions in %ss' "$t" "$execs" "$secs")")
    status=1
  fi
done

printf '%s\n' "${report[@]}"
echo "fuzzing: $total executions in all, ${#targets[@]} targets"
exit $status
