// `lk.run(...)`: run_started, heartbeats on the client's own timer, progress, and run_finished
// with outcome success, failed or interrupted — read back from the real lookoutd.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";

import { Lookout } from "lookout-client";
import { Daemon, clientDir, needsLookoutd, pollUntil, quick } from "./helpers.mjs";

const daemons = [];
const hosts = new Set();
after(async () => {
  for (const h of hosts) h.kill("SIGKILL");
  for (const d of daemons) await d.kill();
});

async function setup(extra = {}) {
  const d = await Daemon.start();
  daemons.push(d);
  return { d, lk: new Lookout(quick({ url: d.url, ...extra })) };
}

function ofRun(events, runId) {
  return events.filter((e) => e.subject === runId).map((e) => ({ kind: e.kind, ...e.payload }));
}

test("a block that returns: run_started, then run_finished success; the value comes back", needsLookoutd(), async () => {
  const { d, lk } = await setup();
  const v = await lk.run({ runId: "r-ok", group: "g1", kind: "task", task: "nightly", container: "agent-7" }, async (run) => {
    assert.equal(run.id, "r-ok");
    run.progress({ step: 1 });
    return 42;
  });
  assert.equal(v, 42);
  assert.equal(await lk.flush(30_000), true);
  const evs = ofRun(await d.events(), "r-ok");
  assert.deepEqual(
    evs.map((e) => e.kind),
    ["run_started", "run_heartbeat", "run_finished"],
  );
  assert.deepEqual(
    { ...evs[0], at: undefined },
    { kind: "run_started", run_id: "r-ok", group: "g1", run_kind: "task", task: "nightly", container: "agent-7", at: undefined },
  );
  assert.equal(evs[2].outcome, "success");
  assert.equal(evs[2].error, undefined);
  // lookoutd remembers the run's group, kind and task from its run_started.
  assert.equal(evs[2].group, "g1");
  assert.equal(evs[2].task, "nightly");
  assert.equal(lk.stats().warnings, 0);
  await lk.close();
});

test("a block that throws: run_finished failed with the message, and the same error is rethrown", needsLookoutd(), async () => {
  const { d, lk } = await setup();
  const boom = new Error("container exited with code 137");
  await assert.rejects(
    lk.run({ runId: "r-fail", group: "g1", kind: "message" }, async () => {
      await new Promise((r) => setTimeout(r, 10));
      throw boom;
    }),
    (e) => e === boom,
  );
  await assert.rejects(
    lk.run({ runId: "r-sync", group: "g1", kind: "message" }, () => {
      throw new TypeError("synchronous");
    }),
    TypeError,
  );
  assert.equal(await lk.flush(30_000), true);
  const fin = (await d.events("run_finished")).map((e) => e.payload);
  assert.deepEqual(
    fin.map((p) => [p.run_id, p.outcome, p.error]),
    [
      ["r-fail", "failed", "container exited with code 137"],
      ["r-sync", "failed", "synchronous"],
    ],
  );
  await lk.close();
});

test("interrupted: the run's AbortSignal aborted, or an error named AbortError", needsLookoutd(), async () => {
  const { d, lk } = await setup();
  const ac = new AbortController();
  const running = lk.run({ runId: "r-signal", group: "g1", kind: "task", task: "sync", signal: ac.signal }, (run) => {
    assert.equal(run.signal, ac.signal);
    return new Promise((_, reject) => run.signal.addEventListener("abort", () => reject(new Error("stopped by SIGTERM"))));
  });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(running, /stopped by SIGTERM/);

  await assert.rejects(
    lk.run({ runId: "r-aborterror", group: "g1", kind: "task" }, async () => {
      const e = new Error("The operation was aborted");
      e.name = "AbortError";
      throw e;
    }),
    { name: "AbortError" },
  );
  // abort() with no reason rejects with a DOMException named AbortError.
  const ac2 = new AbortController();
  ac2.abort();
  await assert.rejects(
    lk.run({ runId: "r-domexception", group: "g1", kind: "task" }, async () => {
      throw ac2.signal.reason;
    }),
  );
  assert.equal(await lk.flush(30_000), true);
  const fin = (await d.events("run_finished")).map((e) => [e.payload.run_id, e.payload.outcome]);
  assert.deepEqual(fin, [
    ["r-signal", "interrupted"],
    ["r-aborterror", "interrupted"],
    ["r-domexception", "interrupted"],
  ]);
  await lk.close();
});

