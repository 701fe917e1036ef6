#!/usr/bin/env node
// What one `emit` costs the host, with lookoutd up and with it down (events going to the spool on
// disk), and how fast batches move: sending live, and replaying a spool.
//
//   node bench/emit-cost.mjs [--events N]
//
// Uses the real lookoutd: LOOKOUT_BIN, else <repo>/target/debug/lookoutd (a release build is
// faster at ingest; the emit cost does not depend on it). Exits 1 if the p99 of one emit while
// lookoutd is down exceeds 1 ms.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { monitorEventLoopDelay } from "node:perf_hooks";

import { Lookout } from "../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..", "..");
const bin = process.env.LOOKOUT_BIN || path.join(repo, "target", "debug", "lookoutd");
const argN = process.argv.indexOf("--events");
const N = argN > 0 ? Number(process.argv[argN + 1]) : 50_000;
const CHUNK = 100; // emits between two turns of the event loop, as a busy host would
const LIMIT_MS = 1;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lookout-bench-"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startLookoutd(port, stateDir) {
  if (!fs.existsSync(bin)) {
    console.error(`no lookoutd at ${bin}: build it or set LOOKOUT_BIN`);
    process.exit(2);
  }
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LOOKOUT_")));
  const log = fs.openSync(path.join(tmp, `lookoutd-${port}.log`), "a");
  const child = spawn(bin, ["--state-dir", stateDir, "--bind", `127.0.0.1:${port}`], { env, stdio: ["ignore", log, log] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`lookoutd did not start on ${url}`);
    await sleep(50);
  }
  return { url, child };
}

async function countEvents(url) {
  let after = 0;
  let n = 0;
  for (;;) {
    const r = await (await fetch(`${url}/api/events?after=${after}&limit=1000&kind=message_received`)).json();
    n += r.events.length;
    if (r.events.length === 0) return n;
    after = r.next_after;
  }
}

function event(i) {
  return { channel: "slack", chatJid: `C0${i % 50}`, messageId: `m-${i}`, sender: "U024BE7LH", group: "main" };
}

/**
 * Emits n events in chunks of CHUNK, timing each emit alone; between chunks the event loop turns
 * (the client's sender runs there), after `pauseMs` when paced. Also returns the event loop's delay
 * meanwhile: what the sender's own work (requests, spool writes) cost the host.
 */
async function timeEmits(lk, n, offset = 0, pauseMs = 0) {
  const ns = new Float64Array(n);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  for (let i = 0; i < n; i++) {
    const e = event(offset + i);
    const t0 = process.hrtime.bigint();
    lk.messageReceived(e);
    ns[i] = Number(process.hrtime.bigint() - t0);
    if (i % CHUNK === CHUNK - 1) await (pauseMs ? sleep(pauseMs) : turn());
  }
  loop.disable();
  ns.loopP99 = loop.percentile(99);
  return ns;
}

