"""HTTP to lookoutd over the standard library's http.client, one kept-alive connection.

`post` answers with the status and the parsed JSON body, or raises `Unreachable` (no answer at
all). `Unreachable.maybe_received` tells whether lookoutd might have acted on the request (the
request went out and no answer came back) — which matters for the boot endpoints, whose calls are
not idempotent; events carry idempotency keys, so for them a retry is always safe.
"""

import http.client
import json
import socket
import urllib.parse

from ._version import __version__ as _version

USER_AGENT = "lookout-client-python/%s" % _version


class Unreachable(Exception):
    """No answer from lookoutd."""

    def __init__(self, reason, maybe_received=False):
        super().__init__(reason)
        self.reason = reason
        self.maybe_received = maybe_received


class Response:
    __slots__ = ("status", "body")

    def __init__(self, status, body):
        self.status = status
        self.body = body  # the JSON answer as a dict, or None

    def error(self):
        """lookoutd's error text, if it sent one."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), str):
            return self.body["error"]
        return None


def redact(url):
    """`url` without a password (for logs)."""
    try:
        u = urllib.parse.urlsplit(url)
        if u.username is None and u.password is None:
            return url
        host = u.hostname or ""
        if u.port:
            host = "%s:%d" % (host, u.port)
        return urllib.parse.urlunsplit((u.scheme, "***@" + host, u.path, u.query, u.fragment))
    except Exception:
        return "<unparsable url>"


class Transport:
    def __init__(self, url, token):
        self.url = url
        self.problem = None  # why this URL can never work, if it cannot
        self._token = token
        self._conn = None
        try:
            u = urllib.parse.urlsplit(str(url).strip())
            if u.scheme not in ("http", "https"):
                raise ValueError("the URL must start with http:// or https://")
            if not u.hostname:
                raise ValueError("the URL has no host")
            self._https = u.scheme == "https"
            self._host = u.hostname
            self._port = u.port or (443 if self._https else 80)
            self._base = u.path.rstrip("/")
        except ValueError as e:
            self.problem = "bad lookoutd URL %r: %s" % (redact(str(url)), e)

    def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _connect(self, timeout):
        if self._https:
            import ssl  # only for https: a Python built without ssl still sends plain http

            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException, ValueError) as e:
            conn.close()
            raise Unreachable(_describe(e))
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception:
            pass
        return conn

    def post(self, path, body, timeout):
        """POST `body` (bytes of JSON) to `<url><path>`; raises Unreachable."""
        if self.problem is not None:
            raise Unreachable(self.problem)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        for attempt in (0, 1):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = self._connect(timeout)
            conn = self._conn
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request("POST", self._base + path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                stale = isinstance(
                    e,
                    (
                        http.client.RemoteDisconnected,
                        ConnectionResetError,
                        BrokenPipeError,
                        http.client.CannotSendRequest,
                    ),
                )
                if reused and stale and attempt == 0:
                    # lookoutd closed the idle kept-alive connection: nothing was read; once more.
                    continue
                raise Unreachable(_describe(e), maybe_received=True)
            if resp.will_close:
                self.close()
            try:
                parsed = json.loads(raw.decode("utf-8")) if raw else None
            except ValueError:
                parsed = None
            return Response(resp.status, parsed)
        raise Unreachable("no answer", maybe_received=True)  # not reached


def _describe(e):
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return "cannot resolve host (%s)" % (e.strerror or e)
    text = str(e) or type(e).__name__
    return "%s: %s" % (type(e).__name__, text) if type(e).__name__ not in text else text
