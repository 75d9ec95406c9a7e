#!/usr/bin/env bash
# Installs the Debian 12 packages ecu2mqtt needs. The README's commands, .ci/run and the
# Dockerfile all call this one script, so their package lists cannot drift apart.
#
#   scripts/install-deps.sh build   compiler, CMake and the libraries
#   scripts/install-deps.sh test    build + Catch2 and Mosquitto for the tests
#   scripts/install-deps.sh run     build + Mosquitto (started when no broker is running)
#   scripts/install-deps.sh runtime only the shared libraries the binary needs
set -euo pipefail

build_packages=(g++ cmake make libboost-dev libpaho-mqttpp-dev libpaho-mqtt-dev nlohmann-json3-dev)
runtime_packages=(libpaho-mqttpp3-1 libpaho-mqtt1.3 tini)

case "${1:-build}" in
build) wanted=("${build_packages[@]}") ;;
test) wanted=("${build_packages[@]}" catch2 mosquitto mosquitto-clients clang libclang-rt-14-dev
    python3-jsonschema python3-yaml shellcheck clang-format prometheus chromium) ;;
run) wanted=("${build_packages[@]}" mosquitto mosquitto-clients) ;;
runtime) wanted=("${runtime_packages[@]}") ;;
*)
    echo "usage: $0 build|test|run|runtime" >&2
    exit 2
    ;;
esac

missing=()
for package in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "Installing: ${missing[*]}" >&2
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
