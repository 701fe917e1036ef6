// The client never harms its host: no throw from the constructor, emit or a helper whatever they
// are given; a bad URL, a server that never answers, 5xx answers: events are kept, flush keeps
// its deadline.

import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, test } from "node:test";

import { Lookout } from "lookout-client";
import { Daemon, assertSequence, needsLookoutd, pollUntil, quick } from "./helpers.mjs";

const servers = [];
const daemons = [];
after(async () => {
  for (const s of servers) s.close();
  for (const d of daemons) await d.kill();
});

function garbage() {
  const circular = { a: 1 };
  circular.self = circular;
  const throwingGetter = Object.defineProperty({}, "boom", { enumerable: true, get: () => { throw new Error("getter"); } });
  const throwingProxy = new Proxy({}, { ownKeys: () => { throw new Error("proxy"); } });
  return [
    undefined,
    null,
    42,
    "text",
    [1, 2],
    circular,
    { big: 10n },
    { toJSON() { throw new Error("toJSON"); } },
    throwingGetter,
    throwingProxy,
    { huge: "x".repeat(2 * 1024 * 1024) },
    { sym: Symbol("s"), fn: () => 1 },
    Object.create(null),
  ];
}

test("no constructor option, kind or field makes the client throw", () => {
  const options = [
    undefined,
    null,
    42,
    "http://x",
    {},
    { url: "not a url" },
    { url: "ftp://example.org" },
    { url: "" },
    { url: 12 },
    { url: "http://127.0.0.1:1", spoolDir: "/proc/definitely/not/writable" },
    { maxQueue: -1, heartbeatInterval: "soon", maxSpoolBytes: NaN, flushInterval: Infinity, onError: 5 },
    { onError: () => { throw new Error("a host callback that throws"); } },
    { fetch: () => { throw new Error("fetch that throws"); } },
    { fetch: 7 },
  ];
  const helpers = [
    "channelConnected", "channelDisconnected", "messageReceived", "messagesRecovered", "batchDispatched",
    "botResponse", "deliveryQueued", "deliverySent", "deliveryFailed", "deliveryConfirmed", "runStarted",
    "runHeartbeat", "runFinished", "containerStatus", "heartbeat", "versionStamp", "deploy", "taskScheduled",
  ];
  for (const o of options) {
    let lk;
    assert.doesNotThrow(() => (lk = new Lookout(o === undefined ? undefined : o)), `new Lookout(${String(o)})`);
    for (const g of garbage()) {
      for (const kind of [undefined, null, 42, "", "heartbeat", "no_such_kind", { k: 1 }]) {
        assert.doesNotThrow(() => lk.emit(kind, g));
      }
      for (const h of helpers) assert.doesNotThrow(() => lk[h](g), h);
      assert.doesNotThrow(() => lk.startHeartbeat(g).stop());
    }
    assert.doesNotThrow(() => lk.stats());
    const s = lk.stats();
    assert.ok(s.invalid > 0);
    assert.equal(typeof s.lastError, "string");
    void lk.close(50);
  }
});

test("invalid events are refused at emit and counted; valid ones are queued", () => {
  const lk = new Lookout({ url: "http://127.0.0.1:1", onError: null, maxEventBytes: 1024 });
  assert.equal(lk.emit("heartbeat", { target: "ok" }), true);
  assert.equal(lk.emit("", { target: "x" }), false);
  assert.equal(lk.emit("heartbeat", { big: 1n }), false);
  assert.equal(lk.emit("heartbeat", { s: "x".repeat(2000) }), false);
  assert.equal(lk.heartbeat(null), false);
  const s = lk.stats();
  assert.equal(s.invalid, 4);
  assert.equal(s.queued, 1);
  return lk.close(10);
});

test("a bad URL: emit still returns at once, flush keeps its deadline and says false", async () => {
  for (const url of ["not a url", "ftp://example.org", "http://"]) {
    const lk = new Lookout({ url, onError: null, flushInterval: 10 });
    assert.equal(lk.emit("heartbeat", { target: "t" }), true);
    const t0 = Date.now();
    assert.equal(await lk.flush(200), false);
    const took = Date.now() - t0;
    assert.ok(took >= 150 && took < 3_000, `flush took ${took} ms`);
    assert.match(lk.stats().lastError, /not usable/);
    assert.equal(lk.stats().dropped, 0, "kept, not dropped");
    await lk.close(10);
  }
});

