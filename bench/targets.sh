#!/usr/bin/env bash
# The service-level figures of issue 22 on a Release build, against a real Mosquitto on loopback:
# whole-service CPU per 25-QS1 upload answered one after another, and 200 ECUs (4 QS1 each)
# uploading at the same moment against 200 uploads of the same size one after another.
# Usage: bench/targets.sh [build-dir]   (default build-release; needs ecu2mqtt and ecu2mqtt-sim)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-release}
service_bin=$build/ecu2mqtt
sim_bin=$build/ecu2mqtt-sim
work=$(mktemp -d /tmp/ecu2mqtt-targets.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

broker_port=$(free_port)
printf 'listener %s 127.0.0.1\npersistence false\nmax_queued_messages 0\n' "$broker_port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
broker=$!
cleanup() {
    kill "${service:-}" "$broker" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
sleep 0.3

# User + system CPU of a process so far, in microseconds.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%d", (f[12] + f[13]) * 1e6 / hz }' "/proc/$1/stat"; }

start_service() {
    rm -rf "$work/state"
    ecu_port=$(free_port)
    "$service_bin" --listen 127.0.0.1 --ports "$ecu_port" --mqtt-url "mqtt://127.0.0.1:$broker_port" \
        --state-dir "$work/state" --log-level warn --http-listen 127.0.0.1:0 \
        --max-connections 1100 --max-ecus 1100 >"$work/service.log" 2>&1 &
    service=$!
    sleep 0.5
}
stop_service() { kill "$service"; wait "$service" 2>/dev/null || true; }

# Runs the simulator against the service; prints "<wall seconds> <service CPU us> <uploads>".
sim() {
    local before after out
    before=$(cpu_us "$service")
    out=$("$sim_bin" --ports "$ecu_port" --models 806 --night 0-0 --start 2024-06-21T00:00:00 \
        --timeout-ms 60000 "$@")
    sleep 0.3 # the last commits and publishes after the last answer
    after=$(cpu_us "$service")
    python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["wall_seconds"], sys.argv[2], s["answered"])' \
        "$out" "$((after - before))"
}

# 200 uploads of one ECU with 25 QS1, five minutes apart, each answered before the next.
start_service
sim --ecus 1 --inverters 25 --hours 0 >/dev/null # announces the devices first
read -r wall cpu n < <(sim --ecus 1 --inverters 25 --hours 16.6 --start 2024-06-21T01:00:00)
echo "one ECU x 25 QS1, $n uploads one after another: $(python3 -c "print(f'{$cpu/$n:.0f}')") us service CPU per upload, $(python3 -c "print(f'{$wall*1000/$n:.2f}')") ms per upload"
stop_service

# 200 uploads of 4 QS1 one after another (one ECU), then 200 ECUs x 4 QS1 at once (devices
# announced by a first round, so both measure uploads only).
start_service
sim --ecus 1 --inverters 4 --hours 0 >/dev/null
read -r seq_wall seq_cpu seq_n < <(sim --ecus 1 --inverters 4 --hours 16.6 --start 2024-06-21T01:00:00)
stop_service
start_service
sim --ecus 200 --inverters 4 --hours 0 >/dev/null
read -r burst_wall burst_cpu burst_n < <(sim --ecus 200 --inverters 4 --hours 0 --start 2024-06-21T01:00:00)
stop_service
echo "4 QS1, $seq_n uploads one after another: $(python3 -c "print(f'{$seq_wall*1000:.0f}')") ms, $(python3 -c "print(f'{$seq_cpu/$seq_n:.0f}')") us CPU per upload"
echo "200 ECUs x 4 QS1 at once: $burst_n answered in $(python3 -c "print(f'{$burst_wall*1000:.0f}')") ms, $(python3 -c "print(f'{$burst_cpu/$burst_n:.0f}')") us CPU per upload; speed-up $(python3 -c "print(f'{$seq_wall/$burst_wall:.1f}')")x"
