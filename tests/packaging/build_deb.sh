#!/usr/bin/env bash
# Builds the Debian package from an already built tree into BUILD_DIR/package-test, for the
# package tests (a ctest fixture). Usage: build_deb.sh BUILD_DIR
set -euo pipefail
build_dir=$1
rm -rf "$build_dir/package-test"
cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$build_dir/package-test" >/dev/null
ls "$build_dir"/package-test/*.deb
