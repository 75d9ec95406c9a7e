#!/usr/bin/env python3
"""Checks that every place carrying ecu2mqtt's version carries the one from project() in
CMakeLists.txt: the app's config.yaml, the newest CHANGELOG heading, the image labels (fed by
the ECU2MQTT_VERSION build argument that the workflow takes from scripts/version.sh) and, when
given, what the binary's --version prints.

Usage: check_versions.py REPO_ROOT PROJECT_VERSION [ECU2MQTT_BINARY]. Needs python3-yaml.
"""
import re
import subprocess
import sys
from pathlib import Path

import yaml

root = Path(sys.argv[1])
version = sys.argv[2]
binary = sys.argv[3] if len(sys.argv) > 3 else None
problems = []


def differs(where, found):
    problems.append(f"{where}: {found!r}, but project() in CMakeLists.txt says {version!r}")


cmake = re.search(r"^project\(ecu2mqtt VERSION (\S+)", (root / "CMakeLists.txt").read_text(), re.M)
if not cmake or cmake[1] != version:
    differs("CMakeLists.txt project()", cmake and cmake[1])

script = subprocess.run([str(root / "scripts/version.sh")], capture_output=True, text=True)
if script.stdout.strip() != version:
    differs("scripts/version.sh (the images' ECU2MQTT_VERSION)", script.stdout.strip() or script.stderr)

config = yaml.safe_load((root / "ha-addon/config.yaml").read_text())
if config.get("version") != version:
    differs("ha-addon/config.yaml version", config.get("version"))

headings = re.findall(r"^## (\S+)", (root / "ha-addon/CHANGELOG.md").read_text(), re.M)
if not headings or headings[0] != version:
    differs("ha-addon/CHANGELOG.md newest heading", headings[0] if headings else None)

# The labels come from the build argument, and the build refuses a binary of another version.
for dockerfile in ("Dockerfile", "ha-addon/Dockerfile"):
    text = (root / dockerfile).read_text()
    if 'org.opencontainers.image.version="${ECU2MQTT_VERSION}"' not in text:
        problems.append(f"{dockerfile}: needs LABEL org.opencontainers.image.version=\"${{ECU2MQTT_VERSION}}\"")
    if 'test "$(/build/ecu2mqtt --version)" = "ecu2mqtt ${ECU2MQTT_VERSION}"' not in text:
        problems.append(f"{dockerfile}: must compare ecu2mqtt --version with ECU2MQTT_VERSION")
    for line in re.findall(r"^ARG ECU2MQTT_VERSION.*$", text, re.M):
        if line != "ARG ECU2MQTT_VERSION":
            problems.append(f"{dockerfile}: '{line}' is a second copy of the version")

if binary:
    printed = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    if printed != f"ecu2mqtt {version}":
        differs("ecu2mqtt --version", printed)

for line in problems:
    print(line)
print(f"versions: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
