// lookout-client: tell lookoutd what an agent host is doing, without ever harming the host.
//
// Shape (after OpenTelemetry's batch processor and Sentry's transports): `emit` serialises the
// event and pushes it onto a bounded in-memory queue, nothing else; one background pump sends
// batches to `POST /api/events`, one request at a time so order holds. While lookoutd cannot be
// reached, events go to a spool (files on Node with `spoolDir`, memory otherwise) and are replayed
// oldest first when it answers; every event carries an `idempotency_key`, so a batch resent after
// a lost answer is stored once. Plain ES modules over the built-in `fetch`: Node >= 18, Bun, Deno,
// Cloudflare Workers.
//
// Longer than 800 lines on purpose: one `Lookout` class holds the queue, the pump and a documented
// helper per kind of the vocabulary, which share its internal state (the queue, the pump's flags);
// kept in one class body so that state has one owner. The spool lives apart (spool.js).

import { FileSpool, MemorySpool } from "./spool.js";

export const VERSION = "0.1.0";

const DEFAULT_URL = "http://127.0.0.1:8484";
const MiB = 1024 * 1024;

const hasProcess = typeof globalThis.process === "object" && globalThis.process !== null;

function env(name) {
  try {
    const v = hasProcess ? globalThis.process.env?.[name] : undefined;
    return typeof v === "string" && v !== "" ? v : undefined;
  } catch {
    return undefined; // Deno without --allow-env, a sandbox
  }
}

function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  // Node 18 has no global `crypto`: a random prefix per process and a counter are unique enough
  // for a retry key.
  return `${fallbackPrefix}-${(fallbackCounter++).toString(36)}`;
}
const fallbackPrefix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
let fallbackCounter = 0;

function unref(t) {
  if (t && typeof t === "object" && typeof t.unref === "function") t.unref();
  return t;
}

function num(v, dflt, min = 0) {
  return typeof v === "number" && Number.isFinite(v) && v >= min ? v : dflt;
}

function iso(t) {
  if (t === undefined || t === null) return new Date().toISOString();
  if (t instanceof Date) return t.toISOString();
  if (typeof t === "number") return new Date(t).toISOString();
  return t;
}

function errorMessage(e) {
  try {
    if (e && typeof e === "object" && "message" in e) return String(e.message).slice(0, 2000);
    return String(e).slice(0, 2000);
  } catch {
    return "unprintable error";
  }
}

/** Sets `out[key]` when `v` is neither undefined nor null. */
function put(out, key, v) {
  if (v !== undefined && v !== null) out[key] = v;
}

/** The fields a helper does not know, passed through as they are (kept as payload by lookoutd). */
function rest(fields, known) {
  const out = {};
  if (fields && typeof fields === "object") {
    for (const k of Object.keys(fields)) if (!known.includes(k)) out[k] = fields[k];
  }
  return out;
}

// One `exit` listener for every client with a file spool: what is still in memory at a normal
// exit (process.exit, the loop running dry) is written to the spool, to be replayed by the next
// client. A SIGKILL loses only what was in memory since the last spool write.
const liveClients = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled || !hasProcess || typeof globalThis.process.on !== "function") return;
  exitHookInstalled = true;
  globalThis.process.on("exit", () => {
    for (const c of liveClients) c._spoolAtExit();
  });
}

// SIGTERM and SIGINT: where nothing else listens (the signal would kill the process on the spot,
// before any `exit` listener), the clients close first — active runs reported interrupted, a
// flush bounded by `exitTimeout`, the rest spooled — and the signal is raised again, so the
// process ends as it would have. Where the host listens too, it decides: the clients only spool
// what is in memory.
const signalClients = new Set();
let signalHooksInstalled = false;
function installSignalHooks() {
  if (signalHooksInstalled) return;
  signalHooksInstalled = true;
  const p = globalThis.process;
  if (!hasProcess || typeof p.on !== "function" || typeof p.listenerCount !== "function") return;
  for (const sig of ["SIGTERM", "SIGINT"]) {
    try {
      if (p.listenerCount(sig) > 0) continue;
      const handler = () => {
        if (p.listenerCount(sig) > 1) {
          for (const c of signalClients) c._spoolAtExit();
          return;
        }
        p.removeListener(sig, handler); // a second signal ends the process at once
        const closing = [...signalClients].map((c) => c._terminate(sig));
        Promise.allSettled(closing).then(() => p.kill(p.pid, sig));
      };
      p.on(sig, handler);
    } catch {
      // a runtime without signals
    }
  }
}

const noop = () => {};

/** Errors of a request that never reached a server. */
const NOT_CONNECTED = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function defaultOnError() {
  const last = new Map();
  return (category, message) => {
    const now = Date.now();
    if (now - (last.get(category) ?? -Infinity) < 60_000) return;
    last.set(category, now);
    try {
      console.warn(`lookout-client: ${message}`);
    } catch {
      // no console
    }
  };
}

/** A run in progress, given to the block of `Lookout.run`. */
export class Run {
  constructor(lk, id, signal) {
    this.id = id;
    this.signal = signal;
    this._lk = lk;
    this._progress = undefined;
    this._lastBeat = 0;
    this._finished = false;
  }

