// Events reach the real lookoutd: every typed helper, batches, the bearer token, a 400 for one
// bad event that loses none of the others, and lookoutd's warnings.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Lookout } from "lookout-client";
import { Daemon, assertSequence, needsLookoutd, pollUntil, quick } from "./helpers.mjs";

const daemons = [];
after(async () => {
  for (const d of daemons) await d.kill();
});

test("every typed helper is accepted by lookoutd, with at, idempotency and payload", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const lk = new Lookout(quick({ url: d.url }));
  const when = new Date(Date.now() - 60_000);
  const ok = [
    lk.channelConnected({ channel: "slack" }),
    lk.channelDisconnected({ channel: "slack", reason: "socket closed" }),
    lk.messageReceived({ channel: "slack", chatJid: "c1", messageId: "m1", sender: "ana", timestamp: when }),
    lk.messagesRecovered({ channel: "slack", chatJid: "c1", messageIds: ["m2", "m3"] }),
    lk.batchDispatched({ chatJid: "c1", messageIds: ["m1"], runId: "r1", group: "g" }),
    lk.runStarted({ runId: "r1", group: "g", kind: "message", container: "agent-1" }),
    lk.runHeartbeat({ runId: "r1", progress: { step: 1 } }),
    lk.botResponse({ chatJid: "c1", runId: "r1" }),
    lk.runFinished({ runId: "r1", outcome: "success" }),
    lk.deliveryQueued({ deliveryId: "d1", chatJid: "c1" }),
    lk.deliverySent({ deliveryId: "d1", chatJid: "c1" }),
    lk.deliveryConfirmed({ deliveryId: "d1", chatJid: "c1", channel: "slack" }),
    lk.deliveryFailed({ deliveryId: "d2", chatJid: "c1", error: "429 from Slack" }),
    lk.containerStatus({ container: "agent-1", status: "running" }),
    lk.heartbeat({ target: "bridge", sha: "abc123" }),
    lk.versionStamp({ target: "bridge", sha: "abc123" }),
    lk.deploy({ sha: "abc123", commitMessage: "fix: dedupe routing" }),
    // Within ingest.max_skew (5m): lookoutd refuses a next_run further ahead (see docs).
    lk.taskScheduled({ task: "nightly", nextRun: new Date(Date.now() + 120_000), group: "g" }),
    lk.emit("heartbeat", { target: "raw", custom: { nested: [1, 2] } }),
  ];
  assert.ok(ok.every(Boolean), "every helper queued its event");
  assert.equal(await lk.flush(30_000), true);
  const s = lk.stats();
  assert.equal(s.rejected, 0, `nothing refused: ${s.lastRejection}`);
  assert.equal(s.sent, ok.length);
  assert.equal(s.dropped, 0);

  const events = (await d.events()).filter((e) => e.subject !== "lookoutd");
  assert.deepEqual(
    events.map((e) => e.kind),
    [
      "channel_connected",
      "channel_disconnected",
      "message_received",
      "messages_recovered",
      "batch_dispatched",
      "run_started",
      "run_heartbeat",
      "bot_response",
      "run_finished",
      "delivery_queued",
      "delivery_sent",
      "delivery_confirmed",
      "delivery_failed",
      "container_status",
      "heartbeat",
      "version_stamp",
      "deploy",
      "task_scheduled",
      "heartbeat",
    ],
  );
  const byKind = (k) => events.find((e) => e.kind === k);
  assert.equal(byKind("message_received").payload.timestamp, when.toISOString());
  assert.equal(byKind("message_received").payload.sender, "ana");
  assert.deepEqual(byKind("messages_recovered").payload.message_ids, ["m2", "m3"]);
  assert.equal(byKind("run_started").payload.run_kind, "message");
  assert.equal(byKind("deploy").payload.commit_message, "fix: dedupe routing");
  // lookoutd fills a heartbeat's group and kind in from its run_started.
  assert.equal(byKind("run_heartbeat").payload.group, "g");
  assert.deepEqual(byKind("run_heartbeat").payload.progress, { step: 1 });
  assert.deepEqual(events[events.length - 1].payload.custom, { nested: [1, 2] });
  // `at` is the time of emit (not of arrival), and the key never lands in the payload.
  for (const e of events) {
    assert.ok(Math.abs(Date.parse(e.at) - Date.now()) < 120_000, `${e.kind} at ${e.at}`);
    assert.equal(e.payload.idempotency_key, undefined);
    assert.equal(e.payload.at, undefined);
  }
  await lk.close();
});

