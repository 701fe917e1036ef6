"""The harness: a real lookoutd per test (short thresholds, a webhook sink pointed at a recorder
run by the test), and minipynchy run as its own process, as in production.

lookoutd is `LOOKOUT_BIN`, else `<repo>/target/debug/lookoutd`; the task image is
`lookout-test:latest` (`scripts/test-image.sh lookout-test:latest`). In CI (`CI` set, not "false"/
"0") a missing binary, Docker or image fails the tests; elsewhere it skips them. Every wait is a poll
until a deadline, generous for a loaded 2-core machine.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HOST_DIR = Path(__file__).resolve().parents[1]
REPO = HOST_DIR.parents[2]
IMAGE = "lookout-test:latest"
SERVICE = "pynchy"
sys.path.insert(0, str(HOST_DIR))  # the tests read the host's own store (minipynchy.channels)
GROUP = "admin-1"
HEARTBEAT_SECS = 1.0  # thresholds.heartbeat_interval, and the host's LOOKOUT_HEARTBEAT_INTERVAL

START_DEADLINE = 60.0  # lookoutd answering /health
HOST_DEADLINE = 90.0  # one run of the host
NOTE_DEADLINE = 30.0  # a notification that should come within seconds

LOOKOUTD_CONFIG = """\
[thresholds]
heartbeat_interval = "1s"
stale_processing = "3s"
stale_scan_interval = "1s"

[boot]
crash_loop_threshold = 3
crash_loop_window = "5m"

[[notify.sinks]]
kind = "webhook"
url_env = "LOOKOUT_TEST_HOOK_URL"
"""


def in_ci():
    value = os.environ.get("CI")
    return value is not None and value.strip().lower() not in ("", "false", "0")


def missing(what):
    """A missing prerequisite: a failure in CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(what + " (in CI nothing may be skipped)")
    pytest.skip(what)


def poll(check, timeout, what, interval=0.05):
    """Calls `check` until it returns something truthy, which is returned; fails at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the notification recorder


class Note(dict):
    """One notification as POSTed by the webhook sink, plus `at`: when it arrived (monotonic)."""

    @property
    def text(self):
        return self["text"]


class Hook:
    """An HTTP server that records every notification lookoutd POSTs to it."""

    def __init__(self):
        self.notes = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                note = Note(json.loads(body))
                note["at"] = time.monotonic()
                with hook.lock:
                    if all(n["id"] != note["id"] for n in hook.notes):  # a retry is one message
                        hook.notes.append(note)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def matching(self, pred):
        with self.lock:
            return [n for n in self.notes if pred(n)]

    def wait_for(self, pred, what, timeout=NOTE_DEADLINE, count=1):
        """The first `count` notes matching `pred`, once there are that many."""
        found = poll(lambda: (lambda m: m if len(m) >= count else None)(self.matching(pred)),
                     timeout, what)
        return found[:count]

    def texts(self):
        with self.lock:
            return [n["text"] for n in self.notes]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(request):
    h = Hook()
    t0 = time.monotonic()
    yield h
    h.close()
    # What a person would have read, with when (seconds into the test): shown with `pytest -s`.
    print("\n  notifications of %s:" % request.node.name)
    for n in h.notes:
        print("  %6.2fs [%s] %s: %s" % (n["at"] - t0, n["group"] or "-", n["key"], n.text))


# ---------------------------------------------------------------- lookoutd


def lookoutd_bin():
    path = Path(os.environ.get("LOOKOUT_BIN") or REPO / "target" / "debug" / "lookoutd")
    if not (path.is_file() and os.access(path, os.X_OK)):
        missing("no lookoutd at %s (cargo build -p lookoutd, or set LOOKOUT_BIN)" % path)
    return path


class Lookoutd:
    def __init__(self, tmp, hook_url):
        self.dir = tmp / "lookoutd"
        self.dir.mkdir()
        self.config = self.dir / "lookout.toml"
        self.config.write_text(LOOKOUTD_CONFIG)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = self.dir / "lookoutd.log"
        env = dict(os.environ, LOOKOUT_TEST_HOOK_URL=hook_url)
        for name in ("LOOKOUT_CONFIG", "LOOKOUT_TOKEN", "LOOKOUT_STATE_DIR", "LOOKOUT_BIND",
                     "LOOKOUT_STORE_URL"):
            env.pop(name, None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(lookoutd_bin()), "--config", str(self.config), "--state-dir",
                 str(self.dir / "state"), "--bind", "127.0.0.1:%d" % self.port],
                cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                pytest.fail("lookoutd exited (%s):\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        poll(up, START_DEADLINE, "lookoutd to answer /health")

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


@pytest.fixture
def lookoutd(tmp_path, hook):
    d = Lookoutd(tmp_path, hook.url)
    yield d
    d.stop()


# ---------------------------------------------------------------- Docker


@pytest.fixture
def docker_image():
    if shutil.which("docker") is None:
        missing("no docker command")
    r = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, text=True)
    if r.returncode != 0:
        missing("no image %s (scripts/test-image.sh %s): %s" % (IMAGE, IMAGE, r.stderr.strip()))
    return IMAGE


def containers_named(prefix):
    r = subprocess.run(["docker", "ps", "-a", "--filter", "name=" + prefix, "--format",
                        "{{.Names}}"], capture_output=True, text=True, timeout=60)
    return [n for n in r.stdout.split() if n]


# ---------------------------------------------------------------- the host


def host_config(tasks=(), renamed_key=False):
    """minipynchy's settings; `renamed_key` writes the pre-0.3 `caldav.nextcloud.password`."""
    secret = 'password = "hunter2"' if renamed_key else 'password_env = "NEXTCLOUD_PASSWORD"'
    out = """\
[service]
name = "pynchy"
admin_group = "%s"

[slack]
channel = "slack"
chat = "C0ADMIN1"
group = "%s"

[caldav.nextcloud]
url = "https://cloud.example.org/remote.php/dav"
username = "pynchy"
%s
""" % (GROUP, GROUP, secret)
    for t in tasks:
        out += "\n[[tasks]]\n" + "".join('%s = "%s"\n' % kv for kv in t.items())
    return out


