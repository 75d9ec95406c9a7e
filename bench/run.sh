#!/usr/bin/env bash
# Builds in Release mode and prints the benchmark tables (decode and payload throughput, heap
# allocations, instruction counts when valgrind is installed; end-to-end latency, RSS and binary
# size against a real Mosquitto on loopback). Not part of the test run.
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
if command -v valgrind >/dev/null; then
    # Instructions per call, counted by callgrind: exact and repeatable where timings on a shared
    # machine are not. The difference between 110 and 10 calls, so start-up and warm-up cancel.
    instructions_per_call() {
        local few many
        few=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            build-release/bench/bench_decode --repeat "$1" "$2" 10 2>&1 | sed -n 's/.*Collected : //p')
        many=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            build-release/bench/bench_decode --repeat "$1" "$2" 110 2>&1 | sed -n 's/.*Collected : //p')
        echo $(((many - few) / 100))
    }
    echo "### Instructions per call (callgrind)"
    echo
    echo "| operation | real capture | 10 QS1 | 50 QS1 |"
    echo "|---|---:|---:|---:|"
    for operation in decode_message decode_message+payloads decode_inbound decode_realtime_into \
        decode_realtime_into+payloads; do
        echo "| $operation | $(instructions_per_call "$operation" capture) |" \
            "$(instructions_per_call "$operation" 10-qs1) |" \
            "$(instructions_per_call "$operation" 50-qs1) |"
    done
    echo
fi
echo "## End to end"
build-release/bench/bench_end_to_end "${1:-500}"
