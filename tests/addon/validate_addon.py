#!/usr/bin/env python3
"""Checks the Home Assistant add-on files the way the Supervisor and the add-on linter would.

Usage: validate_addon.py REPO_ROOT. Exit status 1 with one line per problem.
Needs Debian's python3-jsonschema and python3-yaml; no network.
"""
import json
import re
import struct
import sys
from pathlib import Path

import jsonschema
import yaml

root = Path(sys.argv[1])
addon = root / "ha-addon"
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# --- config.yaml against the linter's rules, including "no key set to its default value".
config = load_yaml(addon / "config.yaml")
schema = json.loads((root / "tests/addon/addon-config.schema.json").read_text())
for error in jsonschema.Draft7Validator(schema).iter_errors(config):
    problem("config.yaml", error.message)
for key, rules in schema["properties"].items():
    if "default" in rules and key in config and config[key] == rules["default"]:
        problem("config.yaml", f"'{key}' should be removed, it uses its default value")
# --addon serves the status page on 8099 (src/app/addon.cpp): ingress must proxy to that port.
if config.get("ingress") and config.get("ingress_port", 8099) != 8099:
    problem("config.yaml", "ingress_port must be 8099, where the add-on serves its page")
if "watchdog" in config:
    problem("config.yaml", "'watchdog' is obsolete: the image's HEALTHCHECK replaces it")

# --- a prebuilt image per architecture, so the app is not compiled on the user's machine.
if "{arch}" not in config.get("image", ""):
    problem("config.yaml", "'image' must name the prebuilt images, with {arch} for the architecture")

# --- one init: Docker's (init: true, the default) or the image's own, never both.
entrypoint = re.findall(r"^ENTRYPOINT (.*)$", (addon / "Dockerfile").read_text(), re.M)
if config.get("init", True) and any("tini" in e for e in entrypoint):
    problem("Dockerfile", "starts tini while config.yaml keeps Docker's init: two inits")


# --- what the store shows: icon.png square (128x128 recommended), logo.png (about 250x100).
def png_size(path):
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", header[16:24])


for name, wanted in (("icon.png", (128, 128)), ("logo.png", (250, 100))):
    path = addon / name
    size = png_size(path) if path.exists() else None
    if size != wanted:
        problem(name, f"must be a {wanted[0]}x{wanted[1]} PNG, found {size or 'none'}")

# --- an AppArmor profile named after the slug (the Supervisor loads it under that name).
apparmor = addon / "apparmor.txt"
if not apparmor.exists():
    problem("apparmor.txt", "missing: the app would run under the generic profile")
elif not re.search(rf"^profile {re.escape(config.get('slug', ''))} ", apparmor.read_text(), re.M):
    problem("apparmor.txt", f"the profile must be named after the slug '{config.get('slug')}'")

# --- the option schema grammar of the Supervisor: str, bool, int(min,max), float(min,max),
# port, password, url, email, match(REGEX), list(a|b); '?' makes an option optional.
TYPE = re.compile(
    r"^(str|bool|port|password|url|email|"
    r"int(\(-?\d*,-?\d*\))?|float(\(-?[\d.]*,-?[\d.]*\))?|"
    r"match\(.+\)|list\([^|()]+(\|[^|()]+)*\))(\?)?$"
)
options = config.get("options", {})
option_schema = config.get("schema", {})


def type_of(rule):
    return rule[0] if isinstance(rule, list) else rule


for key, rule in option_schema.items():
    text = type_of(rule)
    if not isinstance(text, str) or not TYPE.match(text):
        problem("config.yaml", f"schema of '{key}' is not a Supervisor type: {rule!r}")
        continue
    if text.startswith("match("):
        try:
            re.compile(text[len("match("):text.rindex(")")])
        except re.error as e:
            problem("config.yaml", f"schema of '{key}': bad regular expression: {e}")
    optional = text.endswith("?") and not isinstance(rule, list)
    if optional and key in options:
        problem("config.yaml", f"optional option '{key}' must not have a default")
    if not optional and key not in options:
        problem("config.yaml", f"option '{key}' needs a default in options")
for key in options:
    if key not in option_schema:
        problem("config.yaml", f"option '{key}' has no schema")


