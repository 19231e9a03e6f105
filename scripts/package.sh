#!/usr/bin/env bash
# The Debian package, end to end: builds it with dpkg-buildpackage in a copy
# of this tree (nothing is written here), checks it with lintian (any error
# or warning fails), installs it with apt-get, then runs the demo and the
# BitlBee test against the INSTALLED plugin, not a build folder.
#   sudo ./scripts/package.sh [--keep]
# --keep (or E2EE_KEEP_PACKAGE=1) leaves the package installed and the
# work folder (with the .deb and the logs) in place; by default the package
# is removed again if this script installed it.
# SPDX-License-Identifier: GPL-2.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

keep=${E2EE_KEEP_PACKAGE:-}
[ "${1:-}" = "--keep" ] && keep=1

bash scripts/install-deps.sh || { echo "package: dependency installation failed" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

work=$(mktemp -d /tmp/purple-e2ee-package.XXXXXX)
installed_here=""
cleanup() {
  if [ -n "$installed_here" ] && [ -z "$keep" ]; then
    echo "=== removing the package again"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q purple-e2ee >/dev/null || true
  fi
  if [ -z "$keep" ]; then rm -rf "$work"; else echo "package: kept $work"; fi
}
trap cleanup EXIT

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
src="$work/purple-e2ee-$version"
mkdir -p "$src"
echo "=== copying the source tree to $src"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$root" ls-files -z -co --exclude-standard | (cd "$root" && tar --null -T - -cf -) \
    | tar -xf - -C "$src"
else
  tar --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$src"
fi

echo "=== dpkg-buildpackage -us -uc -b"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 \
  || { tail -n 80 "$work/build.log"; echo "package: the build failed (log: $work/build.log)"; keep=1; exit 1; }
deb="$work/purple-e2ee_${version}_${arch}.deb"
changes="$work/purple-e2ee_${version}_${arch}.changes"
[ -f "$deb" ] || { echo "package: $deb was not made"; exit 1; }
echo "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"
dpkg-deb --contents "$deb" | awk '{print "  " $6}'

echo "=== lintian (errors and warnings fail)"
# lintian advises against running as root: use nobody when we are root.
lint=(lintian --fail-on error,warning --display-info --pedantic "$changes" "$deb")
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
  chmod 0755 "$work"
  mkdir -p "$work/lintian-home" && chown nobody "$work/lintian-home"
  lint=(runuser -u nobody -- env HOME="$work/lintian-home" "${lint[@]}")
fi
"${lint[@]}" || { echo "package: lintian found errors or warnings"; exit 1; }
echo "lintian: no errors or warnings"

echo "=== apt-get install $deb"
dpkg-query -W -f='${Status}' purple-e2ee 2>/dev/null | grep -q "install ok installed" \
  || installed_here=1
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$deb"

plugindir=$(pkg-config --variable=plugindir purple)
for f in "$plugindir/purple-e2ee.so" "$plugindir/purple-e2ee-bitlbee.so" /usr/bin/purple-e2ee \
         /usr/share/man/man1/purple-e2ee.1.gz /usr/share/man/man7/purple-e2ee-plugin.7.gz \
         /usr/share/locale/de/LC_MESSAGES/purple-e2ee.mo; do
  [ -e "$f" ] || { echo "package: $f is not installed"; exit 1; }
done
/usr/bin/purple-e2ee --help >/dev/null

# The demo's headless client is a test program, not part of the package:
# build only it (no plugin) so the only purple-e2ee.so is the installed one.
echo "=== building the headless test client"
meson setup "$work/client" -Dbench=false >"$work/client.log" 2>&1 \
  && ninja -C "$work/client" tests/plugin/e2ee-test-client >>"$work/client.log" 2>&1 \
  || { tail -n 40 "$work/client.log"; exit 1; }
[ ! -e "$work/client/plugin/purple-e2ee.so" ] || { echo "package: a built plugin is in the way"; exit 1; }

echo "=== the demo against the installed plugin in $plugindir"
timeout --kill-after=10 150 python3 tests/plugin/demo.py --build-dir "$work/client" \
  --plugin-dir "$plugindir"

echo "=== BitlBee with the installed plugin and loader"
E2EE_TEST_CLIENT="$work/client/tests/plugin/e2ee-test-client" E2EE_PLUGIN_DIR="$plugindir" \
  E2EE_SOURCE_ROOT="$root" E2EE_REQUIRE_SERVERS=1 PYTHONDONTWRITEBYTECODE=1 \
  timeout --kill-after=10 200 python3 tests/plugin/test_bitlbee.py

echo "package: built, lintian-clean, installed, demo and BitlBee passed"
