#!/usr/bin/env bash
# Configures and builds ecu2mqtt (and its tests) in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" -DECU2MQTT_BUILD_TESTS=ON >/dev/null
cmake --build build --parallel "$(nproc)"
