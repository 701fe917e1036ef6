// Shared by the tests: a real lookoutd per test (fresh state directory, free port), read back
// through its own `GET /api/events`, and polling with deadlines instead of sleeps.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const clientDir = path.resolve(here, "..");
export const repoDir = path.resolve(clientDir, "..", "..");
export const bin = process.env.LOOKOUT_BIN || path.join(repoDir, "target", "debug", "lookoutd");

/** CI is set and not "false" or "0". */
export const inCI = (() => {
  const v = process.env.CI;
  return v !== undefined && v !== "" && v !== "false" && v !== "0";
})();

const haveBin = (() => {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

/**
 * Options for a test that needs lookoutd: skipped when the binary is missing on a workstation;
 * in CI a missing binary is a failure (the test runs and `Daemon.start` says why).
 */
export function needsLookoutd() {
  if (haveBin || inCI) return {};
  return { skip: `no lookoutd binary at ${bin} (build it, or set LOOKOUT_BIN)` };
}

const tmpDirs = [];
/** A fresh directory, removed when the test process exits (kept with LOOKOUT_KEEP_TMP=1). */
export function tmpDir(prefix = "lookout-ts-") {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Calls `fn` until it returns something truthy; throws with `what` and the last value at the deadline. */
export async function pollUntil(fn, { timeout = 30_000, interval = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${inspect(last)}`);
    }
    await sleep(interval);
  }
}

function inspect(v) {
  try {
    return v instanceof Error ? v.stack : JSON.stringify(v)?.slice(0, 600);
  } catch {
    return String(v);
  }
}

const running = new Set();
process.on("exit", () => {
  for (const d of running) d.child?.kill("SIGKILL");
  if (process.env.LOOKOUT_KEEP_TMP) return;
  for (const d of tmpDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      // left behind
    }
  }
});

/** One lookoutd: its state directory and port survive restarts. */
export class Daemon {
  constructor({ stateDir, port, token } = {}) {
    this.stateDir = stateDir ?? tmpDir("lookoutd-state-");
    this.port = port;
    this.token = token;
    this.child = null;
    this.logFile = path.join(this.stateDir, "lookoutd.log");
  }

  static async start(opts = {}) {
    const d = new Daemon(opts);
    if (d.port === undefined) d.port = await freePort();
    await d.start();
    return d;
  }

  /** A port with nothing listening, and the daemon that will listen there later. */
  static async notYet(opts = {}) {
    const d = new Daemon(opts);
    d.port = await freePort();
    return d;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!haveBin) {
      throw new Error(`no lookoutd binary at ${bin}: build it (cargo build -p lookoutd) or set LOOKOUT_BIN; in CI this fails instead of skipping`);
    }
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LOOKOUT_")) env[k] = v;
    if (this.token) env.LOOKOUT_TOKEN = this.token;
    env.RUST_LOG = env.RUST_LOG ?? "warn";
    const log = fs.openSync(this.logFile, "a");
    // A port another process took between freePort() and now makes lookoutd exit: start again
    // on the same port a few times (a test that restarts must keep its port).
    this.child = spawn(bin, ["--state-dir", this.stateDir, "--bind", `127.0.0.1:${this.port}`], {
      env,
      stdio: ["ignore", log, log],
    });
    fs.closeSync(log);
    const child = this.child;
    // Never what keeps a test process alive: the exit hook below ends any lookoutd still running.
    child.unref();
    running.add(this);
    let exited = null;
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      running.delete(this);
    });
    this.exited = new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", () => r())));
    await pollUntil(
      async () => {
        if (exited) throw new Error(`lookoutd exited (${JSON.stringify(exited)}): ${this.log().slice(-2000)}`);
        const r = await fetch(`${this.url}/health`);
        return r.ok;
      },
      { timeout: 60_000, what: `lookoutd on ${this.url} to answer /health` },
    ).catch((e) => {
      if (exited) throw new Error(`lookoutd exited (${JSON.stringify(exited)}): ${this.log().slice(-2000)}`);
      throw e;
    });
    return this;
  }

  log() {
    try {
      return fs.readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** Sends `signal` and waits (with a limit) for the process to end. */
  async kill(signal = "SIGKILL") {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    let timer;
    const ended = await Promise.race([
      this.exited.then(() => true),
      new Promise((r) => (timer = setTimeout(() => r(false), 15_000))),
    ]);
    clearTimeout(timer);
    if (!ended) {
      child.kill("SIGKILL");
      await this.exited;
    }
  }

  stop() {
    return this.kill("SIGTERM");
  }

  headers() {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** Every event of the log (of `kind`, if given), oldest first, following `next_after`. */
  async events(kind) {
    const out = [];
    let after = 0;
    for (;;) {
      const q = new URLSearchParams({ after: String(after), limit: "1000" });
      if (kind) q.set("kind", kind);
      const r = await fetch(`${this.url}/api/events?${q}`, { headers: this.headers() });
      if (!r.ok) throw new Error(`GET /api/events: ${r.status} ${await r.text()}`);
      const body = await r.json();
      out.push(...body.events);
      if (body.events.length === 0 || body.next_after === after) return out;
      after = body.next_after;
    }
  }

  /** Polls until `n` events of `kind` (matching `filter`) are in the log; returns them. */
  async waitEvents(kind, n, { filter = () => true, timeout = 60_000 } = {}) {
    return pollUntil(
      async () => {
        const evs = (await this.events(kind)).filter(filter);
        return evs.length >= n ? evs : null;
      },
      { timeout, interval: 100, what: `${n} ${kind} event(s) in lookoutd's log` },
    );
  }
}

/** Asserts that `events` carry payload.n = from, from+1, …, to - 1 exactly once each, in seq order. */
export function assertSequence(assert, events, from, to, label = "events") {
  const ns = events.map((e) => e.payload.n);
  const want = [];
  for (let i = from; i < to; i++) want.push(i);
  assert.deepStrictEqual(ns, want, `${label}: every n from ${from} to ${to - 1} exactly once, in order`);
  for (let i = 1; i < events.length; i++) assert.ok(events[i].seq > events[i - 1].seq);
}

/** A client option set for tests: quick batches and retries, silent. */
export function quick(extra = {}) {
  return { flushInterval: 20, retryInitial: 50, retryMax: 250, onError: null, token: "", ...extra };
}
