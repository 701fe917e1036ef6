"""Events reach the real lookoutd: every typed helper, in order, once, with bad ones refused alone."""

import logging
import uuid

from conftest import DELIVERY_DEADLINE, Daemon, poll


def tag():
    return uuid.uuid4().hex[:12]


def test_every_typed_helper_is_stored_as_its_kind(daemon, clients):
    lk = clients(daemon.url)
    t = tag()
    lk.channel_connected("slack", reason="socket up", t=t)
    lk.channel_disconnected("slack", reason="socket down", t=t)
    lk.message_received("slack", "C1", "m1", sender="ana", group="main", t=t)
    lk.messages_recovered("slack", ["m2", "m3"], chat_jid="C1", t=t)
    lk.batch_dispatched("C1", ("m1", "m2"), run_id="r-helpers", group="main", t=t)
    lk.bot_response("C1", run_id="r-helpers", message_id="b1", channel="slack", t=t)
    lk.delivery_queued("d1", "C1", channel="slack", t=t)
    lk.delivery_sent("d1", "C1", t=t)
    lk.delivery_confirmed("d1", "C1", channel="slack", t=t)
    lk.delivery_failed("d2", "C1", error="429 rate limited", t=t)
    lk.run_started("r-helpers", "main", kind="message", task="answer", container="c1", t=t)
    lk.run_heartbeat("r-helpers", progress={"step": 1}, t=t)
    lk.run_finished("r-helpers", outcome="success", t=t)
    lk.container_status("c1", "running", t=t)
    lk.boot_started("svc-helpers", version="1.2", pid=42, t=t)
    lk.heartbeat("bridge", sha="abc", t=t)
    lk.version_stamp("bridge", sha="abc", t=t)
    lk.deploy("abc", commit_message="fix: things", t=t)
    lk.task_scheduled("nightly", next_run="2026-01-01T00:00:00Z", group="main", grace_secs=60, t=t)
    lk.emit("deploy", {"sha": "raw-dict", "t": t})
    lk.emit("deploy", sha="raw-kwargs", t=t)
    assert lk.flush(DELIVERY_DEADLINE)
    kinds = [e["kind"] for e in daemon.tagged(t)]
    assert kinds == [
        "channel_connected", "channel_disconnected", "message_received", "messages_recovered",
        "batch_dispatched", "bot_response", "delivery_queued", "delivery_sent",
        "delivery_confirmed", "delivery_failed", "run_started", "run_heartbeat", "run_finished", "container_status",
        "boot_started", "heartbeat", "version_stamp", "deploy", "task_scheduled", "deploy",
        "deploy",
    ]
    events = daemon.tagged(t)
    # The run's follow-ups said only run_id; lookoutd filled the rest from run_started.
    finished = events[12]["payload"]
    assert finished["group"] == "main" and finished["run_kind"] == "message"
    assert events[3]["payload"]["message_ids"] == ["m2", "m3"]
    assert events[4]["payload"]["message_ids"] == ["m1", "m2"]
    assert lk.stats()["rejected"] == 0


def test_many_events_arrive_once_in_order_across_batches(daemon, clients):
    lk = clients(daemon.url, batch_size=300)
    t = tag()
    keys = [lk.emit("heartbeat", target="t", t=t, n=n) for n in range(2500)]
    assert all(keys)
    assert lk.flush(DELIVERY_DEADLINE)
    events = daemon.tagged(t)
    assert [e["payload"]["n"] for e in events] == list(range(2500))
    assert lk.stats()["sent"] == 2500


def test_at_is_the_emit_time_and_a_key_is_stored_once(daemon, clients):
    lk = clients(daemon.url)
    t = tag()
    key = "my-own-key-" + t
    lk.emit("deploy", sha="a", t=t, idempotency_key=key)
    lk.emit("deploy", sha="a", t=t, idempotency_key=key)  # a retry by the host
    lk.emit("deploy", sha="b", t=t, at="2020-01-02T03:04:05Z")
    assert lk.flush(DELIVERY_DEADLINE)
    events = daemon.tagged(t)
    assert [e["payload"]["sha"] for e in events] == ["a", "b"]
    assert events[1]["at"].startswith("2020-01-02T03:04:05")


def test_one_bad_event_is_refused_alone_and_the_batch_is_stored(daemon, clients, caplog):
    lk = clients(daemon.url)
    t = tag()
    caplog.set_level(logging.WARNING, logger="lookout_client")
    lk.emit("heartbeat", target="t", t=t, n=0)
    lk.emit("bot_response", chat_jid="C1", timestamp="yesterday", t=t)  # lookoutd refuses it
    lk.emit("heartbeat", target="t", t=t, n=1)
    lk.emit("run_started", run_id="r", group="g", run_kind="batch", t=t)  # refused too
    lk.emit("heartbeat", target="t", t=t, n=2)
    lk.emit("heartbeat", t=t)  # no target: refused here, never sent
    assert lk.flush(DELIVERY_DEADLINE)
    assert [e["payload"]["n"] for e in daemon.tagged(t)] == [0, 1, 2]
    assert lk.stats()["rejected"] == 3
    text = caplog.text
    assert "field `timestamp` must be an RFC 3339 time" in text
    assert "field `run_kind` must be" in text
    assert "missing field `target`" in text


def test_an_event_too_big_for_lookoutd_is_refused_and_the_rest_stored(daemon, clients):
    lk = clients(daemon.url)
    t = tag()
    lk.emit("heartbeat", target="t", t=t, n=0)
    lk.emit("heartbeat", target="t", t=t, n=1, blob="x" * (2 * 1024 * 1024))
    lk.emit("heartbeat", target="t", t=t, n=2, blob="y" * (300 * 1024))
    lk.emit("heartbeat", target="t", t=t, n=3, blob="z" * (300 * 1024))
    assert lk.flush(DELIVERY_DEADLINE)
    assert [e["payload"]["n"] for e in daemon.tagged(t)] == [0, 2, 3]
    assert lk.stats()["rejected"] == 1


