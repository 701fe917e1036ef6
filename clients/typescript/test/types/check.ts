// Type-checked with tsc (test.sh): the declarations describe the API as a TypeScript host uses it.
import { Lookout, Run, VERSION } from "lookout-client";
import type { BootReport, LookoutOptions, LookoutStats, RunOptions } from "lookout-client";
import DefaultLookout from "lookout-client";

const options: LookoutOptions = {
  url: "http://127.0.0.1:8484",
  token: "t",
  spoolDir: "/var/spool/lookout",
  maxSpoolBytes: 16 * 1024 * 1024,
  heartbeatInterval: 60_000,
  onError: (category: string, message: string) => void [category, message],
};
const lk: Lookout = new Lookout(options);
const lk2 = new DefaultLookout();
const quiet = new Lookout({ onError: null });

const queued: boolean = lk.emit("deploy", { sha: "abc", anything: { nested: true } });
lk.messageReceived({ channel: "slack", chatJid: "c1", messageId: "m1", timestamp: new Date(), sender: "ana" });
lk.messagesRecovered({ channel: "slack", messageIds: ["m1", "m2"] });
lk.batchDispatched({ chatJid: "c1", messageIds: ["m1"], runId: "r1" });
lk.botResponse({ chatJid: "c1", runId: "r1" });
lk.deliveryQueued({ deliveryId: "d1", chatJid: "c1" });
lk.deliverySent({ deliveryId: "d1", chatJid: "c1" });
lk.deliveryFailed({ deliveryId: "d1", chatJid: "c1", error: "429" });
lk.channelConnected({ channel: "slack" });
lk.channelDisconnected({ channel: "slack", reason: "socket mode disconnected" });
lk.runStarted({ runId: "r1", group: "g", kind: "task", task: "nightly", container: "c" });
lk.runHeartbeat({ runId: "r1", progress: 3 });
lk.runFinished({ runId: "r1", outcome: "success" });
lk.containerStatus({ container: "c", status: "running" });
lk.heartbeat({ target: "bridge" });
lk.versionStamp({ target: "bridge", sha: "abc" });
lk.deploy({ sha: "abc", commitMessage: "fix" });
lk.taskScheduled({ task: "nightly", nextRun: Date.now() + 60_000 });
const hb = lk.startHeartbeat({ target: "bridge", interval: 30_000 });
hb.stop();

async function main(): Promise<void> {
  const ac = new AbortController();
  const opts: RunOptions = { runId: "r2", group: "g", kind: "message", signal: ac.signal };
  const n: number = await lk.run(opts, async (run: Run) => {
    run.progress({ step: 1, tool: "bash" });
    run.heartbeat();
    const id: string = run.id;
    return id.length;
  });
  const report: BootReport | null = await lk.bootReady({ service: "host" });
  const message: string | null | undefined = report?.message;
  const begun = await lk.bootBegin({ service: "host", version: "1.0.0" });
  const failedStarts: number | undefined = begun?.failed_starts;
  await lk.bootFail({ service: "host", cause: "bad config" });
  const ok: boolean = await lk.flush(2_000);
  const s: LookoutStats = lk.stats();
  const dropped: number = s.dropped + s.droppedSpoolFull;
  const closed: boolean = await lk.close();
  void [n, message, failedStarts, ok, dropped, closed, queued, lk2, quiet, VERSION];
}

// Workers: a fetch handler hands the flush to waitUntil.
interface ExecutionContext {
  waitUntil(p: Promise<unknown>): void;
}
export default {
  async fetch(_req: Request, _env: unknown, ctx: ExecutionContext): Promise<Response> {
    lk.heartbeat({ target: "worker" });
    ctx.waitUntil(lk.flush(5_000));
    return new Response("ok");
  },
};

// Mistakes the types catch.
// @ts-expect-error kind must be "message" or "task"
lk.runStarted({ runId: "r", group: "g", kind: "batch" });
// @ts-expect-error chatJid is required
lk.botResponse({ runId: "r" });
// @ts-expect-error messageIds is a list
lk.messagesRecovered({ channel: "slack", messageIds: "m1" });
// @ts-expect-error bootFail needs a cause
void lk.bootFail({ service: "x" });

void main;
