// Where events wait while lookoutd cannot be reached: a bounded FIFO, in memory or on disk.
//
// Both spools hold "items" ({seq, json, bytes}: the client's local sequence number, the event as
// JSON text, its approximate size) and offer the same calls:
//   append(items) -> boolean   sync; false only when the disk refused the write (the caller keeps them)
//   peek(maxItems, maxBytes)   the oldest items, not removed (a promise for the file spool)
//   ack(n)                     removes the n oldest items (sent, or refused for good)
//   count, bytes, dropped      what is held, and how many were dropped because the spool was full
//   oldestSeq()                the local seq of the oldest item (0 for one left by an earlier process)
// Oldest first is dropped when full; the count is kept.

/** The spool of a runtime with no disk (Cloudflare Workers, a browser) or no `spoolDir`. */
export class MemorySpool {
  constructor(maxBytes) {
    this.kind = "memory";
    this.maxBytes = maxBytes;
    this._items = [];
    this._head = 0;
    this.bytes = 0;
    this.dropped = 0;
  }

  get count() {
    return this._items.length - this._head;
  }

  append(items) {
    for (const it of items) {
      this._items.push(it);
      this.bytes += it.bytes;
    }
    while (this.bytes > this.maxBytes && this.count > 0) {
      this._drop();
    }
    return true;
  }

  _drop() {
    const it = this._items[this._head];
    this._items[this._head++] = undefined;
    this.bytes -= it.bytes;
    this.dropped++;
    this._compact();
  }

  _compact() {
    if (this._head > 1024 && this._head * 2 > this._items.length) {
      this._items = this._items.slice(this._head);
      this._head = 0;
    }
  }

  peek(maxItems, maxBytes) {
    const out = [];
    let bytes = 0;
    for (let i = this._head; i < this._items.length && out.length < maxItems; i++) {
      const it = this._items[i];
      if (out.length > 0 && bytes + it.bytes > maxBytes) break;
      out.push({ seq: it.seq, json: it.json, bytes: it.bytes });
      bytes += it.bytes;
    }
    return out;
  }

  ack(n) {
    for (let i = 0; i < n && this.count > 0; i++) {
      const it = this._items[this._head];
      this._items[this._head++] = undefined;
      this.bytes -= it.bytes;
    }
    this._compact();
  }

  oldestSeq() {
    return this.count > 0 ? this._items[this._head].seq : Infinity;
  }

  adopt() {}

  close() {}
}

/**
 * `mkdir -p`, by hand: Node's own `{recursive: true}` never returns on some paths (one under
 * /proc, where mkdir answers ENOENT for a parent that exists).
 */
function mkdirp(fs, path, dir) {
  try {
    fs.mkdirSync(dir);
    return;
  } catch (e) {
    if (e.code === "EEXIST") return;
    if (e.code !== "ENOENT") throw e;
  }
  const parent = path.dirname(dir);
  if (parent === dir) throw new Error(`cannot create ${dir}`);
  mkdirp(fs, path, parent);
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if (e.code !== "EEXIST") throw e;
  }
}

const SEGMENT = /^seg-(\d{12})\.jsonl$/;
const OWNER_DIR = /^\d{14}-\d+-[0-9a-z]+$/;
const ADOPTED = /^adopted-(\d{14}-\d+-[0-9a-z]+)$/;

/**
 * The spool on disk, for Node (and runtimes with `node:fs`).
 *
 * Layout: `spoolDir/<started-ms>-<pid>-<random>/` is one client's directory: `owner.json` (its
 * pid; `closed: true` once it closed with events left), `seg-NNNNNNNNNNNN.jsonl` segments (one
 * event per line, appended with one write(2) each batch, so a killed process leaves whole lines)
 * and `head.json` (how far into the first segment has been sent). A directory whose owner is dead
 * or closed is claimed by the next client (an atomic rename into its own directory, as
 * `adopted-<name>`) and replayed before that client's own events.
 */
