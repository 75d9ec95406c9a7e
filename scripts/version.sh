#!/usr/bin/env bash
# Prints the version from project() in CMakeLists.txt: the one version number of ecu2mqtt.
# The image workflow passes it to the Dockerfiles, whose labels and checks use it.
set -euo pipefail
cd "$(dirname "$0")/.."
sed -n 's/^project(ecu2mqtt VERSION \([0-9][0-9.]*\) .*/\1/p' CMakeLists.txt | grep . ||
    { echo "no version in CMakeLists.txt's project()" >&2; exit 1; }