def value_fits(value, text):
    text = text.rstrip("?")
    if text == "bool":
        return isinstance(value, bool)
    if text.startswith("int"):
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        m = re.match(r"int\((-?\d*),(-?\d*)\)", text)
        return not m or ((m[1] == "" or value >= int(m[1])) and (m[2] == "" or value <= int(m[2])))
    if text.startswith("list("):
        return value in text[5:-1].split("|")
    if text.startswith("match("):
        return isinstance(value, str) and re.fullmatch(text[6:text.rindex(")")], value) is not None
    return isinstance(value, str)


for key, value in options.items():
    rule = option_schema.get(key)
    if rule is None:
        continue
    if isinstance(rule, list):
        if not isinstance(value, list) or not all(value_fits(v, rule[0]) for v in value):
            problem("config.yaml", f"default of '{key}' does not fit its schema")
    elif not value_fits(value, rule):
        problem("config.yaml", f"default of '{key}' does not fit its schema {rule!r}")

# --- the options the binary understands (src/app/addon.cpp) must be exactly the schema's.
known = set(re.findall(r'\{"([a-z_]+)", AddonOption::Kind::', (root / "src/app/addon.cpp").read_text()))
if known != set(option_schema):
    problem("config.yaml", f"schema keys {sorted(option_schema)} differ from those ecu2mqtt --addon reads {sorted(known)}")

# --- translations name every option and every port.
translations = load_yaml(addon / "translations/en.yaml")
for key in option_schema:
    entry = translations.get("configuration", {}).get(key, {})
    if not entry.get("name") or not entry.get("description"):
        problem("translations/en.yaml", f"option '{key}' needs a name and a description")
for port in config.get("ports", {}):
    if port not in translations.get("network", {}):
        problem("translations/en.yaml", f"port '{port}' needs a description under network")

# --- the Supervisor finds add-ons by config.yaml: no other file may carry that name.
for path in root.rglob("config.yaml"):
    if path != addon / "config.yaml" and not any(p.startswith(("build", ".git")) for p in path.relative_to(root).parts):
        problem(str(path.relative_to(root)), "only ha-addon/config.yaml may be named config.yaml")

# --- repository.yaml makes the repository addable.
repository = load_yaml(root / "repository.yaml")
for key in ("name", "url"):
    if not repository.get(key):
        problem("repository.yaml", f"'{key}' is required")
if repository.get("url") != config.get("url"):
    problem("repository.yaml", "url differs from ha-addon/config.yaml")

# --- Dockerfiles: a real BUILD_FROM default, the ports, an exec-form HEALTHCHECK of our binary.
for dockerfile in (root / "Dockerfile", addon / "Dockerfile"):
    text = dockerfile.read_text()
    where = str(dockerfile.relative_to(root))
    if not re.search(r"^ARG BUILD_FROM=\S+", text, re.M):
        problem(where, "needs ARG BUILD_FROM=<image> (not passed by default since Supervisor 2026.04)")
    if not re.search(r"^FROM \$\{?BUILD_FROM\}?\s*$", text, re.M):
        problem(where, "the runtime stage must be FROM $BUILD_FROM")
    if not re.search(r'^HEALTHCHECK .*CMD \["/usr/bin/ecu2mqtt", "--healthcheck"', text, re.M):
        problem(where, "needs an exec-form HEALTHCHECK running ecu2mqtt --healthcheck")
    if "install-deps.sh" not in text:
        problem(where, "must install packages through scripts/install-deps.sh")
if re.search(r"^ADD\s+(https?://|\$)", (addon / "Dockerfile").read_text(), re.M):
    problem("ha-addon/Dockerfile", "must build the checked-out source, not download an archive")
top = (root / "Dockerfile").read_text()
if not re.search(r"^EXPOSE 8995/tcp 8996/tcp 8997/tcp( |$)", top, re.M):
    problem("Dockerfile", "must EXPOSE 8995/tcp 8996/tcp 8997/tcp")
if not re.search(r"^USER 10001$", top, re.M):
    problem("Dockerfile", "must run as the non-root user 10001")

for line in problems:
    print(line)
print(f"add-on files: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