  /** Records progress (a step count, last tool call, token count…): carried by every heartbeat. */
  progress(progress, note) {
    try {
      if (this._finished) return;
      this._progress = progress;
      if (note !== undefined) this._note = note;
      // At most one extra heartbeat a second; later values ride on the periodic ones.
      if (Date.now() - this._lastBeat >= 1000) this.heartbeat();
    } catch {
      // never into the host
    }
  }

  /** Sends a heartbeat now, with the latest progress. */
  heartbeat(fields) {
    try {
      if (this._finished) return false;
      this._lastBeat = Date.now();
      const ev = { ...rest(fields, []), run_id: this.id };
      put(ev, "progress", this._progress);
      put(ev, "note", this._note);
      this._note = undefined;
      return this._lk.emit("run_heartbeat", ev);
    } catch {
      return false;
    }
  }

  _finish(outcome, error, note) {
    if (this._finished) return;
    this._finished = true;
    const ev = { run_id: this.id, outcome };
    put(ev, "progress", this._progress);
    if (error !== undefined) ev.error = error;
    if (note !== undefined) ev.note = note;
    this._lk.emit("run_finished", ev);
  }
}

/** The client. One per process (or per Worker isolate) is the intent. */
export class Lookout {
  constructor(options = {}) {
    let o = {};
    try {
      if (options && typeof options === "object") o = { ...options }; // a throwing getter or proxy: defaults
    } catch {
      o = {};
    }
    this._onError = typeof o.onError === "function" ? safe(o.onError) : o.onError === null ? noop : defaultOnError();
    const url = typeof o.url === "string" && o.url !== "" ? o.url : env("LOOKOUT_URL") ?? DEFAULT_URL;
    this.url = url.replace(/\/+$/, "");
    this._urlError = null;
    try {
      const u = new URL(this.url);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`unsupported protocol ${u.protocol}`);
    } catch (e) {
      this._urlError = `the lookoutd URL ${JSON.stringify(this.url)} is not usable (${errorMessage(e)})`;
    }
    this._token = typeof o.token === "string" ? o.token : env("LOOKOUT_TOKEN");
    this.heartbeatInterval = num(o.heartbeatInterval, 60_000, 10);
    this.flushInterval = num(o.flushInterval, 500, 0);
    this.maxBatch = Math.max(1, Math.floor(num(o.maxBatch, 500, 1)));
    this.maxBatchBytes = num(o.maxBatchBytes, 512 * 1024, 1024);
    this.maxQueue = Math.max(1, Math.floor(num(o.maxQueue, 10_000, 1)));
    this.maxEventBytes = num(o.maxEventBytes, 256 * 1024, 256);
    this.requestTimeout = num(o.requestTimeout, 10_000, 1);
    this.retryInitial = num(o.retryInitial, 500, 1);
    this.retryMax = Math.max(this.retryInitial, num(o.retryMax, 10_000, 1));
    this._fetch = typeof o.fetch === "function" ? o.fetch : globalThis.fetch?.bind(globalThis);

    this._seq = 0;
    this._queue = [];
    this._qHead = 0;
    this._inflight = null;
    this._timer = null;
    this._timerAt = Infinity;
    this._pumping = false;
    this._pumpBeat = 0;
    this._gen = 0;
    this._again = false;
    this._nextAttempt = 0;
    this._backoff = 0;
    this._state = "unknown";
    this._closed = false;
    this._waiters = [];
    this._runs = new Set();
    this._beats = new Set();
    this._stats = {
      emitted: 0,
      sent: 0,
      rejected: 0,
      invalid: 0,
      droppedQueueFull: 0,
      droppedAfterClose: 0,
      failedAttempts: 0,
      warnings: 0,
      lastError: null,
      lastRejection: null,
      lastWarning: null,
    };

