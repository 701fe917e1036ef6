#!/usr/bin/env python3
"""What one `emit` costs the host, with lookoutd up and with lookoutd down (events spooled to
disk), and how fast events reach lookoutd (sent live, and replayed from the spool).

    python3 clients/python/bench/emit_cost.py [--events N] [--throughput M]

Starts the real lookoutd ($LOOKOUT_BIN, else <repo>/target/debug/lookoutd) on a free port with a
fresh state directory. Each emit is timed alone (perf_counter_ns around the call), back to back,
so the worker thread competes with the host for the GIL the whole time: a worst case. The
"down" client has the default settings and a spool; the "up" clients have no spool and a memory
queue large enough for the whole burst (see QUEUE). Prints a table; exits 1 if the p99 of an emit
while lookoutd is down exceeds 1 ms, or if anything was dropped or not delivered.
"""

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE.parent / "src"))  # this checkout's client, installed or not
import lookout_client  # noqa: E402
from lookout_client import Lookout  # noqa: E402

LIMIT_P99_DOWN_MS = 1.0
# The memory queue of the clients with lookoutd up and no spool: large enough that a burst faster
# than lookoutd stores is timed, not dropped (the default, 10,000, would drop the oldest of it).
QUEUE = 1_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lookoutd(binary, state_dir, port):
    proc = subprocess.Popen(
        [str(binary), "--state-dir", str(state_dir), "--bind", "127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=open(Path(state_dir).parent / ("lookoutd-%d.log" % port), "wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("lookoutd exited with %s" % proc.returncode)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("lookoutd did not answer /health within 60 s")


def percentile(sorted_ns, p):
    i = min(len(sorted_ns) - 1, int(round(p / 100.0 * (len(sorted_ns) - 1))))
    return sorted_ns[i]


def time_emits(lk, n, tag):
    costs = []
    emit = lk.emit
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        emit("message_received", channel="slack", chat_jid="C0123", message_id="%s-%d" % (tag, i),
             timestamp="2026-11-24T10:00:00Z", sender="U042", group="main")
        costs.append(clock() - t0)
    costs.sort()
    return costs


def wait_for(check, timeout):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20000, help="emits timed per case")
    ap.add_argument("--throughput", type=int, default=50000, help="events for the throughput run")
    args = ap.parse_args()
    binary = Path(os.environ.get("LOOKOUT_BIN") or REPO / "target" / "debug" / "lookoutd")
    if not binary.is_file():
        sys.exit("no lookoutd at %s (cargo build -p lookoutd, or set LOOKOUT_BIN)" % binary)

    work = Path(tempfile.mkdtemp(prefix="lookout-bench-"))
    procs = []
    rows = []
    try:
        up_port = free_port()
        procs.append(start_lookoutd(binary, work / "state-up", up_port))
        up_url = "http://127.0.0.1:%d" % up_port

        # 1. emit with lookoutd up
        lk = Lookout(up_url, handle_sigterm=False, queue_size=QUEUE)
        time_emits(lk, 2000, "warm")
        lk.flush(60)
        up = time_emits(lk, args.events, "up")
        up_ok = lk.flush(120)
        up_stats = lk.stats()
        lk.close(5)

        # 2. emit with lookoutd down: every event goes to the spool
        down_port = free_port()
        down_url = "http://127.0.0.1:%d" % down_port
        spool = work / "spool"
        lk = Lookout(down_url, spool_dir=spool, handle_sigterm=False)
        time_emits(lk, 2000, "warm-down")
        down = time_emits(lk, args.events, "down")
        spooled_all = wait_for(lambda: lk.stats()["queued"] == 0, 120)
        down_stats = lk.stats()

        # 3. replay of the spool when lookoutd comes up on that port
        procs.append(start_lookoutd(binary, work / "state-down", down_port))
        t0 = time.perf_counter()
        replay_ok = lk.flush(300)
        replay_s = time.perf_counter() - t0
        replay_stats = lk.stats()
        lk.close(5)

        # 4. live delivery throughput: emit as fast as the host can, then flush
        lk = Lookout(up_url, handle_sigterm=False, queue_size=QUEUE)
        t0 = time.perf_counter()
        for i in range(args.throughput):
            lk.emit("heartbeat", target="bench", n=i)
        emitted_s = time.perf_counter() - t0
        live_ok = lk.flush(300)
        live_s = time.perf_counter() - t0
        live_stats = lk.stats()
        lk.close(5)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    def us(ns):
        return "%8.1f µs" % (ns / 1000.0)

    print("lookout_client %s (%s), Python %s, %s, %d CPU(s); lookoutd %s"
          % (lookout_client.__version__, Path(lookout_client.__file__).parent,
             platform.python_version(), platform.machine(), os.cpu_count() or 0, binary))
    print()
    print("%-34s %11s %11s %11s" % ("one emit() call", "median", "p99", "max"))
    print("%-34s %11s %11s %11s" % ("lookoutd up (%d)" % len(up), us(percentile(up, 50)),
                                     us(percentile(up, 99)), us(up[-1])))
    print("%-34s %11s %11s %11s" % ("lookoutd down, spooled (%d)" % len(down),
                                     us(percentile(down, 50)), us(percentile(down, 99)),
                                     us(down[-1])))
    print()
    print("%-34s %11s %11s %13s" % ("delivery", "events", "seconds", "events/s"))
    rows = [
        ("live: emit then flush", live_stats["sent"], live_s),
        ("replay of the spool", replay_stats["replayed"], replay_s),
    ]
    for name, n, s in rows:
        print("%-34s %11d %11.2f %13.0f" % (name, n, s, n / s if s > 0 else 0))
    print()
    print("host side of the live run: %d emits in %.2f s (%.1f µs each, batching included)"
          % (args.throughput, emitted_s, emitted_s / args.throughput * 1e6))
    print("down: spool %d bytes for %d events, dropped %d; everything spooled: %s"
          % (down_stats["spool_bytes"], down_stats["spooled"], down_stats["dropped"],
             spooled_all))

    failures = []
    p99_down_ms = percentile(down, 99) / 1e6
    if p99_down_ms > LIMIT_P99_DOWN_MS:
        failures.append("p99 emit cost while lookoutd is down is %.3f ms (limit %.1f ms)"
                        % (p99_down_ms, LIMIT_P99_DOWN_MS))
    for ok, what in ((up_ok, "flush with lookoutd up"), (replay_ok, "replay of the spool"),
                     (live_ok, "throughput flush"), (spooled_all, "spooling while down")):
        if not ok:
            failures.append("%s did not complete" % what)
    if up_stats["dropped"] or down_stats["dropped"] or live_stats["dropped"]:
        failures.append("events were dropped (up %d, down %d, live %d)" % (
            up_stats["dropped"], down_stats["dropped"], live_stats["dropped"]))
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
