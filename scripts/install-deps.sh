#!/usr/bin/env bash
# Installs what building, the demo and the tests need on Debian 12.
# SPDX-License-Identifier: GPL-2.0-or-later
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config gettext
  libglib2.0-dev libjson-glib-dev libgcrypt20-dev libsqlite3-dev libpurple-dev
  prosody ngircd finch pidgin xvfb xauth x11-apps imagemagick xdotool fonts-symbola tmux
  nodejs python3 valgrind clang libclang-rt-14-dev libotr5-dev
  bitlbee-libpurple debhelper lintian dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Any nodejs will do (Debian's, or a newer one already on the machine).
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "Installing: ${missing[*]}"
  $SUDO apt-get update -q
  # Services the packages would start are not used: the tests run their own.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
