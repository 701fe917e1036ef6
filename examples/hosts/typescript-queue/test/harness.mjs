// The harness: a real lookoutd per test (short thresholds, a webhook sink pointed at a recorder run
// by the test) and miniclaw run as its own process, as in production.
//
// lookoutd is LOOKOUT_BIN, else <repo>/target/debug/lookoutd. In CI (CI set, not "false"/"0") a
// missing binary fails the tests; elsewhere they skip. Every wait polls until a deadline, generous
// for a loaded 2-core machine.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const hostDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const repoDir = path.resolve(hostDir, "..", "..", "..");
export const bin = process.env.LOOKOUT_BIN || path.join(repoDir, "target", "debug", "lookoutd");
export const HEARTBEAT_SECS = 1;
export const STALE_SECS = 3;

const START_DEADLINE = 60_000;
export const NOTE_DEADLINE = 30_000;

export const inCI = (() => {
  const v = (process.env.CI ?? "").trim().toLowerCase();
  return v !== "" && v !== "false" && v !== "0";
})();

/** node:test options: skip when lookoutd is missing, except in CI (where starting it fails). */
export function needsLookoutd() {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
    return {};
  } catch {
    return inCI ? {} : { skip: `no lookoutd at ${bin} (cargo build -p lookoutd, or set LOOKOUT_BIN)` };
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function pollUntil(fn, what, timeout = NOTE_DEADLINE, interval = 50) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout / 1000}s waiting for ${what}`);
    await sleep(interval);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), "miniclaw-test-"));
}

/** Records every notification lookoutd POSTs: the body plus `at` (ms, performance.now()). */
export class Hook {
  notes = [];

  async start() {
    this.server = http.createServer(async (req, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      const note = { ...JSON.parse(body), at: performance.now() };
      if (!this.notes.some((n) => n.id === note.id)) this.notes.push(note); // a retry is one message
      res.writeHead(200).end();
    });
    await new Promise((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${this.server.address().port}/hook`;
    this.t0 = performance.now();
    return this;
  }

  matching(pred) {
    return this.notes.filter(pred);
  }

  /** The first note matching `pred`, once there is one. */
  waitFor(pred, what, timeout = NOTE_DEADLINE) {
    return pollUntil(() => this.notes.find(pred), what, timeout);
  }

  /** What a person would have read, with when (seconds since the hook started). */
  transcript() {
    return this.notes
      .map((n) => `  ${((n.at - this.t0) / 1000).toFixed(2).padStart(6)}s [${n.group ?? "-"}] ${n.key}: ${n.text}`)
      .join("\n");
  }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export class Lookoutd {
  constructor(dir, hookUrl) {
    this.dir = path.join(dir, "lookoutd");
    this.hookUrl = hookUrl;
  }

  async start() {
    if (!fs.existsSync(bin)) throw new Error(`no lookoutd at ${bin} (cargo build -p lookoutd, or set LOOKOUT_BIN)`);
    fs.mkdirSync(this.dir, { recursive: true });
    const config = path.join(this.dir, "lookout.toml");
    fs.writeFileSync(
      config,
      `[thresholds]
heartbeat_interval = "${HEARTBEAT_SECS}s"
stale_processing = "${STALE_SECS}s"
stale_scan_interval = "1s"

[[notify.sinks]]
kind = "webhook"
url_env = "LOOKOUT_TEST_HOOK_URL"
`,
    );
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.logPath = path.join(this.dir, "lookoutd.log");
    const env = { ...process.env, LOOKOUT_TEST_HOOK_URL: this.hookUrl };
    for (const k of ["LOOKOUT_CONFIG", "LOOKOUT_TOKEN", "LOOKOUT_STATE_DIR", "LOOKOUT_BIND", "LOOKOUT_STORE_URL"]) delete env[k];
    const log = fs.openSync(this.logPath, "a");
    this.proc = spawn(bin, ["--config", config, "--state-dir", path.join(this.dir, "state"), "--bind", `127.0.0.1:${this.port}`], {
      cwd: this.dir,
      env,
      stdio: ["ignore", log, log],
    });
    fs.closeSync(log);
    this.exited = new Promise((r) => this.proc.once("exit", (code, sig) => r(code ?? sig)));
    await pollUntil(
      async () => {
        if (this.proc.exitCode !== null) throw new Error(`lookoutd exited (${this.proc.exitCode}):\n${this.logTail()}`);
        try {
          return (await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2000) })).ok;
        } catch {
          return false;
        }
      },
      "lookoutd to answer /health",
      START_DEADLINE,
    );
    return this;
  }

  /** The events of `kind` lookoutd has stored (the first 1000). */
  async events(kind) {
    const r = await fetch(`${this.url}/api/events?kind=${encodeURIComponent(kind)}&limit=1000`);
    if (!r.ok) throw new Error(`GET /api/events answered ${r.status}`);
    return (await r.json()).events;
  }

  logTail(n = 40) {
    try {
      return fs.readFileSync(this.logPath, "utf8").split("\n").slice(-n).join("\n");
    } catch {
      return "(no log)";
    }
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 30_000);
    await this.exited;
    clearTimeout(t);
  }
}

