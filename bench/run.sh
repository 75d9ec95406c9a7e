#!/usr/bin/env bash
# Builds in Release mode and prints the benchmark tables (decode throughput; end-to-end latency,
# RSS and binary size against a real Mosquitto on loopback). Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release --parallel "$(nproc)" --target bench_decode bench_end_to_end ecu2mqtt ecu2mqtt-sim
echo "## Machine"
echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "## Decode"
build-release/bench/bench_decode
echo
echo "## End to end"
build-release/bench/bench_end_to_end "${1:-500}"
