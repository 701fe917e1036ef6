"""The spool: events waiting for lookoutd, on disk, in order, bounded in bytes.

A spool is a directory of segment files `000000000001.jsonl`, `000000000002.jsonl`, … each a run of
complete JSON lines (one event a line). Events are appended to the newest segment and read from the
oldest; a segment read to its end is deleted. Every append is one `write` of whole lines followed by
an `fsync`, so a process killed at any moment leaves every line it appended before. A line torn by
a kill in the middle of a write is cut off when the spool is next opened (and counted as dropped);
a process never appends to a segment it did not create, so a torn line is never followed by a good
one in the same file.

The bound is on the bytes of the segment files: to make room, the oldest segments are deleted whole
(segments are about an eighth of the bound) and the events in them are counted as dropped.

One process at a time uses a spool directory (an exclusive `flock` on `.lock`, released by the
kernel when the process dies, even by SIGKILL). Only one thread at a time may call a Spool's methods.
"""

import os
import re

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

_SEGMENT = re.compile(r"^(\d{12})\.jsonl$")


class SpoolBusy(Exception):
    """Another live process holds the spool directory."""


class _Segment:
    __slots__ = ("num", "path", "size", "lines")

    def __init__(self, num, path, size, lines):
        self.num = num
        self.path = path
        self.size = size
        self.lines = lines


class Batch:
    """Lines read from the head of the spool, to be acknowledged once sent."""

    __slots__ = ("segment", "lines", "ends")

    def __init__(self, segment, lines, ends):
        self.segment = segment
        self.lines = lines  # the events, as text
        self.ends = ends  # the byte offset just past each line in its segment


