"""Turning what a host hands `emit` into one line of JSON, whatever it hands.

Nothing here raises into the host: a value JSON cannot carry is turned into one it can (a datetime
into RFC 3339, a set into a list, anything else into its `str`), NaN and infinities become null, a
cycle becomes a marker, and a string that cannot be UTF-8 has its bad characters replaced.
"""

import datetime as _dt
import enum
import json
import math
import os
import uuid

# The required fields of each kind lookoutd knows (crates/reconcile-core/src/vocabulary.rs). Only
# their presence is checked here, so an event that can never be stored is refused at once (with a
# warning) instead of travelling through the spool; lookoutd checks the types. A kind not listed is
# sent as it is: a newer lookoutd may know it.
REQUIRED = {
    "channel_connected": ("channel",),
    "channel_disconnected": ("channel",),
    "message_received": ("channel", "chat_jid", "message_id", "timestamp"),
    "messages_recovered": ("channel", "message_ids"),
    "batch_dispatched": ("chat_jid", "message_ids"),
    "bot_response": ("chat_jid", "timestamp"),
    "delivery_queued": ("delivery_id", "chat_jid"),
    "delivery_sent": ("delivery_id", "chat_jid"),
    "delivery_failed": ("delivery_id", "chat_jid"),
    "delivery_confirmed": ("delivery_id", "chat_jid"),
    "run_started": ("run_id", "group", "run_kind"),
    "run_heartbeat": ("run_id",),
    "run_finished": ("run_id",),
    "container_status": ("container", "status"),
    "boot_started": ("service",),
    "boot_ready": ("service",),
    "heartbeat": ("target",),
    "version_stamp": ("target",),
    "deploy": ("sha",),
    "task_scheduled": ("task",),
}

# The first bytes of a spooled line that is not an event but a call of a boot endpoint
# (`/api/boot/fail` has no event of its own), replayed in its place in the order.
ENDPOINT_PREFIX = '{"@endpoint":'

_UTC = _dt.timezone.utc


_time = __import__("time").time
_strftime = __import__("time").strftime
_gmtime = __import__("time").gmtime
_second = (None, "")  # the last whole second formatted: (second, text), replaced whole


def now_rfc3339():
    """Now, as RFC 3339 in UTC with microseconds (`2026-11-24T10:00:00.123456Z`). Formats the
    whole second once per second: it is on the path of every emit."""
    global _second
    t = _time()
    sec = int(t)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, _strftime("%Y-%m-%dT%H:%M:%S", _gmtime(sec)))
    return "%s.%06dZ" % (cached[1], int((t - sec) * 1e6))


def rfc3339(value):
    """A time as RFC 3339: a datetime (naive means local time, as Python's own `astimezone`
    reads it), a number of seconds since the epoch, or a string (sent as it is)."""
    if value is None:
        return now_rfc3339()
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return value.astimezone(_UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, _dt.date):
        return value.isoformat() + "T00:00:00Z"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return (
            _dt.datetime.fromtimestamp(value, _UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z")
        )
    return str(value)


class KeyMaker:
    """Idempotency keys: a random UUID made once (per client, and again in a forked child) and a
    counter, `<uuid4>-<n>`: unique like a UUID per event, at a fraction of the cost."""

    def __init__(self):
        import itertools

        self._prefix = str(uuid.UUID(bytes=os.urandom(16), version=4)) + "-"
        self._counter = itertools.count(1)  # next() on it is atomic under the GIL

    def __call__(self):
        return self._prefix + str(next(self._counter))


def new_key():
    """A fresh idempotency key (a UUID4)."""
    return str(uuid.UUID(bytes=os.urandom(16), version=4))


def _safe_str(o):
    try:
        return str(o)
    except Exception:  # a broken __str__ must not break the host
        try:
            return "<%s>" % type(o).__name__
        except Exception:
            return "<unprintable>"


def _default(o):
    """What json.dumps calls for a value it does not know."""
    if isinstance(o, _dt.datetime):
        return rfc3339(o)
    if isinstance(o, (_dt.date, _dt.time)):
        return o.isoformat()
    if isinstance(o, _dt.timedelta):
        return o.total_seconds()
    if isinstance(o, enum.Enum):
        return o.value if isinstance(o.value, (str, int, float, bool)) else o.name
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).decode("utf-8", "replace")
    if isinstance(o, BaseException):
        return "%s: %s" % (type(o).__name__, _safe_str(o))
    return _safe_str(o)


def _sanitize(o, seen, depth):
    """The slow path: a copy of `o` that json.dumps takes without complaint."""
    if depth > 64:
        return "<too deep>"
    if o is None or isinstance(o, (bool, int, str)):
        return o
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        if id(o) in seen:
            return "<cycle>"
        seen.add(id(o))
        out = {}
        for k, v in list(o.items()):
            if not isinstance(k, str):
                k = _safe_str(k) if not isinstance(k, (int, float, bool)) or k is None else str(k)
            out[k] = _sanitize(v, seen, depth + 1)
        seen.discard(id(o))
        return out
    if isinstance(o, (list, tuple, set, frozenset)):
        if id(o) in seen:
            return "<cycle>"
        seen.add(id(o))
        out = [_sanitize(v, seen, depth + 1) for v in list(o)]
        seen.discard(id(o))
        return out
    try:
        converted = _default(o)
    except Exception:
        converted = "<unserialisable>"
    if converted is o:
        return "<unserialisable>"
    return _sanitize(converted, seen, depth + 1)


_ENCODER = json.JSONEncoder(
    default=_default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
)
_encode = _ENCODER.encode


def dumps(event):
    """One event as one line of JSON (no newline inside: json escapes them in strings)."""
    try:
        line = _encode(event)
    except (TypeError, ValueError, RecursionError):
        line = json.dumps(
            _sanitize(event, set(), 0),
            default=_safe_str,
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        )
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a bad decode in the host): lookoutd would refuse the whole request.
        line = line.encode("utf-8", "replace").decode("utf-8")
    return line


def str_list(value):
    """`message_ids` and the like: a list of strings from a list, a tuple, a set, a generator, or
    a single string."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        value = [value]
    out = []
    try:
        for v in value:
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif not isinstance(v, str):
                v = _safe_str(v)
            out.append(v)
    except Exception:  # not iterable, or an iterator that fails half-way
        return out or [_safe_str(value)]
    return out
