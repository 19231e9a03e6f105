#!/usr/bin/env bash
# End-to-end checks of the purple-e2ee command-line tool.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
cli=${1:?path to purple-e2ee}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failn=0

ok() { pass=$((pass + 1)); echo "ok $((pass + failn)) - $1"; }
bad() { failn=$((failn + 1)); echo "not ok $((pass + failn)) - $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

# Runs the CLI expecting failure: non-zero exit, a message on stderr, nothing on stdout.
rejects() {
  local name=$1; shift
  local out err rc
  out=$("$cli" "$@" 2>"$tmp/err" </dev/null); rc=$?
  err=$(cat "$tmp/err")
  if [ $rc -ne 0 ] && [ -z "$out" ] && [ -n "$err" ]; then ok "$name"; else bad "$name (rc=$rc out=$out)"; fi
}
rejects_stdin() {
  local name=$1 input=$2; shift 2
  local out rc
  out=$(printf '%s' "$input" | "$cli" "$@" 2>"$tmp/err"); rc=$?
  if [ $rc -ne 0 ] && [ -z "$out" ] && [ -s "$tmp/err" ]; then ok "$name"; else bad "$name (rc=$rc out=$out)"; fi
}

echo "TAP version 13"
"$cli" keygen -o "$tmp/alice.jwk" && "$cli" keygen -o "$tmp/bob.jwk"
check "keygen writes files" test -s "$tmp/alice.jwk" -a -s "$tmp/bob.jwk"
check "key file mode is 0600" test "$(stat -c %a "$tmp/alice.jwk")" = 600
rejects "keygen never overwrites" keygen -o "$tmp/alice.jwk"
check "private JWK has d" grep -q '"d":"' "$tmp/alice.jwk"

"$cli" public "$tmp/alice.jwk" >"$tmp/alice.pub"
"$cli" public <"$tmp/bob.jwk" >"$tmp/bob.pub"
check "public drops d" bash -c "! grep -q '\"d\"' '$tmp/alice.pub' && grep -q '\"x\"' '$tmp/alice.pub'"
check "public is idempotent" bash -c "diff <('$cli' public '$tmp/alice.pub') '$tmp/alice.pub'"

fp=$("$cli" fingerprint "$tmp/alice.pub")
fp_priv=$("$cli" fingerprint "$tmp/alice.jwk")
check "fingerprint: kid line and 16 hex groups" bash -c "[ \$(printf '%s\n' \"$fp\" | sed -n 2p | wc -w) -eq 16 ] && printf '%s\n' \"$fp\" | head -1 | grep -Eq '^[A-Za-z0-9_-]{43}$'"
check "fingerprint same for private and public" test "$fp" = "$fp_priv"
check "kid in public JWK equals fingerprint" grep -q "\"kid\":\"$(printf '%s\n' "$fp" | head -1)\"" "$tmp/alice.pub"

sn1=$("$cli" safety-number "$tmp/alice.pub" "$tmp/bob.pub")
sn2=$("$cli" safety-number "$tmp/bob.jwk" "$tmp/alice.jwk")
check "safety number is order-independent" test "$sn1" = "$sn2"
check "safety number is 12 groups of 5 digits" bash -c "printf '%s' '$sn1' | grep -Eq '^([0-9]{5} ){11}[0-9]{5}$'"

d1=$("$cli" derive --private "$tmp/alice.jwk" --public "$tmp/bob.pub")
d2=$("$cli" derive --private "$tmp/bob.jwk" --public "$tmp/alice.pub")
check "ECDH agrees both ways" test "$d1" = "$d2"
check "ECDH output is 32 bytes hex" bash -c "printf '%s' '$d1' | grep -Eq '^[0-9a-f]{64}$'"

# Account identifiers ("<protocol>:<name>") enter the derivation.
A=prpl-jabber:alice@example.test B=prpl-jabber:bob@example.test C=prpl-jabber:carol@example.test
msg='Grüße <b>bob</b> & "friends"'
printf '%s' "$msg" | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" >"$tmp/env.txt"
check "seal gives one armored line" bash -c "[ \$(wc -l <'$tmp/env.txt') -eq 1 ] && grep -q '^?E2E:[A-Za-z0-9_-]*$' '$tmp/env.txt'"
check "no plaintext in the envelope" bash -c "! grep -q 'bob' '$tmp/env.txt'"
out=$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env.txt")
check "open restores the exact plaintext" test "$out" = "$msg"
rejects "seal needs the account identifiers" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub"
rejects_stdin "seal refuses a malformed account identifier" "x" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "alice" --peer "$B"

"$cli" keygen -o "$tmp/carol.jwk"; "$cli" public "$tmp/carol.jwk" >"$tmp/carol.pub"
rejects_stdin "open with the wrong recipient key" "$(cat "$tmp/env.txt")" open --private "$tmp/carol.jwk" --public "$tmp/alice.pub" --account "$C" --peer "$A"
rejects_stdin "open with the wrong sender key" "$(cat "$tmp/env.txt")" open --private "$tmp/bob.jwk" --public "$tmp/carol.pub" --account "$B" --peer "$C"
# Unknown key share: Alice's key republished by mallory; Bob must not read
# Alice's envelope as mallory's, nor one meant for another account as his.
rejects_stdin "open refuses the sender's key under another account" "$(cat "$tmp/env.txt")" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "prpl-jabber:mallory@example.test"
rejects_stdin "open refuses an envelope for another recipient account" "$(cat "$tmp/env.txt")" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "prpl-irc:bob@example.test" --peer "$A"
tampered=$(sed 's/.$/A/;t' "$tmp/env.txt"); [ "$tampered" = "$(cat "$tmp/env.txt")" ] && tampered=$(sed 's/.$/B/' "$tmp/env.txt")
rejects_stdin "open rejects a tampered envelope" "$tampered" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
rejects_stdin "open rejects non-armor" "hello" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"

# Runs the CLI on a file as stdin, expecting failure whose message matches $3.
rejects_file() {
  local name=$1 file=$2 pattern=$3; shift 3
  local out rc
  out=$("$cli" "$@" <"$file" 2>"$tmp/err"); rc=$?
  if [ $rc -ne 0 ] && [ -z "$out" ] && grep -Eq "$pattern" "$tmp/err"; then ok "$name"; else bad "$name (rc=$rc out=$out err=$(cat "$tmp/err"))"; fi
}
# A NUL ends the armor for a C string reader; what follows must not be ignored.
{ tr -d '\n' <"$tmp/env.txt"; printf '\0junk'; } >"$tmp/env-nul.txt"
rejects_file "open rejects <armor> NUL junk" "$tmp/env-nul.txt" "NUL" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
# Plaintext must be UTF-8 text without NUL (PROTOCOL.md 5.2, 5.3).
printf 'a\0b' >"$tmp/plain-nul.txt"; printf 'caf\xe9' >"$tmp/plain-latin1.txt"
rejects_file "seal refuses plaintext with NUL" "$tmp/plain-nul.txt" "UTF-8|NUL" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B"
rejects_file "seal refuses invalid UTF-8" "$tmp/plain-latin1.txt" "UTF-8|NUL" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B"
helper=${E2EE_BUILD_ROOT:-}/tests/interop/e2ee-interop-helper
if [ -x "$helper" ]; then
  # The helper seals any bytes; the CLI must not pass them on.
  "$helper" seal 5 0 "$tmp/alice.jwk" "$A" "$B" "$tmp/bob.pub" <"$tmp/plain-nul.txt" >"$tmp/env-pnul.txt"
  "$helper" seal 6 0 "$tmp/alice.jwk" "$A" "$B" "$tmp/bob.pub" <"$tmp/plain-latin1.txt" >"$tmp/env-platin1.txt"
  rejects_file "open refuses a plaintext with NUL" "$tmp/env-pnul.txt" "UTF-8|NUL" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
  rejects_file "open refuses a plaintext that is not UTF-8" "$tmp/env-platin1.txt" "UTF-8|NUL" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
  # Alice's device claims v1+v2 in its header, but she published only v1:
  # open derives with the published caps, so the envelope does not open.
  sed 's/"e2ee_v":\[1\]/"e2ee_v":[1,2]/' "$tmp/alice.jwk" >"$tmp/alice-v12.jwk"
  grep -q '"e2ee_v":\[1,2\]' "$tmp/alice-v12.jwk" || bad "caps edit"
  printf 'caps' | "$helper" seal 7 0 "$tmp/alice-v12.jwk" "$A" "$B" "$tmp/bob.pub" >"$tmp/env-caps.txt"
  "$cli" public "$tmp/alice-v12.jwk" >"$tmp/alice-v12.pub"
  check "open with the caps the sender published" test "$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/alice-v12.pub" --account "$B" --peer "$A" <"$tmp/env-caps.txt")" = "caps"
  rejects_file "open refuses caps the sender did not publish" "$tmp/env-caps.txt" "authenticat" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
