"""Seed 000, fix 2: code-improver ran for 25 minutes in a one-shot container and the group saw
nothing until it ended. Replayed here with a 1-second heartbeat interval: the host only wraps the
container in `lk.run(...)` (it writes no timer), and lookoutd tells the run's group
"⏱ code-improver still running (… elapsed)" every interval, then how it ended.

These need lookoutd's "still running" messages for a host's own runs (thresholds.heartbeat_interval);
a lookoutd built before that feature fails them."""

import re
import signal
import time

from conftest import GROUP, HEARTBEAT_SECS, containers_named, host_config, poll

ELAPSED = r"(?P<elapsed>\d+(?:\.\d+)?(?:ms|s|m|h|d)(?: ?\d+(?:\.\d+)?(?:ms|s|m|h|d))*)"
STILL_RUNNING = re.compile(
    r"⏱ code-improver still running \(" + ELAPSED + r" elapsed(?:, [^)]*)?\)(?: — last: .*)?"
    # lookoutd looks at the run's container itself: "container active" and its last output line.
    r"(?: — last output: .*)?")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(elapsed):
    return sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", elapsed))


def task(command):
    return {"name": "code-improver", "group": GROUP, "every": "1h", "image": "lookout-test:latest",
            "command": command}


def still_running(hook):
    return hook.matching(lambda n: "still running" in n.text)


def check_still_running_lines(notes, started_at, run_secs):
    """Every interval while the run is open, to the run's group, elapsed growing."""
    assert notes, "no still-running line"
    for n in notes:
        assert STILL_RUNNING.fullmatch(n.text), n.text
        assert n["group"] == GROUP, n
    first = notes[0]["at"] - started_at
    print("first still-running line %.2fs after the task started; %d lines in a %ds run"
          % (first, len(notes), run_secs))
    assert first < HEARTBEAT_SECS + 5
    # One per interval: at least half of what the run's length allows, and no flood.
    assert run_secs / HEARTBEAT_SECS / 2 <= len(notes) <= run_secs / HEARTBEAT_SECS + 3, \
        [n.text for n in notes]
    elapsed = [seconds(STILL_RUNNING.fullmatch(n.text).group("elapsed")) for n in notes]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0], elapsed


def test_a_silent_long_task_is_reported_still_running_then_finished(hook, start_host,
                                                                     docker_image):
    run_secs = 6
    host = start_host(host_config([task(
        "echo reading the repository; sleep %d; echo committed 1 change" % run_secs)]))
    host.wait_for_line(r"task code-improver started")
    started_at = time.monotonic()
    host.wait_for_line(r"task code-improver finished")
    ended_at = time.monotonic()
    assert host.wait() == 0, host.output()
    assert host.outbox()[-1] == {"group": GROUP, "text": "code-improver: committed 1 change"}

    [done] = hook.wait_for(lambda n: n.text.startswith("✅ code-improver"), "the finish line")
    assert re.fullmatch(r"✅ code-improver finished after " + ELAPSED, done.text), done.text
    assert done["group"] == GROUP
    assert run_secs - 1 <= seconds(re.search(ELAPSED, done.text).group("elapsed")) <= run_secs + 30
    print("finish line %.2fs after the task ended" % (done["at"] - ended_at))
    assert done["at"] - ended_at < 10

    time.sleep(3 * HEARTBEAT_SECS)  # none after the end
    notes = still_running(hook)
    assert all(n["at"] < done["at"] for n in notes), [n.text for n in notes]
    check_still_running_lines(notes, started_at, run_secs)


def test_a_failed_task_is_reported_with_its_error(hook, start_host, docker_image):
    host = start_host(host_config([task(
        "echo reading the repository; sleep 3; echo 'fatal: gateway answered 502'; exit 3")]))
    host.wait_for_line(r"task code-improver started")
    started_at = time.monotonic()
    assert host.wait() == 0, host.output()  # a failed task does not stop the host
    assert "task code-improver failed" in host.output()

    [failed] = hook.wait_for(lambda n: n.text.startswith("❌ code-improver"), "the failure line")
    assert re.fullmatch(r"❌ code-improver failed after " + ELAPSED
                        + r": container exited with 3: fatal: gateway answered 502",
                        failed.text), failed.text
    assert failed["group"] == GROUP
    check_still_running_lines([n for n in still_running(hook) if n["at"] < failed["at"]],
                              started_at, 3)


def test_a_host_stopped_mid_task_reports_it_interrupted(hook, start_host, docker_image):
    host = start_host(host_config([task("echo reading the repository; sleep 60")]))
    container = host.wait_for_line(r"in container (\S+)").group(1)
    poll(lambda: containers_named(container), 60, "the task's container to run")
    time.sleep(2 * HEARTBEAT_SECS)  # well into the run
    stopped_at = time.monotonic()
    host.proc.send_signal(signal.SIGTERM)  # systemd's stop, the daily restart
    assert host.wait() == 143, host.output()

    [end] = hook.wait_for(lambda n: n.text.startswith("⚠️ code-improver"), "the interrupted line")
    assert re.fullmatch(r"⚠️ code-improver interrupted after " + ELAPSED, end.text), end.text
    assert end["group"] == GROUP
    print("interrupted line %.2fs after the SIGTERM" % (end["at"] - stopped_at))
    assert end["at"] - stopped_at < 10
    # The host took its container with it.
    assert containers_named(container) == []
