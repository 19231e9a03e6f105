#!/usr/bin/env bash
# purple-e2ee keyring show | export | import against real database files,
# starting from the version 1 keyring.json fixtures.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
cli=${1:?path to purple-e2ee}
vectors=${2:?path to tests/vectors}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
umask 077
pass=0 failn=0
ok() { pass=$((pass + 1)); echo "ok $((pass + failn)) - $1"; }
bad() { failn=$((failn + 1)); echo "not ok $((pass + failn)) - $1"; }
check() { local name=$1; shift; if "$@" >/dev/null; then ok "$name"; else bad "$name"; fi; }

echo "TAP version 13"
mkdir -p "$tmp/k"
cp "$vectors/keyring-v1-protected.json" "$tmp/k/keyring.json"
printf 'correct horse\n' >"$tmp/pw"
printf 'wrong horse\n' >"$tmp/wrong"

cp "$vectors/keyring-v1-plain.json" "$tmp/plain.json"
check "show of a version 1 keyring.json" bash -c "'$cli' keyring show '$tmp/plain.json' | grep -q '2 account(s)'"
check "show leaves keyring.json as it is" cmp -s "$vectors/keyring-v1-plain.json" "$tmp/plain.json"
check "import of a protected keyring.json needs its passphrase" \
  bash -c "! '$cli' keyring import '$tmp/k/keyring.json' '$tmp/k/keyring.sqlite' 2>/dev/null"
check "nothing is left of a failed import" test ! -e "$tmp/k/keyring.sqlite"
check "import of keyring.json" "$cli" keyring import --passphrase-file "$tmp/pw" \
  "$tmp/k/keyring.json" "$tmp/k/keyring.sqlite"
check "the imported keyring.json is gone" test ! -e "$tmp/k/keyring.json"
check "database mode 0600" test "$(stat -c %a "$tmp/k/keyring.sqlite")" = 600
"$cli" keyring show "$tmp/k/keyring.sqlite" >"$tmp/show" 2>&1
check "show lists both accounts without a passphrase" grep -q "2 account(s)" "$tmp/show"
check "show lists trust" grep -q "rejected" "$tmp/show"
check "show prints no secret" bash -c "! grep -q '\"d\"' '$tmp/show'"
check "export needs the passphrase" bash -c "! '$cli' keyring export '$tmp/k/keyring.sqlite' >/dev/null 2>&1"
check "export refuses a wrong passphrase" \
  bash -c "! '$cli' keyring export --passphrase-file '$tmp/wrong' '$tmp/k/keyring.sqlite' >/dev/null 2>&1"
check "export" "$cli" keyring export --passphrase-file "$tmp/pw" -o "$tmp/backup.json" "$tmp/k/keyring.sqlite"
check "backup mode 0600" test "$(stat -c %a "$tmp/backup.json")" = 600
check "backup has no replay state" bash -c "! grep -q -e replay -e derived -e last_counter '$tmp/backup.json'"
check "import into an existing keyring is refused" \
  bash -c "! '$cli' keyring import '$tmp/backup.json' '$tmp/k/keyring.sqlite' 2>/dev/null"
check "import of the backup" "$cli" keyring import "$tmp/backup.json" "$tmp/k/restored.sqlite"
"$cli" keyring show "$tmp/k/restored.sqlite" | tail -n +2 >"$tmp/show2"
tail -n +2 "$tmp/show" >"$tmp/show1"
check "the restored keyring shows the same keys and trust" cmp -s "$tmp/show1" "$tmp/show2"
printf 'SQLite format 3\0%.0s' 1 >"$tmp/k/bad.sqlite"
head -c 4096 /dev/urandom >>"$tmp/k/bad.sqlite"
"$cli" keyring show "$tmp/k/bad.sqlite" >/dev/null 2>"$tmp/err"
check "a damaged database is a clear error with the way out" grep -q "keyring import" "$tmp/err"

echo "1..$((pass + failn))"
echo "# $pass passed, $failn failed"
[ $failn -eq 0 ]
