// Seed 003 (NanoClaw B-01): a batch dispatched to a run that dies never gets an answer, and nobody
// knew. miniclaw only reports message_received, batch_dispatched, its runs and bot_response; lookoutd
// finds the batch with no response after thresholds.stale_processing (3s here) and says so, and
// says it resolved once the chat is answered.

import assert from "node:assert/strict";
import { test } from "node:test";

import { HEARTBEAT_SECS, STALE_SECS, needsLookoutd, pollUntil, setup, sleep } from "./harness.mjs";

const INTERRUPTED = (n, chat) =>
  new RegExp(`^⚠️ Interrupted run: ${n} message\\(s\\) in chat ${chat.replace(/[.@]/g, "\\$&")} \\(#whatsapp\\) in flight for (\\d+)s with no response$`);
const ELAPSED = String.raw`\d+(?:\.\d+)?(?:ms|s|m|h)(?: ?\d+(?:\.\d+)?(?:ms|s|m|h))*`;
const secs = (ms) => (ms / 1000).toFixed(2);

/** The interrupted-run alert comes at the stale threshold, within a scan or two of it (its text says
 * how long the batch was in flight; the test sees the dispatch a little after the host made it). */
function assertTimely(alertAt, dispatchedAt) {
  const after = (alertAt - dispatchedAt) / 1000;
  assert.ok(after >= STALE_SECS - 1.5, `alert ${after}s after the dispatch: before the stale threshold`);
  assert.ok(after <= STALE_SECS + 1 + 6, `alert ${after}s after the dispatch: too late`);
  return after;
}

test("a run that dies mid-batch: its messages are reported unanswered, then resolved", needsLookoutd(), async (t) => {
  const { hook, host: startHost } = await setup(t);
  const host = await startHost();

  // Two chats at once: family's run answers; work's agent is killed mid-batch.
  await host.send([
    { chat_jid: "family@g.us", id: "f1", text: "dinner at 7?" },
    { chat_jid: "family@g.us", id: "f2", text: "bring the salad" },
  ]);
  await host.send([
    { chat_jid: "work@g.us", id: "w1", text: "deploy status?" },
    { chat_jid: "work@g.us", id: "w2", text: "summarise the incident /oom" },
  ]);
  const [, workRun] = await host.waitForLine(/dispatched 2 message\(s\) of work@g\.us to (\S+)/);
  const dispatchedAt = performance.now();
  await host.waitForLine(/-> family@g\.us: /);
  await host.waitForLine(new RegExp(`${workRun} for work@g.us failed: agent killed by SIGKILL mid-batch`));

  // The group hears that its run failed, from lookoutd's follow of the run.
  const failed = await hook.waitFor((n) => n.text.startsWith(`❌ ${workRun}`), "the failed run's line");
  assert.match(failed.text, new RegExp(`^❌ ${workRun} failed after ${ELAPSED}: agent killed by SIGKILL mid-batch$`));
  assert.equal(failed.group, "work");

  // lookoutd: the two messages are in flight with no response.
  const alert = await hook.waitFor((n) => n.key === "interrupted_run:work@g.us", "the interrupted-run alert");
  const m = alert.text.match(INTERRUPTED(2, "work@g.us"));
  assert.ok(m, alert.text);
  assert.ok(Number(m[1]) >= STALE_SECS && Number(m[1]) <= STALE_SECS + 10, alert.text);
  assert.equal(alert.severity, "warning");
  t.diagnostic(`interrupted-run alert ${secs(alert.at - dispatchedAt)}s after the dispatch`);
  assertTimely(alert.at, dispatchedAt);

  // The answered chat raises nothing, however long we wait.
  await sleep((STALE_SECS + 3) * 1000);
  assert.deepEqual(hook.matching((n) => n.key.startsWith("interrupted_run:family")), []);
  assert.equal(hook.matching((n) => n.key === "interrupted_run:work@g.us").length, 1, "the alert fires once");
  assert.deepEqual(
    host.outbox().map((o) => o.chat_jid),
    ["family@g.us"],
  );

  // Someone writes again; this run answers, and the bot response clears the chat.
  await host.send({ chat_jid: "work@g.us", id: "w3", text: "anyone there?" });
  await host.waitForLine(/-> work@g\.us: /);
  const answeredAt = performance.now();
  const resolved = await hook.waitFor(
    (n) => n.key === "interrupted_run:work@g.us" && n.text.startsWith("✅"),
    "the interrupted-run alert to resolve",
  );
  assert.match(resolved.text, new RegExp(`^✅ resolved after ${ELAPSED}: ${INTERRUPTED(2, "work@g.us").source.slice(1)}`));
  t.diagnostic(`resolved ${secs(resolved.at - answeredAt)}s after the answer`);
  assert.ok(resolved.at - answeredAt < 10_000);

  assert.equal(await host.stop(), 143);
});

