"""Fixtures: the real lookoutd, started fresh (its own state dir, a free port) for each test.

lookoutd is `LOOKOUT_BIN`, else `<repo>/target/debug/lookoutd`. In CI (env `CI` set and not
"false"/"0") a missing binary fails the tests; elsewhere it skips them. Waits are polls until a
deadline, generous for a loaded 2-core machine.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

try:
    import lookout_client  # the installed package (test.sh installs it)
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(HERE.parent / "src"))
    import lookout_client  # noqa: F401

# Where a child Python process finds the same lookout_client as this one.
PACKAGE_PARENT = str(Path(lookout_client.__file__).resolve().parent.parent)

# Deadlines: long enough for a loaded 2-core machine, short enough to fail in minutes.
START_DEADLINE = 60.0
DELIVERY_DEADLINE = 60.0


def in_ci():
    """CI is on when the environment says so: `CI` set, and not "false" or "0"."""
    value = os.environ.get("CI")
    return value is not None and value.strip().lower() not in ("false", "0", "")


def lookout_bin():
    return Path(os.environ.get("LOOKOUT_BIN") or REPO / "target" / "debug" / "lookoutd")


def require_lookoutd():
    path = lookout_bin()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    message = (
        "lookoutd not found at %s (build it with `cargo build -p lookoutd`, or set LOOKOUT_BIN)"
        % path
    )
    if in_ci():
        pytest.fail(message + "; in CI a missing lookoutd is a failure, not a skip")
    pytest.skip(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(check, timeout, what, interval=0.02):
    """Calls `check` until it returns something truthy, which is returned; fails at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


class Daemon:
    """One lookoutd: a state dir and a port that stay the same across kills and restarts."""

    def __init__(self, state_dir, port=None, token=None):
        self.bin = require_lookoutd()
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.token = token
        self.proc = None
        self.log_path = self.state_dir.parent / ("lookoutd-%d.log" % self.port)

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = dict(os.environ)
        env.pop("LOOKOUT_CONFIG", None)
        env["LOOKOUT_TOKEN"] = self.token or ""
        if not self.token:
            env.pop("LOOKOUT_TOKEN")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.bin), "--state-dir", str(self.state_dir),
             "--bind", "127.0.0.1:%d" % self.port],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()

        def up():
            if self.proc.poll() is not None:
                pytest.fail("lookoutd exited with %s; its log:\n%s" % (self.proc.returncode,
                                                                      self.log_tail()))
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False

        poll(up, START_DEADLINE, "lookoutd to answer /health", interval=0.05)
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)

    def stop(self):
        self.kill(signal.SIGTERM)

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- reading what lookoutd stored

    def _get(self, path):
        req = urllib.request.Request(self.url + path)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def events(self, kind=None):
        """Every event in the log, oldest first (GET /api/events, paged)."""
        out, after = [], 0
        while True:
            q = {"after": after, "limit": 1000}
            if kind:
                q["kind"] = kind
            page = self._get("/api/events?" + urllib.parse.urlencode(q))
            out.extend(page["events"])
            if not page["events"]:
                return out
            after = page["next_after"]

    def tagged(self, tag, kind=None):
        """The events whose payload has `t == tag` (each test tags its own)."""
        return [e for e in self.events(kind) if e["payload"].get("t") == tag]


@pytest.fixture
def daemon(tmp_path):
    """A running lookoutd with a fresh state dir on a free port."""
    d = Daemon(tmp_path / "state")
    d.start()
    yield d
    d.stop()


@pytest.fixture
def make_daemon(tmp_path):
    """A factory of lookoutds not started yet (for tests where lookoutd is down first)."""
    made = []

    def make(**kw):
        d = Daemon(tmp_path / ("state%d" % len(made)), **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def clients():
    """Lookout clients closed at the end of the test (quickly: the test already checked them)."""
    made = []

    def make(*args, **kw):
        kw.setdefault("max_backoff", 0.2)
        kw.setdefault("handle_sigterm", False)
        lk = lookout_client.Lookout(*args, **kw)
        made.append(lk)
        return lk

    yield make
    for lk in made:
        lk.close(timeout=1)


def child_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("LOOKOUT_URL", None)
    env.pop("LOOKOUT_TOKEN", None)
    env.pop("LOOKOUT_SPOOL_DIR", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def host(script, *args, **env):
    """A host process running tests/hosts/<script> with this lookout_client."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "hosts" / script), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(**env), text=True,
    )


def read_line_until(proc, marker, timeout):
    """Reads `proc`'s stdout until a line starting with `marker` (returned); fails at the
    deadline or if the process ends first."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            pytest.fail("host never said %r within %.0fs; stdout so far: %r; stderr: %s"
                        % (marker, timeout, seen, proc.stderr.read()))
        if sel.select(remaining):
            line = proc.stdout.readline()
            if not line:
                pytest.fail("host ended (%s) before saying %r; stdout: %r; stderr: %s"
                            % (proc.wait(), marker, seen, proc.stderr.read()))
            seen.append(line)
            if line.startswith(marker):
                return line[len(marker):].strip()
