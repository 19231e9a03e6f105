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

# seal/open: one protocol v2 session start (X3DH, then the first ratchet
# message).  Account identifiers ("<protocol>:<name>") enter the X3DH info.
A=prpl-jabber:alice@example.test B=prpl-jabber:bob@example.test C=prpl-jabber:carol@example.test
msg='Grüße <b>bob</b> & "friends"'
printf '%s' "$msg" | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" >"$tmp/env.txt"
check "seal gives one armored line" bash -c "[ \$(wc -l <'$tmp/env.txt') -eq 1 ] && grep -q '^?E2E:[A-Za-z0-9_-]*$' '$tmp/env.txt'"
# byte 0 = 0x20 (single, unpadded): base64url "IA"; then the ratchet
# message: version 2, type 2 (a start), flags 0: "IAIC".
check "seal makes a v2 single envelope holding a start" grep -q '^?E2E:IAIC' "$tmp/env.txt"
check "no plaintext in the envelope" bash -c "! grep -q 'bob' '$tmp/env.txt'"
out=$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env.txt")
check "open restores the exact plaintext" test "$out" = "$msg"
printf '%s' "$msg" | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" >"$tmp/env-again.txt"
check "each seal starts a new session" bash -c "! cmp -s '$tmp/env.txt' '$tmp/env-again.txt'"
check "open reads the second start too" test "$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env-again.txt")" = "$msg"
printf '' | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" >"$tmp/env-empty.txt"
check "empty text round trip" bash -c "[ -s '$tmp/env-empty.txt' ] && [ -z \"\$('$cli' open --private '$tmp/bob.jwk' --public '$tmp/alice.pub' --account '$B' --peer '$A' <'$tmp/env-empty.txt')\" ]"
rejects "seal needs the account identifiers" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub"
rejects "open needs the account identifiers" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub"
rejects "seal refuses an option given twice" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --peer "$B"
rejects "open refuses seal's --prekey" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" --prekey AAAA --signing-key AAAA
rejects_stdin "seal refuses a malformed account identifier" "x" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "alice" --peer "$B"
rejects_stdin "open refuses a malformed account identifier" "$(cat "$tmp/env.txt")" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "alice"