def test_lookoutd_warnings_are_logged(daemon, clients, caplog):
    caplog.set_level(logging.WARNING, logger="lookout_client")
    lk = clients(daemon.url)
    lk.run_heartbeat("a-run-never-started")
    assert lk.flush(DELIVERY_DEADLINE)
    assert "run `a-run-never-started` has no run_started" in caplog.text


def test_bearer_token_and_no_secret_in_logs(tmp_path, clients, caplog):
    caplog.set_level(logging.DEBUG, logger="lookout_client")
    secret = "s3cret-" + tag()
    d = Daemon(tmp_path / "state", token=secret)
    d.start()
    try:
        t = tag()
        wrong = clients(d.url, token="wrong-" + secret)
        wrong.emit("deploy", sha="wrong", t=t)
        assert not wrong.flush(1.0)  # 401: kept, not lost, not refused
        s = wrong.stats()
        assert s["queued"] == 1 and s["rejected"] == 0 and s["dropped"] == 0
        assert "HTTP 401" in (s["last_error"] or "")
        right = clients(d.url, token=secret)
        right.emit("deploy", sha="right", t=t)
        assert right.flush(DELIVERY_DEADLINE)
        assert [e["payload"]["sha"] for e in d.tagged(t)] == ["right"]
        assert "HTTP 401" in caplog.text
        assert secret not in caplog.text
        assert secret not in repr(right)
    finally:
        d.stop()


def test_env_gives_url_and_token(tmp_path, monkeypatch, clients):
    secret = "env-" + tag()
    d = Daemon(tmp_path / "state", token=secret)
    d.start()
    try:
        monkeypatch.setenv("LOOKOUT_URL", d.url)
        monkeypatch.setenv("LOOKOUT_TOKEN", secret)
        lk = clients()
        t = tag()
        lk.deploy("from-env", t=t)
        assert lk.flush(DELIVERY_DEADLINE)
        assert len(d.tagged(t)) == 1
    finally:
        d.stop()


def test_flush_returns_by_its_deadline_when_lookoutd_never_answers(clients):
    import socket
    import time

    # A port that accepts connections (the kernel's backlog) but never answers a request.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        lk = clients("http://127.0.0.1:%d" % silent.getsockname()[1], timeout=30)
        start = time.monotonic()
        for n in range(1000):
            lk.emit("heartbeat", target="t", n=n)
        emitting = time.monotonic() - start
        start = time.monotonic()
        assert lk.flush(0.5) is False
        flushing = time.monotonic() - start
        assert emitting < 2.0, emitting  # never waited on the network (1000 emits, loaded box)
        assert 0.45 <= flushing < 3.0, flushing
        assert lk.stats()["queued"] == 1000
    finally:
        silent.close()


def test_boot_calls_answer_with_lookoutds_report(daemon, clients):
    lk = clients(daemon.url)
    svc = "svc-" + tag()
    first = lk.boot_begin(svc, version="1")
    assert first == {"previous_failed": None, "failed_starts": 0, "crash_loop": None}
    failed = lk.boot_fail(svc, "config: missing SLACK_TOKEN")
    assert failed["previous_failed"]["cause"] == "config: missing SLACK_TOKEN"
    assert lk.boot_begin(svc, version="1")["failed_starts"] == 1
    report = lk.boot_ready(svc)
    assert report["failed_starts"] == 1
    assert report["message"] == (
        "⚠️ Service recovered after 1 failed start(s). Last failure: config: missing SLACK_TOKEN"
    )
    kinds = [e["kind"] for e in daemon.events() if e["subject"] == svc]
    assert kinds == ["boot_started", "boot_failed", "boot_started", "boot_ready"]


def test_boot_calls_while_lookoutd_is_down_are_replayed_in_order(make_daemon, clients, tmp_path):
    import time

    d = make_daemon()
    lk = clients(d.url, spool_dir=tmp_path / "spool", boot_timeout=1.0)
    svc = "svc-" + tag()
    start = time.monotonic()
    assert lk.boot_begin(svc, version="1") is None  # queued as a boot_started event
    assert lk.boot_fail(svc, "db unreachable") is None  # queued as a call
    assert time.monotonic() - start < 5.0
    poll(lambda: lk.stats()["spooled"] == 2, DELIVERY_DEADLINE, "both in the spool")
    d.start()
    begin = lk.boot_begin(svc, version="2")  # flushes the two first, then asks
    assert begin is not None and begin["failed_starts"] == 1
    report = lk.boot_ready(svc)
    assert report["message"].endswith("Last failure: db unreachable")
    kinds = [e["kind"] for e in d.events() if e["subject"] == svc]
    assert kinds == ["boot_started", "boot_failed", "boot_started", "boot_ready"]


def test_a_queued_call_lookoutd_always_fails_does_not_hold_back_the_rest(daemon, clients):
    svc = "svc-" + tag()
    # A boot ledger lookoutd cannot read: its boot endpoints answer 500 for this service.
    (daemon.state_dir / "boot").mkdir(exist_ok=True)
    (daemon.state_dir / "boot" / (svc + ".json")).write_text("{ not json")
    lk = clients(daemon.url)
    t = tag()
    assert lk.boot_fail(svc, "it broke", wait=False) is None  # queued, in order
    lk.deploy("after-the-call", t=t)
    assert lk.flush(DELIVERY_DEADLINE)
    assert [e["payload"]["sha"] for e in daemon.tagged(t)] == ["after-the-call"]
    assert lk.stats()["rejected"] == 1
