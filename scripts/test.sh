#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test. The integration tests start their
# own Mosquitto on a free loopback port; nothing outside 127.0.0.1 is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
scripts/build.sh
cd build
ctest --output-on-failure --timeout 120 "$@"
