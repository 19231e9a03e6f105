#!/bin/sh
# Checks that the instruction count of our ECDH does not depend on the
# private key: runs one ECDH under callgrind for several keys (short,
# dense, sparse, one bit short, random-looking) and compares the counts.
#
#   bench/callgrind-ecdh.sh BUILD_DIR [TOLERANCE_PERCENT]
#
# Also measured, as controls: libgcrypt's gcry_pk_decrypt path (known to
# vary with the key: the check must be able to see that) and
# gcry_mpi_ec_mul with a secure scalar, plain and with the scalar's bit
# length fixed at 257 (d + n or d + 2n).  Exit status 0 when our counts
# agree within the tolerance (default 0.25 %, below the ~0.4 % one bit of
# scalar length costs), 1 when they do not, 2 when the check cannot run.
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu

build=${1:-build}
tol=${2:-0.25}
bench="$build/bench/e2ee-bench"
keys="1 2 3 4 5 6"

if ! command -v valgrind >/dev/null 2>&1; then
  echo "callgrind-ecdh: valgrind is not installed" >&2
  exit 2
fi
if [ ! -x "$bench" ]; then
  echo "callgrind-ecdh: $bench not built (ninja -C $build bench/e2ee-bench)" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# count TARGET KEY -> "instructions shared-prefix"
count () {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    --collect-atstart=no --toggle-collect=bench_cg_measure \
    "$bench" --callgrind "$1" --key "$2" >"$tmp/stdout" 2>"$tmp/stderr" || {
      echo "callgrind-ecdh: $1 key $2 failed:" >&2
      cat "$tmp/stderr" >&2
      exit 2
    }
  ir=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$tmp/cg.out" | head -n 1)
  secret=$(sed -n 's/^shared-prefix //p' "$tmp/stdout")
  echo "$ir $secret"
}

# spread TARGET -> prints a line per key and a verdict; returns 1 on drift
spread () {
  target=$1
  min=
  max=
  : >"$tmp/secrets.$target"
  for k in $keys; do
    set -- $(count "$target" "$k")
    printf '  %-16s key %s  %12s instructions  (secret %s)\n' "$target" "$k" "$1" "$2"
    echo "$k $2" >>"$tmp/secrets.$target"
    if [ -z "$min" ] || [ "$1" -lt "$min" ]; then min=$1; fi
    if [ -z "$max" ] || [ "$1" -gt "$max" ]; then max=$1; fi
  done
  pct=$(awk -v a="$min" -v b="$max" 'BEGIN { printf "%.3f", (b - a) * 100.0 / b }')
  ok=$(awk -v p="$pct" -v t="$tol" 'BEGIN { print (p <= t) ? "yes" : "no" }')
  printf '  %-16s spread %s %% (min %s, max %s): %s\n\n' "$target" "$pct" "$min" "$max" \
    "$([ "$ok" = yes ] && echo "steady" || echo "VARIES WITH THE KEY")"
  [ "$ok" = yes ]
}

echo "ECDH instruction counts per private key (tolerance $tol %)"
echo
status=0
spread ecdh-ours || status=1
control=0
spread ecdh-raw || control=1
spread ecdh-raw-ct || true
spread ecdh-raw-ct257 || true

# Same key, same peer: every path must agree on the secret.
if ! cmp -s "$tmp/secrets.ecdh-ours" "$tmp/secrets.ecdh-raw"; then
  echo "callgrind-ecdh: our ECDH and libgcrypt's disagree on a shared secret" >&2
  exit 2
fi
if [ "$control" -eq 0 ]; then
  echo "callgrind-ecdh: the variable-time control did not vary: the check is blind" >&2
  exit 2
fi
if [ "$status" -eq 0 ]; then
  echo "result: our ECDH count does not depend on the key"
else
  echo "result: our ECDH count DEPENDS on the key"
fi
exit "$status"