# Runs the CLI on a file as stdin, expecting failure whose message matches $3.
rejects_file() {
  local name=$1 file=$2 pattern=$3; shift 3
  local out rc
  out=$("$cli" "$@" <"$file" 2>"$tmp/err"); rc=$?
  if [ $rc -ne 0 ] && [ -z "$out" ] && grep -Eq "$pattern" "$tmp/err"; then ok "$name"; else bad "$name (rc=$rc out=$out err=$(cat "$tmp/err"))"; fi
}
"$cli" keygen -o "$tmp/carol.jwk"; "$cli" public "$tmp/carol.jwk" >"$tmp/carol.pub"
# Each failure names its own cause.
rejects_file "open with the wrong recipient key" "$tmp/env.txt" "not addressed to this key" open --private "$tmp/carol.jwk" --public "$tmp/alice.pub" --account "$C" --peer "$A"
rejects_file "open with the wrong sender key" "$tmp/env.txt" "not sent by the given key" open --private "$tmp/bob.jwk" --public "$tmp/carol.pub" --account "$B" --peer "$C"
# Unknown key share: Alice's key republished by mallory; Bob must not read
# Alice's envelope as mallory's, nor one meant for another account as his.
rejects_file "open refuses the sender's key under another account" "$tmp/env.txt" "does not authenticate" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "prpl-jabber:mallory@example.test"
rejects_file "open refuses an envelope for another recipient account" "$tmp/env.txt" "does not authenticate" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "prpl-irc:bob@example.test" --peer "$A"
# The last character carries the end of the ratchet message's GCM tag.
tampered=$(sed 's/.$/A/;t' "$tmp/env.txt"); [ "$tampered" = "$(cat "$tmp/env.txt")" ] && tampered=$(sed 's/.$/B/' "$tmp/env.txt")
printf '%s\n' "$tampered" >"$tmp/env-tampered.txt"
rejects_file "open rejects a tampered envelope" "$tmp/env-tampered.txt" "authenticat|base64" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
# A flipped bit in the middle (the ciphertext) is an authentication failure.
python3 - "$tmp/env.txt" "$tmp/env-flip.txt" <<'PY' 2>/dev/null || cp "$tmp/env-tampered.txt" "$tmp/env-flip.txt"
import base64, sys
t = open(sys.argv[1]).read().strip()[5:]
raw = bytearray(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
raw[len(raw) - 20] ^= 0x01
open(sys.argv[2], "w").write("?E2E:" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=") + "\n")
PY
rejects_file "open rejects a flipped ciphertext bit" "$tmp/env-flip.txt" "does not authenticate" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
rejects_stdin "open rejects non-armor" "hello" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
# byte 0 = 0x24: neither v1 nor a v2 layout.
printf '?E2E:JAIC%s\n' "$(cut -c9- "$tmp/env.txt")" >"$tmp/env-layout.txt"
rejects_file "open rejects an unknown envelope layout" "$tmp/env-layout.txt" "." open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"

# A NUL ends the armor for a C string reader; what follows must not be ignored.
{ tr -d '\n' <"$tmp/env.txt"; printf '\0junk'; } >"$tmp/env-nul.txt"
rejects_file "open rejects <armor> NUL junk" "$tmp/env-nul.txt" "NUL" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
# Plaintext must be UTF-8 text without NUL.
printf 'a\0b' >"$tmp/plain-nul.txt"; printf 'caf\xe9' >"$tmp/plain-latin1.txt"
rejects_file "seal refuses plaintext with NUL" "$tmp/plain-nul.txt" "UTF-8|NUL" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B"
rejects_file "seal refuses invalid UTF-8" "$tmp/plain-latin1.txt" "UTF-8|NUL" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B"
helper=${E2EE_BUILD_ROOT:-}/tests/interop/e2ee-interop-helper
if [ -x "$helper" ]; then
  # The helper seals any bytes into a v2 start; the CLI must not pass them on.
  "$helper" seal-v2-raw "$tmp/alice.jwk" "$A" "$B" "$tmp/bob.pub" <"$tmp/plain-nul.txt" >"$tmp/env-pnul.txt"
  "$helper" seal-v2-raw "$tmp/alice.jwk" "$A" "$B" "$tmp/bob.pub" <"$tmp/plain-latin1.txt" >"$tmp/env-platin1.txt"
  printf 'raw ok' | "$helper" seal-v2-raw "$tmp/alice.jwk" "$A" "$B" "$tmp/bob.pub" >"$tmp/env-praw.txt"
  check "control: the helper's raw start opens" test "$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env-praw.txt")" = "raw ok"
  rejects_file "open refuses a plaintext with NUL" "$tmp/env-pnul.txt" "UTF-8|NUL" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
  rejects_file "open refuses a plaintext that is not UTF-8" "$tmp/env-platin1.txt" "UTF-8|NUL" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
  # A genuine v1 envelope (static-static, the helper still makes them for
  # the WebCrypto interop test) is refused as retired, not tried.
  printf 'old' | "$helper" seal 5 0 "$tmp/alice.jwk" "$A" "$B" "$tmp/bob.pub" >"$tmp/env-v1.txt"
  check "control: the v1 envelope is valid v1" test "$("$helper" open "$tmp/bob.jwk" "$tmp/alice.pub" "$B" "$A" <"$tmp/env-v1.txt")" = "old"
  rejects_file "open refuses a v1 envelope as retired" "$tmp/env-v1.txt" "version 1 .*retired" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"

  # Mode 1: a prekey record signed by Bob's signing key, verified first.
  "$helper" prekey "$tmp/bob.pub" >"$tmp/bob-prekey.txt"
  "$helper" prekey "$tmp/bob.pub" >"$tmp/bob-prekey2.txt"
  "$helper" prekey "$tmp/carol.pub" >"$tmp/carol-prekey.txt"
  "$helper" prekey "$tmp/bob.pub" $(( $(date +%s) - 30 * 86400 )) >"$tmp/bob-prekey-old.txt"
  sk=$(sed -n 1p "$tmp/bob-prekey.txt") pk=$(sed -n 2p "$tmp/bob-prekey.txt")
  printf 'with prekey' | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --prekey "$pk" --signing-key "$sk" >"$tmp/env-m1.txt"
  check "seal with a verified prekey gives a start" grep -q '^?E2E:IAIC' "$tmp/env-m1.txt"
  rejects_file "open refuses a mode-1 start it cannot answer" "$tmp/env-m1.txt" "prekey \(mode 1\)" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
  rejects_stdin "seal refuses --prekey without --signing-key" "x" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --prekey "$pk"
  rejects_file "seal refuses a prekey signed by another signing key" "$tmp/plain-latin1.txt" "signature" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --prekey "$pk" --signing-key "$(sed -n 1p "$tmp/bob-prekey2.txt")"
  rejects_stdin "seal refuses a prekey of another key" "x" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --prekey "$(sed -n 2p "$tmp/carol-prekey.txt")" --signing-key "$(sed -n 1p "$tmp/carol-prekey.txt")"
  rejects_file "seal refuses an expired prekey" "$tmp/plain-latin1.txt" "expire" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --prekey "$(sed -n 2p "$tmp/bob-prekey-old.txt")" --signing-key "$(sed -n 1p "$tmp/bob-prekey-old.txt")"
  rejects_stdin "seal refuses a signing key of the wrong length" "x" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --prekey "$pk" --signing-key "${sk%??}"
  rejects_stdin "seal refuses a prekey that is not base64url" "x" seal --private "$tmp/alice.jwk" --public "$tmp/bob.pub" --account "$A" --peer "$B" --prekey "!$pk" --signing-key "$sk"
  # A JWK that carries its owner's signing key (e2ee_sig, with e2ee_pk):
  # a prekey under any other signing key is someone else's.
  sk2=$(sed -n 1p "$tmp/bob-prekey2.txt") pk2=$(sed -n 2p "$tmp/bob-prekey2.txt")
  sed "s/\"e2ee_v\":\[1\]/\"e2ee_v\":[1,2],\"e2ee_sig\":\"$sk2\",\"e2ee_pk\":\"$pk2\"/" "$tmp/bob.pub" >"$tmp/bob-v2.pub"
  grep -q e2ee_sig "$tmp/bob-v2.pub" || bad "v2 JWK edit"
  printf 'published' | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/bob-v2.pub" --account "$A" --peer "$B" --prekey "$pk2" --signing-key "$sk2" >"$tmp/env-pub.txt"
  check "control: seal with the JWK's own signing key" grep -q '^?E2E:IAIC' "$tmp/env-pub.txt"
  rejects_file "seal refuses a signing key other than the JWK's" "$tmp/plain-latin1.txt" "differs from the signing key published" seal --private "$tmp/alice.jwk" --public "$tmp/bob-v2.pub" --account "$A" --peer "$B" --prekey "$pk" --signing-key "$sk"
  # To a set: the key the prekey names gets mode 1, the other mode 2.
  printf '{"keys":[%s,%s]}' "$(cat "$tmp/bob.pub")" "$(cat "$tmp/carol.pub")" >"$tmp/set.json"
  printf 'mixed' | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/set.json" --account "$A" --peer "$B" --prekey "$pk" --signing-key "$sk" >"$tmp/env-mixed.txt"
  check "a set with one prekey: the mode-2 slot opens" test "$("$cli" open --private "$tmp/carol.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env-mixed.txt")" = "mixed"
  rejects_file "a set with one prekey: the mode-1 slot is refused" "$tmp/env-mixed.txt" "prekey \(mode 1\)" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
else
  bad "interop helper not built at $helper"
fi
# A private JWK where a public key belongs (PROTOCOL.md 2.1).
for c in derive seal open; do
  extra=""; [ $c != derive ] && extra="--account $A --peer $B"
  rejects_file "$c refuses a private JWK as --public" "$tmp/env.txt" "private key" $c --private "$tmp/alice.jwk" --public "$tmp/bob.jwk" $extra
done

# A JWK Set of two recipients on one account: the multi layout.
printf '{"keys":[%s,%s]}' "$(cat "$tmp/bob.pub")" "$(cat "$tmp/carol.pub")" >"$tmp/set.json"
printf 'to both' | "$cli" seal --private "$tmp/alice.jwk" --public "$tmp/set.json" --account "$A" --peer "$B" >"$tmp/env2.txt"
# byte 0 = 0x21 (multi), byte 1 = 2 slots: base64url "IQ" and I..L.
check "multi-recipient: multi layout with two slots" grep -q '^?E2E:IQ[I-L]' "$tmp/env2.txt"
check "multi-recipient: bob opens" test "$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env2.txt")" = "to both"
check "multi-recipient: second device opens" test "$("$cli" open --private "$tmp/carol.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A" <"$tmp/env2.txt")" = "to both"
rejects_file "multi-recipient: a third key is not addressed" "$tmp/env2.txt" "not addressed to this key" open --private "$tmp/alice.jwk" --public "$tmp/alice.pub" --account "$B" --peer "$A"
rejects_file "multi-recipient: wrong sender key" "$tmp/env2.txt" "not sent by the given key" open --private "$tmp/carol.jwk" --public "$tmp/bob.pub" --account "$B" --peer "$A"
rejects_file "multi-recipient: another recipient account" "$tmp/env2.txt" "does not authenticate" open --private "$tmp/carol.jwk" --public "$tmp/alice.pub" --account "$C" --peer "$A"
# The sender's key inside a set of senders: the start names it.
printf '{"keys":[%s,%s]}' "$(cat "$tmp/carol.pub")" "$(cat "$tmp/alice.pub")" >"$tmp/senders.json"
check "open finds the sender in a JWK Set" test "$("$cli" open --private "$tmp/bob.jwk" --public "$tmp/senders.json" --account "$B" --peer "$A" <"$tmp/env2.txt")" = "to both"

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