/** One miniclaw process (`node src/index.mjs --data DIR`), in its own process group. */
export class Host {
  constructor(dataDir, lookoutd) {
    this.dataDir = dataDir;
    this.lookoutd = lookoutd;
    this.output = "";
  }

  async start() {
    const env = {
      ...process.env,
      LOOKOUT_URL: this.lookoutd.url,
      LOOKOUT_HEARTBEAT_INTERVAL: String(HEARTBEAT_SECS),
      POLL_INTERVAL_MS: "100",
    };
    delete env.LOOKOUT_TOKEN;
    delete env.LOOKOUT_SPOOL_DIR;
    this.proc = spawn(process.execPath, [path.join(hostDir, "src", "index.mjs"), "--data", this.dataDir], {
      cwd: hostDir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: killing it takes its agent runs along
    });
    for (const s of [this.proc.stdout, this.proc.stderr]) {
      s.setEncoding("utf8");
      s.on("data", (d) => (this.output += d));
    }
    this.exited = new Promise((r) => this.proc.once("exit", (code, sig) => r(code ?? sig)));
    const m = await this.waitForLine(/listening on (http:\S+)/, 30_000);
    this.url = m[1];
    return this;
  }

  /** The first match of `re` in the host's output, once there. */
  waitForLine(re, timeout = NOTE_DEADLINE) {
    return pollUntil(() => {
      const m = this.output.match(re);
      if (!m && this.proc.exitCode !== null) throw new Error(`the host ended (${this.proc.exitCode}) without printing ${re}:\n${this.output}`);
      return m;
    }, `the host to print ${re}`, timeout);
  }

  /** Messages from people: `{chat_jid, id, text, sender?}`, or an array arriving together. */
  async send(messages) {
    const r = await fetch(`${this.url}/inbound`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(messages),
    });
    if (r.status !== 202) throw new Error(`inbound answered ${r.status}: ${await r.text()}`);
  }

  /** What the bot sent, [{chat_jid, text}]. */
  outbox() {
    try {
      return fs
        .readFileSync(path.join(this.dataDir, "outbox.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  }

  /** SIGKILL to the host and its agent runs (a crash, the OOM killer, a power cut). */
  async crash() {
    try {
      process.kill(-this.proc.pid, "SIGKILL");
    } catch {}
    await this.exited;
  }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.crash(), 20_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** A lookoutd with a hook, a data dir, and the hosts started in the test; `done()` cleans up. */
export async function setup(t) {
  const dir = tmpDir();
  const hook = await new Hook().start();
  const lookoutd = await new Lookoutd(dir, hook.url).start();
  const hosts = [];
  const dataDir = path.join(dir, "data");
  const env = {
    dir,
    hook,
    lookoutd,
    dataDir,
    async host() {
      const h = new Host(dataDir, lookoutd);
      hosts.push(h);
      return h.start();
    },
  };
  t.after(async () => {
    for (const h of hosts) await h.crash();
    await lookoutd.stop();
    await hook.close();
    console.log(`notifications of "${t.name}":\n${hook.transcript()}`);
    if (!process.env.KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  });
  return env;
}