export class FileSpool {
  constructor({ dir, maxBytes, fs, path, pid, fsync = true, onError }) {
    this.kind = "file";
    this.maxBytes = maxBytes;
    this.segmentBytes = Math.min(4 * 1024 * 1024, Math.max(512, Math.floor(maxBytes / 8)));
    this.dropped = 0;
    this._fs = fs;
    this._path = path;
    this._pid = pid;
    this._onError = onError;
    this._fsync = fsync;
    this._root = dir;
    this._segs = []; // oldest first: {file, dir, size, offset, lines, consumed, seqs|null, fd|null}
    this._next = 0;
    this._closed = false;
    const name = `${String(Date.now()).padStart(14, "0")}-${pid}-${Math.random().toString(36).slice(2, 8) || "0"}`;
    mkdirp(fs, path, dir);
    this._name = name;
    this._dir = path.join(dir, name);
    fs.mkdirSync(this._dir);
    this._writeOwner(false);
  }

  get count() {
    let n = 0;
    for (const s of this._segs) n += s.lines - s.consumed;
    return n;
  }

  get bytes() {
    let n = 0;
    for (const s of this._segs) n += s.size - s.offset;
    return n;
  }

  oldestSeq() {
    const s = this._segs.find((x) => x.lines > x.consumed);
    if (!s) return Infinity;
    return s.seqs ? s.seqs[s.consumed] : 0;
  }

  _writeOwner(closed) {
    const fs = this._fs;
    const tmp = this._path.join(this._dir, "owner.json.tmp");
    fs.writeFileSync(tmp, JSON.stringify({ pid: this._pid, closed }));
    fs.renameSync(tmp, this._path.join(this._dir, "owner.json"));
  }

  /**
   * Claims the directories of clients that are gone (dead pid, or closed with events left) and
   * queues their events ahead of this client's own. Returns how many events were found.
   */
  async adopt() {
    if (this._closed) return 0;
    const fs = this._fs;
    const path = this._path;
    let entries;
    try {
      entries = fs.readdirSync(this._root).filter((e) => OWNER_DIR.test(e) && e !== this._name).sort();
    } catch (e) {
      this._onError("spool", `cannot list the spool directory ${this._root}: ${e.message}`);
      return 0;
    }
    const found = [];
    for (const e of entries) {
      const from = path.join(this._root, e);
      if (!this._ownerGone(from)) continue;
      const to = path.join(this._dir, `adopted-${e}`);
      try {
        fs.renameSync(from, to); // atomic: of two clients, one wins
      } catch {
        continue;
      }
      try {
        found.push(...(await this._load(to)));
      } catch (err) {
        this._onError("spool", `cannot read the spool left in ${to}: ${err.message}`);
      }
    }
    if (found.length === 0) return 0;
    // Left behind by earlier processes: older than anything of ours still waiting.
    let n = 0;
    for (const s of found) n += s.lines - s.consumed;
    const ownFirst = this._segs.findIndex((s) => s.seqs !== null);
    const at = ownFirst < 0 ? this._segs.length : ownFirst;
    this._segs.splice(at, 0, ...found);
    this._enforceBound(0);
    return n;
  }

  _ownerGone(dir) {
    let owner;
    try {
      owner = JSON.parse(this._fs.readFileSync(this._path.join(dir, "owner.json"), "utf8"));
    } catch {
      // No readable owner file: a client killed while creating its directory, or a stray directory.
      // Only claim it once it is clearly not being created right now.
      try {
        return Date.now() - this._fs.statSync(dir).mtimeMs > 60_000;
      } catch {
        return false;
      }
    }
    if (owner.closed) return true;
    if (typeof owner.pid !== "number") return true;
    if (owner.pid === this._pid) return false; // another client of this very process, still open
    try {
      process.kill(owner.pid, 0);
      return false;
    } catch (e) {
      return e.code === "ESRCH";
    }
  }