test("a server that never answers: flush resolves false by its deadline; emit never waits", async () => {
  const sockets = [];
  const tarpit = net.createServer((s) => sockets.push(s)); // accepts, reads nothing, says nothing
  servers.push(tarpit);
  await new Promise((r) => tarpit.listen(0, "127.0.0.1", r));
  const lk = new Lookout(quick({ url: `http://127.0.0.1:${tarpit.address().port}`, requestTimeout: 60_000 }));
  for (let n = 0; n < 1000; n++) {
    const t0 = process.hrtime.bigint();
    lk.heartbeat({ target: "t", n });
    assert.ok(process.hrtime.bigint() - t0 < 50_000_000n, "one emit took over 50 ms");
  }
  const t0 = Date.now();
  assert.equal(await lk.flush(300), false);
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 5_000, `flush took ${took} ms`);
  assert.equal(await lk.close(100), false);
  for (const s of sockets) s.destroy();
});

test("5xx answers keep the events (spooled, retried); a later 200 delivers each once", async () => {
  let fail = true;
  const got = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (fail) {
        res.writeHead(503, { "content-type": "application/json" });
        return res.end(JSON.stringify({ error: "64 requests already in progress; retry shortly" }));
      }
      const evs = JSON.parse(body);
      got.push(...evs);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ seqs: evs.map((_, i) => i + 1) }));
    });
  });
  servers.push(server);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const lk = new Lookout(quick({ url: `http://127.0.0.1:${server.address().port}` }));
  for (let n = 0; n < 50; n++) lk.heartbeat({ target: "t", n });
  await pollUntil(() => lk.stats().failedAttempts >= 2, { what: "two failed attempts" });
  const s = lk.stats();
  assert.equal(s.state, "down");
  assert.match(s.lastError, /HTTP 503/);
  assert.equal(s.dropped, 0);
  assert.equal(s.rejected, 0);
  fail = false;
  assert.equal(await lk.flush(30_000), true);
  assert.deepEqual(got.map((e) => e.n), Array.from({ length: 50 }, (_, i) => i));
  assert.ok(got.every((e) => typeof e.idempotency_key === "string" && typeof e.at === "string"));
  assert.equal(new Set(got.map((e) => e.idempotency_key)).size, 50);
  await lk.close();
});

test("emit after close is refused quietly and counted", async () => {
  const lk = new Lookout({ url: "http://127.0.0.1:1", onError: null });
  await lk.close(10);
  assert.equal(lk.emit("heartbeat", { target: "late" }), false);
  assert.equal(lk.stats().droppedAfterClose, 1);
  assert.equal(await lk.flush(10), true, "nothing of its own is waiting");
});

test("garbage mixed with good events, against the real lookoutd: the good ones all arrive, in order", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const lk = new Lookout(quick({ url: d.url }));
  for (const g of garbage()) lk.emit("heartbeat", g);
  for (let n = 0; n < 20; n++) lk.heartbeat({ target: "t", n });
  assert.equal(await lk.flush(30_000), true);
  assertSequence(assert, await d.events("heartbeat"), 0, 20);
  await lk.close();
});

test("a request that never settles (not even at its timeout) is left behind; a new sender delivers", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  let hung = 0;
  // The first request hangs for ever and ignores its AbortSignal, as a runtime that dropped it would.
  const flaky = (url, init) => (hung++ === 0 ? new Promise(() => {}) : fetch(url, init));
  const errors = [];
  const lk = new Lookout(quick({ url: d.url, fetch: flaky, requestTimeout: 100, onError: (c) => errors.push(c) }));
  for (let n = 0; n < 10; n++) lk.heartbeat({ target: "t", n });
  await new Promise((r) => setTimeout(r, 50));
  for (let n = 10; n < 20; n++) lk.heartbeat({ target: "t", n });
  assert.equal(await lk.flush(30_000), true);
  assertSequence(assert, await d.events("heartbeat"), 0, 20);
  assert.ok(errors.includes("stuck"), JSON.stringify(errors));
  await lk.close();
});
