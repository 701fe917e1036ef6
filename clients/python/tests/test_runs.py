"""`with lk.run(...)` and `async with lk.arun(...)`: started, heartbeats with no host timer,
progress, and finished with the right outcome; the host's exception always re-raised."""

import asyncio
import time
import uuid

import pytest

from conftest import DELIVERY_DEADLINE, poll


def run_events(daemon, run_id):
    return [e for e in daemon.events() if e["subject"] == run_id]


def finished(daemon, run_id):
    ends = [e for e in run_events(daemon, run_id) if e["kind"] == "run_finished"]
    assert len(ends) == 1, ends
    return ends[0]["payload"]


def rid():
    return "run-" + uuid.uuid4().hex[:10]


def test_a_block_that_ends_normally_is_a_success(daemon, clients):
    lk = clients(daemon.url)
    r = rid()
    with lk.run(r, "main", task="nightly", container="box-1") as run:
        run.progress(step=1, of=2)
    assert run.outcome == "success"
    assert lk.flush(DELIVERY_DEADLINE)
    events = run_events(daemon, r)
    assert [e["kind"] for e in events][0] == "run_started"
    started = events[0]["payload"]
    assert (started["group"], started["run_kind"], started["task"], started["container"]) == (
        "main", "task", "nightly", "box-1")
    end = finished(daemon, r)
    assert end["outcome"] == "success"
    assert end["progress"] == {"step": 1, "of": 2}
    assert end["task"] == "nightly"  # remembered by lookoutd from run_started


def test_an_exception_is_a_failure_with_its_message_and_is_re_raised(daemon, clients):
    lk = clients(daemon.url)
    r = rid()
    with pytest.raises(ValueError, match="the model said no"):
        with lk.run(r, "main", task="summarise"):
            raise ValueError("the model said no")
    assert lk.flush(DELIVERY_DEADLINE)
    end = finished(daemon, r)
    assert end["outcome"] == "failed"
    assert end["error"] == "the model said no"
    assert end["error_type"] == "ValueError"


@pytest.mark.parametrize("exc, note", [
    (KeyboardInterrupt, "KeyboardInterrupt (SIGINT)"),
    (SystemExit(3), "SystemExit(3)"),
])
def test_an_interruption_is_interrupted_and_is_re_raised(daemon, clients, exc, note):
    lk = clients(daemon.url)
    r = rid()
    with pytest.raises(type(exc) if isinstance(exc, BaseException) else exc):
        with lk.run(r, "main"):
            raise exc
    assert lk.flush(DELIVERY_DEADLINE)
    end = finished(daemon, r)
    assert (end["outcome"], end["note"]) == ("interrupted", note)
    assert "error" not in end


def test_fail_marks_a_block_failed_without_raising(daemon, clients):
    lk = clients(daemon.url)
    r = rid()
    with lk.run(r, "main") as run:
        run.fail("3 of 10 items failed")
    assert lk.flush(DELIVERY_DEADLINE)
    end = finished(daemon, r)
    assert (end["outcome"], end["error"]) == ("failed", "3 of 10 items failed")


def test_a_run_heartbeats_on_its_own_while_the_block_runs(daemon, clients):
    lk = clients(daemon.url, heartbeat_interval=0.2)
    r = rid()
    with lk.run(r, "main", task="long"):
        # The host does its work and sets no timer; lookoutd hears the run all along.
        poll(lambda: len([e for e in run_events(daemon, r) if e["kind"] == "run_heartbeat"]) >= 3,
             DELIVERY_DEADLINE, "three heartbeats")
    assert lk.flush(DELIVERY_DEADLINE)
    events = run_events(daemon, r)
    beats = [e for e in events if e["kind"] == "run_heartbeat"]
    assert [e["kind"] for e in events][0] == "run_started"
    assert events[-1]["kind"] == "run_finished"
    assert all(b["payload"]["group"] == "main" for b in beats)  # filled in by lookoutd
    stamps = [b["at"] for b in beats]
    assert stamps == sorted(stamps)
    # And none after the block ended: the run is no longer the worker's to beat, and three
    # intervals later (a negative cannot be polled for) the log has no new heartbeat.
    assert lk._runs == {}
    time.sleep(3 * 0.2)
    assert lk.flush(DELIVERY_DEADLINE)
    assert len([e for e in run_events(daemon, r) if e["kind"] == "run_heartbeat"]) == len(beats)


def test_progress_is_sent_and_carried_by_later_heartbeats(daemon, clients):
    lk = clients(daemon.url, heartbeat_interval=0.2, progress_interval=0.05)
    r = rid()
    with lk.run(r, "main") as run:
        run.progress("tool: search")

        def beats_with_progress():
            return [e for e in run_events(daemon, r) if e["kind"] == "run_heartbeat"
                    and e["payload"].get("progress") == "tool: search"]

        poll(lambda: len(beats_with_progress()) >= 2, DELIVERY_DEADLINE,
             "the progress, then a timed heartbeat carrying it")


def test_no_heartbeats_when_the_host_says_so(daemon, clients):
    lk = clients(daemon.url, heartbeat_interval=0.1)
    r = rid()
    with lk.run(r, "main", heartbeats=False):
        lk.deploy("marker-" + r)
        assert lk.flush(DELIVERY_DEADLINE)
        marker = [e for e in daemon.events("deploy") if e["payload"]["sha"] == "marker-" + r]
        assert marker
        # Five intervals (a negative cannot be polled for): still none.
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            lk.flush(0.1)
    assert lk.flush(DELIVERY_DEADLINE)
    kinds = [e["kind"] for e in run_events(daemon, r)]
    assert kinds == ["run_started", "run_finished"]
    assert run_events(daemon, r)[0]["payload"]["heartbeats"] is False


def test_async_run_success_failure_and_cancellation(daemon, clients):
    lk = clients(daemon.url, heartbeat_interval=0.1)
    ok, bad, cancelled = rid(), rid(), rid()

    async def main():
        async with lk.arun(ok, "main", task="a") as run:
            poll_until = asyncio.get_running_loop().time() + DELIVERY_DEADLINE
            while not [e for e in run_events(daemon, ok) if e["kind"] == "run_heartbeat"]:
                assert asyncio.get_running_loop().time() < poll_until
                await asyncio.sleep(0.05)  # the loop runs: its heartbeat task does too
                await lk.aflush(1)
            run.progress(tokens=120)
        with pytest.raises(RuntimeError, match="tool crashed"):
            async with lk.arun(bad, "main"):
                raise RuntimeError("tool crashed")

        started = asyncio.Event()

        async def worker():
            async with lk.arun(cancelled, "main"):
                started.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(worker())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert lk.flush(DELIVERY_DEADLINE)
    assert finished(daemon, ok)["outcome"] == "success"
    assert finished(daemon, ok)["progress"] == {"tokens": 120}
    assert (finished(daemon, bad)["outcome"], finished(daemon, bad)["error"]) == (
        "failed", "tool crashed")
    end = finished(daemon, cancelled)
    assert (end["outcome"], end["note"]) == ("interrupted", "cancelled")
