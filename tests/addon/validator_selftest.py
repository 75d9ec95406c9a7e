#!/usr/bin/env python3
"""Shows that validate_addon.py fails on each typical mistake (a validator that passes
everything would otherwise go unnoticed). Usage: validator_selftest.py REPO_ROOT."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

root = Path(sys.argv[1])
FILES = ["ha-addon", "repository.yaml", "Dockerfile", "src/app/addon.cpp", "tests/addon"]

MUTATIONS = {
    "a key at its default value": ("ha-addon/config.yaml", "slug: ecu2mqtt\n", "slug: ecu2mqtt\nboot: auto\n"),
    "a dropped architecture": ("ha-addon/config.yaml", "  - amd64\n", "  - amd64\n  - armv7\n"),
    "the obsolete watchdog": ("ha-addon/config.yaml", "slug: ecu2mqtt\n", "slug: ecu2mqtt\nwatchdog: tcp://[HOST]:[PORT:8995]\n"),
    "a bad option type": ("ha-addon/config.yaml", "  backfill: bool\n", "  backfill: boolean\n"),
    "an option without schema": ("ha-addon/config.yaml", "  backfill: true\n", "  backfill: true\n  forward_to_ema: ''\n"),
    "a default outside its range": ("ha-addon/config.yaml", "  ecu_timeout: 900\n", "  ecu_timeout: 5\n"),
    "an untranslated option": ("ha-addon/translations/en.yaml", "  publish_raw:\n    name: Publish raw messages\n", "  publish_raw_old:\n    name: Publish raw messages\n"),
    "a second config.yaml": (None, "docs/config.yaml", "name: x\n"),
    "no BUILD_FROM default": ("ha-addon/Dockerfile", "ARG BUILD_FROM=debian:bookworm-slim\n", "ARG BUILD_FROM\n"),
    "a shell-form health check": ("Dockerfile", 'CMD ["/usr/bin/ecu2mqtt", "--healthcheck"]', "CMD /usr/bin/ecu2mqtt --healthcheck"),
    "running as root": ("Dockerfile", "USER 10001\n", ""),
    "no prebuilt image": ("ha-addon/config.yaml", "image: ghcr.io/ecu2mqtt/{arch}-addon-ecu2mqtt\n", ""),
    "two inits": ("ha-addon/Dockerfile", 'ENTRYPOINT ["/usr/bin/ecu2mqtt"', 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/ecu2mqtt"'),
    "a downloaded source": ("ha-addon/Dockerfile", "COPY src /src/src\n", "ADD https://example.org/source.tar.gz /tmp/\n"),
    "an AppArmor profile under another name": ("ha-addon/apparmor.txt", "profile ecu2mqtt ", "profile ecu2mqtt-app "),
    "an icon that is not a PNG": (None, "ha-addon/icon.png", "not a picture"),
    "ingress on a port nothing serves": ("ha-addon/config.yaml", "ingress: true\n", "ingress: true\ningress_port: 8100\n"),
    "a panel icon that is not mdi": ("ha-addon/config.yaml", "panel_icon: mdi:solar-power\n", "panel_icon: solar\n"),
    "an option the binary does not read": ("src/app/addon.cpp", '{"block_firmware", AddonOption::Kind::FlagWhenTrue, "--block-firmware"},', ""),
}

failures = 0
for name, (path, old, new) in MUTATIONS.items():
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        for f in FILES:
            src = root / f
            (copy / f).parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, copy / f)
            else:
                shutil.copy(src, copy / f)
        if path is None:
            (copy / old).parent.mkdir(parents=True, exist_ok=True)
            (copy / old).write_text(new)
        else:
            text = (copy / path).read_text()
            if old not in text:
                print(f"cannot apply '{name}': text not found in {path}")
                failures += 1
                continue
            (copy / path).write_text(text.replace(old, new, 1))
        run = subprocess.run([sys.executable, str(copy / "tests/addon/validate_addon.py"), str(copy)],
                             capture_output=True, text=True)
        caught = run.returncode != 0
        print(f"{'caught' if caught else 'MISSED'}: {name}")
        failures += 0 if caught else 1
print(f"{len(MUTATIONS) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
