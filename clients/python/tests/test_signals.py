"""SIGTERM to a host inside a run block: the run finishes `interrupted`, and the exit-time flush
ends by its deadline, whether lookoutd is up (delivered) or down (left in the spool, replayed by
the next client)."""

import json
import re
import signal
import time
import uuid

import pytest

from conftest import DELIVERY_DEADLINE, host, read_line_until

EXIT_TIMEOUT = 1.5
# Beyond the deadline: the interpreter's own exit, on a loaded 2-core machine.
EXIT_SLACK = 10.0


def terminate(proc):
    """SIGTERM; returns (seconds until the process ended, its stdout after, its stderr)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=EXIT_TIMEOUT + EXIT_SLACK)
    except Exception:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("host still running %.0fs after SIGTERM; stderr:\n%s"
                    % (EXIT_TIMEOUT + EXIT_SLACK, err))
    return time.monotonic() - sent, out, err


def closed_in(err):
    m = re.search(r"closed in ([0-9.]+)s", err)
    assert m, err
    return float(m.group(1))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_sigterm_with_lookoutd_up_finishes_the_run_interrupted(daemon, tmp_path, mode):
    run_id = "term-" + uuid.uuid4().hex[:10]
    proc = host("sigterm_run.py", daemon.url, tmp_path / "spool", run_id, EXIT_TIMEOUT, mode)
    read_line_until(proc, "RUNNING", DELIVERY_DEADLINE)
    took, out, err = terminate(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert took < EXIT_TIMEOUT + EXIT_SLACK
    assert closed_in(err) <= EXIT_TIMEOUT + 0.3
    assert "everything delivered" in err
    stats = json.loads(out.split("EXIT", 1)[1])
    assert stats["spooled"] == 0 and stats["queued"] == 0
    ends = [e for e in daemon.events("run_finished") if e["subject"] == run_id]
    assert len(ends) == 1
    assert ends[0]["payload"]["outcome"] == "interrupted"
    assert ends[0]["payload"]["note"].startswith("SIGTERM")
    assert ends[0]["payload"]["task"] == "nightly"


def test_sigterm_with_lookoutd_down_ends_by_the_deadline_and_the_spool_keeps_the_run(
        make_daemon, clients, tmp_path):
    d = make_daemon()
    spool = tmp_path / "spool"
    run_id = "term-" + uuid.uuid4().hex[:10]
    proc = host("sigterm_run.py", d.url, spool, run_id, EXIT_TIMEOUT, "sync")
    read_line_until(proc, "RUNNING", DELIVERY_DEADLINE)
    took, out, err = terminate(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    # The flush tried until its deadline, no longer.
    assert EXIT_TIMEOUT - 0.3 <= closed_in(err) <= EXIT_TIMEOUT + 0.3, err
    assert took < EXIT_TIMEOUT + EXIT_SLACK
    stats = json.loads(out.split("EXIT", 1)[1])
    assert stats["spooled"] == 2 and stats["queued"] == 0  # run_started, run_finished
    assert "left in the spool" in err
    d.start()
    lk = clients(d.url, spool_dir=spool)
    assert lk.flush(DELIVERY_DEADLINE)
    events = [e for e in d.events() if e["subject"] == run_id]
    assert [e["kind"] for e in events] == ["run_started", "run_finished"]
    assert events[1]["payload"]["outcome"] == "interrupted"
    assert events[1]["payload"]["note"] == "SIGTERM"
