"""The client: `Lookout` (events, boot calls, flush and close) and `Run` (a run as a block).

Shape (after OpenTelemetry's batch processor and Sentry's transports): `emit` encodes the event and
appends it to a bounded in-memory queue, nothing more; one daemon thread, the worker, sends the
queue to lookoutd in batches (`POST /api/events` with an array), and while lookoutd does not answer
it moves the queue to the spool (`_spool.Spool`) and retries with backoff. Whatever is in the spool
is older than whatever is in memory, and the worker sends the spool first, so lookoutd receives the
events in the order they were emitted. Each event carries an idempotency key made at emit time, so
sending one twice (a lost answer, a replay after a kill) stores it once.

Invariant: no public method raises into the host (a wrong argument included) and none but `flush`,
`close` and the boot calls waits on the network — and those wait no longer than their deadline.

Longer than 800 lines on purpose: `Lookout` is one class whose public surface (a typed helper per
kind of the vocabulary, each documented) and whose worker share one lock and one queue; split into
modules, the invariant above would be spread over files that each hold half of the locking.
"""

import atexit
import collections
import collections.abc
import logging
import os
import random
import signal
import threading
import time
import weakref

from . import _events
from ._events import ENDPOINT_PREFIX, KeyMaker, dumps, new_key, now_rfc3339, rfc3339, str_list
from ._spool import Spool, SpoolBusy
from ._transport import Transport, Unreachable, redact

log = logging.getLogger("lookout_client")

DEFAULT_URL = "http://127.0.0.1:8484"

# A queued boot call that lookoutd answers with a 500 this many times in a row is given up.
ENDPOINT_ATTEMPTS = 5

# One append to the spool takes at most this much of the memory queue.
SPILL_EVENTS = 20000
SPILL_BYTES = 8 * 1024 * 1024

_monotonic = time.monotonic
_Mapping = collections.abc.Mapping
_REQUIRED = _events.REQUIRED


class Terminated(SystemExit):
    """Raised in the main thread by the SIGTERM handler this client installs (when the host has
    none): the run blocks on the way out finish `interrupted`, and the atexit hook flushes."""


_sigterm_seen = False
_sigterm_installed = False


def _on_sigterm(signum, frame):
    global _sigterm_seen
    _sigterm_seen = True
    raise Terminated(128 + signum)


def _install_sigterm():
    global _sigterm_installed
    if _sigterm_installed:
        return
    try:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the host has its own: leave it alone
        signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True
    except (ValueError, OSError, AttributeError):
        pass


_instances = weakref.WeakSet()


def _close_all():
    for lk in list(_instances):
        try:
            lk.close()
        except BaseException:  # at exit nothing may stop the others
            pass


atexit.register(_close_all)


def _after_fork_in_child():
    for lk in list(_instances):
        try:
            lk._after_fork()
        except Exception:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _number(value, default, minimum=0.0):
    try:
        v = float(value)
        if v != v or v < minimum:  # NaN, or too small
            return default
        return v
    except (TypeError, ValueError):
        return default


def _drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


