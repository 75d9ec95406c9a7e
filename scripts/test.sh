#!/usr/bin/env bash
# Installs what the tests need, then runs all of them:
#   1. the install lists on a bare Debian 12 (scripts/check-install.sh: a minbase chroot, as
#      root, from the Debian mirror; configure only), in the background beside steps 2 and 3;
#   2. a bounded libFuzzer run of the decoder and the framer (clang, ASan + UBSan);
#   3. the whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (but the
#      broker matrix and the kill tests);
#   4. the whole test suite in the normal build (its CTest summary comes last).
# The integration tests start their own Mosquitto on free loopback ports; nothing outside
# 127.0.0.1 is touched. Four tests run at a time: most of them wait on brokers and timers, not
# on the CPU; the crash tests and the broker matrix run alone. ECU2MQTT_QUICK=1 runs step 4 only. Arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
fuzz_seconds="${ECU2MQTT_FUZZ_SECONDS:-30}"
suites_failed=0

if [ "${ECU2MQTT_QUICK:-0}" != 1 ]; then
    # Mostly download and dpkg: it runs beside the builds and reports before the last suite.
    install_log=$(mktemp)
    scripts/check-install.sh >"$install_log" 2>&1 &
    install_check=$!

    echo "== Fuzzing, ${fuzz_seconds} s per target"
    cmake --preset fuzz >/dev/null
    cmake --build --preset fuzz --parallel "$(nproc)"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    # libFuzzer runs on one core: the three targets run side by side, each for its own time.
    for target in fuzz_decoder fuzz_framer fuzz_local_api; do
        mkdir -p "$scratch/$target"
        # New inputs go to the scratch folder; the committed seeds stay as they are.
        (cd "$scratch" && "$OLDPWD/build-fuzz/$target" -max_total_time="$fuzz_seconds" \
            -print_final_stats=1 "$scratch/$target" "$OLDPWD/fuzz/corpus" \
            >"$scratch/$target.log" 2>&1) &
    done
    fuzz_failed=0
    for job in $(jobs -p); do
        [ "$job" = "$install_check" ] || wait "$job" || fuzz_failed=1
    done
    for target in fuzz_decoder fuzz_framer fuzz_local_api; do
        grep -E "^(stat::number_of_executed_units|Done|==[0-9]+==|SUMMARY)" "$scratch/$target.log" |
            sed "s/^/$target: /"
    done
    if [ "$fuzz_failed" != 0 ]; then
        echo "FAILED: a fuzz target found a crash (see above)" >&2
        suites_failed=1
    fi

    echo "== Test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake --preset sanitize >/dev/null
    cmake --build --preset sanitize --parallel "$(nproc)"
    # The broker matrix (Aedes, RabbitMQ) and the kill tests run in the normal build only: they
    # test how brokers differ and what a SIGKILL leaves on disk, which sanitizers do not change.
    # Here they cost most (RabbitMQ starts in up to 35 s; 210 instrumented restarts took 190 s,
    # with nothing else running beside them).
    ctest --preset sanitize --parallel 4 --timeout 180 --label-exclude "broker-matrix|crash" "$@" ||
        suites_failed=1

    install_failed=0
    wait "$install_check" || install_failed=1
    cat "$install_log"
    rm -f "$install_log"
fi

echo "== Test suite"
scripts/build.sh
cd build
ctest --output-on-failure --parallel 4 --timeout 120 "$@" || suites_failed=1
if [ "${install_failed:-0}" != 0 ]; then
    echo "FAILED: the clean-machine check of the install lists (see above)" >&2
fi
exit $((suites_failed | ${install_failed:-0}))