test("a host killed mid-batch: the batch is reported unanswered, and the restarted host closes the run", needsLookoutd(), async (t) => {
  const { hook, lookoutd, host: startHost } = await setup(t);
  const host = await startHost();
  await host.send({ chat_jid: "ops@g.us", id: "o1", text: "rotate the keys /hang" });
  const [, run] = await host.waitForLine(/dispatched 1 message\(s\) of ops@g\.us to (\S+)/);
  const dispatchedAt = performance.now();
  // Mid-batch: the run is under way and lookoutd has heard of it. (The client sends in batches every
  // flushInterval, 500 ms: a host killed before that loses what it had not sent.)
  await pollUntil(async () => (await lookoutd.events("run_started")).some((e) => e.payload.run_id === run), "lookoutd to store the run's start");
  await host.crash(); // SIGKILL to the host and its agent: no run_finished, no answer

  const alert = await hook.waitFor((n) => n.key === "interrupted_run:ops@g.us", "the interrupted-run alert");
  assert.match(alert.text, INTERRUPTED(1, "ops@g.us"));
  t.diagnostic(`interrupted-run alert ${secs(alert.at - dispatchedAt)}s after the dispatch (host dead)`);
  assertTimely(alert.at, dispatchedAt);

  // The next start says the run it died in was interrupted; it does not requeue the message (B-01).
  const again = await startHost();
  await again.waitForLine(new RegExp(`${run} was interrupted`));
  const restartedAt = performance.now();
  const ended = await hook.waitFor((n) => n.text.startsWith(`⚠️ ${run}`), "the interrupted line of the run");
  assert.match(ended.text, new RegExp(`^⚠️ ${run} interrupted after ${ELAPSED}$`));
  assert.equal(ended.group, "ops");
  t.diagnostic(`run closed ${secs(ended.at - restartedAt)}s after the restart`);
  assert.ok(ended.at - restartedAt < 10_000);

  await sleep(3 * HEARTBEAT_SECS * 1000);
  const late = hook.matching((n) => n.text.startsWith(`⏱ ${run} still running`) && n.at > ended.at);
  assert.deepEqual(late.map((n) => n.text), [], "no still-running line after the run ended");
  assert.deepEqual(again.outbox(), []);
  assert.equal(hook.matching((n) => n.key === "interrupted_run:ops@g.us" && n.text.startsWith("✅")).length, 0);
  assert.equal(await again.stop(), 143);
});

test("a host stopped (SIGTERM) mid-batch ends its run interrupted, once", needsLookoutd(), async (t) => {
  const { hook, host: startHost } = await setup(t);
  const host = await startHost();
  await host.send({ chat_jid: "ops@g.us", id: "o1", text: "rotate the keys /hang" });
  const [, run] = await host.waitForLine(/dispatched 1 message\(s\) of ops@g\.us to (\S+)/);
  await sleep(500);
  const stoppedAt = performance.now();
  assert.equal(await host.stop(), 143); // systemd's stop: the run is aborted, the client flushed

  const ended = await hook.waitFor((n) => n.text.startsWith(`⚠️ ${run}`), "the interrupted line of the run");
  assert.match(ended.text, new RegExp(`^⚠️ ${run} interrupted after ${ELAPSED}$`));
  t.diagnostic(`run closed ${secs(ended.at - stoppedAt)}s after the SIGTERM`);
  assert.ok(ended.at - stoppedAt < 10_000);
  // Its message is still unanswered: that is reported too.
  await hook.waitFor((n) => n.key === "interrupted_run:ops@g.us", "the interrupted-run alert");

  // The next start has no run of the last process to close: the run ended once.
  const again = await startHost();
  await sleep(2000);
  assert.doesNotMatch(again.output, /was interrupted/);
  assert.equal(hook.matching((n) => n.key === `host-run:${run}:finished`).length, 1);
  assert.equal(await again.stop(), 143);
});
