"""lookoutd down, killed, restarted; the host killed; the spool full: every event arrives once, in
order, or is counted as dropped (the oldest first)."""

import os
import signal
import threading
import time
import uuid
from datetime import datetime

from conftest import DELIVERY_DEADLINE, host, poll, read_line_until

from lookout_client._spool import Spool


def tag():
    return uuid.uuid4().hex[:12]


def numbers(daemon, t):
    return [e["payload"]["n"] for e in daemon.tagged(t, "heartbeat")]


def test_lookoutd_down_for_the_whole_block_then_started(make_daemon, clients, tmp_path):
    d = make_daemon()
    lk = clients(d.url, spool_dir=tmp_path / "spool", heartbeat_interval=0.05)
    t = tag()
    before = time.time()
    with lk.run(t, "main", task="offline", t=t) as run:
        for n in range(300):
            lk.emit("heartbeat", target="t", t=t, n=n)
            if n == 150:
                run.progress(half=True)
        # run_started, 300 events, and heartbeats the client sends on its own, while down.
        poll(lambda: lk.stats()["spooled"] >= 303, DELIVERY_DEADLINE, "heartbeats spooled")
    poll(lambda: lk.stats()["queued"] == 0, DELIVERY_DEADLINE, "everything spooled")
    s = lk.stats()
    assert s["connected"] is False and s["sent"] == 0 and s["dropped"] == 0
    assert not lk.flush(0.3)
    time.sleep(0.05)  # lookoutd starts strictly after every event happened
    started = time.time()
    d.start()
    assert lk.flush(DELIVERY_DEADLINE)
    assert numbers(d, t) == list(range(300))
    run_kinds = [e["kind"] for e in d.events() if e["subject"] == t]
    assert run_kinds[0] == "run_started" and run_kinds[-1] == "run_finished"
    assert run_kinds.count("run_started") == run_kinds.count("run_finished") == 1
    assert run_kinds.count("run_heartbeat") >= 2  # heartbeats kept coming, into the spool
    # Times are those of the emits, not of the late delivery.
    last = d.tagged(t, "heartbeat")[-1]["at"]
    assert before <= datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() < started
    s = lk.stats()
    assert s["spooled"] == 0 and s["spool_bytes"] == 0 and s["replayed"] == s["sent"]
    assert os.listdir(tmp_path / "spool") == [".lock"]


def test_lookoutd_killed_mid_run_and_restarted(make_daemon, clients, tmp_path):
    d = make_daemon()
    d.start()
    lk = clients(d.url, spool_dir=tmp_path / "spool", heartbeat_interval=0.1, batch_size=50)
    t = tag()
    total = 3000
    with lk.run(t, "main", task="through-a-crash"):
        for n in range(total):
            lk.emit("heartbeat", target="t", t=t, n=n)
            if n == 1000:
                # Kill it while it is busy taking our batches.
                poll(lambda: lk.stats()["sent"] >= 200, DELIVERY_DEADLINE, "some delivered")
                d.kill(signal.SIGKILL)
            if n == 2000:
                poll(lambda: lk.stats()["connected"] is False, DELIVERY_DEADLINE,
                     "the client to notice")
                d.start()
            if n % 100 == 0:
                time.sleep(0.005)
    assert lk.flush(DELIVERY_DEADLINE)
    assert numbers(d, t) == list(range(total))
    run_kinds = [e["kind"] for e in d.events() if e["subject"] == t]
    assert run_kinds.count("run_started") == run_kinds.count("run_finished") == 1
    assert lk.stats()["dropped"] == 0


def test_spool_full_drops_the_oldest_and_counts_them(make_daemon, clients, tmp_path):
    d = make_daemon()
    bound = 8192
    lk = clients(d.url, spool_dir=tmp_path / "spool", spool_max_bytes=bound, batch_size=20)
    t = tag()
    total = 400
    for n in range(total):
        lk.emit("heartbeat", target="t", t=t, n=n, pad="x" * 60)
    poll(lambda: lk.stats()["queued"] == 0, DELIVERY_DEADLINE, "everything spooled")
    s = lk.stats()
    assert s["spool_bytes"] <= bound
    on_disk = sum(os.path.getsize(tmp_path / "spool" / f)
                  for f in os.listdir(tmp_path / "spool") if f.endswith(".jsonl"))
    assert on_disk == s["spool_bytes"]
    assert s["dropped"] > 0 and s["dropped"] == s["dropped_spool"]
    assert s["spooled"] + s["dropped"] == total
    kept = s["spooled"]
    d.start()
    assert lk.flush(DELIVERY_DEADLINE)
    # What arrived is the newest, in order; what was dropped is exactly the oldest.
    assert numbers(d, t) == list(range(total - kept, total))
    assert lk.stats()["dropped"] == total - kept


