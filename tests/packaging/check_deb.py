#!/usr/bin/env python3
"""Checks the Debian package that build_deb.sh made: exactly the expected files with the
expected modes, its version and dependencies, the conffile and the maintainer scripts, man
pages made from the binaries' --help, and a settings file whose every line the packaged
service accepts.

Usage: check_deb.py DEB_DIR PROJECT_VERSION. Needs dpkg-deb.
"""
import gzip
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

deb_dir = Path(sys.argv[1])
version = sys.argv[2]
problems = []

debs = sorted(deb_dir.glob("*.deb"))
if len(debs) != 1:
    sys.exit(f"expected one .deb in {deb_dir}, found {[d.name for d in debs]}")
deb = debs[0]


def dpkg_deb(*args):
    return subprocess.run(["dpkg-deb", *args, str(deb)], check=True, capture_output=True, text=True).stdout


# --- the files, with their modes (directories aside).
EXPECTED = {
    "./etc/ecu2mqtt/ecu2mqtt.env": "-rw-------",
    "./lib/systemd/system/ecu2mqtt.service": "-rw-r--r--",
    "./usr/bin/ecu2mqtt": "-rwxr-xr-x",
    "./usr/bin/ecu2mqtt-sim": "-rwxr-xr-x",
    "./usr/share/doc/ecu2mqtt/changelog.gz": "-rw-r--r--",
    "./usr/share/doc/ecu2mqtt/copyright": "-rw-r--r--",
    "./usr/share/lintian/overrides/ecu2mqtt": "-rw-r--r--",
    "./usr/share/man/man1/ecu2mqtt.1.gz": "-rw-r--r--",
    "./usr/share/man/man1/ecu2mqtt-sim.1.gz": "-rw-r--r--",
}
found = {}
for line in dpkg_deb("--contents").splitlines():
    fields = line.split()
    if not fields[0].startswith("d"):
        found[fields[-1]] = fields[0]
        if not fields[1].startswith("root/root"):
            problems.append(f"{fields[-1]}: owned by {fields[1]}, not root")
for path, mode in EXPECTED.items():
    if path not in found:
        problems.append(f"missing {path}")
    elif found[path] != mode:
        problems.append(f"{path}: mode {found[path]}, expected {mode}")
for path in found.keys() - EXPECTED.keys():
    problems.append(f"unexpected {path}")

# --- control fields: project()'s version, dependencies found by dpkg-shlibdeps, and tzdata.
fields = dict(re.findall(r"^ (\S+): (.*)$", dpkg_deb("--info"), re.M))
if fields.get("Version") != version:
    problems.append(f"Version {fields.get('Version')!r}, project() says {version!r}")
if not deb.name.startswith(f"ecu2mqtt_{version}_"):
    problems.append(f"file name {deb.name} does not carry version {version}")
for library in ("libpaho-mqttpp3-1", "libpaho-mqtt1.3", "libsqlite3-0", "libstdc++6", "tzdata"):
    if library not in fields.get("Depends", ""):
        problems.append(f"Depends lacks {library}: {fields.get('Depends')!r}")

with tempfile.TemporaryDirectory() as tmp:
    control = Path(tmp) / "control"
    root = Path(tmp) / "root"
    subprocess.run(["dpkg-deb", "--control", str(deb), str(control)], check=True)
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(root)], check=True)

    # --- the settings survive upgrades as the admin edited them; the service is enabled.
    conffiles = (control / "conffiles").read_text().split() if (control / "conffiles").exists() else []
    if conffiles != ["/etc/ecu2mqtt/ecu2mqtt.env"]:
        problems.append(f"conffiles {conffiles}, expected the settings file alone")
    for script in ("postinst", "prerm", "postrm"):
        path = control / script
        if not path.exists() or not os.access(path, os.X_OK):
            problems.append(f"maintainer script {script} missing or not executable")
    if "deb-systemd-helper enable ecu2mqtt.service" not in (control / "postinst").read_text():
        problems.append("postinst does not enable ecu2mqtt.service")

    # --- the packaged binary is the version, and its man page is its --help.
    binary = root / "usr/bin/ecu2mqtt"
    printed = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    if printed != f"ecu2mqtt {version}":
        problems.append(f"packaged ecu2mqtt --version prints {printed!r}")
    help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True).stdout
    man = gzip.decompress((root / "usr/share/man/man1/ecu2mqtt.1.gz").read_bytes()).decode()
    if not man.startswith(".\\\"") or ".TH ECU2MQTT \"1\"" not in man:
        problems.append("ecu2mqtt.1.gz is not a section-1 man page")
    for env_name in re.findall(r"env (ECU2MQTT_[A-Z_]+)", help_text):
        if env_name.replace("_", "\\_") not in man and env_name not in man:
            problems.append(f"the man page does not mention {env_name}, which --help lists")

    # --- every setting in the file is one the service knows, and its value is accepted.
    settings = re.findall(r"^#?(ECU2MQTT_[A-Z_]+)=(.*)$", (root / "etc/ecu2mqtt/ecu2mqtt.env").read_text(), re.M)
    known = set(re.findall(r"env (ECU2MQTT_[A-Z_]+)", help_text))
    for name, _ in settings:
        if name not in known:
            problems.append(f"ecu2mqtt.env names {name}, which ecu2mqtt does not read")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **dict(settings)}
    run = subprocess.run([str(binary), "--version"], env=environment, capture_output=True, text=True)
    if run.returncode != 0:
        problems.append(f"ecu2mqtt refuses the values in ecu2mqtt.env: {run.stderr.strip()}")
    unit = (root / "lib/systemd/system/ecu2mqtt.service").read_text()
    if "EnvironmentFile=/etc/ecu2mqtt/ecu2mqtt.env" not in unit or "ExecStart=/usr/bin/ecu2mqtt" not in unit:
        problems.append("the unit must read /etc/ecu2mqtt/ecu2mqtt.env and start /usr/bin/ecu2mqtt")

for line in problems:
    print(line)
print(f"{deb.name}: {len(found)} files, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
