// While lookoutd cannot be reached, events wait in the spool and are replayed in order, each
// once: lookoutd down for a whole block, killed mid-request, a spool that fills up, and hosts that
// die or exit with events still waiting.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, test } from "node:test";

import { Lookout } from "lookout-client";
import { Daemon, assertSequence, clientDir, needsLookoutd, pollUntil, quick, sleep, tmpDir } from "./helpers.mjs";

const daemons = [];
const hosts = new Set();
after(async () => {
  for (const h of hosts) h.kill("SIGKILL");
  for (const d of daemons) await d.kill();
});

async function emitSlowly(lk, from, to, { every = 25, pause = 2, onEach } = {}) {
  for (let n = from; n < to; n++) {
    assert.equal(lk.heartbeat({ target: "t", n }), true);
    if (onEach) await onEach(n);
    if (n % every === every - 1) await sleep(pause);
  }
}

function spoolFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".jsonl")) out.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

for (const where of ["file", "memory"]) {
  test(`lookoutd down for the whole block, then started: every event arrives once, in order (${where} spool)`, needsLookoutd(), async () => {
    const d = await Daemon.notYet();
    daemons.push(d);
    const spoolDir = where === "file" ? path.join(tmpDir(), "spool") : undefined;
    const lk = new Lookout(quick({ url: d.url, spoolDir }));
    await emitSlowly(lk, 0, 300);
    await pollUntil(() => lk.stats().spooled === 300 && lk.stats().queued === 0, { what: "300 events in the spool" });
    const s = lk.stats();
    assert.equal(s.spoolKind, where);
    assert.equal(s.state, "down");
    assert.ok(s.failedAttempts >= 1);
    if (where === "file") {
      const lines = spoolFiles(spoolDir).reduce((n, f) => n + fs.readFileSync(f, "utf8").split("\n").length - 1, 0);
      assert.equal(lines, 300, "every event is on disk while lookoutd is away");
    }
    assert.equal(await lk.flush(200), false, "flush reports that nothing could be sent");

    await d.start();
    await emitSlowly(lk, 300, 350); // while the replay runs: behind it, not before
    assert.equal(await lk.flush(60_000), true);
    assertSequence(assert, await d.events("heartbeat"), 0, 350);
    assert.equal(lk.stats().dropped, 0);
    assert.equal(lk.stats().spooled, 0);
    await lk.close();
    if (where === "file") assert.deepEqual(spoolFiles(spoolDir), [], "the spool is emptied once sent");
  });
}

test("lookoutd SIGKILLed while requests are in flight, then restarted: nothing lost, nothing doubled", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  let killAt = null;
  let kills = 0;
  const cycles = []; // one per kill: settles once lookoutd is back
  const restart = () => sleep(300).then(() => d.start());
  // Three kills of lookoutd with a request of events in flight: twice just after the request left
  // (committed or not: the client cannot know), once after lookoutd answered but before the client
  // read the answer (committed for sure: only the idempotency keys keep the resend single).
  const killing = async (url, init) => {
    const armed = killAt !== null && Date.now() >= killAt && String(url).endsWith("/api/events");
    if (!armed) return fetch(url, init);
    killAt = null;
    kills++;
    if (kills === 2) {
      const res = await fetch(url, init);
      assert.equal(res.status, 200);
      await d.kill("SIGKILL");
      cycles.push(restart());
      throw new TypeError("fetch failed (the answer was lost: lookoutd was killed)");
    }
    const p = fetch(url, init);
    cycles.push(sleep(Math.floor(Math.random() * 4)).then(() => d.kill("SIGKILL")).then(restart));
    return p;
  };
  const lk = new Lookout(quick({ url: d.url, fetch: killing, spoolDir: path.join(tmpDir(), "spool") }));
  const total = 3000;
  await emitSlowly(lk, 0, total, {
    every: 20,
    pause: 3,
    onEach: async (n) => {
      if (n % 1000 === 500) {
        await Promise.all(cycles);
        killAt = Date.now();
      }
    },
  });
  await pollUntil(() => kills === 3, { what: "three kills" });
  await Promise.all(cycles);
  assert.equal(await lk.flush(90_000), true, JSON.stringify(lk.stats()));
  assertSequence(assert, await d.events("heartbeat"), 0, total);
  const s = lk.stats();
  assert.ok(s.failedAttempts >= 3, JSON.stringify(s));
  // The batch whose answer was lost is stored and was sent again: the log still holds each once.
  assert.ok(s.sent >= total, JSON.stringify(s));
  assert.equal(s.dropped, 0);
  await lk.close();
});