def test_without_a_spool_a_bounded_memory_buffer_drops_the_oldest(make_daemon, clients):
    d = make_daemon()
    lk = clients(d.url, queue_size=100)
    t = tag()
    for n in range(250):
        lk.emit("heartbeat", target="t", t=t, n=n)
    poll(lambda: lk.stats()["connected"] is False, DELIVERY_DEADLINE, "a failed try")
    assert not lk.flush(0.3)
    s = lk.stats()
    assert s["queued"] == 100 and s["dropped_memory"] == 150 and s["dropped"] == 150
    d.start()
    assert lk.flush(DELIVERY_DEADLINE)
    assert numbers(d, t) == list(range(150, 250))


def test_a_host_killed_after_spooling_is_replayed_by_the_next_client(make_daemon, clients,
                                                                     tmp_path):
    d = make_daemon()
    spool = tmp_path / "spool"
    t = tag()
    proc = host("spool_then_hang.py", d.url, spool, t, 500)
    try:
        read_line_until(proc, "SPOOLED", DELIVERY_DEADLINE)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    d.start()
    lk = clients(d.url, spool_dir=spool)  # the host restarted: a new client on the same spool
    assert lk.flush(DELIVERY_DEADLINE)
    assert numbers(d, t) == list(range(500))
    assert [e["kind"] for e in d.events() if e["subject"] == t] == ["run_started"]
    s = lk.stats()
    assert s["replayed"] == 501 and s["spooled"] == 0


def test_a_line_torn_by_a_kill_mid_write_is_skipped_and_the_rest_replayed(make_daemon, clients,
                                                                          tmp_path):
    d = make_daemon()
    spool = tmp_path / "spool"
    spool.mkdir()
    t = tag()
    lines = ['{"kind":"heartbeat","target":"t","t":"%s","n":%d,"idempotency_key":"%s-%d"}'
             % (t, n, t, n) for n in range(3)]
    (spool / "000000000001.jsonl").write_text("\n".join(lines[:2]) + "\n")
    # The next segment: one good line, then one cut short by a SIGKILL in the middle of write().
    (spool / "000000000002.jsonl").write_text(lines[2] + "\n" + lines[2][:25])
    d.start()
    lk = clients(d.url, spool_dir=spool)
    assert lk.flush(DELIVERY_DEADLINE)
    assert numbers(d, t) == [0, 1, 2]
    assert lk.stats()["dropped"] == 1  # the torn line, which never was a whole event


def test_one_process_at_a_time_per_spool(tmp_path, clients, caplog):
    first = Spool(tmp_path / "spool", 1 << 20)
    try:
        lk = clients("http://127.0.0.1:1", spool_dir=tmp_path / "spool")
        assert lk.stats()["spool_dir"] is None  # busy: this client keeps its events in memory
        assert "in use by another process" in caplog.text
    finally:
        first.close()


def test_emit_does_not_wait_for_the_spool(make_daemon, clients, tmp_path):
    """While lookoutd is down, emits from many threads stay fast and nothing is lost."""
    d = make_daemon()
    lk = clients(d.url, spool_dir=tmp_path / "spool")
    t = tag()
    worst = []

    def emitter(k):
        slowest = 0.0
        for n in range(500):
            start = time.perf_counter()
            lk.emit("heartbeat", target="t", t=t, n=k * 1000 + n)
            slowest = max(slowest, time.perf_counter() - start)
        worst.append(slowest)

    threads = [threading.Thread(target=emitter, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    poll(lambda: lk.stats()["queued"] == 0, DELIVERY_DEADLINE, "everything spooled")
    assert lk.stats()["spooled"] == 2000
    d.start()
    assert lk.flush(DELIVERY_DEADLINE)
    got = numbers(d, t)
    assert sorted(got) == sorted(k * 1000 + n for k in range(4) for n in range(500))
    for k in range(4):  # each thread's events in its order
        mine = [n for n in got if n // 1000 == k]
        assert mine == sorted(mine)
