#!/bin/sh
# Instruction counts (callgrind) for one operation of rows 1 and 2 and of
# their raw libgcrypt references: repeatable figures on a noisy machine.
#
#   bench/callgrind-rows.sh BUILD_DIR
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu

build=${1:-build}
bench="$build/bench/e2ee-bench"

if ! command -v valgrind >/dev/null 2>&1; then
  echo "callgrind-rows: valgrind is not installed" >&2
  exit 2
fi
if [ ! -x "$bench" ]; then
  echo "callgrind-rows: $bench not built" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ir () {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    --collect-atstart=no --toggle-collect=bench_cg_measure \
    "$bench" --callgrind "$1" --key 5 >/dev/null 2>"$tmp/stderr" || {
      cat "$tmp/stderr" >&2
      exit 2
    }
  sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$tmp/cg.out" | head -n 1
}

row () {
  a=$(ir "$2")
  b=$(ir "$3")
  awk -v l="$1" -v o="$2" -v r="$3" -v a="$a" -v b="$b" \
    'BEGIN { printf "%-22s %-14s %11d   %-16s %11d   %6.2f\n", l, o, a, r, b, a / b }'
}

printf '%-22s %-14s %11s   %-16s %11s   %6s\n' row ours instr reference instr ratio
row "1 seal+open 1 KiB" envelope-1k raw-gcm-1k
row "  AEAD, handle kept" aead-1k raw-gcm-1k
row "1 seal+open 64 KiB" envelope-64k raw-gcm-64k
row "2 first contact" first-contact ecdh-raw
row "  first contact" first-contact ecdh-raw-ct
row "  ECDH alone" ecdh-ours ecdh-raw-ct
