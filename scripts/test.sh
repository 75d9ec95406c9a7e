#!/usr/bin/env bash
# Installs what the tests need, then runs all of them:
#   1. the install lists on a bare Debian 12 (scripts/check-install.sh: a minbase chroot, as
#      root, from the Debian mirror; configure only);
#   2. a bounded libFuzzer run of the decoder and the framer (clang, ASan + UBSan);
#   3. the whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. the whole test suite in the normal build (its CTest summary comes last).
# The integration tests start their own Mosquitto on free loopback ports; nothing outside
# 127.0.0.1 is touched. ECU2MQTT_QUICK=1 runs step 4 only. Arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
fuzz_seconds="${ECU2MQTT_FUZZ_SECONDS:-30}"

if [ "${ECU2MQTT_QUICK:-0}" != 1 ]; then
    scripts/check-install.sh

    echo "== Fuzzing, ${fuzz_seconds} s per target"
    cmake --preset fuzz >/dev/null
    cmake --build --preset fuzz --parallel "$(nproc)"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for target in fuzz_decoder fuzz_framer fuzz_local_api; do
        mkdir -p "$scratch/$target"
        # New inputs go to the scratch folder; the committed seeds stay as they are.
        (cd "$scratch" && "$OLDPWD/build-fuzz/$target" -max_total_time="$fuzz_seconds" \
            -print_final_stats=1 "$scratch/$target" "$OLDPWD/fuzz/corpus" 2>&1 |
            grep -E "^(stat::number_of_executed_units|Done|==[0-9]+==|SUMMARY)" |
            sed "s/^/$target: /")
    done

    echo "== Test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake --preset sanitize >/dev/null
    cmake --build --preset sanitize --parallel "$(nproc)"
    ctest --preset sanitize --timeout 180 "$@"
fi

echo "== Test suite"
scripts/build.sh
cd build
ctest --output-on-failure --timeout 120 "$@"
