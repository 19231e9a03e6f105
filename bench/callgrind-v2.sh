#!/bin/sh
# Instruction counts (callgrind) for the protocol v2 rows and libotr's
# counterparts, one operation each, with the share spent in public-key
# arithmetic: libgcrypt's gcry_mpi_ec_mul and gcry_pk_verify (P-256) for
# v2, gcry_mpi_powm, gcry_pk_sign and gcry_pk_verify (DH-1536, DSA-1024)
# for libotr.  Repeatable figures on a noisy machine; I/O (the durable
# commit) costs few instructions and much waiting, so it is not here.
#
#   bench/callgrind-v2.sh BUILD_DIR
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu

build=${1:-build}
bench="$build/bench/e2ee-bench"
otr="$build/bench/bench-otr"

for tool in valgrind callgrind_annotate; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "callgrind-v2: $tool is not installed" >&2
    exit 2
  fi
done
if [ ! -x "$bench" ] || [ ! -x "$otr" ]; then
  echo "callgrind-v2: $bench or $otr not built (libotr missing?)" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run TARGET: prints "total pk_share_percent"
run () {
  case $1 in
    otr-*) set -- "$1" "$otr" --workdir "$tmp" --callgrind "$1"
           pattern='gcry_mpi_powm|gcry_pk_sign|gcry_pk_verify' ;;
    *)     set -- "$1" "$bench" --callgrind "$1"
           pattern='gcry_mpi_ec_mul|gcry_pk_verify' ;;
  esac
  shift
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    --collect-atstart=no --toggle-collect=bench_cg_measure \
    "$@" >/dev/null 2>"$tmp/stderr" || {
      cat "$tmp/stderr" >&2
      exit 2
    }
  callgrind_annotate --inclusive=yes "$tmp/cg.out" 2>/dev/null \
    | awk -v pat="$pattern" '
        { gsub(",", "", $1) }
        /PROGRAM TOTALS/ { total = $1 }
        $2 ~ ("^\\?\\?\\?:(" pat ")$") || $3 ~ ("^\\?\\?\\?:(" pat ")$") { pk += $1 }
        END { printf "%d %.1f\n", total, total ? 100 * pk / total : 0 }'
}

printf '%-34s %-18s %12s %6s   %-14s %12s %6s   %6s\n' \
  row ours instr pk% libotr instr pk% ratio
row () { # label ours_target ours_factor otr_target
  set -- "$1" "$2" "$3" "$4" $(run "$2") $(run "$4")
  awk -v l="$1" -v o="$2" -v f="$3" -v r="$4" -v a="$5" -v ap="$6" -v b="$7" -v bp="$8" \
    'BEGIN { printf "%-34s %-18s %12d %5.1f%%   %-14s %12d %5.1f%%   %6.3f\n",
             l, (f == 1 ? o : f "x " o), a * f, ap, r, b, bp, a * f / b }'
}

row "v2.1 seal alone, existing chain" v2-seal 1 otr-send
row "  seal + open, existing chain" v2-existing 1 otr-existing
row "v2.2 turn, unprepared" v2-turn 1 otr-turn
row "  turn, prepared: critical path" v2-half-prepared 2 otr-turn
row "  turn, prepared: the 2 prepares" v2-prepare 2 otr-turn
row "v2.3 start (without the check)" v2-start 1 otr-ake
row "  prekey record check" v2-prekey-verify 1 otr-ake
row "part P-256 ECDH / DH-1536 session" p256-ecdh 1 otr-dh-session
row "part P-256 keygen / DH-1536 keys" p256-keygen 1 otr-dh-keygen
row "part ECDSA check / DSA-1024 verify" v2-prekey-verify 1 otr-dsa-verify
