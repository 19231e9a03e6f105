#!/usr/bin/env bash
# The demo: installs what it needs, builds the plugin, then runs an encrypted
# chat between two libpurple clients on a throwaway Prosody and ngIRCd on
# 127.0.0.1, printing what each user saw and what the servers relayed.
# Everything it starts is stopped and removed at the end.
#   sudo ./scripts/demo.sh          (E2EE_DEMO_BUILD_DIR: build dir, default build-demo)
# SPDX-License-Identifier: GPL-2.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh || { echo "demo: dependency installation failed" >&2; exit 1; }

build=${E2EE_DEMO_BUILD_DIR:-build-demo}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$build/build.ninja" ]; then
  echo "Configuring $build ..."
  meson setup "$build" -Dbench=false >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
echo "Building the plugin and the headless client ..."
ninja -C "$build" plugin/purple-e2ee.so tests/plugin/e2ee-test-client >"$log" 2>&1 \
  || { cat "$log" >&2; exit 1; }

# The demo bounds itself (110 s); this is the backstop.
timeout --kill-after=10 150 python3 tests/plugin/demo.py --build-dir "$build"
