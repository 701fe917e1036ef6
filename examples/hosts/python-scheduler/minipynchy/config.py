"""The host's settings: a TOML file checked against a strict schema, the way pynchy's pydantic
settings forbid extra keys. A key that is not in the schema stops the start with an error that
names it, so a key renamed in the code but not in the server's file crash-loops the service (the
seed's `caldav.nextcloud.password`, renamed to `password_env`)."""

import json
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

try:
    import tomllib  # Python >= 3.11
except ImportError:  # pragma: no cover - 3.9 / 3.10
    tomllib = None


class ConfigError(Exception):
    """The settings file is wrong; the message names the key."""


# Section -> key -> type. Nested sections are dotted; `tasks` is an array of tables.
SCHEMA = {
    "service": {"name": str, "admin_group": str},
    "slack": {"channel": str, "chat": str, "group": str},
    "caldav.nextcloud": {"url": str, "username": str, "password_env": str},
}
TASK_KEYS = {"name": str, "group": str, "every": str, "image": str, "command": str,
             "timeout": str}
TASK_REQUIRED = ("name", "group", "every", "image", "command")


@dataclass
class Task:
    name: str
    group: str
    every_secs: float
    image: str
    command: str
    timeout_secs: Optional[float] = None


@dataclass
class Settings:
    service_name: str
    admin_group: str
    slack_channel: str
    slack_chat: str
    slack_group: str
    caldav_url: Optional[str] = None
    caldav_password: Optional[str] = None
    tasks: List[Task] = field(default_factory=list)


def load(path):
    """Reads and validates the file at `path`; raises ConfigError naming the first bad key."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        doc = tomllib.loads(raw.decode("utf-8")) if tomllib else _mini_toml(raw.decode("utf-8"))
    except Exception as e:
        raise ConfigError("%s: not valid TOML: %s" % (path, e)) from None

    def section(dotted):
        node = doc
        for part in dotted.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node

    # Extra keys are errors (pydantic's extra="forbid"), like every other mistake.
    def check(node, prefix):
        for key, value in node.items():
            path = prefix + key
            if path == "tasks":
                continue
            if isinstance(value, dict):
                if not any(s == path or s.startswith(path + ".") for s in SCHEMA):
                    raise ConfigError("%s: extra inputs are not permitted [type=extra_forbidden]"
                                      % path)
                check(value, path + ".")
                continue
            keys = SCHEMA.get(prefix[:-1], {})
            if key not in keys:
                raise ConfigError("%s: extra inputs are not permitted [type=extra_forbidden]"
                                  % path)
            if not isinstance(value, keys[key]):
                raise ConfigError("%s: expected %s" % (path, keys[key].__name__))

    check(doc, "")

    tasks = []
    for i, t in enumerate(doc.get("tasks", [])):
        for key in t:
            if key not in TASK_KEYS:
                raise ConfigError("tasks.%d.%s: extra inputs are not permitted "
                                  "[type=extra_forbidden]" % (i, key))
        for key in TASK_REQUIRED:
            if key not in t:
                raise ConfigError("tasks.%d.%s: field required [type=missing]" % (i, key))
        tasks.append(Task(t["name"], t["group"], duration(t["every"]), t["image"], t["command"],
                          duration(t["timeout"]) if "timeout" in t else None))

    service, slack, caldav = section("service"), section("slack"), section("caldav.nextcloud")
    try:
        return Settings(
            service_name=service.get("name", "pynchy"),
            admin_group=service["admin_group"],
            slack_channel=slack.get("channel", "slack"),
            slack_chat=slack["chat"],
            slack_group=slack["group"],
            caldav_url=caldav.get("url"),
            caldav_password=os.environ.get(caldav["password_env"]) if "password_env" in caldav
            else None,
            tasks=tasks,
        )
    except KeyError as e:
        raise ConfigError("%s: field required [type=missing]" % e.args[0]) from None


def duration(text):
    """"90s", "10m", "1h", "1h30m" -> seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ConfigError("bad duration %r (e.g. 90s, 10m, 1h)" % text)
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * unit[u] for n, u in parts)


def _mini_toml(text):
    """The part of TOML this file uses, for Pythons without tomllib: [a.b], [[a]], key = value
    with strings, integers and booleans."""
    doc, table = {}, None
    table = doc
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[\[\s*([\w.]+)\s*\]\]", line)
        if m:
            table = {}
            doc.setdefault(m.group(1), []).append(table)
            continue
        m = re.fullmatch(r"\[\s*([\w.]+)\s*\]", line)
        if m:
            table = doc
            for part in m.group(1).split("."):
                table = table.setdefault(part, {})
            continue
        m = re.fullmatch(r"([\w-]+)\s*=\s*(.+)", line)
        if not m:
            raise ValueError("line %d: %r" % (lineno, line))
        key, value = m.groups()
        if value.startswith('"') and value.endswith('"'):
            table[key] = json.loads(value)  # a TOML basic string is close enough to JSON's
        elif value in ("true", "false"):
            table[key] = value == "true"
        else:
            table[key] = int(value)
    return doc