  /** The segments of an adopted directory, its own adoptions first. */
  async _load(dir) {
    const fs = this._fs;
    const path = this._path;
    const names = fs.readdirSync(dir).sort();
    const segs = [];
    for (const n of names) {
      if (ADOPTED.test(n)) segs.push(...(await this._load(path.join(dir, n))));
    }
    let head = null;
    try {
      head = JSON.parse(fs.readFileSync(path.join(dir, "head.json"), "utf8"));
    } catch {
      head = null;
    }
    let first = true;
    for (const n of names) {
      if (!SEGMENT.test(n)) continue;
      const file = path.join(dir, n);
      const buf = await fs.promises.readFile(file);
      let lines = 0;
      let end = 0;
      for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) {
        lines++;
        end = i + 1;
      }
      // A line cut short (a write the disk refused half of) is not an event: ignore the tail.
      const seg = { file, dir, size: end, offset: 0, lines, consumed: 0, seqs: null, fd: null };
      if (first && head && head.segment === n && head.offset <= end) {
        seg.offset = head.offset;
        seg.consumed = Math.min(head.lines, lines);
      }
      first = false;
      if (seg.lines > seg.consumed) segs.push(seg);
      else this._unlink(seg);
    }
    if (!segs.some((s) => s.dir === dir || s.dir.startsWith(dir + path.sep))) this._rmdir(dir);
    return segs;
  }

  _newSegment() {
    const fs = this._fs;
    const name = `seg-${String(this._next++).padStart(12, "0")}.jsonl`;
    const file = this._path.join(this._dir, name);
    const fd = fs.openSync(file, "a");
    const seg = { file, dir: this._dir, size: 0, offset: 0, lines: 0, consumed: 0, seqs: [], fd };
    this._segs.push(seg);
    return seg;
  }

  _tail() {
    const t = this._segs[this._segs.length - 1];
    if (t && t.fd !== null && t.size < this.segmentBytes) return t;
    if (t && t.fd !== null) this._closeFd(t);
    return this._newSegment();
  }

  _closeFd(seg) {
    if (seg.fd === null) return;
    try {
      this._fs.closeSync(seg.fd);
    } catch {
      // already closed
    }
    seg.fd = null;
  }

  /** Drops whole segments from the head until `incoming` more bytes fit. */
  _enforceBound(incoming) {
    while (this._segs.length > 0 && this.bytes + incoming > this.maxBytes) {
      const s = this._segs.shift();
      this.dropped += s.lines - s.consumed;
      this._closeFd(s);
      this._unlink(s);
      this._cleanDir(s.dir);
    }
  }

  append(items) {
    if (this._closed || items.length === 0) return true;
    const fs = this._fs;
    let text = "";
    for (const it of items) text += it.json + "\n";
    let buf = Buffer.from(text, "utf8");
    let from = 0;
    if (buf.length > this.maxBytes) {
      // The batch alone is larger than the spool: keep its newest events.
      let size = buf.length;
      while (from < items.length && size > this.maxBytes) {
        size -= Buffer.byteLength(items[from].json, "utf8") + 1;
        from++;
      }
      this.dropped += from;
      items = items.slice(from);
      if (items.length === 0) return true;
      buf = buf.subarray(buf.length - size);
    }
    this._enforceBound(buf.length);
    let seg;
    try {
      seg = this._tail();
      let written = 0;
      while (written < buf.length) {
        written += fs.writeSync(seg.fd, buf, written, buf.length - written);
      }
      // A SIGKILL needs no fsync (the page cache outlives the process); a power cut does.
      if (this._fsync) fs.fdatasyncSync(seg.fd);
    } catch (e) {
      // Full disk, read-only file system: undo a partial line, and let the caller keep the events.
      if (seg && seg.fd !== null) {
        try {
          fs.ftruncateSync(seg.fd, seg.size);
        } catch {
          // nothing more to do
        }
      }
      this._onError("spool", `cannot write the spool in ${this._dir}: ${e.message}`);
      return false;
    }
    seg.size += buf.length;
    seg.lines += items.length;
    for (const it of items) seg.seqs.push(it.seq);
    return true;
  }

  async peek(maxItems, maxBytes) {
    const seg = this._segs.find((s) => s.lines > s.consumed);
    if (!seg) return [];
    const want = Math.min(seg.size - seg.offset, Math.max(maxBytes, 1));
    let fh;
    try {
      fh = await this._fs.promises.open(seg.file, "r");
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
      // Deleted by someone else: its events are gone; go on with the next segment.
      this._onError("spool", `spool segment ${seg.file} vanished; ${seg.lines - seg.consumed} event(s) lost`);
      this.dropped += seg.lines - seg.consumed;
      seg.consumed = seg.lines;
      this._retire(seg);
      return this.peek(maxItems, maxBytes);
    }
    let buf;
    try {
      buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, seg.offset);
      buf = buf.subarray(0, bytesRead);
      if (buf.indexOf(10) === -1 && seg.size - seg.offset > want) {
        // One line longer than a batch: read up to its end.
        const end = Math.min(seg.size - seg.offset, 8 * 1024 * 1024);
        const big = Buffer.alloc(end);
        const r = await fh.read(big, 0, end, seg.offset);
        buf = big.subarray(0, r.bytesRead);
      }
    } finally {
      await fh.close();
    }
    const out = [];
    this._peeked = seg;
    let start = 0;
    for (let i = buf.indexOf(10); i !== -1 && out.length < maxItems; i = buf.indexOf(10, start)) {
      const n = seg.consumed + out.length;
      out.push({ seq: seg.seqs ? seg.seqs[n] : 0, json: buf.toString("utf8", start, i), bytes: i + 1 - start });
      start = i + 1;
    }
    if (out.length === 0) {
      // No whole line where one must be: skip the rest of this segment as unreadable.
      this.dropped += seg.lines - seg.consumed;
      seg.consumed = seg.lines;
      seg.offset = seg.size;
      this._retire(seg);
      return this.peek(maxItems, maxBytes);
    }
    return out;
  }

  ack(n, items) {
    if (n <= 0 || this._closed) return;
    const seg = this._peeked;
    // Dropped meanwhile (the spool was full): nothing left to mark as sent.
    if (!seg || !this._segs.includes(seg) || seg.lines - seg.consumed < n) return;
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += items[i].bytes;
    seg.offset += bytes;
    seg.consumed += n;
    if (seg.consumed >= seg.lines) {
      this._retire(seg);
    } else {
      this._writeHead(seg);
    }
  }

  _retire(seg) {
    const i = this._segs.indexOf(seg);
    if (i !== -1) this._segs.splice(i, 1);
    this._closeFd(seg);
    this._unlink(seg);
    this._cleanDir(seg.dir);
  }

  _writeHead(seg) {
    const fs = this._fs;
    const tmp = this._path.join(seg.dir, "head.json.tmp");
    try {
      fs.writeFileSync(
        tmp,
        JSON.stringify({ segment: this._path.basename(seg.file), offset: seg.offset, lines: seg.consumed }),
      );
      fs.renameSync(tmp, this._path.join(seg.dir, "head.json"));
    } catch {
      // Without it a restart resends a few events; their idempotency keys keep them single.
    }
  }

  _unlink(seg) {
    try {
      this._fs.unlinkSync(seg.file);
    } catch {
      // gone already
    }
  }

  /** Removes an adopted directory once none of its segments is left. */
  _cleanDir(dir) {
    if (dir === this._dir) return;
    if (this._segs.some((s) => s.dir === dir || s.dir.startsWith(dir + this._path.sep))) return;
    this._rmdir(dir);
  }

  _rmdir(dir) {
    try {
      this._fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // left for later
    }
  }

  /** Closes the files; an empty directory is removed, one with events is left to be adopted. */
  close() {
    if (this._closed) return;
    this._closed = true;
    for (const s of this._segs) this._closeFd(s);
    if (this.count === 0) {
      this._rmdir(this._dir);
    } else {
      const first = this._segs.find((s) => s.dir === this._dir && s.consumed > 0);
      if (first) this._writeHead(first);
      try {
        this._writeOwner(true);
      } catch {
        // the pid will tell once this process is gone
      }
    }
  }
}