function pct(ns, p) {
  const s = Float64Array.from(ns).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const us = (ns) => (ns / 1000).toFixed(2);
const ms = (ns) => (ns / 1e6).toFixed(1);
const rows = [];

// --- lookoutd up: paced (100 events every 40 ms, 2,500/s at most: under what a debug lookoutd
// ingests on one connection), then flooding (no pause: far more than it can take)
const upPort = await freePort();
const up = await startLookoutd(upPort, path.join(tmp, "state-up"));
{
  const lk = new Lookout({ url: up.url, onError: null });
  await timeEmits(lk, 2_000, 10_000_000, 40); // warm-up
  await lk.flush(60_000);
  const n = Math.min(N, 20_000);
  const ns = await timeEmits(lk, n, 0, 40);
  const ok = await lk.flush(120_000);
  const s = lk.stats();
  rows.push(["emit, lookoutd up (paced)", n, us(pct(ns, 50)), us(pct(ns, 99)), us(Math.max(...ns)), ms(ns.loopP99), `flushed=${ok} dropped=${s.dropped}`]);
  await lk.close();
}
{
  const lk = new Lookout({ url: up.url, onError: null });
  const ns = await timeEmits(lk, N, 50_000_000);
  const ok = await lk.flush(120_000);
  const s = lk.stats();
  rows.push(["emit, lookoutd up (flood)", N, us(pct(ns, 50)), us(pct(ns, 99)), us(Math.max(...ns)), ms(ns.loopP99), `flushed=${ok} sent=${s.sent} dropped=${s.dropped} (queue full ${s.droppedQueueFull}, memory spool full ${s.droppedSpoolFull})`]);
  await lk.close();
}

// --- lookoutd down: every batch goes to the spool on disk
const downPort = await freePort();
const spoolDir = path.join(tmp, "spool");
let downP99;
{
  const lk = new Lookout({ url: `http://127.0.0.1:${downPort}`, spoolDir, maxSpoolBytes: 256 * 1024 * 1024, onError: null });
  await timeEmits(lk, 2_000, 20_000_000); // warm-up (these are spooled too)
  const ns = await timeEmits(lk, N);
  const deadline = Date.now() + 30_000;
  while (lk.stats().queued > 0 && Date.now() < deadline) await sleep(20);
  const s = lk.stats();
  downP99 = pct(ns, 99);
  rows.push([
    "emit, lookoutd down (file spool)",
    N,
    us(pct(ns, 50)),
    us(downP99),
    us(Math.max(...ns)),
    ms(ns.loopP99),
    `spooled=${s.spooled} (${(s.spoolBytes / 1024 / 1024).toFixed(1)} MiB) dropped=${s.dropped}`,
  ]);
  await lk.close(10);
}
{
  const lk = new Lookout({ url: `http://127.0.0.1:${downPort}`, onError: null, maxSpoolBytes: 256 * 1024 * 1024 });
  const ns = await timeEmits(lk, N, 30_000_000);
  const s = lk.stats();
  rows.push(["emit, lookoutd down (memory spool)", N, us(pct(ns, 50)), us(pct(ns, 99)), us(Math.max(...ns)), ms(ns.loopP99), `spooled=${s.spooled} dropped=${s.dropped}`]);
  await lk.close(10);
}

// --- throughput: live batches, and the replay of the spool left above
const through = [];
{
  // The client's own ceiling: a stub that answers every batch at once without storing anything.
  const http = await import("node:http");
  const stub = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end('{"seqs":[]}'));
  });
  await new Promise((r) => stub.listen(0, "127.0.0.1", r));
  const lk = new Lookout({ url: `http://127.0.0.1:${stub.address().port}`, onError: null, maxQueue: 10_000_000 });
  const M = 4 * N;
  const t0 = performance.now();
  for (let i = 0; i < M; i++) {
    lk.messageReceived(event(60_000_000 + i));
    if (i % 1000 === 999) await turn();
  }
  const ok = await lk.flush(300_000);
  const secs = (performance.now() - t0) / 1000;
  through.push(["live: to a stub answering at once", M, secs.toFixed(2), Math.round(M / secs), `flushed=${ok} sent=${lk.stats().sent}`]);
  await lk.close();
  stub.close();
}
{
  // A queue large enough that nothing is dropped: how fast the pipeline delivers.
  const lk = new Lookout({ url: up.url, onError: null, maxQueue: 10_000_000 });
  const before = await countEvents(up.url);
  const M = N;
  const t0 = performance.now();
  for (let i = 0; i < M; i++) {
    lk.messageReceived(event(40_000_000 + i));
    if (i % 1000 === 999) await turn();
  }
  const ok = await lk.flush(300_000);
  const secs = (performance.now() - t0) / 1000;
  const arrived = (await countEvents(up.url)) - before;
  through.push(["live: to lookoutd, emit → acknowledged", M, secs.toFixed(2), Math.round(M / secs), `flushed=${ok} arrived=${arrived} dropped=${lk.stats().dropped}`]);
  await lk.close();
}
{
  const replayPort = await freePort();
  const d = await startLookoutd(replayPort, path.join(tmp, "state-replay"));
  const t0 = performance.now();
  const lk = new Lookout({ url: d.url, spoolDir, onError: null });
  const ok = await lk.flush(300_000);
  const secs = (performance.now() - t0) / 1000;
  const arrived = await countEvents(d.url);
  through.push(["replay of the spool on disk", arrived, secs.toFixed(2), Math.round(arrived / secs), `flushed=${ok} sent=${lk.stats().sent}`]);
  await lk.close();
  d.child.kill("SIGKILL");
}
up.child.kill("SIGKILL");

const table = (head, body) => {
  const all = [head, ...body].map((r) => r.map(String));
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  for (const [k, r] of all.entries()) {
    console.log(r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  "));
    if (k === 0) console.log(w.map((n) => "-".repeat(n)).join("  "));
  }
};
console.log(`node ${process.version}, ${os.cpus().length} cores, lookoutd ${bin}`);
console.log();
table(["one emit", "n", "median µs", "p99 µs", "max µs", "loop delay p99 ms", "after"], rows);
console.log();
table(["batches", "events", "seconds", "events/s", ""], through);
console.log();
fs.rmSync(tmp, { recursive: true, force: true });
if (downP99 / 1e6 > LIMIT_MS) {
  console.log(`FAIL: p99 of one emit while lookoutd is down is ${us(downP99)} µs, over ${LIMIT_MS} ms`);
  process.exit(1);
}
console.log(`ok: p99 of one emit while lookoutd is down is ${us(downP99)} µs (limit ${LIMIT_MS} ms)`);