else
  bad "interop helper not built at $helper"
fi
# A private JWK where a public key belongs (PROTOCOL.md 2.1).
for c in derive seal open; do
  extra=""; [ $c != derive ] && extra="--account $A --peer $B"
  rejects_file "$c refuses a private JWK as --public" "$tmp/env.txt" "private key" $c --private "$tmp/alice.jwk" --public "$tmp/bob.jwk" $extra
done

# A JWK Set of two recipients on one account.
printf '{"keys":[%s,%s]}' "$(cat "$tmp/bob.pub")" "$(cat "$tmp/carol.pub")" >"$tmp/set.json"
printf 'to both' | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/set.json" --account "$A" --peer "$B" >"$tmp/env2.txt"
check "multi-recipient: bob opens" test "$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env2.txt")" = "to both"
check "multi-recipient: second device opens" test "$("$cli" open --private "$tmp/carol.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env2.txt")" = "to both"

# Invalid keys: each refused with a message, nothing on stdout.
printf '{"kty":"RSA","crv":"P-256","x":"AA","y":"AA"}' >"$tmp/rsa.jwk"
printf '{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}' >"$tmp/p384.jwk"
sed 's/"x":"./"x":"!/' "$tmp/alice.pub" >"$tmp/badb64.jwk"
printf 'not json' >"$tmp/garbage.jwk"
rejects "fingerprint rejects kty RSA" fingerprint "$tmp/rsa.jwk"
rejects "fingerprint rejects P-384" fingerprint "$tmp/p384.jwk"
rejects "fingerprint rejects bad base64url" fingerprint "$tmp/badb64.jwk"
rejects "public rejects garbage" public "$tmp/garbage.jwk"
rejects "missing file" fingerprint "$tmp/none.jwk"
rejects "derive needs a private key" derive --private "$tmp/alice.pub" --public "$tmp/bob.pub"
rejects "unknown command" frobnicate
rejects "no command"

for c in keygen public fingerprint safety-number derive seal open keyring; do
  check "$c --help" bash -c "'$cli' $c --help | grep -q 'Usage: purple-e2ee $c'"
done
check "--help" bash -c "'$cli' --help | grep -q 'Commands:'"

# keyring show never prints secrets.
"$cli" keyring show "$tmp/none.json" >/dev/null 2>&1 && bad "keyring show of a missing file fails" || ok "keyring show of a missing file fails"

echo "1..$((pass + failn))"
echo "# $pass passed, $failn failed"
[ $failn -eq 0 ]