class Host:
    """One process of minipynchy: `python -m minipynchy --config … --data … --once`."""

    def __init__(self, tmp, lookoutd, config_text, name="host"):
        self.tmp = tmp
        self.data = tmp / "data"  # shared by every start: it is the host's disk
        self.config = tmp / (name + ".toml")
        self.config.write_text(config_text)
        self.log_path = tmp / ("%s-%d.log" % (name, time.monotonic_ns()))
        env = dict(os.environ)
        env.update(LOOKOUT_URL=lookoutd.url, LOOKOUT_HEARTBEAT_INTERVAL=str(HEARTBEAT_SECS),
                   PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(p for p in (str(HOST_DIR), env.get("PYTHONPATH"))
                                              if p))
        env.pop("LOOKOUT_TOKEN", None)
        env.pop("LOOKOUT_SPOOL_DIR", None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "minipynchy", "--config", str(self.config), "--data",
                 str(self.data), "--once"],
                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout=HOST_DEADLINE):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("the host did not end within %.0fs; its output:\n%s"
                        % (timeout, self.output()))

    def wait_for_line(self, pattern, timeout=HOST_DEADLINE):
        """The first match of `pattern` in the host's output (stdout and stderr), once there."""
        rx = re.compile(pattern)

        def seen():
            m = rx.search(self.output())
            if m is None and self.proc.poll() is not None:
                m = rx.search(self.output())
                if m is None:
                    pytest.fail("the host ended (%s) without printing %r; its output:\n%s"
                                % (self.proc.returncode, pattern, self.output()))
            return m

        return poll(seen, timeout, "the host to print %r" % pattern)

    def outbox(self):
        """What the host sent to its chats itself: [{"group", "text"}]."""
        path = self.data / "outbox.jsonl"
        if not path.exists():
            return []
        return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


@pytest.fixture
def start_host(tmp_path, lookoutd):
    made = []

    def start(config_text, name="host"):
        h = Host(tmp_path, lookoutd, config_text, name)
        made.append(h)
        return h

    yield start
    for h in made:
        if h.proc.poll() is None:
            h.proc.kill()
            h.proc.wait()
