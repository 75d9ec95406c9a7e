#!/usr/bin/env bash
# Installs what is needed, builds, and runs the service on its defaults. Arguments are passed to
# ecu2mqtt. When no broker URL is given, the broker is the one on 127.0.0.1:1883, and when
# nothing listens there a local Mosquitto is started for the session, so
# `mosquitto_sub -t 'ecu2mqtt/#' -v` shows the data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
# Only the service itself is built, so the first log line comes as soon as it is compiled. A
# fresh build folder is configured without the tests (they need packages the service does not);
# one the test command configured is reused as it is.
if [ ! -f build/CMakeCache.txt ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" -DECU2MQTT_BUILD_TESTS=OFF >/dev/null
fi
cmake --build build --parallel "$(nproc)" --target ecu2mqtt

broker_pid=""
conf=""
# shellcheck disable=SC2317 # called by the EXIT trap
stop_broker() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [ -n "$conf" ]; then
        rm -f "$conf"
    fi
}
trap stop_broker EXIT

broker_given=false
for arg in "$@"; do
    case "$arg" in --mqtt-url | --mqtt-url=* | --config | --config=*) broker_given=true ;; esac
done
if [ -n "${ECU2MQTT_MQTT_URL:-}" ] || [ -n "${ECU2MQTT_CONFIG:-}" ]; then
    broker_given=true
fi

if [ "$broker_given" = false ]; then
    # The broker looked for (and started) below is on 127.0.0.1: the service uses the same
    # address rather than the name localhost, which a bare system may not resolve.
    export ECU2MQTT_MQTT_URL=mqtt://127.0.0.1:1883
fi
if [ "$broker_given" = false ] && ! (: </dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
    conf=$(mktemp)
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\n' >"$conf"
    echo "No MQTT broker on localhost:1883: starting a local Mosquitto for this session." >&2
    "$mosquitto_bin" -c "$conf" &
    broker_pid=$!
    for _ in $(seq 50); do
        (: </dev/tcp/127.0.0.1/1883) 2>/dev/null && break
        sleep 0.1
    done
fi

./build/ecu2mqtt "$@" &
service_pid=$!
trap 'kill -TERM "$service_pid" 2>/dev/null || true' INT TERM
status=0
wait "$service_pid" || status=$?
# A signal interrupts the first wait; wait again for the service's own exit status.
if kill -0 "$service_pid" 2>/dev/null; then
    wait "$service_pid" || status=$?
fi
exit "$status"
