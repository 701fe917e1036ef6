"""The test harness's own rules, and a forked host."""

import os
import uuid

import pytest

import conftest
from conftest import DELIVERY_DEADLINE


@pytest.mark.parametrize("value, ci", [
    (None, False), ("", False), ("false", False), ("False", False), ("0", False),
    ("true", True), ("1", True), ("yes", True),
])
def test_in_ci(monkeypatch, value, ci):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert conftest.in_ci() is ci


def test_in_ci_a_missing_lookoutd_fails_instead_of_skipping(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKOUT_BIN", str(tmp_path / "no-lookoutd"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="in CI a missing lookoutd is a failure"):
        conftest.require_lookoutd()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        conftest.require_lookoutd()


def test_a_forked_child_sends_its_own_events_and_leaves_the_spool_to_its_parent(
        daemon, clients, tmp_path):
    lk = clients(daemon.url, spool_dir=tmp_path / "spool")
    t = uuid.uuid4().hex[:12]
    lk.deploy("parent-before", t=t)
    assert lk.flush(DELIVERY_DEADLINE)
    pid = os.fork()
    if pid == 0:  # the child: a pre-fork server's worker
        code = 1
        try:
            lk.deploy("child", t=t)
            ok = lk.flush(DELIVERY_DEADLINE)
            code = 0 if ok and lk.stats()["spool_dir"] is None else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    lk.deploy("parent-after", t=t)
    assert lk.flush(DELIVERY_DEADLINE)
    assert lk.stats()["spool_dir"] is not None  # still the parent's
    assert [e["payload"]["sha"] for e in daemon.tagged(t)] == [
        "parent-before", "child", "parent-after"]