for (const where of ["file", "memory"]) {
  test(`spool full: the oldest are dropped first, and counted (${where} spool)`, needsLookoutd(), async () => {
    const d = await Daemon.notYet();
    daemons.push(d);
    const spoolDir = where === "file" ? path.join(tmpDir(), "spool") : undefined;
    const maxSpoolBytes = 8 * 1024;
    const lk = new Lookout(quick({ url: d.url, spoolDir, maxSpoolBytes }));
    const total = 400; // ~140 bytes each: ~56 KB into 8 KiB
    await emitSlowly(lk, 0, total);
    await pollUntil(() => lk.stats().queued === 0 && lk.stats().spooled > 0, { what: "the queue moved to the spool" });
    const s = lk.stats();
    assert.ok(s.droppedSpoolFull > 0, JSON.stringify(s));
    assert.equal(s.spooled + s.droppedSpoolFull, total);
    assert.equal(s.dropped, s.droppedSpoolFull);
    assert.ok(s.spoolBytes <= maxSpoolBytes, `${s.spoolBytes} bytes held`);
    if (where === "file") {
      const onDisk = spoolFiles(spoolDir).reduce((n, f) => n + fs.statSync(f).size, 0);
      assert.ok(onDisk <= maxSpoolBytes + 1024, `${onDisk} bytes on disk`);
    }
    await d.start();
    assert.equal(await lk.flush(60_000), true);
    // What arrives is the newest, contiguous, in order: the oldest were the ones dropped.
    assertSequence(assert, await d.events("heartbeat"), s.droppedSpoolFull, total);
    await lk.close();
  });
}

function runHost(env) {
  const child = spawn(process.execPath, [path.join(clientDir, "test", "fixtures", "host.mjs")], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  hosts.add(child);
  let out = "";
  child.stdout.on("data", (b) => (out += b));
  const exited = new Promise((r) =>
    child.once("exit", (code, signal) => {
      hosts.delete(child);
      r({ code, signal });
    }),
  );
  return { child, output: () => out, exited };
}

test("hosts SIGKILLed after spooling: a new client replays their spools, oldest host first, once", needsLookoutd(), async () => {
  const d = await Daemon.notYet();
  daemons.push(d);
  const spoolDir = path.join(tmpDir(), "spool");
  for (const from of [0, 50]) {
    const h = runHost({ LOOKOUT_URL: d.url, SPOOL_DIR: spoolDir, FROM: String(from), COUNT: "50", MODE: "spool-and-wait" });
    await pollUntil(() => h.output().includes("SPOOLED"), { timeout: 60_000, what: "the host to spool its events" });
    h.child.kill("SIGKILL");
    assert.equal((await h.exited).signal, "SIGKILL");
  }
  await d.start();
  const lk = new Lookout(quick({ url: d.url, spoolDir }));
  lk.heartbeat({ target: "t", n: 100 }); // the new host's own: after the replay
  assert.equal(await lk.flush(60_000), true, JSON.stringify(lk.stats()));
  assertSequence(assert, await d.events("heartbeat"), 0, 101);
  await lk.close();
  // A second new client finds nothing left to replay.
  const again = new Lookout(quick({ url: d.url, spoolDir }));
  assert.equal(await again.flush(10_000), true);
  assert.equal((await d.events("heartbeat")).length, 101);
  await again.close();
});

test("a host that exits at once (process.exit, no flush): its memory was spooled at exit and is replayed", needsLookoutd(), async () => {
  const d = await Daemon.notYet();
  daemons.push(d);
  const spoolDir = path.join(tmpDir(), "spool");
  const h = runHost({ LOOKOUT_URL: d.url, SPOOL_DIR: spoolDir, COUNT: "40", MODE: "exit" });
  assert.equal((await h.exited).code, 0);
  await d.start();
  const lk = new Lookout(quick({ url: d.url, spoolDir }));
  assert.equal(await lk.flush(60_000), true);
  assertSequence(assert, await d.events("heartbeat"), 0, 40);
  await lk.close();
});

test("a host whose loop runs dry exits by itself (timers unref'd), lookoutd up or down; nothing is lost", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const spoolDir = path.join(tmpDir(), "spool");
  for (const [url, from] of [
    [d.url, 0],
    ["http://127.0.0.1:9", 20], // nothing listens on the discard port
    ["http://10.255.255.1:8484", 40], // a black hole
  ]) {
    const started = Date.now();
    const h = runHost({ LOOKOUT_URL: url, SPOOL_DIR: spoolDir, FROM: String(from), COUNT: "20", MODE: "drain" });
    const { code } = await h.exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 15_000, `the host took ${Date.now() - started} ms to exit`);
  }
  const lk = new Lookout(quick({ url: d.url, spoolDir }));
  assert.equal(await lk.flush(60_000), true);
  const got = (await d.events("heartbeat")).map((e) => e.payload.n).sort((a, b) => a - b);
  assert.deepEqual(got, Array.from({ length: 60 }, (_, i) => i), "each event once");
  await lk.close();
});