class Lookout:
    """A connection to lookoutd that never harms its host.

    ``Lookout(url=None, token=None, spool_dir=None, heartbeat_interval=60, ...)``: `url` and
    `token` default to the environment's ``LOOKOUT_URL`` (else ``http://127.0.0.1:8484``) and
    ``LOOKOUT_TOKEN``, `spool_dir` to ``LOOKOUT_SPOOL_DIR`` (else no spool: a bounded memory
    buffer). See docs/clients/python.md.
    """

    def __init__(
        self,
        url=None,
        token=None,
        spool_dir=None,
        heartbeat_interval=60,
        *,
        spool_max_bytes=64 * 1024 * 1024,
        queue_size=10000,
        batch_size=500,
        batch_bytes=512 * 1024,
        timeout=5.0,
        max_backoff=10.0,
        exit_timeout=2.0,
        boot_timeout=2.0,
        progress_interval=1.0,
        handle_sigterm=True,
    ):
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the worker waits on it
        self._done = threading.Condition(self._lock)  # flush waits on it
        self._queue = collections.deque()
        self._inflight = []  # lines the worker took from the queue and has not settled
        self._idle = False
        self._runs = {}
        self._flushers = 0
        self._flush_deadline = 0.0
        self._stopping = False
        self._closed = False
        self._close_result = None
        self._worker = None
        self._pid = os.getpid()
        self._new_key = KeyMaker()
        self._sent = 0
        self._replayed = 0
        self._rejected = 0
        self._dropped_memory = 0
        self._dropped_closed = 0
        self._dropped_spool_before = 0  # of spools closed (after a fork)
        self._connected = None
        self._last_error = None
        self._warned_memory_drop = False
        self._notes = collections.deque(maxlen=256)  # log records from host threads
        self._spool = None
        self._spool_lock = threading.Lock()
        self._spool_retry_at = 0.0
        self._endpoint_errors = 0
        try:
            if url is None:
                url = os.environ.get("LOOKOUT_URL") or DEFAULT_URL
            if token is None:
                token = os.environ.get("LOOKOUT_TOKEN") or None
            if spool_dir is None:
                spool_dir = os.environ.get("LOOKOUT_SPOOL_DIR") or None
            self.url = str(url)
            self.heartbeat_interval = _number(heartbeat_interval, 60.0)
            self.queue_size = int(_number(queue_size, 10000, 1))
            self.batch_size = int(min(1000, _number(batch_size, 500, 1)))
            self.batch_bytes = int(_number(batch_bytes, 512 * 1024, 1024))
            self.timeout = _number(timeout, 5.0, 0.01)
            self.max_backoff = _number(max_backoff, 10.0, 0.05)
            self.exit_timeout = _number(exit_timeout, 2.0)
            self.boot_timeout = _number(boot_timeout, 2.0, 0.05)
            self.progress_interval = _number(progress_interval, 1.0)
            self._token = str(token) if token else None
            self._transport = Transport(self.url, self._token)
            if self._transport.problem:
                log.warning("lookout_client: %s: events are kept, never sent",
                            self._transport.problem)
            if spool_dir is not None:
                self._open_spool(spool_dir, spool_max_bytes)
            if handle_sigterm:
                _install_sigterm()
            _instances.add(self)
            self._start_worker()
        except Exception as e:  # a constructor that raises would harm the host too
            log.warning("lookout_client: set-up problem (%s); events go to memory only", e)
            if not hasattr(self, "url"):
                self.url = DEFAULT_URL
            for name, value in (
                ("heartbeat_interval", 60.0), ("queue_size", 10000), ("batch_size", 500),
                ("batch_bytes", 512 * 1024), ("timeout", 5.0), ("max_backoff", 10.0),
                ("exit_timeout", 2.0), ("boot_timeout", 2.0), ("progress_interval", 1.0),
            ):
                if not hasattr(self, name):
                    setattr(self, name, value)
            if not hasattr(self, "_token"):
                self._token = None
            if not hasattr(self, "_transport"):
                self._transport = Transport(self.url, None)
            _instances.add(self)

    def _open_spool(self, spool_dir, max_bytes):
        try:
            self._spool = Spool(spool_dir, _number(max_bytes, 64 * 1024 * 1024, 1024))
            if self._spool.events:
                log.info(
                    "lookout_client: %d event(s) waiting in the spool %s; replaying them first",
                    self._spool.events, self._spool.dir,
                )
        except SpoolBusy as e:
            log.warning("lookout_client: %s; this client keeps its events in memory", e)
        except (OSError, ValueError, TypeError) as e:
            log.warning(
                "lookout_client: cannot use spool directory %r (%s); events are kept in memory",
                str(spool_dir), e,
            )

    def __repr__(self):
        return "<Lookout %s>" % redact(self.url)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------------ emitting

    def emit(self, kind=None, fields=None, /, **more):
        """Queues one event: ``emit("deploy", sha="abc")`` or ``emit("deploy", {"sha": "abc"})``.

        Returns its idempotency key, or None when the event was refused here (a missing required
        field, logged as a warning). Never raises, never waits on I/O. `at` (when it happened) is
        set now unless given; `idempotency_key` is a fresh UUID unless given."""
        try:
            if type(kind) is not str or not kind:
                self._refuse_local(kind, "the kind must be a non-empty string")
                return None
            event = {"kind": kind}
            if fields is not None:
                if type(fields) is dict or isinstance(fields, _Mapping):
                    event.update(fields)
                else:
                    self._refuse_local(kind, "fields must be a mapping, not %s"
                                       % type(fields).__name__)
                    return None
            if more:
                event.update(more)
            event["kind"] = kind
            at = event.get("at")
            if at is None:
                event["at"] = now_rfc3339()
            elif type(at) is not str:
                event["at"] = rfc3339(at)
            key = event.get("idempotency_key")
            if key is None or key == "":
                key = event["idempotency_key"] = self._new_key()
            elif type(key) is not str:
                key = event["idempotency_key"] = str(key)
            required = _REQUIRED.get(kind)
            if required:
                for f in required:
                    if event.get(f) is None:
                        self._refuse_local(kind, "missing field `%s` (%s needs %s)"
                                           % (f, kind, ", ".join(required)))
                        return None
            self._enqueue(dumps(event))
            return key
        except Exception as e:  # never into the host
            try:
                log.debug("lookout_client: emit failed: %r", e)
            except Exception:
                pass
            return None

    def _refuse_local(self, kind, why):
        with self._lock:
            self._rejected += 1
            self._say_locked(logging.WARNING, "lookout_client: event %r not sent: %s",
                             kind if isinstance(kind, str) else type(kind).__name__, why)

    def _say_locked(self, level, msg, *args):
        """A log record from a host thread, written by the worker (a logging handler may do I/O,
        and emit never waits on I/O). The lock is held."""
        self._notes.append((level, msg, args))
        if self._idle:
            self._idle = False
            self._work.notify()

    def _write_notes(self):
        notes = self._notes
        while notes:
            try:
                level, msg, args = notes.popleft()
            except IndexError:
                return
            log.log(level, msg, *args)

    def _enqueue(self, line):
        with self._lock:
            if self._closed:
                self._dropped_closed += 1
                return
            if self._worker is None:
                self._start_worker_locked()
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self._dropped_memory += 1
                if not self._warned_memory_drop:
                    self._warned_memory_drop = True
                    self._notes.append((logging.WARNING, "lookout_client: the memory queue is full "
                                        "(%d events): the oldest are dropped (counted in "
                                        "stats()['dropped'])", (self.queue_size,)))
            self._queue.append(line)
            if self._idle:
                self._idle = False
                self._work.notify()

    # ------------------------------------------------------------------ typed events

    def _typed(self, kind, fields, extra):
        if extra:
            fields.update(extra)
        return self.emit(kind, _drop_none(fields))

    def channel_connected(self, channel=None, reason=None, **extra):
        return self._typed("channel_connected", {"channel": channel, "reason": reason}, extra)

    def channel_disconnected(self, channel=None, reason=None, **extra):
        return self._typed("channel_disconnected", {"channel": channel, "reason": reason}, extra)

    def message_received(self, channel=None, chat_jid=None, message_id=None, timestamp=None,
                         sender=None, group=None, **extra):
        """A message came in; `timestamp` (its time on the channel) defaults to now."""
        return self._typed("message_received", {
            "channel": channel, "chat_jid": chat_jid, "message_id": message_id,
            "timestamp": rfc3339(timestamp), "sender": sender, "group": group,
        }, extra)

    def messages_recovered(self, channel=None, message_ids=None, chat_jid=None, group=None,
                           **extra):
        return self._typed("messages_recovered", {
            "channel": channel, "message_ids": str_list(message_ids), "chat_jid": chat_jid,
            "group": group,
        }, extra)

    def batch_dispatched(self, chat_jid=None, message_ids=None, run_id=None, group=None, **extra):
        return self._typed("batch_dispatched", {
            "chat_jid": chat_jid, "message_ids": str_list(message_ids), "run_id": run_id,
            "group": group,
        }, extra)

    def bot_response(self, chat_jid=None, timestamp=None, run_id=None, message_id=None,
                     channel=None, **extra):
        return self._typed("bot_response", {
            "chat_jid": chat_jid, "timestamp": rfc3339(timestamp), "run_id": run_id,
            "message_id": message_id, "channel": channel,
        }, extra)

    def delivery_queued(self, delivery_id=None, chat_jid=None, channel=None, **extra):
        return self._typed("delivery_queued", {
            "delivery_id": delivery_id, "chat_jid": chat_jid, "channel": channel}, extra)

    def delivery_sent(self, delivery_id=None, chat_jid=None, channel=None, **extra):
        return self._typed("delivery_sent", {
            "delivery_id": delivery_id, "chat_jid": chat_jid, "channel": channel}, extra)

    def delivery_confirmed(self, delivery_id=None, chat_jid=None, channel=None, **extra):
        """The channel confirmed the delivery reached the chat (a read or delivery receipt).

        Once a host sends its first confirmation, lookoutd expects one for every later
        ``delivery_sent`` within ``thresholds.confirm_within`` and warns about those that
        never get one.
        """
        return self._typed("delivery_confirmed", {
            "delivery_id": delivery_id, "chat_jid": chat_jid, "channel": channel}, extra)

    def delivery_failed(self, delivery_id=None, chat_jid=None, error=None, channel=None, **extra):
        return self._typed("delivery_failed", {
            "delivery_id": delivery_id, "chat_jid": chat_jid, "error": error,
            "channel": channel}, extra)

    def run_started(self, run_id=None, group=None, kind="task", task=None, container=None,
                    pid=None, heartbeats=None, **extra):
        """The raw event; `run()` sends it for you."""
        return self._typed("run_started", {
            "run_id": run_id, "group": group, "run_kind": kind, "task": task,
            "container": container, "pid": pid, "heartbeats": heartbeats,
        }, extra)

    def run_heartbeat(self, run_id=None, progress=None, note=None, **extra):
        return self._typed("run_heartbeat", {
            "run_id": run_id, "progress": progress, "note": note}, extra)

    def run_finished(self, run_id=None, outcome=None, error=None, note=None, **extra):
        return self._typed("run_finished", {
            "run_id": run_id, "outcome": outcome, "error": error, "note": note}, extra)

    def container_status(self, container=None, status=None, **extra):
        return self._typed("container_status", {"container": container, "status": status}, extra)

    def boot_started(self, service=None, version=None, pid=None, **extra):
        """The `boot_started` event, queued like any other (see `boot_begin` for the call that
        answers with what lookoutd knows of the previous starts)."""
        return self._typed("boot_started", {"service": service, "version": version, "pid": pid},
                           extra)

    def heartbeat(self, target=None, sha=None, **extra):
        return self._typed("heartbeat", {"target": target, "sha": sha}, extra)

    def version_stamp(self, target=None, sha=None, **extra):
        return self._typed("version_stamp", {"target": target, "sha": sha}, extra)

    def deploy(self, sha=None, commit_message=None, **extra):
        return self._typed("deploy", {"sha": sha, "commit_message": commit_message}, extra)

    def task_scheduled(self, task=None, next_run=None, group=None, grace_secs=None, **extra):
        """A task's next due time (`next_run` None: no longer scheduled)."""
        return self._typed("task_scheduled", {
            "task": task, "next_run": None if next_run is None else rfc3339(next_run),
            "group": group, "grace_secs": grace_secs,
        }, extra)

    # ------------------------------------------------------------------ boot calls

    def boot_begin(self, service=None, version=None, pid=None, *, wait=True, timeout=None):
        """A start of `service` begins (``POST /api/boot/begin``). Returns lookoutd's answer (a
        dict: ``previous_failed``, ``failed_starts``, ``crash_loop``), or None when it could not
        answer within `timeout` (default `boot_timeout`): then a `boot_started` event is queued
        instead, which lookoutd applies the same way when it arrives. Never raises."""
        try:
            pid = os.getpid() if pid is None else pid
            body = _drop_none({"service": service, "version": version, "pid": pid})
            return self._boot_call("boot/begin", body, ("boot_started", dict(body)), wait, timeout)
        except Exception as e:
            log.debug("lookout_client: boot_begin failed: %r", e)
            return None

    def boot_ready(self, service=None, version=None, pid=None, *, wait=True, timeout=None):
        """`service` is up (``POST /api/boot/ready``). Returns lookoutd's report (a dict whose
        ``message`` is the line for the host's boot message, e.g. "⚠️ Service recovered after 2
        failed start(s). Last failure: …", or None when there is nothing to say), or None when
        lookoutd could not answer: then a `boot_ready` event is queued instead. Never raises."""
        try:
            event = _drop_none({"service": service, "version": version, "pid": pid})
            return self._boot_call("boot/ready", {"service": service}, ("boot_ready", event), wait,
                                   timeout)
        except Exception as e:
            log.debug("lookout_client: boot_ready failed: %r", e)
            return None

    def boot_fail(self, service=None, cause=None, *, wait=True, timeout=None):
        """The current start of `service` failed, because of `cause` (``POST /api/boot/fail``).
        Returns lookoutd's answer, or None; when lookoutd cannot answer, the call is kept in the
        queue (and the spool) and made in its place in the order when lookoutd answers. Never
        raises."""
        try:
            if cause is not None and not isinstance(cause, str):
                cause = _events._default(cause)
            body = {"service": service, "cause": cause}
            return self._boot_call("boot/fail", body, None, wait, timeout)
        except Exception as e:
            log.debug("lookout_client: boot_fail failed: %r", e)
            return None

    def _boot_call(self, endpoint, body, fallback, wait, timeout):
        if not isinstance(body.get("service"), str) or not body["service"].strip():
            self._refuse_local(endpoint, "`service` must be a non-empty string")
            return None
        if endpoint == "boot/fail" and (not isinstance(body.get("cause"), str)
                                        or not body["cause"].strip()):
            self._refuse_local(endpoint, "`cause` must be a non-empty string")
            return None

        def keep():
            if fallback is not None:
                self.emit(fallback[0], fallback[1])
            else:
                self._enqueue(dumps({"@endpoint": endpoint, "body": body}))

        if not wait or self._transport.problem:
            keep()
            return None
        timeout = _number(timeout, self.boot_timeout, 0.05) if timeout is not None \
            else self.boot_timeout
        deadline = _monotonic() + timeout
        # What was emitted before goes first: lookoutd must see them in order.
        if not self.flush(timeout / 2):
            keep()
            return None
        transport = Transport(self.url, self._token)
        try:
            resp = transport.post("/api/" + endpoint, dumps(body).encode("utf-8"),
                                  max(0.1, deadline - _monotonic()))
        except Unreachable as e:
            if e.maybe_received:
                # Not repeated: lookoutd may have acted on it, and a repeated begin would count a
                # failed start that did not happen.
                log.warning("lookout_client: no answer from lookoutd to %s (%s); not repeated",
                            endpoint, e.reason)
            else:
                keep()
            return None
        finally:
            transport.close()
        if 200 <= resp.status < 300:
            return resp.body if isinstance(resp.body, dict) else {}
        error = resp.error() or ""
        if resp.status in (400, 413, 415, 422):
            with self._lock:
                self._rejected += 1
            log.warning("lookout_client: lookoutd refused %s (HTTP %d): %s", endpoint,
                        resp.status, error)
        elif resp.status in (401, 403, 404, 429, 502, 503, 504, 507):
            # Not acted on: kept for later, like an event.
            log.warning("lookout_client: lookoutd cannot take %s now (HTTP %d: %s); kept for later",
                        endpoint, resp.status, error)
            keep()
        else:
            log.warning("lookout_client: lookoutd failed %s (HTTP %d): %s; not repeated",
                        endpoint, resp.status, error)
        return None

    # ------------------------------------------------------------------ runs

    def run(self, run_id=None, group=None, kind="task", task=None, container=None, pid=None,
            heartbeat_interval=None, heartbeats=True, **fields):
        """A run as a block: ``with lk.run("r1", "main", task="nightly") as run:``.

        Sends `run_started` on entry; heartbeats every `heartbeat_interval` seconds (default: the
        client's) while the block runs, with no timer in the host; `run_finished` on the way out
        with `outcome` success, failed (an exception: its message as `error`, re-raised) or
        interrupted (KeyboardInterrupt, SystemExit, SIGTERM, asyncio cancellation, re-raised).
        Works with ``async with`` too (then the heartbeats come from a task of the event loop, so
        a blocked loop stops them). `run_id` None: a fresh UUID."""
        return Run(self, run_id, group, kind, task, container, pid, heartbeat_interval,
                   heartbeats, fields)

    arun = run  # ``async with lk.arun(...)``: the same object, used as an async context manager

    def _register_run(self, run):
        with self._lock:
            self._runs[id(run)] = run
            if self._worker is None and not self._closed:
                self._start_worker_locked()
            self._work.notify()

    def _unregister_run(self, run):
        with self._lock:
            self._runs.pop(id(run), None)

    # ------------------------------------------------------------------ flush, close, stats

    def flush(self, timeout=5.0):
        """Sends what it can within `timeout` seconds; True when everything emitted so far is in
        lookoutd (stored, or refused as invalid), False otherwise (what is left stays queued or
        spooled). Never raises; returns by the deadline."""
        try:
            return self._flush(timeout)
        finally:
            try:
                self._write_notes()
            except Exception:
                pass

    def _flush(self, timeout):
        try:
            timeout = _number(timeout, 5.0)
            deadline = _monotonic() + timeout
            with self._lock:
                if self._pending_locked() == 0:
                    return True
                if self._closed:
                    return False
                if self._worker is None:
                    self._start_worker_locked()
                self._flushers += 1
                self._flush_deadline = max(self._flush_deadline, deadline)
                self._work.notify()
                try:
                    while self._pending_locked() > 0:
                        remaining = deadline - _monotonic()
                        if remaining <= 0:
                            return False
                        self._done.wait(remaining)
                    return True
                finally:
                    self._flushers -= 1
        except Exception as e:
            log.debug("lookout_client: flush failed: %r", e)
            return False

    async def aflush(self, timeout=5.0):
        """`flush` for asyncio: waits in a thread, not in the event loop."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    def close(self, timeout=None):
        """Flushes (within `timeout`, default `exit_timeout`), stops the worker, and leaves what
        could not be sent in the spool. Called at exit by an atexit hook. Returns whether
        everything was delivered. Never raises."""
        try:
            with self._lock:
                if self._closed:
                    return self._close_result
            timeout = self.exit_timeout if timeout is None else _number(timeout, self.exit_timeout)
            started = _monotonic()
            deadline = started + timeout
            margin = min(0.25, timeout * 0.1)
            delivered = self.flush(max(0.0, timeout - margin))
            with self._lock:
                self._closed = True
                self._stopping = True
                self._work.notify()
                worker = self._worker
            if worker is not None and worker is not threading.current_thread():
                worker.join(max(0.05, deadline - _monotonic()))
                if worker.is_alive():
                    # Stuck in a request: keep a copy of what it holds (a duplicate is harmless:
                    # lookoutd stores an idempotency key once).
                    with self._lock:
                        lines = list(self._inflight) + list(self._queue)
                        self._queue.clear()
                    if lines:
                        self._park(lines, force=True)
            with self._lock:
                left = self._pending_locked()
                lost = 0 if self._spool is not None else len(self._queue) + len(self._inflight)
            with self._spool_lock:
                spool = self._spool
                if spool is not None:
                    spooled = spool.events
                    spool.close()  # stats() still tells what is left in it
                else:
                    spooled = 0
            self._transport.close()
            delivered = delivered and left == 0
            elapsed = _monotonic() - started
            if delivered:
                log.info("lookout_client: closed in %.2fs; everything delivered", elapsed)
            elif spooled:
                log.warning("lookout_client: closed in %.2fs; %d event(s) left in the spool %s, "
                            "sent by the next client that opens it", elapsed, spooled,
                            spool.dir if spool else "")
            elif lost:
                log.warning("lookout_client: closed in %.2fs; %d event(s) not delivered and lost "
                            "(no spool_dir)", elapsed, lost)
            else:
                log.info("lookout_client: closed in %.2fs", elapsed)
            self._close_result = delivered
            try:
                _instances.discard(self)
            except Exception:
                pass
            return delivered
        except Exception as e:
            log.debug("lookout_client: close failed: %r", e)
            return False

    async def aclose(self, timeout=None):
        """`close` for asyncio (waits in a thread)."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.close, timeout)

    def stats(self):
        """Counters: ``queued`` (in memory), ``spooled`` (events in the spool), ``spool_bytes``,
        ``sent`` (stored by lookoutd, replays included), ``replayed`` (of them, from the spool),
        ``rejected`` (refused as invalid, here or by lookoutd), ``dropped`` (lost to a bound: the
        spool's, the memory queue's, or emitted after close; ``dropped_spool`` and
        ``dropped_memory`` split it), ``connected`` (None before the first try), ``last_error``."""
        with self._lock:
            spool = self._spool
            dropped_spool = self._dropped_spool_before + (spool.dropped if spool else 0)
            dropped_memory = self._dropped_memory + self._dropped_closed
            return {
                "queued": len(self._queue) + len(self._inflight),
                "spooled": spool.events if spool else 0,
                "spool_bytes": spool.bytes if spool else 0,
                "spool_dir": spool.dir if spool else None,
                "sent": self._sent,
                "replayed": self._replayed,
                "rejected": self._rejected,
                "dropped": dropped_spool + dropped_memory,
                "dropped_spool": dropped_spool,
                "dropped_memory": dropped_memory,
                "connected": self._connected,
                "last_error": self._last_error,
            }

    def _pending_locked(self):
        spool = self._spool
        return len(self._queue) + len(self._inflight) + (spool.events if spool else 0)

    # ------------------------------------------------------------------ the worker

    def _start_worker(self):
        with self._lock:
            self._start_worker_locked()

    def _start_worker_locked(self):
        if self._closed:
            return
        t = threading.Thread(target=self._loop, name="lookout-client", daemon=True)
        self._worker = t
        t.start()

    def _after_fork(self):
        # The child has the parent's memory but not its worker, and must not share its spool.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._spool_lock = threading.Lock()
        self._queue = collections.deque()
        self._inflight = []
        self._runs = {}
        self._flushers = 0
        self._idle = False
        self._worker = None
        self._pid = os.getpid()
        self._new_key = KeyMaker()  # the parent's counter goes on in the parent
        if self._spool is not None:
            self._dropped_spool_before += self._spool.dropped
            self._spool = None  # its lock stays with the parent (the flock is shared)
            log.debug("lookout_client: forked child keeps its events in memory")
        self._transport = Transport(self.url, self._token)

    def _loop(self):
        backoff = 0.0
        retry_at = 0.0
        while True:
            try:
                self._write_notes()
                self._beat_runs()
                now = _monotonic()
                with self._lock:
                    stopping = self._stopping
                    flushing = self._flushers > 0
                if flushing and retry_at > now + 0.1:
                    retry_at = now + 0.1  # a flush is waiting: try again soon
                down = retry_at > now
                if stopping:
                    # close() gave flush its chance; what is left goes to the spool, at once.
                    if self._spool is not None:
                        self._spill_all()
                    return
                if down:
                    if self._spool is not None:
                        self._spill_all()
                else:
                    progressed, ok = self._deliver_once()
                    if not ok:
                        backoff = min(self.max_backoff, max(0.1, backoff * 2))
                        wait = backoff * random.uniform(0.8, 1.2)
                        if self._flushers > 0:
                            wait = min(wait, 0.1)
                        retry_at = _monotonic() + wait
                        if self._spool is not None:
                            self._spill_all()
                        continue
                    backoff = 0.0
                    if progressed:
                        continue
                with self._lock:
                    now = _monotonic()
                    down = retry_at > now
                    spill = self._spool is not None and now >= self._spool_retry_at
                    if self._queue and (not down or spill) and not self._stopping:
                        continue
                    if self._stopping:
                        continue
                    # Woken by an emit when there is something to do with it.
                    self._idle = not down or spill
                    self._work.wait(self._next_wake(now, retry_at if down else None))
                    self._idle = False
            except Exception as e:  # the worker must outlive any bug
                try:
                    log.warning("lookout_client: worker error (%r); continuing", e)
                    time.sleep(0.5)
                except Exception:
                    pass

    def _next_wake(self, now, retry_at):
        wake = now + 5.0
        if retry_at is not None:
            wake = min(wake, retry_at)
        for run in list(self._runs.values()):
            due = run._next_due()
            if due is not None:
                wake = min(wake, due)
        return max(0.0, wake - now)

    def _beat_runs(self):
        if not self._runs:
            return
        now = _monotonic()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run._maybe_beat(now)

    def _deliver_once(self):
        """Sends one batch, the spool's first. Returns (sent something, lookoutd answered)."""
        spool = self._spool
        if spool is not None and spool.events > 0:
            with self._spool_lock:
                spool = self._spool
                batch = spool.read(self.batch_size, self.batch_bytes) if spool else None
            if batch is not None:
                ok, remaining = self._send(batch.lines, replay=True)
                settled = remaining[0] if remaining else len(batch.lines)
                with self._spool_lock:
                    if self._spool is spool:
                        spool.ack(batch, settled)
                with self._lock:
                    self._done.notify_all()
                    crowded = len(self._queue) > self.queue_size // 2
                if ok and crowded:
                    # lookoutd is catching up on the spool: keep the newer events behind it
                    # rather than drop them from memory.
                    self._spill_all()
                return True, ok
            with self._lock:
                self._done.notify_all()
        with self._lock:
            lines = self._take_locked()
            self._inflight = lines
        if not lines:
            return False, True
        ok, remaining = self._send(lines, replay=False)
        if not ok:
            self._park([lines[i] for i in remaining])
        with self._lock:
            self._inflight = []
            self._done.notify_all()
            crowded = len(self._queue) > self.queue_size // 2
        if ok and crowded and self._spool is not None:
            # The host emits faster than lookoutd stores: the spool takes the overflow (and is
            # sent first from now on, so the order holds) instead of the memory bound dropping it.
            self._spill_all()
        return True, ok

    def _take_locked(self, max_events=None, max_bytes=None):
        max_events = max_events or self.batch_size
        max_bytes = max_bytes or self.batch_bytes
        lines, size = [], 2
        q = self._queue
        while q and len(lines) < max_events:
            n = len(q[0]) + 1
            if lines and size + n > max_bytes:
                break
            lines.append(q.popleft())
            size += n
        return lines

    def _spill_all(self):
        """Moves the memory queue to the spool (while lookoutd does not answer, or cannot keep
        up). In large pieces: one fsync for all that came in during the previous one."""
        while True:
            if _monotonic() < self._spool_retry_at:
                return
            with self._lock:
                lines = self._take_locked(SPILL_EVENTS, SPILL_BYTES)
                self._inflight = lines
            if not lines:
                return
            self._park(lines)
            with self._lock:
                self._inflight = []
                self._done.notify_all()

    def _park(self, lines, force=False):
        """Keeps lines lookoutd has not taken: in the spool, else back at the head of memory."""
        with self._spool_lock:
            spool = self._spool
            if spool is not None and not spool.closed and (
                    force or _monotonic() >= self._spool_retry_at):
                try:
                    dropped = spool.append(lines)
                    if dropped:
                        log.warning(
                            "lookout_client: spool full (%d bytes): dropped the %d oldest "
                            "event(s) (counted in stats()['dropped'])", spool.max_bytes, dropped)
                    return
                except OSError as e:
                    self._spool_retry_at = _monotonic() + 5.0
                    log.warning("lookout_client: cannot write the spool %s (%s); events kept in "
                                "memory for now", spool.dir, e)
        with self._lock:
            room = self.queue_size - len(self._queue)
            if room < len(lines):
                lost = len(lines) - max(0, room)
                self._dropped_memory += lost
                lines = lines[lost:]
            self._queue.extendleft(reversed(lines))

    def _send(self, lines, replay):
        """Sends `lines` in order. Returns (lookoutd answered all, indices not settled)."""
        pending = list(range(len(lines)))
        limit = self.batch_size
        while pending:
            first = pending[0]
            if lines[first].startswith(ENDPOINT_PREFIX):
                if not self._send_endpoint(lines[first], replay):
                    return False, pending
                pending.pop(0)
                continue
            chunk, size = [], 2
            for i in pending:
                line = lines[i]
                if line.startswith(ENDPOINT_PREFIX):
                    break
                if chunk and (len(chunk) >= limit or size + len(line) + 1 > self.batch_bytes):
                    break
                chunk.append(i)
                size += len(line) + 1
            body = ("[" + ",".join(lines[i] for i in chunk) + "]").encode("utf-8")
            try:
                resp = self._transport.post("/api/events", body, self._request_timeout())
            except Unreachable as e:
                self._note_down(e.reason)
                return False, pending
            status = resp.status
            if 200 <= status < 300:
                self._note_up()
                with self._lock:
                    self._sent += len(chunk)
                    if replay:
                        self._replayed += len(chunk)
                del pending[: len(chunk)]
                warnings = resp.body.get("warnings") if isinstance(resp.body, dict) else None
                if warnings:
                    for w in warnings[:10]:
                        log.warning("lookout_client: lookoutd: %s", w)
                continue
            index = resp.body.get("index") if isinstance(resp.body, dict) else None
            if status == 400 and isinstance(index, int) and 0 <= index < len(chunk):
                # One bad event refuses the whole request and stores nothing of it: drop that
                # one, send the others again.
                self._note_up()
                self._refused(lines[chunk[index]], resp.error())
                pending.remove(chunk[index])
                continue
            if status in (400, 413):
                self._note_up()
                if len(chunk) > 1:
                    limit = max(1, len(chunk) // 2)  # find the culprit, or fit the body limit
                    continue
                self._refused(lines[chunk[0]], resp.error() or "HTTP %d" % status)
                pending.pop(0)
                continue
            # 401 (token), 404 (not lookoutd), 408, 429, 5xx, 507 (disk full): nothing stored.
            self._note_down("HTTP %d%s" % (status, ": " + resp.error() if resp.error() else ""))
            return False, pending
        return True, []

    def _send_endpoint(self, line, replay):
        import json

        try:
            call = json.loads(line)
            endpoint = call["@endpoint"]
            if endpoint not in ("boot/begin", "boot/ready", "boot/fail"):
                raise ValueError("unknown endpoint %r" % endpoint)
            body = dumps(call["body"]).encode("utf-8")
        except Exception as e:
            self._refused(line, "unreadable queued call (%s)" % e)
            return True
        try:
            resp = self._transport.post("/api/" + endpoint, body, self._request_timeout())
        except Unreachable as e:
            self._note_down(e.reason)
            return False
        if 200 <= resp.status < 300:
            self._note_up()
            self._endpoint_errors = 0
            with self._lock:
                self._sent += 1
                if replay:
                    self._replayed += 1
            return True
        if resp.status in (400, 413, 415, 422):
            self._note_up()
            self._refused(line, resp.error() or "HTTP %d" % resp.status, what=endpoint)
            return True
        if resp.status in (500, 508):
            # lookoutd answered and failed (a boot ledger it cannot read, say): a call failing
            # the same way every time must not hold back every event behind it.
            self._endpoint_errors += 1
            if self._endpoint_errors >= ENDPOINT_ATTEMPTS:
                self._endpoint_errors = 0
                self._note_up()
                self._refused(line, "HTTP %d %d times: %s" % (
                    resp.status, ENDPOINT_ATTEMPTS, resp.error() or ""), what=endpoint)
                return True
        self._note_down("HTTP %d%s" % (resp.status, ": " + resp.error() if resp.error() else ""))
        return False

    def _request_timeout(self):
        t = self.timeout
        if self._flushers > 0:
            t = min(t, max(0.25, self._flush_deadline - _monotonic()))
        return t

    def _refused(self, line, error, what=None):
        with self._lock:
            self._rejected += 1
        if what is None:
            try:
                import json

                what = "a %s event" % json.loads(line).get("kind")
            except Exception:
                what = "an event"
        log.warning("lookout_client: lookoutd refused %s: %s", what, error)

    def _note_down(self, reason):
        with self._lock:
            was = self._connected
            self._connected = False
            self._last_error = reason
            where = ("the spool %s" % self._spool.dir) if self._spool else \
                "memory (up to %d events)" % self.queue_size
        if was is not False:
            log.warning("lookout_client: lookoutd at %s does not take events (%s); keeping them in "
                        "%s and retrying", redact(self.url), reason, where)

    def _note_up(self):
        with self._lock:
            was = self._connected
            self._connected = True
        if was is False:
            log.info("lookout_client: lookoutd at %s answers again; sending what was kept",
                     redact(self.url))


class Run:
    """One run of the host (a task, or the handling of a message batch), as a block.

    ``progress(...)`` reports what changed (a step, a tool call, a token count) so lookoutd can
    tell a stalled run from a slow one; ``fail(error)`` marks the run failed without raising."""

    def __init__(self, client, run_id, group, kind, task, container, pid, heartbeat_interval,
                 heartbeats, fields):
        self._client = client
        self.run_id = run_id if run_id is not None else new_key()
        self.group = group
        self.kind = kind
        self.task = task
        self._container = container
        self._pid = pid
        self._heartbeats = heartbeats
        self._fields = fields
        interval = client.heartbeat_interval if heartbeat_interval is None else heartbeat_interval
        self.heartbeat_interval = _number(interval, client.heartbeat_interval)
        if heartbeats is False:
            self.heartbeat_interval = 0.0
        self.outcome = None  # set at the end (or by fail())
        self.error = None
        self._progress = None
        self._note = None
        self._dirty = False
        self._last_beat = 0.0
        self._next_beat = None
        self._started = None
        self._atask = None
        self._entered = False

    # -- sync

    def __enter__(self):
        try:
            self._start()
            self._client._register_run(self)
        except Exception as e:
            log.debug("lookout_client: run start failed: %r", e)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self._client._unregister_run(self)
            self._finish(exc_type, exc)
        except Exception as e:
            log.debug("lookout_client: run finish failed: %r", e)
        return False  # never swallow the host's exception

    # -- asyncio

    async def __aenter__(self):
        try:
            import asyncio

            self._start()
            self._atask = asyncio.get_running_loop().create_task(self._abeat())
        except Exception as e:
            log.debug("lookout_client: run start failed: %r", e)
        return self

    async def __aexit__(self, exc_type, exc, tb):
        try:
            if self._atask is not None:
                self._atask.cancel()
            self._finish(exc_type, exc)
        except Exception as e:
            log.debug("lookout_client: run finish failed: %r", e)
        return False

    async def _abeat(self):
        import asyncio

        while True:
            now = _monotonic()
            due = self._next_due()
            wait = 1.0 if due is None else max(0.0, due - now)
            await asyncio.sleep(min(wait, max(0.05, self._client.progress_interval or 1.0)))
            try:
                self._maybe_beat(_monotonic())
            except Exception as e:
                log.debug("lookout_client: heartbeat failed: %r", e)

    # -- the host's calls

    def progress(self, value=None, *, note=None, **fields):
        """What changed: ``run.progress(step=3, of=10)`` or ``run.progress("tool: search")``.
        Sent at once (at most one a `progress_interval`), and carried by every later heartbeat."""
        try:
            if value is None and fields:
                value = fields
            self._progress = value
            self._note = note
            self._dirty = True
            self._maybe_beat(_monotonic())
        except Exception as e:
            log.debug("lookout_client: progress failed: %r", e)

    def fail(self, error=None):
        """Marks the run failed (its `run_finished` says so) even if the block ends normally."""
        self.outcome = "failed"
        self.error = error if error is None or isinstance(error, str) else _events._default(error)

    # -- inside

    def _start(self):
        if self._entered:
            return
        self._entered = True
        self._started = _monotonic()
        fields = dict(self._fields)
        if self._heartbeats is False:
            fields["heartbeats"] = False
        self._client.run_started(self.run_id, self.group, self.kind, self.task, self._container,
                                 self._pid, **fields)
        self._last_beat = self._started
        if self.heartbeat_interval > 0:
            self._next_beat = self._started + self.heartbeat_interval

    def _next_due(self):
        due = self._next_beat
        if self._dirty:
            soon = self._last_beat + self._client.progress_interval
            due = soon if due is None else min(due, soon)
        return due

    def _maybe_beat(self, now):
        due_beat = self._next_beat is not None and now >= self._next_beat
        due_progress = self._dirty and now >= self._last_beat + self._client.progress_interval
        if not (due_beat or due_progress):
            if self._dirty:
                with self._client._lock:
                    self._client._work.notify()  # the worker re-reads when this run is due
            return
        self._dirty = False
        self._last_beat = now
        if self.heartbeat_interval > 0:
            self._next_beat = now + self.heartbeat_interval
        self._client.run_heartbeat(self.run_id, progress=self._progress, note=self._note)

    def _finish(self, exc_type, exc):
        if self._started is None:
            return
        fields = {"duration_ms": int((_monotonic() - self._started) * 1000)}
        if self._progress is not None:
            fields["progress"] = self._progress  # the last word, even if no heartbeat carried it
        if exc_type is None:
            outcome = self.outcome or "success"
            error = self.error
            note = None
        elif issubclass(exc_type, Exception):
            outcome = "failed"
            error = _message(exc_type, exc)
            fields["error_type"] = exc_type.__name__
            note = None
        else:
            outcome = "interrupted"
            error = None
            note = _interruption(exc_type, exc)
        self.outcome = outcome
        self.error = error
        self._started = None
        self._client.run_finished(self.run_id, outcome=outcome, error=error, note=note, **fields)


def _message(exc_type, exc):
    try:
        text = str(exc) if exc is not None else ""
    except Exception:
        text = ""
    text = text.strip() or exc_type.__name__
    return text if len(text) <= 2000 else text[:2000] + "…"


def _interruption(exc_type, exc):
    name = exc_type.__name__
    if _sigterm_seen:
        return "SIGTERM" if issubclass(exc_type, SystemExit) else "SIGTERM (%s)" % name
    if issubclass(exc_type, KeyboardInterrupt):
        return "KeyboardInterrupt (SIGINT)"
    if name == "CancelledError":
        return "cancelled"
    if issubclass(exc_type, SystemExit):
        code = getattr(exc, "code", None)
        return "SystemExit(%r)" % (code,)
    return name
