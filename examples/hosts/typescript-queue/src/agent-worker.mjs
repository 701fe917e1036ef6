// A stand-in for the agent in its container: reads {group, messages} on stdin, thinks for
// AGENT_DELAY_MS (default 300), answers on stdout. So the tests can make it fail the way runs fail:
// a message containing "/oom" gets the process killed mid-batch (SIGKILL, as the OOM killer does),
// one containing "/hang" makes it think for ten minutes.

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const { group, messages } = JSON.parse(input);
const texts = messages.map((m) => m.text ?? "");
const delay = Number(process.env.AGENT_DELAY_MS ?? 300);

await new Promise((r) => setTimeout(r, delay / 2));
if (texts.some((t) => t.includes("/oom"))) process.kill(process.pid, "SIGKILL");
await new Promise((r) => setTimeout(r, texts.some((t) => t.includes("/hang")) ? 600_000 : delay / 2));
process.stdout.write(`[${group}] read ${messages.length} message(s); last: ${texts.at(-1)}\n`);
