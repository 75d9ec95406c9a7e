#!/usr/bin/env bash
# Checks packaging/ecu2mqtt.service with systemd's own tools: `systemd-analyze verify` must
# report nothing at all (it only warns about unknown keys), and `systemd-analyze security`
# must rate the sandbox at 2.0 or better ("OK"; 10 is unconfined).
# Usage: verify_unit.sh UNIT_FILE ECU2MQTT_BINARY
set -euo pipefail
unit_file=$1
binary=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# verify checks that ExecStart exists: point it at the binary just built. The man page in
# Documentation= is checked in the package test, where it is installed.
unit="$scratch/ecu2mqtt.service"
sed "s|^ExecStart=/usr/bin/ecu2mqtt|ExecStart=$binary|" "$unit_file" >"$unit"
grep -q "^ExecStart=$binary" "$unit"

report=$(systemd-analyze verify --man=no "$unit" 2>&1) || {
    echo "$report"
    exit 1
}
if [ -n "$report" ]; then
    echo "systemd-analyze verify complained:"
    echo "$report"
    exit 1
fi
echo "systemd-analyze verify: no complaint"

# The threshold is in tenths of the exposure level printed.
if ! systemd-analyze security --offline=true --threshold=20 "$unit" >"$scratch/security" 2>&1; then
    grep -E "✗|Overall" "$scratch/security" || cat "$scratch/security"
    echo "the unit's exposure level is above 2.0"
    exit 1
fi
grep "Overall" "$scratch/security"