    const spoolDir =
      typeof o.spoolDir === "string" && o.spoolDir !== "" ? o.spoolDir : o.spoolDir === null ? null : env("LOOKOUT_SPOOL_DIR") ?? null;
    this._spoolFsync = o.spoolFsync !== false;
    this.bootTimeout = num(o.bootTimeout, 2_000, 1);
    this.exitTimeout = num(o.exitTimeout, 2_000, 0);
    // A backlog this long while a request is in flight goes to the spool instead of waiting to be
    // dropped at maxQueue (lookoutd up, but slower than the host).
    this._spillAt = Math.max(this.maxBatch * 2, Math.floor(this.maxQueue / 2));
    this._spillTimer = null;
    const maxSpool = num(o.maxSpoolBytes, spoolDir ? 16 * MiB : 4 * MiB, 1);
    this._spool = new MemorySpool(maxSpool);
    this._ready = spoolDir ? this._openFileSpool(spoolDir, maxSpool) : Promise.resolve();
    if (o.handleSignals !== false) {
      signalClients.add(this);
      installSignalHooks();
    }
    if (this._urlError) this._error("config", this._urlError);
  }

  /**
   * Opens the spool on disk: at once where the runtime lends `node:fs` synchronously (Node >= 20.16
   * has `process.getBuiltinModule`), so even an exit right after the constructor spools what was
   * emitted; else after a dynamic import. Resolves once spools left by dead clients are adopted.
   */
  _openFileSpool(dir, maxBytes) {
    try {
      const builtin = hasProcess ? globalThis.process.getBuiltinModule : undefined;
      if (typeof builtin === "function") {
        const fs = builtin("node:fs");
        const path = builtin("node:path");
        if (fs && path) return this._useFileSpool(fs, path, dir, maxBytes);
      }
    } catch {
      // fall through to the import
    }
    // Specifiers in variables: a bundler for a runtime with no disk (wrangler, esbuild) must not
    // try to resolve node:fs, which is only reached when a spoolDir is given.
    const specs = ["node:fs", "node:path"];
    return Promise.all(specs.map((s) => import(/* webpackIgnore: true */ /* @vite-ignore */ s))).then(
      ([fs, path]) => this._useFileSpool(fs.default ?? fs, path.default ?? path, dir, maxBytes),
      (e) => this._error("spool", `no spool on disk (${errorMessage(e)}); events wait in memory instead`),
    );
  }

  _useFileSpool(fs, path, dir, maxBytes) {
    let spool;
    try {
      spool = new FileSpool({
        dir,
        maxBytes,
        fs,
        path,
        pid: hasProcess ? globalThis.process.pid : 0,
        fsync: this._spoolFsync,
        onError: (c, m) => this._error(c, m),
      });
    } catch (e) {
      this._error("spool", `no spool on disk in ${dir} (${errorMessage(e)}); events wait in memory instead`);
      return Promise.resolve();
    }
    if (this._closed) {
      spool.close();
      return Promise.resolve();
    }
    // Whatever reached the memory spool in the meantime goes first: it is older.
    const early = this._spool.peek(Infinity, Infinity);
    if (early.length === 0 || spool.append(early)) {
      spool.dropped += this._spool.dropped;
      this._spool = spool;
    }
    liveClients.add(this);
    installExitHook();
    return spool.adopt().then(
      (adopted) => {
        if (adopted > 0) this._wake(0);
      },
      (e) => this._error("spool", `cannot adopt spools left by earlier clients: ${errorMessage(e)}`),
    );
  }

  // ---------------------------------------------------------------- emit

  /**
   * Queues one event `{kind, ...fields}` with `at` (now) and an `idempotency_key` unless given.
   * Returns at once, never throws; false when the event was not queued (invalid, client closed).
   */
  emit(kind, fields) {
    try {
      this._stats.emitted++;
      if (this._closed) {
        this._stats.droppedAfterClose++;
        return false;
      }
      if (typeof kind !== "string" || kind === "") return this._invalid(`an event kind must be a non-empty string, got ${typeof kind}`);
      if (fields !== undefined && fields !== null && (typeof fields !== "object" || Array.isArray(fields))) {
        return this._invalid(`the fields of a ${kind} event must be an object, got ${Array.isArray(fields) ? "an array" : typeof fields}`);
      }
      const ev = { kind };
      if (fields) Object.assign(ev, fields);
      ev.kind = kind;
      if (ev.at === undefined || ev.at === null) ev.at = new Date().toISOString();
      if (ev.idempotency_key === undefined || ev.idempotency_key === null) ev.idempotency_key = uuid();
      const json = JSON.stringify(ev);
      if (typeof json !== "string") return this._invalid(`a ${kind} event cannot be written as JSON`);
      if (json.length > this.maxEventBytes) {
        return this._invalid(`a ${kind} event of ${json.length} bytes is larger than maxEventBytes (${this.maxEventBytes})`);
      }
      const item = { seq: ++this._seq, json, bytes: json.length + 1, done: false };
      this._queue.push(item);
      const n = this._queue.length - this._qHead;
      if (n > this.maxQueue) {
        this._queue[this._qHead++] = undefined;
        this._stats.droppedQueueFull++;
        this._compactQueue();
      } else if (n >= this._spillAt && this._pumping && this._spillTimer === null) {
        this._spillTimer = unref(setTimeout(() => this._spill(), 0));
      }
      this._wakeSoon();
      return true;
    } catch (e) {
      try {
        return this._invalid(`cannot queue a ${String(kind)} event: ${errorMessage(e)}`);
      } catch {
        return false;
      }
    }
  }

  _invalid(message) {
    this._stats.invalid++;
    this._stats.lastError = message;
    this._error("invalid", message);
    return false;
  }

  _error(category, message) {
    this._stats.lastError = message;
    this._onError(category, message);
  }

  // ---------------------------------------------------------------- typed helpers

  channelConnected(f) {
    return this._typed("channel_connected", f, (o) => (put(o, "channel", f.channel), put(o, "reason", f.reason)), ["channel", "reason"]);
  }

  channelDisconnected(f) {
    return this._typed("channel_disconnected", f, (o) => (put(o, "channel", f.channel), put(o, "reason", f.reason)), ["channel", "reason"]);
  }

  messageReceived(f) {
    return this._typed(
      "message_received",
      f,
      (o) => {
        put(o, "channel", f.channel);
        put(o, "chat_jid", f.chatJid);
        put(o, "message_id", f.messageId);
        o.timestamp = iso(f.timestamp);
        put(o, "sender", f.sender);
        put(o, "group", f.group);
      },
      ["channel", "chatJid", "messageId", "timestamp", "sender", "group"],
    );
  }

  messagesRecovered(f) {
    return this._typed(
      "messages_recovered",
      f,
      (o) => {
        put(o, "channel", f.channel);
        put(o, "message_ids", f.messageIds);
        put(o, "chat_jid", f.chatJid);
        put(o, "group", f.group);
      },
      ["channel", "messageIds", "chatJid", "group"],
    );
  }

  batchDispatched(f) {
    return this._typed(
      "batch_dispatched",
      f,
      (o) => {
        put(o, "chat_jid", f.chatJid);
        put(o, "message_ids", f.messageIds);
        put(o, "run_id", f.runId);
        put(o, "group", f.group);
      },
      ["chatJid", "messageIds", "runId", "group"],
    );
  }

  botResponse(f) {
    return this._typed(
      "bot_response",
      f,
      (o) => {
        put(o, "chat_jid", f.chatJid);
        o.timestamp = iso(f.timestamp);
        put(o, "run_id", f.runId);
        put(o, "message_id", f.messageId);
        put(o, "channel", f.channel);
      },
      ["chatJid", "timestamp", "runId", "messageId", "channel"],
    );
  }

  deliveryQueued(f) {
    return this._delivery("delivery_queued", f);
  }

  deliverySent(f) {
    return this._delivery("delivery_sent", f);
  }

  deliveryFailed(f) {
    return this._delivery("delivery_failed", f);
  }

  /** The channel confirmed the delivery reached the chat (a read or delivery receipt). */
  deliveryConfirmed(f) {
    return this._delivery("delivery_confirmed", f);
  }

  _delivery(kind, f) {
    return this._typed(
      kind,
      f,
      (o) => {
        put(o, "delivery_id", f.deliveryId);
        put(o, "chat_jid", f.chatJid);
        put(o, "error", f.error);
        put(o, "channel", f.channel);
      },
      ["deliveryId", "chatJid", "error", "channel"],
    );
  }

  runStarted(f) {
    return this._typed(
      "run_started",
      f,
      (o) => {
        put(o, "run_id", f.runId);
        put(o, "group", f.group);
        put(o, "run_kind", f.kind);
        put(o, "task", f.task);
        put(o, "container", f.container);
        put(o, "pid", f.pid);
        put(o, "heartbeats", f.heartbeats);
      },
      ["runId", "group", "kind", "task", "container", "pid", "heartbeats"],
    );
  }

  runHeartbeat(f) {
    return this._typed(
      "run_heartbeat",
      f,
      (o) => {
        put(o, "run_id", f.runId);
        put(o, "progress", f.progress);
        put(o, "note", f.note);
      },
      ["runId", "progress", "note"],
    );
  }

  runFinished(f) {
    return this._typed(
      "run_finished",
      f,
      (o) => {
        put(o, "run_id", f.runId);
        put(o, "outcome", f.outcome);
        put(o, "error", f.error);
        put(o, "note", f.note);
        put(o, "progress", f.progress);
      },
      ["runId", "outcome", "error", "note", "progress"],
    );
  }

  containerStatus(f) {
    return this._typed("container_status", f, (o) => (put(o, "container", f.container), put(o, "status", f.status)), ["container", "status"]);
  }

  heartbeat(f) {
    return this._typed("heartbeat", f, (o) => (put(o, "target", f.target), put(o, "sha", f.sha)), ["target", "sha"]);
  }

  versionStamp(f) {
    return this._typed("version_stamp", f, (o) => (put(o, "target", f.target), put(o, "sha", f.sha)), ["target", "sha"]);
  }

  deploy(f) {
    return this._typed("deploy", f, (o) => (put(o, "sha", f.sha), put(o, "commit_message", f.commitMessage)), ["sha", "commitMessage"]);
  }

  taskScheduled(f) {
    return this._typed(
      "task_scheduled",
      f,
      (o) => {
        put(o, "task", f.task);
        if (f.nextRun !== undefined && f.nextRun !== null) o.next_run = iso(f.nextRun);
        put(o, "group", f.group);
        put(o, "grace_secs", f.graceSecs);
      },
      ["task", "nextRun", "group", "graceSecs"],
    );
  }

  _typed(kind, f, fill, known) {
    try {
      if (!f || typeof f !== "object") return this._invalid(`${kind}: expected an object of fields, got ${f === null ? "null" : typeof f}`);
      const o = rest(f, known);
      fill(o);
      return this.emit(kind, o);
    } catch (e) {
      return this._invalid(`${kind}: ${errorMessage(e)}`);
    }
  }

  /**
   * Sends a `heartbeat` for `target` now and every `interval` ms (default: heartbeatInterval)
   * from a timer of its own that does not keep the process alive. Returns `{stop()}`.
   */
  startHeartbeat(f) {
    const handle = { stop: noop };
    try {
      if (!f || typeof f !== "object") {
        this._invalid("startHeartbeat: expected {target, sha?, interval?}");
        return handle;
      }
      const { interval, ...fields } = f;
      const beat = () => this.heartbeat(fields);
      beat();
      const t = unref(setInterval(beat, num(interval, this.heartbeatInterval, 10)));
      handle.stop = () => {
        clearInterval(t);
        this._beats.delete(handle);
      };
      this._beats.add(handle);
    } catch (e) {
      this._invalid(`startHeartbeat: ${errorMessage(e)}`);
    }
    return handle;
  }

  // ---------------------------------------------------------------- runs

  /**
   * Runs `fn` as one run: run_started, a run_heartbeat every heartbeatInterval while it runs
   * (with the latest `run.progress(...)`), and run_finished with outcome success, failed (the
   * error's message) or interrupted (`signal` aborted, or an error named AbortError). Resolves
   * with fn's value; rejects with fn's error.
   */
  async run(opts, fn) {
    const o = opts && typeof opts === "object" ? opts : {};
    const runId = typeof o.runId === "string" && o.runId !== "" ? o.runId : uuid();
    const signal = o.signal;
    const run = new Run(this, runId, signal);
    let timer = null;
    try {
      const { runId: _r, signal: _s, heartbeatInterval, ...fields } = o;
      this.runStarted({ ...fields, runId });
      const every = num(heartbeatInterval, this.heartbeatInterval, 10);
      timer = unref(setInterval(() => run.heartbeat(), every));
      this._runs.add(run);
    } catch (e) {
      this._invalid(`run: ${errorMessage(e)}`);
    }
    try {
      const value = await fn(run);
      run._finish("success");
      return value;
    } catch (e) {
      let aborted = false;
      try {
        aborted = (signal && signal.aborted === true) || (e && e.name === "AbortError");
      } catch {
        aborted = false;
      }
      run._finish(aborted ? "interrupted" : "failed", errorMessage(e));
      throw e;
    } finally {
      if (timer !== null) clearInterval(timer);
      this._runs.delete(run);
    }
  }

  // ---------------------------------------------------------------- boot

  /** `POST /api/boot/begin`: resolves with lookoutd's answer, or null (never rejects). */
  bootBegin(f) {
    const o = f && typeof f === "object" ? f : {};
    const body = { service: o.service };
    put(body, "version", o.version);
    const pid = o.pid ?? (hasProcess ? globalThis.process.pid : undefined);
    put(body, "pid", pid);
    return this._boot("/api/boot/begin", body, () => this.emit("boot_started", { ...body }));
  }

  /** `POST /api/boot/ready`: resolves with the boot report (its `message` says what was recovered from), or null. */
  bootReady(f) {
    const o = f && typeof f === "object" ? f : {};
    return this._boot("/api/boot/ready", { service: o.service }, () => this.emit("boot_ready", { service: o.service }));
  }

  /** `POST /api/boot/fail`: the current start of `service` failed with `cause`. Resolves with the answer, or null. */
  bootFail(f) {
    const o = f && typeof f === "object" ? f : {};
    return this._boot("/api/boot/fail", { service: o.service, cause: o.cause }, null);
  }

  async _boot(path, body, fallback) {
    try {
      if (typeof body.service !== "string" || body.service === "") {
        this._invalid(`${path}: service must be a non-empty string`);
        return null;
      }
      if (path.endsWith("/fail") && (typeof body.cause !== "string" || body.cause.trim() === "")) {
        this._invalid(`${path}: cause must be a non-empty string`);
        return null;
      }
      // lookoutd must see what was emitted before in order: send it first (bounded). Known to be
      // down: no call, the fallback event queues behind the rest.
      if (this._state === "down" && fallback) {
        fallback();
        return null;
      }
      if (this._oldestPending() <= this._seq) await this.flush(this.bootTimeout);
      const r = await this._request(path, JSON.stringify(body), this.bootTimeout);
      if (r.ok) return r.body ?? {};
      if (r.status === 400 || r.status === 413 || r.status === 422) {
        this._stats.rejected++;
        this._stats.lastRejection = r.message;
        this._error("rejected", `lookoutd refused ${path}: ${r.message}`);
        return null;
      }
      // Never reached lookoutd: the same fact as an event, spooled and replayed with the rest. A
      // call that may have reached it (a timeout, a reset) is not repeated as an event: a begin
      // recorded twice would count a failed start that never happened.
      const again = fallback !== null && r.unsent && !this._closed;
      if (again) fallback();
      this._error("down", `${path}: ${r.message}${again ? "; sent as an event instead" : ""}`);
      return null;
    } catch (e) {
      this._error("boot", `${path}: ${errorMessage(e)}`);
      return null;
    }
  }

  // ---------------------------------------------------------------- flush, close, stats

  /**
   * Resolves true once every event emitted before the call has been delivered to lookoutd (or
   * refused by it), false if that has not happened within `timeoutMs` (default 5000). Never rejects.
   */
  flush(timeoutMs = 5000) {
    try {
      const target = this._seq;
      if (this._oldestPending() > target) {
        // Nothing of ours is waiting; a file spool still being opened may hold older events.
        return this._ready.then(() => this._flushWait(target, timeoutMs));
      }
      return this._flushWait(target, timeoutMs);
    } catch {
      return Promise.resolve(false);
    }
  }

  _flushWait(target, timeoutMs) {
    if (this._oldestPending() > target) return Promise.resolve(true);
    if (this._closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = { target, resolve, timer: null };
      // Not unref'd: the host asked to wait this long, and a script's last `await lk.flush()`
      // must not end with the promise unsettled.
      w.timer = setTimeout(() => this._settleWaiter(w, false), num(timeoutMs, 5000, 0));
      this._waiters.push(w);
      // Try now, whatever the backoff said.
      this._nextAttempt = 0;
      this._backoff = 0;
      this._wake(0);
    });
  }

  _settleWaiter(w, ok) {
    const i = this._waiters.indexOf(w);
    if (i === -1) return;
    this._waiters.splice(i, 1);
    clearTimeout(w.timer);
    w.resolve(ok);
  }

  _checkWaiters() {
    if (this._waiters.length === 0) return;
    const oldest = this._oldestPending();
    for (const w of [...this._waiters]) if (oldest > w.target) this._settleWaiter(w, true);
  }

  /** The local seq of the oldest event not yet delivered nor refused (Infinity: none). */
  _oldestPending() {
    if (this._inflight) {
      for (const it of this._inflight) if (!it.done) return it.seq;
    }
    const s = this._spool.oldestSeq();
    if (s !== Infinity) return s;
    if (this._queue.length > this._qHead) return this._queue[this._qHead].seq;
    return Infinity;
  }

  /**
   * Stops the client: active runs are reported interrupted, heartbeats stop, what can be sent
   * within `timeoutMs` is sent, and the rest stays in the spool on disk for the next client.
   * Resolves like `flush`.
   */
  async close(timeoutMs = 5000) {
    if (this._closing) return this._closing;
    this._closing = (async () => {
      try {
        for (const run of [...this._runs]) run._finish("interrupted", undefined, "the Lookout client was closed while the run was active");
        for (const b of [...this._beats]) b.stop();
        const ok = await this.flush(timeoutMs);
        this._closed = true;
        if (this._timer !== null) clearTimeout(this._timer);
        this._timer = null;
        await this._ready;
        this._spoolAtExit();
        this._spool.close();
        liveClients.delete(this);
        signalClients.delete(this);
        for (const w of [...this._waiters]) this._settleWaiter(w, false);
        return ok;
      } catch (e) {
        this._closed = true;
        this._error("close", errorMessage(e));
        return false;
      }
    })();
    return this._closing;
  }

  /** A signal is ending the process: runs end interrupted (note: the signal), then close. */
  _terminate(sig) {
    for (const run of [...this._runs]) run._finish("interrupted", undefined, sig);
    return this.close(this.exitTimeout);
  }

  /** Writes what is in memory to the file spool, synchronously (at exit, at close). */
  _spoolAtExit() {
    try {
      if (this._spool.kind !== "file") return;
      const items = [];
      if (this._inflight) for (const it of this._inflight) if (!it.done) items.push(it);
      for (let i = this._qHead; i < this._queue.length; i++) items.push(this._queue[i]);
      if (items.length && this._spool.append(items)) {
        this._queue = [];
        this._qHead = 0;
        if (this._inflight) this._inflight = null;
      }
    } catch {
      // exiting anyway
    }
  }

  /** Counters and state, a snapshot. */
  stats() {
    const s = this._spool;
    const dropped =
      this._stats.droppedQueueFull + s.dropped + this._stats.rejected + this._stats.invalid + this._stats.droppedAfterClose;
    return {
      ...this._stats,
      state: this._state,
      url: this.url,
      queued: this._queue.length - this._qHead + (this._inflight ? this._inflight.filter((i) => !i.done).length : 0),
      spooled: s.count,
      spoolBytes: s.bytes,
      spoolKind: s.kind,
      droppedSpoolFull: s.dropped,
      dropped,
    };
  }

  // ---------------------------------------------------------------- the pump

  _compactQueue() {
    if (this._qHead > 1024 && this._qHead * 2 > this._queue.length) {
      this._queue = this._queue.slice(this._qHead);
      this._qHead = 0;
    }
  }

  _wakeSoon() {
    const full = this._queue.length - this._qHead >= this.maxBatch;
    this._wake(full ? 0 : this.flushInterval);
  }

  _wake(delay) {
    if (this._closed || !(delay < 2 ** 31 - 1)) return;
    const at = Date.now() + delay;
    if (this._timer !== null) {
      if (this._timerAt <= at) return;
      clearTimeout(this._timer);
    }
    this._timerAt = at;
    this._timer = unref(
      setTimeout(() => {
        this._timer = null;
        this._timerAt = Infinity;
        this._kick();
      }, delay),
    );
  }

  _kick() {
    if (this._pumping) {
      const stuckAt = this._pumpBeat + this.requestTimeout * 2 + 1_000;
      if (Date.now() <= stuckAt) {
        this._again = true;
        this._wake(stuckAt - Date.now() + 1); // look again then
        return;
      }
      this._abandonPump();
    }
    this._pumping = true;
    this._pumpBeat = Date.now();
    const gen = this._gen;
    (async () => {
      try {
        do {
          this._again = false;
          await this._pumpOnce(gen);
        } while (this._again && !this._closed && gen === this._gen);
      } catch (e) {
        this._error("internal", `the sender stumbled: ${errorMessage(e)}`);
        if (gen === this._gen) this._down(); // back off: never spin on a fault
      } finally {
        if (gen === this._gen) {
          this._pumping = false;
          this._checkWaiters();
          this._reschedule();
        }
      }
    })();
  }

  /**
   * A request that never settles, even past its timeout (a runtime that dropped it: a Workers
   * request context that ended): that sender is left behind, and a new one takes over. Its
   * in-flight events go back to the queue; sent twice, their keys keep them single.
   */
  _abandonPump() {
    this._gen++;
    this._error("stuck", `a request to lookoutd has not settled for ${Date.now() - this._pumpBeat} ms; sending anew`);
    if (this._inflight) {
      const back = this._inflight.filter((it) => !it.done);
      this._queue = back.concat(this._queue.slice(this._qHead));
      this._qHead = 0;
      this._inflight = null;
    }
    this._pumping = false;
  }

  _reschedule() {
    if (this._closed) return;
    const queued = this._queue.length > this._qHead;
    const spooled = this._spool.count > 0;
    if (!queued && !spooled) return;
    const now = Date.now();
    if (now < this._nextAttempt) {
      // Down: memory goes to the spool each flushInterval, the next try waits for the backoff.
      this._wake(queued ? this.flushInterval : this._nextAttempt - now);
    } else {
      this._wake(queued && !spooled ? this.flushInterval : 0);
    }
  }

  _takeQueue(maxItems, maxBytes) {
    const out = [];
    let bytes = 0;
    while (this._qHead < this._queue.length && out.length < maxItems) {
      const it = this._queue[this._qHead];
      if (out.length > 0 && bytes + it.bytes > maxBytes) break;
      out.push(it);
      bytes += it.bytes;
      this._queue[this._qHead++] = undefined;
    }
    this._compactQueue();
    return out;
  }

  /** A request is in flight and the queue grows: the backlog waits in the spool, behind it. */
  _spill() {
    this._spillTimer = null;
    try {
      if (!this._closed && this._pumping && this._queue.length - this._qHead >= this._spillAt) {
        this._queueToSpool();
        this._again = true;
      }
    } catch (e) {
      this._error("spool", errorMessage(e));
    }
  }

  /** Memory to the spool: keeps order behind what is spooled, and survives a kill (file). */
  _queueToSpool() {
    if (this._queue.length === this._qHead) return;
    const items = this._queue.slice(this._qHead);
    if (this._spool.append(items)) {
      this._queue = [];
      this._qHead = 0;
    }
  }

  _putBackOrSpool(items) {
    if (items.length === 0) return;
    if (!this._spool.append(items)) {
      // The disk refused: keep them at the front of the queue (the queue's bound still holds).
      this._queue = items.concat(this._queue.slice(this._qHead));
      this._qHead = 0;
      while (this._queue.length - this._qHead > this.maxQueue) {
        this._queue[this._qHead++] = undefined;
        this._stats.droppedQueueFull++;
      }
      this._compactQueue();
    }
  }

  async _pumpOnce(gen) {
    await this._ready;
    if (this._closed || gen !== this._gen) return;
    const spool = this._spool;
    if (this._urlError) {
      // Nowhere to send: hold what came, within the spool's bound, for flush to report false.
      this._queueToSpool();
      this._state = "down";
      this._nextAttempt = Infinity;
      return;
    }
    if (spool.count > 0 || Date.now() < this._nextAttempt) {
      this._queueToSpool();
      if (Date.now() < this._nextAttempt) return;
      while (spool.count > 0) {
        const items = await spool.peek(this.maxBatch, this.maxBatchBytes);
        if (this._closed || gen !== this._gen) return;
        if (items.length === 0) return this._down(); // an unreadable spool: do not spin on it
        const all = await this._deliver(items);
        if (gen !== this._gen) return;
        let n = 0;
        while (n < items.length && items[n].done) n++;
        spool.ack(n, items);
        this._checkWaiters();
        if (!all) return this._down();
        if (this._closed) return;
        this._up();
        if (spool.count > 0) this._queueToSpool();
      }
      // The spool ran dry: a client that died meanwhile may have left one to adopt.
      if (spool.kind === "file") await spool.adopt();
      if (gen !== this._gen) return;
      if (spool.count > 0) {
        this._again = true;
        return;
      }
    }
    // Memory goes straight out only while nothing is spooled (a spill may have put the older part
    // of the queue there meanwhile: then the spool goes first, on the next turn).
    while (this._queue.length > this._qHead && spool.count === 0 && !this._closed) {
      const batch = this._takeQueue(this.maxBatch, this.maxBatchBytes);
      this._inflight = batch;
      const all = await this._deliver(batch);
      if (gen !== this._gen) return;
      this._inflight = null;
      if (!all) {
        this._putBackOrSpool(batch.filter((it) => !it.done));
        this._queueToSpool();
        this._checkWaiters();
        return this._down();
      }
      this._up();
      this._checkWaiters();
    }
  }

  _up() {
    if (this._state === "down") this._onError("up", `lookoutd at ${this.url} answers again; replaying what waited`);
    this._state = "up";
    this._backoff = 0;
    this._nextAttempt = 0;
  }

  _down() {
    this._state = "down";
    this._stats.failedAttempts++;
    this._backoff = this._backoff ? Math.min(this._backoff * 2, this.retryMax) : this.retryInitial;
    this._nextAttempt = Date.now() + this._backoff * (0.8 + Math.random() * 0.4);
  }

  /**
   * Sends `items` in order. Marks each delivered or refused item `done`; returns true when all
   * are done, false when lookoutd could not be reached (then the undone ones are still to send).
   * A 400 names the bad event: it is dropped (counted, reported) and the others are sent again.
   */
  async _deliver(items) {
    let pending = items.filter((it) => !it.done);
    while (pending.length > 0) {
      if (this._closed) return false;
      const r = await this._request("/api/events", "[" + pending.map((it) => it.json).join(",") + "]");
      if (r.ok) {
        for (const it of pending) it.done = true;
        this._stats.sent += pending.length;
        const w = r.body && Array.isArray(r.body.warnings) ? r.body.warnings : [];
        if (w.length) {
          this._stats.warnings += w.length;
          this._stats.lastWarning = String(w[w.length - 1]);
        }
        return true;
      }
      if (r.status === 400 || r.status === 413) {
        const idx = r.body && Number.isInteger(r.body.index) ? r.body.index : -1;
        if (r.status === 400 && idx >= 0 && idx < pending.length) {
          this._reject(pending[idx], r.message);
          pending = pending.filter((_, i) => i !== idx);
          continue;
        }
        if (pending.length === 1) {
          this._reject(pending[0], r.message);
          return true;
        }
        // Which one is not said (or the batch is too large): halves, in order.
        const mid = Math.ceil(pending.length / 2);
        if (!(await this._deliver(pending.slice(0, mid)))) return false;
        return this._deliver(pending.slice(mid));
      }
      this._stats.lastError = r.message;
      if (this._state !== "down") this._onError("down", `lookoutd at ${this.url} cannot take events (${r.message}); spooling`);
      return false;
    }
    return true;
  }

  _reject(item, message) {
    item.done = true;
    this._stats.rejected++;
    const head = item.json.length > 300 ? item.json.slice(0, 300) + "…" : item.json;
    this._stats.lastRejection = `${message} — event ${head}`;
    this._error("rejected", `lookoutd refused an event (dropped; the others are kept): ${message}; event ${head}`);
  }

  /**
   * One request. Never throws: {ok, status, body, message, unsent}; `unsent` when lookoutd surely
   * did not act on it (no connection, or an answer that says so).
   */
  async _request(path, body, timeoutMs = this.requestTimeout) {
    if (this._urlError) return { ok: false, status: 0, body: null, message: this._urlError, unsent: true };
    if (!this._fetch) return { ok: false, status: 0, body: null, message: "no fetch in this runtime", unsent: true };
    this._pumpBeat = Date.now();
    const ac = typeof AbortController === "function" ? new AbortController() : null;
    const t = ac ? unref(setTimeout(() => ac.abort(), timeoutMs)) : null;
    try {
      const headers = { "content-type": "application/json" };
      if (this._token) headers.authorization = `Bearer ${this._token}`;
      const res = await this._fetch(this.url + path, { method: "POST", headers, body, signal: ac?.signal });
      const text = await res.text();
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      const message = res.ok ? "" : `HTTP ${res.status}: ${parsed && parsed.error ? parsed.error : text.slice(0, 300)}`;
      const unsent = [401, 403, 404, 405, 413, 503, 507].includes(res.status);
      return { ok: res.ok, status: res.status, body: parsed, message, unsent };
    } catch (e) {
      const aborted = ac?.signal.aborted;
      const cause = e && e.cause ? ` (${errorMessage(e.cause)})` : "";
      const code = e && e.cause && typeof e.cause === "object" ? e.cause.code : undefined;
      return {
        ok: false,
        status: 0,
        body: null,
        message: aborted ? `no answer within ${timeoutMs} ms` : `${errorMessage(e)}${cause}`,
        unsent: !aborted && (NOT_CONNECTED.has(code) || /bad port|invalid url/i.test(cause)),
      };
    } finally {
      if (t !== null) clearTimeout(t);
      this._pumpBeat = Date.now();
    }
  }
}

function safe(f) {
  return (...a) => {
    try {
      const r = f(...a);
      if (r && typeof r.catch === "function") r.catch(noop); // an async callback that rejects
    } catch {
      // a host's callback must not break the client
    }
  };
}

export default Lookout;
