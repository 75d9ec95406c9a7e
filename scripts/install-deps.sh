#!/usr/bin/env bash
# Installs the Debian 12 packages ecu2mqtt needs. The README's commands, .ci/run and the
# Dockerfile all call this one script, so their package lists cannot drift apart.
#
#   scripts/install-deps.sh build   compiler, CMake and the libraries
#   scripts/install-deps.sh test      build + Catch2, the brokers (Mosquitto, RabbitMQ; Aedes from
#                                     npm into build/test-brokers) and the checkers the tests run
#   scripts/install-deps.sh run       build + Mosquitto (started when no broker is running)
#   scripts/install-deps.sh package   build + what cpack needs for the Debian package
#   scripts/install-deps.sh runtime   only the shared libraries the binary needs
#   scripts/install-deps.sh container runtime + tini, the init of the standalone image
#   scripts/install-deps.sh artwork   the SVG renderer for ha-addon/artwork/render.sh
#
# scripts/check-install.sh proves these lists on a bare Debian 12 (a minbase chroot): a package
# that only happens to be installed here cannot hide a missing one.
set -euo pipefail

# libssl-dev: Debian's PahoMqttCpp CMake config asks for OpenSSL, but no Paho -dev package
# depends on it.
build_packages=(g++ cmake make libboost-dev libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev
    nlohmann-json3-dev libsqlite3-dev)
package_packages=(dpkg-dev file help2man)
# ca-certificates: mqtts:// without --mqtt-ca-file trusts the system CAs, which a slim image lacks.
# tzdata: the zone files that turn a polled ECU's time zone name into its day.
runtime_packages=(libpaho-mqttpp3-1 libpaho-mqtt1.3 libsqlite3-0 libssl3 ca-certificates tzdata)

case "${1:-build}" in
build) wanted=("${build_packages[@]}") ;;
test) wanted=("${build_packages[@]}" catch2 mosquitto mosquitto-clients clang libclang-rt-14-dev
    python3-jsonschema python3-yaml shellcheck clang-format "${package_packages[@]}" lintian systemd
    apparmor prometheus chromium openssl debootstrap nodejs rabbitmq-server)
    # Debian's nodejs comes without npm; NodeSource's bundles it and conflicts with Debian's.
    command -v npm >/dev/null || wanted+=(npm) ;;
run) wanted=("${build_packages[@]}" mosquitto mosquitto-clients ca-certificates tzdata) ;;
package) wanted=("${build_packages[@]}" "${package_packages[@]}") ;;
runtime) wanted=("${runtime_packages[@]}") ;;
container) wanted=("${runtime_packages[@]}" tini) ;;
artwork) wanted=(librsvg2-bin) ;;
*)
    echo "usage: $0 build|test|run|package|runtime|container|artwork" >&2
    exit 2
    ;;
esac

# The delivery tests' Aedes broker comes from npm, into the build area, for the tests only: the
# product's build never fetches anything.
install_aedes() {
    local dir
    dir="$(cd "$(dirname "$0")/.." && pwd)/build/test-brokers"
    if [ -f "$dir/node_modules/aedes/package.json" ]; then
        return 0
    fi
    mkdir -p "$dir"
    # Aedes 1.2 needs Node.js 20; Debian 12's own Node.js is 18, where 0.51 is the newest that runs.
    local version="~1.2.0"
    if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
        version="~0.51.3"
    fi
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "aedes@$version" >&2
}

missing=()
for package in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    if [ "${1:-build}" = test ]; then
        install_aedes
    fi
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "Installing: ${missing[*]}" >&2
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
if [ "${1:-build}" = test ]; then
    install_aedes
fi
