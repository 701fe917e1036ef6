"""Nothing the host can hand the client makes it raise: bad URLs, garbage fields, wrong arguments,
calls after close. What can be sent still is."""

import datetime
import enum
import logging
import math
import time
import uuid

import pytest

from conftest import DELIVERY_DEADLINE

import lookout_client
from lookout_client import Lookout


class Colour(enum.Enum):
    RED = "red"


class Broken:
    def __str__(self):
        raise RuntimeError("no str for you")

    __repr__ = __str__


def garbage():
    cycle = {}
    cycle["self"] = cycle
    loop = []
    loop.append(loop)
    deep = [1]
    for _ in range(5000):  # deeper than json.dumps goes
        deep = [deep]
    return {
        "obj": object(), "broken": Broken(), "cycle": cycle, "loop": loop,
        "nan": float("nan"), "inf": math.inf, "bytes": b"\xff\xfe raw", "set": {3, 1, 2},
        "tuple_keys": {(1, 2): "x", None: "n", 1.5: "f"}, "when": datetime.datetime(2026, 1, 2),
        "day": datetime.date(2026, 1, 2), "span": datetime.timedelta(seconds=90),
        "enum": Colour.RED, "exc": ValueError("bad"), "surrogate": "a\udcffb",
        "deep": deep,
        "newline": "line 1\nline 2", "nul": "a\x00b",
    }


@pytest.mark.parametrize("url", [
    "not a url", "http://[::1", "ftp://example.com", "http://", 12345, "http://no-such-host.invalid",
    "http://127.0.0.1:1", "http://user:pw@127.0.0.1:1/", "https://127.0.0.1:1/prefix",
])
def test_any_url_gives_a_client_that_never_raises(url, clients, caplog):
    caplog.set_level(logging.DEBUG, logger="lookout_client")
    lk = clients(url, timeout=0.5, boot_timeout=0.3)
    assert lk.emit("deploy", sha="x") is not None
    assert lk.emit("heartbeat", garbage(), target="t") is not None
    assert lk.boot_begin("svc") is None
    assert lk.boot_ready("svc") is None
    assert lk.boot_fail("svc", "cause") is None
    with lk.run("r", "g") as run:
        run.progress(garbage())
    assert lk.flush(0.2) is False
    assert isinstance(lk.stats(), dict)
    assert "pw@" not in caplog.text


def test_garbage_fields_are_sent_as_what_json_can_carry(daemon, clients):
    lk = clients(daemon.url)
    t = uuid.uuid4().hex[:12]
    g = garbage()
    del g["nul"]  # lookoutd refuses NUL (it cannot store it): see the next test
    assert lk.emit("heartbeat", g, target="t", t=t)
    assert lk.flush(DELIVERY_DEADLINE)
    [e] = daemon.tagged(t)
    p = e["payload"]
    assert p["nan"] is None and p["inf"] is None
    assert p["set"] == [1, 2, 3] or sorted(p["set"]) == [1, 2, 3]
    assert p["when"].endswith("Z") and p["day"] == "2026-01-02" and p["span"] == 90.0
    assert p["enum"] == "red" and p["exc"] == "ValueError: bad"
    assert p["cycle"] == {"self": "<cycle>"}
    assert p["broken"] == "<Broken>"
    assert p["newline"] == "line 1\nline 2"
    assert p["surrogate"] == "a?b"
    assert lk.stats()["rejected"] == 0


def test_what_lookoutd_refuses_is_counted_not_raised(daemon, clients):
    lk = clients(daemon.url)
    t = uuid.uuid4().hex[:12]
    lk.emit("heartbeat", target="t", t=t, nul="a\x00b")
    lk.emit("no_such_kind", t=t)
    lk.emit("heartbeat", target="t", t=t, at="2999-01-01T00:00:00Z")  # too far ahead
    lk.emit("heartbeat", target="t", t=t, ok=True)
    assert lk.flush(DELIVERY_DEADLINE)
    assert [e["payload"].get("ok") for e in daemon.tagged(t)] == [True]
    assert lk.stats()["rejected"] == 3


def test_wrong_arguments_never_raise(daemon, clients):
    lk = clients(daemon.url)
    assert lk.emit() is None
    assert lk.emit(None) is None
    assert lk.emit(123) is None
    assert lk.emit("") is None
    assert lk.emit("deploy", 5) is None
    assert lk.emit("deploy", ["not", "a", "dict"]) is None
    assert lk.emit("deploy") is None  # sha missing
    assert lk.emit("deploy", {"sha": "a"}, kind="other", at=12.5, idempotency_key=7) is not None
    for helper in ("channel_connected", "channel_disconnected", "message_received",
                   "messages_recovered", "batch_dispatched", "bot_response", "delivery_queued",
                   "delivery_sent", "delivery_failed", "delivery_confirmed", "run_started",
                   "run_heartbeat", "run_finished", "container_status", "boot_started",
                   "heartbeat", "version_stamp", "deploy", "task_scheduled"):
        assert getattr(lk, helper)() is None, helper  # every required field missing
    assert lk.messages_recovered("slack", message_ids=12) is not None
    assert lk.batch_dispatched("C1", message_ids="m1") is not None
    assert lk.message_received("slack", "C1", "m1", timestamp=object()) is not None
    assert lk.boot_begin() is None and lk.boot_fail("svc") is None and lk.boot_ready(7) is None
    with lk.run(None, None, kind=object(), heartbeat_interval="soon") as run:
        run.progress(object(), note=object())
        run.fail(object())
    assert lk.flush("soon") in (True, False)
    assert lk.flush(-1) in (True, False)
    assert lk.flush(DELIVERY_DEADLINE)


def test_a_constructor_with_nonsense_still_gives_a_client(tmp_path, clients):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    lk = clients("http://127.0.0.1:1", spool_dir=blocker / "spool", heartbeat_interval="x",
                 queue_size=-3, batch_size="many", timeout=None, exit_timeout=math.nan)
    assert lk.stats()["spool_dir"] is None  # cannot be a spool: memory instead
    assert lk.emit("deploy", sha="a") is not None
    lk2 = clients(spool_dir=12)
    assert lk2.emit("deploy", sha="a") is not None


def test_after_close_events_are_counted_as_dropped(daemon):
    lk = Lookout(daemon.url, handle_sigterm=False)
    lk.deploy("before")
    assert lk.close(DELIVERY_DEADLINE) is True
    assert lk.close() is True  # twice is fine
    assert lk.emit("deploy", sha="after") is not None
    assert lk.flush(0.1) is True  # nothing left that it could still send
    assert lk.stats()["dropped"] == 1


def test_emit_is_fast_while_lookoutd_is_down(make_daemon, clients, tmp_path):
    lk = clients(make_daemon().url, spool_dir=tmp_path / "spool")
    costs = []
    for n in range(2000):
        start = time.perf_counter()
        lk.emit("heartbeat", target="t", n=n)
        costs.append(time.perf_counter() - start)
    costs.sort()
    # The bench measures this properly (clients/python/bench/emit_cost.py); here a loose bound
    # that a loaded 2-core machine still keeps.
    assert costs[len(costs) // 2] < 0.001, costs[len(costs) // 2]


def test_the_package_exports():
    assert lookout_client.__version__
    assert lookout_client.Lookout is Lookout
    assert issubclass(lookout_client.Terminated, SystemExit)