test("a spool in use by a live client is not taken; one left by a closed client is", needsLookoutd(), async () => {
  const d = await Daemon.notYet();
  daemons.push(d);
  const spoolDir = path.join(tmpDir(), "spool");
  const a = new Lookout(quick({ url: d.url, spoolDir }));
  await emitSlowly(a, 0, 10);
  await pollUntil(() => a.stats().spooled === 10, { what: "a's spool" });
  const b = new Lookout(quick({ url: d.url, spoolDir }));
  await sleep(50);
  assert.equal(b.stats().spooled, 0, "b leaves a live client's spool alone");
  assert.equal(await a.close(100), false, "closed with its events still waiting");
  const c = new Lookout(quick({ url: d.url, spoolDir }));
  await pollUntil(() => c.stats().spooled === 10, { what: "c adopts what a left" });
  await d.start();
  assert.equal(await c.flush(60_000), true);
  assert.equal(await b.flush(60_000), true);
  assertSequence(assert, await d.events("heartbeat"), 0, 10);
  await b.close();
  await c.close();
});

test("without process.getBuiltinModule (Node < 20.16) the spool on disk opens through an import", needsLookoutd(), async () => {
  const d = await Daemon.notYet();
  daemons.push(d);
  const spoolDir = path.join(tmpDir(), "spool");
  const saved = process.getBuiltinModule;
  process.getBuiltinModule = undefined;
  let lk;
  try {
    lk = new Lookout(quick({ url: d.url, spoolDir }));
  } finally {
    process.getBuiltinModule = saved;
  }
  await emitSlowly(lk, 0, 30);
  await pollUntil(() => lk.stats().spooled === 30, { what: "30 events in the spool" });
  assert.equal(lk.stats().spoolKind, "file");
  assert.equal(spoolFiles(spoolDir).length, 1);
  await d.start();
  assert.equal(await lk.flush(60_000), true);
  assertSequence(assert, await d.events("heartbeat"), 0, 30);
  await lk.close();
});

test("lookoutd up but slower than the host: the backlog waits in the spool, nothing dropped, order kept", async () => {
  const got = [];
  const slow = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () =>
      setTimeout(() => {
        got.push(...JSON.parse(body));
        res.end('{"seqs":[]}');
      }, 100),
    );
  });
  await new Promise((r) => slow.listen(0, "127.0.0.1", r));
  try {
    const spoolDir = path.join(tmpDir(), "spool");
    const lk = new Lookout(quick({ url: `http://127.0.0.1:${slow.address().port}`, spoolDir, maxQueue: 1_000, maxBatch: 100 }));
    for (let n = 0; n < 6_000; n++) {
      lk.heartbeat({ target: "t", n });
      if (n % 200 === 199) await new Promise((r) => setImmediate(r));
    }
    assert.ok(lk.stats().spooled > 0, "some of the backlog went to the spool");
    assert.equal(await lk.flush(120_000), true);
    const s = lk.stats();
    assert.equal(s.droppedQueueFull, 0, JSON.stringify(s));
    assert.equal(s.dropped, 0);
    assert.deepEqual(got.map((e) => e.n), Array.from({ length: 6_000 }, (_, i) => i));
    await lk.close();
  } finally {
    slow.close();
  }
});
