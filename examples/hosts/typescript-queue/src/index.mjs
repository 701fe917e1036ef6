// miniclaw: a small agent host shaped like NanoClaw, wired to Lookout.
//
//   node src/index.mjs --data DIR [--port PORT]
//
// Messages come in on the channel and are stored; the message loop hands chats with new messages
// to the group queue, which dispatches each chat's batch to an agent run and stores the bot's
// answer. The lines that talk to Lookout end in `// lookout` (README.md counts them).

import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { Lookout } from "lookout-client"; // lookout

import { runAgent } from "./agent.mjs";
import { HttpChannel } from "./channel.mjs";
import { GroupQueue } from "./group-queue.mjs";
import { Store } from "./db.mjs";

const { values: args } = parseArgs({ options: { data: { type: "string" }, port: { type: "string", default: "0" } } });
if (!args.data) {
  console.error("usage: node src/index.mjs --data DIR [--port PORT]");
  process.exit(2);
}
fs.mkdirSync(args.data, { recursive: true });
const POLL_INTERVAL_MS = Number(process.env.POLL_INTERVAL_MS ?? 500);
const groupOf = (chatJid) => chatJid.split("@")[0]; // NanoClaw: the registered group's folder

// LOOKOUT_URL from the env; a run's heartbeats every LOOKOUT_HEARTBEAT_INTERVAL seconds (60), the
// same interval as lookoutd's thresholds.heartbeat_interval.
const heartbeatInterval = 1000 * Number(process.env.LOOKOUT_HEARTBEAT_INTERVAL ?? 60); // lookout
const lk = new Lookout({ spoolDir: path.join(args.data, "lookout-spool"), heartbeatInterval }); // lookout

const store = new Store(args.data);
// Runs the previous process died in (B-01's startup scan finds their messages; they are not requeued).
for (const runId of store.runsLeftOpen()) {
  console.error(`${runId} was interrupted: the host stopped during it`);
  lk.runFinished({ runId, outcome: "interrupted", note: "the host stopped during the run" }); // lookout
  store.endRun(runId);
}
const stopping = new AbortController();
const channel = new HttpChannel({
  dataDir: args.data,
  onMessage: ({ chatJid, id, sender, text }) => {
    const timestamp = new Date().toISOString();
    if (!store.storeMessage({ chatJid, id, sender, text, timestamp })) return;
    lk.messageReceived({ channel: "whatsapp", chatJid, messageId: id, timestamp, sender, group: groupOf(chatJid) }); // lookout
  },
});

/** One batch of a chat's new messages through one agent run (NanoClaw's processGroupMessages). */
async function processGroupMessages(chatJid) {
  const batch = store.newMessages(chatJid);
  if (batch.length === 0) return;
  const group = groupOf(chatJid);
  const runId = `run-${group}-${randomUUID().slice(0, 8)}`;
  const ids = batch.map((m) => m.id);
  store.markProcessing(ids, new Date().toISOString(), runId);
  lk.batchDispatched({ chatJid, messageIds: ids, runId, group }); // lookout
  console.log(`dispatched ${ids.length} message(s) of ${chatJid} to ${runId}`);
  let answer;
  try {
    const { signal } = stopping;
    answer = await lk.run({ runId, group, kind: "message", signal }, () => runAgent(group, batch, { signal })); // lookout
  } catch (e) {
    // B-01: no requeue. The batch stays marked in flight; Lookout reports it unanswered.
    console.error(`${runId} for ${chatJid} failed: ${e.message}; ${ids.length} message(s) left unanswered`);
    return;
  } finally {
    store.endRun(runId);
  }
  const timestamp = new Date().toISOString();
  store.storeBotResponse(chatJid, answer, timestamp, runId);
  lk.botResponse({ chatJid, timestamp, runId }); // lookout
  channel.sendMessage(chatJid, answer);
}

const queue = new GroupQueue({ maxConcurrent: 3, processMessages: processGroupMessages });
const loop = setInterval(() => {
  for (const chatJid of store.chatsWithNewMessages()) queue.enqueueMessageCheck(chatJid);
}, POLL_INTERVAL_MS);

process.on("SIGTERM", async () => {
  clearInterval(loop);
  stopping.abort(); // runs in progress end "interrupted"
  await channel.close();
  await lk.close(2000); // lookout
  process.exit(143);
});

const port = await channel.connect(Number(args.port));
console.log(`miniclaw listening on http://127.0.0.1:${port}`);