test("a caller's at and idempotency_key are kept: the same key twice is stored once", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const lk = new Lookout(quick({ url: d.url }));
  lk.heartbeat({ target: "k", idempotency_key: "host-key-1", at: "2026-01-02T03:04:05Z" });
  lk.heartbeat({ target: "k", idempotency_key: "host-key-1", at: "2026-01-02T03:04:05Z" });
  assert.equal(await lk.flush(30_000), true);
  const evs = await d.events("heartbeat");
  assert.equal(evs.length, 1);
  assert.equal(evs[0].at, "2026-01-02T03:04:05Z");
  await lk.close();
});

test("a 400 for one bad event in a batch drops that one and delivers all the others, in order", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const seen = [];
  const lk = new Lookout(quick({ url: d.url, flushInterval: 200, onError: (c, m) => seen.push([c, m]) }));
  for (let n = 0; n < 30; n++) {
    lk.heartbeat({ target: "t", n });
    if (n === 7) lk.emit("message_recieved", { channel: "typo" }); // unknown kind
    if (n === 15) lk.emit("bot_response", { chat_jid: "c1" }); // missing timestamp
    if (n === 22) lk.emit("heartbeat", { target: "t", at: "2099-01-01T00:00:00Z" }); // dated ahead
  }
  assert.equal(await lk.flush(30_000), true);
  const s = lk.stats();
  assert.equal(s.rejected, 3, JSON.stringify(s));
  assert.equal(s.sent, 30);
  assert.match(s.lastRejection, /at|timestamp|kind/);
  assert.ok(seen.some(([c, m]) => c === "rejected" && /message_recieved/.test(m)), JSON.stringify(seen));
  assertSequence(assert, await d.events("heartbeat"), 0, 30);
  await lk.close();
});

test("lookoutd's warnings are counted (a heartbeat of a run it never saw start)", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const lk = new Lookout(quick({ url: d.url }));
  lk.runHeartbeat({ runId: "never-started" });
  assert.equal(await lk.flush(30_000), true);
  assert.equal(lk.stats().warnings, 1);
  assert.match(lk.stats().lastWarning, /never-started/);
  await lk.close();
});

test("the bearer token is sent; without it nothing is lost, the events wait", needsLookoutd(), async () => {
  const d = await Daemon.start({ token: "s3cret" });
  daemons.push(d);
  const good = new Lookout(quick({ url: d.url, token: "s3cret" }));
  good.heartbeat({ target: "with-token", n: 0 });
  assert.equal(await good.flush(30_000), true);
  const begun = await good.bootBegin({ service: "tokened" });
  assert.ok(begun, "the boot endpoints get the token too");
  await good.close();

  const bad = new Lookout(quick({ url: d.url, token: "wrong" }));
  bad.heartbeat({ target: "wrong-token", n: 0 });
  assert.equal(await bad.flush(1_000), false);
  const s = bad.stats();
  assert.match(s.lastError, /401/);
  assert.equal(s.dropped, 0);
  assert.equal(s.spooled + s.queued, 1, "kept for when the token is right");
  assert.deepEqual((await d.events("heartbeat")).map((e) => e.subject), ["with-token"]);
  await bad.close(100);
});

test("LOOKOUT_URL and LOOKOUT_TOKEN are the defaults", needsLookoutd(), async () => {
  const d = await Daemon.start({ token: "envtok" });
  daemons.push(d);
  const saved = { url: process.env.LOOKOUT_URL, token: process.env.LOOKOUT_TOKEN };
  process.env.LOOKOUT_URL = d.url + "/";
  process.env.LOOKOUT_TOKEN = "envtok";
  try {
    const lk = new Lookout({ flushInterval: 10, onError: null });
    assert.equal(lk.url, d.url);
    lk.heartbeat({ target: "from-env" });
    assert.equal(await lk.flush(30_000), true);
    await d.waitEvents("heartbeat", 1);
    await lk.close();
  } finally {
    for (const [k, v] of [["LOOKOUT_URL", saved.url], ["LOOKOUT_TOKEN", saved.token]]) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test("many events go in batches (arrays), not one request each", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  let requests = 0;
  const counting = (...a) => {
    requests++;
    return fetch(...a);
  };
  const lk = new Lookout(quick({ url: d.url, fetch: counting, flushInterval: 50, maxBatch: 500 }));
  for (let n = 0; n < 2000; n++) lk.heartbeat({ target: "t", n });
  assert.equal(await lk.flush(60_000), true);
  assert.ok(requests <= 8, `${requests} requests for 2000 events`);
  assertSequence(assert, await d.events("heartbeat"), 0, 2000);
  await pollUntil(() => lk.stats().sent === 2000, { what: "sent = 2000" });
  await lk.close();
});