class Spool:
    def __init__(self, directory, max_bytes):
        self.dir = os.path.abspath(os.fspath(directory))
        self.max_bytes = max(1024, int(max_bytes))
        self.segment_bytes = min(1 << 20, max(512, self.max_bytes // 8))
        self.dropped = 0  # events lost to the bound, or unreadable
        self.closed = False
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self._lock_fd = None
        if fcntl is not None:
            fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise SpoolBusy("spool directory %s is in use by another process" % self.dir)
            self._lock_fd = fd
        self._segments = []
        for name in sorted(os.listdir(self.dir)):
            m = _SEGMENT.match(name)
            if not m:
                continue
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
                data = self._trim_torn(path, data)
            except OSError:
                continue
            self._segments.append(_Segment(int(m.group(1)), path, len(data), data.count(b"\n")))
        self._next = self._segments[-1].num + 1 if self._segments else 1
        self._bytes = sum(s.size for s in self._segments)
        self._events = sum(s.lines for s in self._segments)
        self._head_offset = 0  # bytes of the oldest segment already sent
        self._head_lines = 0  # lines of the oldest segment already sent
        self._active = None  # the segment this process appends to
        self._active_fd = None
        self.dropped += self._make_room(0)

    # -- what is in it

    @property
    def events(self):
        """Events waiting (complete lines not yet acknowledged)."""
        return self._events

    @property
    def bytes(self):
        """Bytes on disk (segment files)."""
        return self._bytes

    # -- appending

    def append(self, lines):
        """Appends `lines` (text, no newlines inside) durably. Returns how many events the bound
        dropped (the oldest). Raises OSError when the disk refuses (or the spool is closed)."""
        if self.closed:
            raise OSError("the spool is closed")
        encoded = [line.encode("utf-8", "replace") + b"\n" for line in lines]
        dropped = 0
        total = sum(len(b) for b in encoded)
        start = 0
        while start < len(encoded) and total > self.max_bytes:
            total -= len(encoded[start])
            start += 1
            dropped += 1
        encoded = encoded[start:]
        dropped += self._make_room(total)
        self.dropped += dropped
        i = 0
        while i < len(encoded):
            if self._active is None or self._active.size >= self.segment_bytes:
                self._rotate()
            room = self.segment_bytes - self._active.size
            j, size = i, 0
            while j < len(encoded) and (j == i or size + len(encoded[j]) <= room):
                size += len(encoded[j])
                j += 1
            self._write(b"".join(encoded[i:j]), j - i)
            i = j
        return dropped

    def _make_room(self, incoming):
        """Deletes the oldest segments until `incoming` more bytes fit; returns the events lost."""
        lost = 0
        while self._segments and self._bytes + incoming > self.max_bytes:
            lost += self._drop_head()
        return lost

    def _drop_head(self):
        seg = self._segments.pop(0)
        unread = max(0, seg.lines - self._head_lines)
        if seg is self._active:
            self._close_active()
        self._unlink(seg.path)
        self._bytes -= seg.size
        self._events -= unread
        self._head_offset = 0
        self._head_lines = 0
        return unread

    def _rotate(self):
        self._close_active()
        while True:
            path = os.path.join(self.dir, "%012d.jsonl" % self._next)
            self._next += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
                break
            except FileExistsError:
                continue
        self._fsync_dir()
        self._active = _Segment(self._next - 1, path, 0, 0)
        self._active_fd = fd
        self._segments.append(self._active)

    def _write(self, data, n_lines):
        seg, fd = self._active, self._active_fd
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError:
            # The segment may now end with a torn line: never append to it again, and count what
            # really is in it.
            self._close_active()
            self._recount(seg)
            raise
        seg.size += len(data)
        seg.lines += n_lines
        self._bytes += len(data)
        self._events += n_lines

    def _trim_torn(self, path, data):
        """Cuts a torn last line (bytes after the last newline: a writer killed mid-write, or a
        failed write) off a segment nobody appends to any more; it is counted as dropped."""
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            os.truncate(path, cut)
            self.dropped += 1
            data = data[:cut]
        return data

    def _recount(self, seg):
        try:
            with open(seg.path, "rb") as f:
                data = f.read()
            data = self._trim_torn(seg.path, data)
        except OSError:
            data = b""
        lines = data.count(b"\n")
        self._bytes += len(data) - seg.size
        self._events += lines - seg.lines
        seg.size, seg.lines = len(data), lines

    def _close_active(self):
        fd, self._active_fd, self._active = self._active_fd, None, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- reading

    def read(self, max_events, max_bytes):
        """The oldest events, up to `max_events` and about `max_bytes` (at least one), or None when
        the spool is empty. Unreadable lines met on the way are dropped (and counted)."""
        if self.closed:
            return None
        while self._segments:
            seg = self._segments[0]
            if self._head_offset >= seg.size:
                # Read to its end (when it is this process's own segment, the next append starts
                # a new one).
                self._drop_head()
                continue
            try:
                with open(seg.path, "rb") as f:
                    f.seek(self._head_offset)
                    data = f.read()
            except OSError:
                self.dropped += self._drop_head()
                continue
            base = self._head_offset
            lines, ends, first = [], [], None
            pos = 0
            while len(lines) < max_events:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    break
                raw = data[pos:nl]
                end = base + nl + 1
                if _looks_like_json_object(raw):
                    if first is None:
                        first = base + pos
                    elif end - first > max_bytes:
                        break
                    lines.append(raw.decode("utf-8", "replace"))
                    ends.append(end)
                elif lines:
                    break  # a batch is a run of good lines; the bad one is dropped next read
                else:
                    # A bad line before any good one: dropped now.
                    self._head_offset = end
                    self._head_lines += 1
                    self._events -= 1
                    self.dropped += 1
                pos = nl + 1
            if lines:
                return Batch(seg, lines, ends)
            if self._head_offset < seg.size:
                # Bytes with no newline up to the end of the file: a line torn by a kill in the
                # middle of its write. It never was an event anyone was told is safe.
                self.dropped += 1
                self._head_offset = seg.size
        return None

    def ack(self, batch, n):
        """The first `n` lines of `batch` are settled (stored or refused by lookoutd)."""
        if self.closed or n <= 0 or not self._segments or self._segments[0] is not batch.segment:
            return
        n = min(n, len(batch.lines))
        self._head_offset = batch.ends[n - 1]
        self._head_lines += n
        self._events -= n
        if self._head_offset >= batch.segment.size:
            self._drop_head()  # read to its end (this process's own: the next append starts anew)

    # -- the rest

    def close(self):
        """Releases the directory; `events` and `bytes` keep saying what is left in it."""
        self.closed = True
        self._close_active()
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                os.close(fd)  # releases the flock
            except OSError:
                pass

    def _unlink(self, path):
        try:
            os.unlink(path)
        except OSError:
            pass

    def _fsync_dir(self):
        try:
            fd = os.open(self.dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def _looks_like_json_object(raw):
    raw = raw.strip()
    return len(raw) >= 2 and raw[:1] == b"{" and raw[-1:] == b"}" and b"\x00" not in raw
