#!/usr/bin/env python3
"""Checks .github/workflows/release.yml: it parses, runs on version tags, builds both images
for every architecture the app declares and the Debian packages, publishes the app image under
the name config.yaml gives, and passes the one version (scripts/version.sh) to the builds.

Usage: check_workflow.py REPO_ROOT. Needs python3-yaml. The workflow itself only runs on the
public repository's CI; this is what can be checked without it.
"""
import sys
from pathlib import Path

import yaml

root = Path(sys.argv[1])
workflow = yaml.safe_load((root / ".github/workflows/release.yml").read_text())
config = yaml.safe_load((root / "ha-addon/config.yaml").read_text())
problems = []


def problem(text):
    problems.append(f"release.yml: {text}")


# YAML 1.1 reads the key `on` as true.
triggers = workflow.get("on", workflow.get(True)) or {}
if "v*" not in (triggers.get("push") or {}).get("tags", []):
    problem("must run on pushed tags v*")
if (workflow.get("permissions") or {}).get("packages") != "write":
    problem("needs permissions: packages: write to publish")

jobs = workflow.get("jobs") or {}
version_steps = (jobs.get("version") or {}).get("steps", [])
if not any("scripts/version.sh" in str(step.get("run", "")) for step in version_steps):
    problem("the version job must read the version with scripts/version.sh")
if not any("GITHUB_REF_NAME" in str(step.get("run", "")) for step in version_steps):
    problem("the version job must check that the tag names that version")

build = jobs.get("build") or {}
matrix = (build.get("strategy") or {}).get("matrix", {}).get("include", [])
if sorted(entry.get("arch") for entry in matrix) != sorted(config.get("arch", [])):
    problem(f"builds {[e.get('arch') for e in matrix]}, the app declares {config.get('arch')}")

builds = {}
for step in build.get("steps", []):
    if str(step.get("uses", "")).startswith("docker/build-push-action@"):
        builds[step["with"].get("file")] = step["with"]
for dockerfile in ("Dockerfile", "ha-addon/Dockerfile"):
    with_ = builds.get(dockerfile)
    if with_ is None:
        problem(f"no docker/build-push-action step builds {dockerfile}")
        continue
    if with_.get("context") != ".":
        problem(f"{dockerfile} must be built with the repository root as context")
    if with_.get("platforms") != "${{ matrix.platform }}":
        problem(f"{dockerfile} must be built for the matrix platform")
    if "ECU2MQTT_VERSION=${{ needs.version.outputs.version }}" not in str(with_.get("build-args")):
        problem(f"{dockerfile} must get ECU2MQTT_VERSION from the version job")

image = config.get("image", "")
if "{arch}" not in image:
    problems.append("config.yaml: image must name the per-architecture image with {arch}")
addon_tags = str((builds.get("ha-addon/Dockerfile") or {}).get("tags", ""))
expected = image.replace("{arch}", "${{ matrix.arch }}") + ":${{ needs.version.outputs.version }}"
if expected not in addon_tags:
    problem(f"the app image must be tagged {expected} (config.yaml image and version)")

deb = jobs.get("deb") or {}
deb_arches = sorted(e.get("arch") for e in (deb.get("strategy") or {}).get("matrix", {}).get("include", []))
if deb_arches != ["amd64", "arm64"]:
    problem(f"the deb job builds {deb_arches}, expected Debian's amd64 and arm64")
if deb.get("container") != "debian:bookworm":
    problem("the deb job must build on Debian 12 (container: debian:bookworm)")
deb_script = " ".join(str(step.get("run", "")) for step in deb.get("steps", []))
for needed in ("scripts/install-deps.sh package", "cpack -G DEB"):
    if needed not in deb_script:
        problem(f"the deb job must run {needed}")
release = jobs.get("release") or {}
if "deb" not in release.get("needs", []) or (release.get("permissions") or {}).get("contents") != "write":
    problem("a release job must attach the packages (needs: deb, permissions: contents: write)")

for line in problems:
    print(line)
print(f"workflow: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
