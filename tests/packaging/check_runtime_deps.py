#!/usr/bin/env python3
"""Checks that the slim images' package list (`runtime` in scripts/install-deps.sh) holds every
shared library the built binary links, as Debian names their packages, and the CA certificates
that mqtts:// without --mqtt-ca-file trusts. The images are built elsewhere (no Docker engine
here): this catches a library added to the build but not to the images.

Usage: check_runtime_deps.py REPO_ROOT ECU2MQTT_BINARY. Needs ldd and dpkg.
"""
import re
import subprocess
import sys
from pathlib import Path

root = Path(sys.argv[1])
binary = sys.argv[2]
# In every Debian image, slim ones included (apt itself needs them).
ESSENTIAL = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5", "libbz2-1.0"}


def runtime_list():
    text = (root / "scripts/install-deps.sh").read_text()
    match = re.search(r"^runtime_packages=\(([^)]*)\)", text, re.M)
    if not match:
        sys.exit("scripts/install-deps.sh: no runtime_packages=(...) list")
    return set(match[1].split())


def linked_packages():
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    packages = {}
    for line in out.splitlines():
        found = re.search(r"=> (/\S+)", line)
        if not found:
            continue
        path = found[1]
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if owner.returncode != 0:  # /lib vs /usr/lib on a merged-/usr system
            alternative = path.replace("/usr/lib/", "/lib/", 1) if path.startswith("/usr/lib/") \
                else path.replace("/lib/", "/usr/lib/", 1)
            owner = subprocess.run(["dpkg", "-S", alternative], capture_output=True, text=True)
        if owner.returncode != 0:
            packages[path] = None
            continue
        packages[path] = owner.stdout.split(":")[0].strip()
    return packages


listed = runtime_list()
problems = []
for path, package in sorted(linked_packages().items()):
    if package is None:
        problems.append(f"{path}: no Debian package owns it")
    elif package not in listed and package not in ESSENTIAL:
        problems.append(f"{path} comes from {package}, which `runtime` does not install")
if "ca-certificates" not in listed:
    problems.append("`runtime` lacks ca-certificates: mqtts:// with the system CAs would fail")
if "tzdata" not in listed:
    problems.append("`runtime` lacks tzdata: a polled ECU's time zone could not give its day")
for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
