#!/usr/bin/env python3
"""Shows that check_versions.py and check_workflow.py fail on each typical release mistake (a
check that passes everything would otherwise go unnoticed). Usage: checks_selftest.py REPO_ROOT
PROJECT_VERSION."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

root = Path(sys.argv[1])
version = sys.argv[2]
FILES = ["CMakeLists.txt", "scripts/version.sh", "ha-addon", "Dockerfile", ".github/workflows/release.yml",
         "tests/packaging"]
VERSIONS = ["tests/packaging/check_versions.py", ".", version]
WORKFLOW = ["tests/packaging/check_workflow.py", "."]

# name: (checker, file, text, replacement)
MUTATIONS = {
    "the app's version not raised": (VERSIONS, "ha-addon/config.yaml", f'version: "{version}"', 'version: "0.0.1"'),
    "no CHANGELOG heading for the version": (VERSIONS, "ha-addon/CHANGELOG.md", f"## {version}\n", "## Next\n"),
    "project() raised alone": (VERSIONS, "CMakeLists.txt", f"VERSION {version} ", "VERSION 99.0.0 "),
    "a version written into a Dockerfile": (VERSIONS, "Dockerfile", "ARG ECU2MQTT_VERSION\n", f"ARG ECU2MQTT_VERSION={version}\n"),
    "an image label from elsewhere": (VERSIONS, "ha-addon/Dockerfile", 'org.opencontainers.image.version="${ECU2MQTT_VERSION}"', 'org.opencontainers.image.version="latest"'),
    "no build on tags": (WORKFLOW, ".github/workflows/release.yml", 'tags: ["v*"]', 'branches: ["main"]'),
    "an architecture not built": (WORKFLOW, ".github/workflows/release.yml", "          - arch: aarch64\n            platform: linux/arm64\n            runner: ubuntu-24.04-arm\n", ""),
    "the app image under another name": (WORKFLOW, "ha-addon/config.yaml", "{arch}-addon-ecu2mqtt", "{arch}-ecu2mqtt"),
    "the version not passed to the build": (WORKFLOW, ".github/workflows/release.yml", "            ECU2MQTT_VERSION=${{ needs.version.outputs.version }}\n            BUILD_ARCH", "            BUILD_ARCH"),
    "the add-on image built from its own folder": (WORKFLOW, ".github/workflows/release.yml", "          context: .\n          file: ha-addon/Dockerfile", "          context: ha-addon\n          file: ha-addon/Dockerfile"),
    "no Debian package": (WORKFLOW, ".github/workflows/release.yml", "cd build && cpack -G DEB", "cd build"),
}



def copy_files(copy):
    for f in FILES:
        (copy / f).parent.mkdir(parents=True, exist_ok=True)
        if (root / f).is_dir():
            shutil.copytree(root / f, copy / f)
        else:
            shutil.copy2(root / f, copy / f)


# The copy itself passes both checks: a mutation, not the copying, is what they catch.
with tempfile.TemporaryDirectory() as tmp:
    copy_files(Path(tmp))
    for checker in (VERSIONS, WORKFLOW):
        run = subprocess.run([sys.executable, *checker], cwd=tmp, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"{checker[0]} fails on the unchanged copy:\n{run.stdout}{run.stderr}")

failures = 0
for name, (checker, path, old, new) in MUTATIONS.items():
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        copy_files(copy)
        text = (copy / path).read_text()
        if old not in text:
            print(f"cannot apply '{name}': text not found in {path}")
            failures += 1
            continue
        (copy / path).write_text(text.replace(old, new, 1))
        run = subprocess.run([sys.executable, *checker], cwd=copy, capture_output=True, text=True)
        caught = run.returncode != 0
        print(f"{'caught' if caught else 'MISSED'}: {name}")
        failures += 0 if caught else 1
print(f"{len(MUTATIONS) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
