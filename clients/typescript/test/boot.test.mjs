// bootBegin / bootReady / bootFail against lookoutd's /api/boot endpoints: the crash loop's
// report, refusals that never throw, and a boot reported while lookoutd is away.

import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";

import { Lookout } from "lookout-client";
import { Daemon, needsLookoutd, quick } from "./helpers.mjs";

const daemons = [];
after(async () => {
  for (const d of daemons) await d.kill();
});

test("a failed start, then a good one: bootReady's report says what was recovered from", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const lk = new Lookout(quick({ url: d.url }));
  const first = await lk.bootBegin({ service: "pynchy", version: "1.2.0" });
  assert.equal(first.failed_starts, 0);
  const failed = await lk.bootFail({ service: "pynchy", cause: "pydantic ValidationError: bad config key" });
  assert.ok(failed, "bootFail answered");
  const second = await lk.bootBegin({ service: "pynchy", version: "1.2.1", pid: 4242 });
  assert.equal(second.failed_starts, 1);
  const report = await lk.bootReady({ service: "pynchy" });
  assert.equal(report.failed_starts, 1);
  assert.equal(report.last_cause, "pydantic ValidationError: bad config key");
  assert.equal(
    report.message,
    "⚠️ Service recovered after 1 failed start(s). Last failure: pydantic ValidationError: bad config key",
  );
  const started = (await d.events("boot_started")).filter((e) => e.subject === "pynchy");
  assert.deepEqual(
    started.map((e) => [e.payload.version, e.payload.pid]),
    [
      ["1.2.0", process.pid],
      ["1.2.1", 4242],
    ],
  );
  await lk.close();
});

test("refused boot calls resolve null and never throw", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const errors = [];
  const lk = new Lookout(quick({ url: d.url, onError: (c, m) => errors.push(c) }));
  assert.equal(await lk.bootFail({ service: "x", cause: "   " }), null);
  assert.equal(await lk.bootBegin({}), null);
  assert.equal(await lk.bootReady(null), null);
  assert.equal(await lk.bootBegin({ service: "../../etc" }), null, "lookoutd refuses a service name it cannot file");
  assert.ok(errors.includes("invalid"));
  assert.ok(errors.includes("rejected"), JSON.stringify(errors));
  await lk.close();
});

test("a boot reported while lookoutd is away goes as events, replayed once it answers", needsLookoutd(), async () => {
  const d = await Daemon.notYet();
  daemons.push(d);
  const lk = new Lookout(quick({ url: d.url }));
  const t0 = Date.now();
  assert.equal(await lk.bootBegin({ service: "nanoclaw", version: "3.0.0" }), null);
  assert.equal(await lk.bootReady({ service: "nanoclaw" }), null);
  assert.ok(Date.now() - t0 < 5_000, "no long wait for an absent lookoutd");
  assert.equal(lk.stats().queued + lk.stats().spooled, 2);
  await d.start();
  assert.equal(await lk.flush(30_000), true);
  const boots = (await d.events()).filter((e) => e.subject === "nanoclaw");
  assert.deepEqual(
    boots.map((e) => e.kind),
    ["boot_started", "boot_ready"],
  );
  assert.equal(boots[0].payload.version, "3.0.0");
  await lk.close();
});

test("events emitted before a boot call reach lookoutd before it", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const lk = new Lookout(quick({ url: d.url, flushInterval: 5_000 }));
  lk.deploy({ sha: "abc123" });
  assert.ok(await lk.bootBegin({ service: "ordered" }));
  const kinds = (await d.events()).filter((e) => e.subject !== "lookoutd").map((e) => e.kind);
  assert.deepEqual(kinds, ["deploy", "boot_started"]);
  await lk.close();
});

test("a boot call that got no answer is not repeated as an event (lookoutd may have acted on it)", async () => {
  const sockets = [];
  const tarpit = net.createServer((s) => sockets.push(s));
  await new Promise((r) => tarpit.listen(0, "127.0.0.1", r));
  const lk = new Lookout(quick({ url: `http://127.0.0.1:${tarpit.address().port}`, bootTimeout: 200 }));
  const t0 = Date.now();
  assert.equal(await lk.bootBegin({ service: "maybe" }), null);
  assert.ok(Date.now() - t0 < 5_000);
  assert.equal(lk.stats().queued + lk.stats().spooled, 0);
  assert.match(lk.stats().lastError, /no answer within 200 ms/);
  await lk.close(10);
  for (const s of sockets) s.destroy();
  tarpit.close();
});