test("heartbeats every interval while the block runs, with no timer in the host; progress rides on them", needsLookoutd(), async () => {
  const { d, lk } = await setup({ heartbeatInterval: 100 });
  let beats;
  await lk.run({ runId: "r-beat", group: "g2", kind: "task", task: "long" }, async (run) => {
    // The block only waits for lookoutd to have seen heartbeats; it sends none itself.
    run.progress("step 1");
    beats = await d.waitEvents("run_heartbeat", 4, { filter: (e) => e.subject === "r-beat" });
    run.progress("step 2");
    await d.waitEvents("run_heartbeat", 1, { filter: (e) => e.subject === "r-beat" && e.payload.progress === "step 2" });
  });
  assert.equal(await lk.flush(30_000), true);
  for (const b of beats) {
    assert.equal(b.payload.group, "g2");
    assert.equal(b.payload.run_kind, "task");
    assert.equal(b.payload.progress, "step 1");
  }
  const evs = ofRun(await d.events(), "r-beat");
  assert.equal(evs[0].kind, "run_started");
  assert.equal(evs[evs.length - 1].kind, "run_finished");
  assert.equal(evs[evs.length - 1].progress, "step 2");
  // No heartbeat after the finish: the timer stopped with the block.
  const n = evs.length;
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await lk.flush(30_000), true);
  assert.equal(ofRun(await d.events(), "r-beat").length, n);
  await lk.close();
});

test("close() while a run is active reports it interrupted, once", needsLookoutd(), async () => {
  const { d, lk } = await setup();
  let release;
  const running = lk.run({ runId: "r-closed", group: "g1", kind: "task" }, () => new Promise((r) => (release = r)));
  await pollUntil(() => release, { what: "the block to start" });
  assert.equal(await lk.close(30_000), true);
  release("done");
  assert.equal(await running, "done");
  const fin = (await d.events("run_finished")).map((e) => [e.payload.run_id, e.payload.outcome]);
  assert.deepEqual(fin, [["r-closed", "interrupted"]]);
});

test("startHeartbeat sends a target's heartbeat every interval until stopped", needsLookoutd(), async () => {
  const { d, lk } = await setup();
  const hb = lk.startHeartbeat({ target: "bridge", sha: "abc", interval: 50 });
  await d.waitEvents("heartbeat", 3, { filter: (e) => e.subject === "bridge" });
  hb.stop();
  assert.equal(await lk.flush(30_000), true);
  const n = (await d.events("heartbeat")).length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await lk.flush(30_000), true);
  assert.equal((await d.events("heartbeat")).length, n, "no heartbeat after stop()");
  await lk.close();
});

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

test("SIGTERM to a host with no handler of its own: the run ends interrupted, then the host dies of the signal", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const h = runHost({ LOOKOUT_URL: d.url, MODE: "run", RUN_ID: "r-sigterm", COUNT: "0" });
  await pollUntil(() => h.output().includes("RUNNING"), { timeout: 60_000, what: "the host's run to start" });
  h.child.kill("SIGTERM");
  const { code, signal } = await h.exited;
  assert.equal(signal, "SIGTERM", `exit code ${code}`);
  const fin = (await d.events("run_finished")).map((e) => e.payload);
  assert.equal(fin.length, 1);
  assert.equal(fin[0].run_id, "r-sigterm");
  assert.equal(fin[0].outcome, "interrupted");
  assert.equal(fin[0].note, "SIGTERM");
  assert.equal(fin[0].task, "long");
});

test("SIGTERM to a host with its own handler: the host decides (here: abort the run, close, exit 0)", needsLookoutd(), async () => {
  const d = await Daemon.start();
  daemons.push(d);
  const h = runHost({ LOOKOUT_URL: d.url, MODE: "run-own-handler", RUN_ID: "r-own", COUNT: "0" });
  await pollUntil(() => h.output().includes("RUNNING"), { timeout: 60_000, what: "the host's run to start" });
  h.child.kill("SIGTERM");
  assert.deepEqual(await h.exited, { code: 0, signal: null });
  const fin = (await d.events("run_finished")).map((e) => e.payload);
  assert.deepEqual(
    fin.map((p) => [p.run_id, p.outcome, p.error]),
    [["r-own", "interrupted", "host stopping"]],
  );
});
