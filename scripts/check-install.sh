#!/usr/bin/env bash
# Proves the package lists of scripts/install-deps.sh on a bare Debian 12: in a fresh
# `debootstrap --variant=minbase bookworm` chroot, each list is installed and CMake is configured
# the way the command that uses it does. A machine with many -dev packages installed would hide
# a missing one; this check cannot. Configure only, no build: a few minutes, most of it download.
#
#   scripts/check-install.sh [LIST...]   lists: build run package test (default: all four)
#
# Needs root (debootstrap, chroot) and the Debian mirror. ECU2MQTT_CHECK_ROOT names the folder of
# the chroot (default: a temporary one, removed afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "check-install: needs root for debootstrap and chroot; skipped" >&2
    exit 0
fi
lists=("$@")
[ "${#lists[@]}" -gt 0 ] || lists=(build run package test)
for list in "${lists[@]}"; do
    case "$list" in build | run | package | test) ;; *)
        echo "check-install: unknown list '$list' (build, run, package or test)" >&2
        exit 2
        ;;
    esac
done
command -v debootstrap >/dev/null || scripts/install-deps.sh test

# The mirror this machine's apt uses, so that the check reaches what the install would reach.
mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
    /etc/apt/sources.list.d/ 2>/dev/null | grep -oE 'https?://[^ ]+' | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

root=${ECU2MQTT_CHECK_ROOT:-$(mktemp -d /var/tmp/ecu2mqtt-check-install.XXXXXX)}
# Downloaded packages are kept between runs on this machine: they only save time, since what
# gets installed is still decided by apt inside the bare chroot.
cache=/var/cache/ecu2mqtt-check-install
mkdir -p "$cache/debootstrap" "$cache/apt/partial"
# Packages this machine's own apt already fetched from the same mirror (the test list installed
# just before) are not fetched again. Safe: debootstrap and the chroot's apt check every file
# against the chroot's own index before use.
for dir in "$cache/debootstrap" "$cache/apt"; do
    find /var/cache/apt/archives -maxdepth 1 -name '*.deb' -print0 2>/dev/null |
        xargs -0 -r cp -n --link -t "$dir" 2>/dev/null ||
        find /var/cache/apt/archives -maxdepth 1 -name '*.deb' -print0 2>/dev/null |
        xargs -0 -r cp -n -t "$dir" || true
done
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    umount "$root/var/cache/apt/archives" 2>/dev/null || true
    umount "$root/proc" 2>/dev/null || true
    if [ -z "${ECU2MQTT_CHECK_ROOT:-}" ]; then
        rm -rf --one-file-system "$root" "$root.debootstrap.log"
    fi
}
trap cleanup EXIT

started=$SECONDS
echo "== Clean-machine check of the install lists (${lists[*]}), Debian 12 minbase from $mirror"
if ! debootstrap --variant=minbase --cache-dir="$cache/debootstrap" bookworm "$root" "$mirror" \
    >"$root.debootstrap.log" 2>&1; then
    tail -n 20 "$root.debootstrap.log" >&2
    echo "check-install: debootstrap failed (is $mirror reachable?)" >&2
    exit 1
fi
echo "check-install: bare Debian 12 ready ($((SECONDS - started)) s)"
mount -t proc proc "$root/proc"
mount --bind "$cache/apt" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# Certificate authorities this host adds for its own network (a proxy that inspects TLS, say) are
# trusted in the chroot too: the check is about the package lists, not about this network. The
# chroot's ca-certificates, once a list installs it, folds them into the system bundle.
local_cas=/usr/local/share/ca-certificates
if [ -d "$local_cas" ] && [ -n "$(ls -A "$local_cas")" ]; then
    mkdir -p "$root$local_cas"
    cp -r "$local_cas/." "$root$local_cas/"
fi

# The files git tracks (and new ones not ignored), as they are in the work tree.
mkdir -p "$root/src"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$root/src"

in_chroot() {
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive \
        NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt /bin/bash -c "$1"
}

# Each list is a superset of `build`, so installing them one after another in this order proves
# each one alone: the packages present before a list's install are those of a smaller list.
failed=0
check() {
    local list=$1 commands=$2 log="$root/check-$1.log"
    local step_started=$SECONDS
    if in_chroot "set -euo pipefail; cd /src; scripts/install-deps.sh $list; $commands" >"$log" 2>&1; then
        echo "check-install: $list ok ($((SECONDS - step_started)) s)"
    else
        tail -n 30 "$log" >&2
        echo "check-install: $list FAILED: scripts/install-deps.sh $list misses a package" >&2
        failed=1
    fi
}
# The service alone, as scripts/run.sh, the Dockerfiles and the release's .deb configure it.
configure_service() {
    echo "cmake -S . -B /tmp/build-$1 -DECU2MQTT_BUILD_TESTS=OFF >/dev/null"
}
for list in build run package test; do
    [[ " ${lists[*]} " == *" $list "* ]] || continue
    case "$list" in
    build) check build "$(configure_service build)" ;;
    run) check run "$(configure_service run); test -x /usr/sbin/mosquitto; command -v mosquitto_sub" ;;
    package) check package "$(configure_service package); command -v cpack dpkg-shlibdeps help2man file" ;;
    # What scripts/test.sh configures: every checker the tests find by find_program is present.
    test) check test "cmake --preset default >/dev/null; cmake --preset sanitize >/dev/null; cmake --preset fuzz >/dev/null" ;;
    esac
done
echo "check-install: done in $((SECONDS - started)) s"
exit "$failed"
