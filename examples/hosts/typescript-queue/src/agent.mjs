// An agent run: NanoClaw starts a container per run; here a child process (agent-worker.mjs) gets
// the batch on stdin and writes its answer on stdout. A run that dies (OOM-killed, crashed) rejects
// with what the exit said, and its batch is left without an answer.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const worker = fileURLToPath(new URL("./agent-worker.mjs", import.meta.url));

/** Runs the agent for `group` on `messages`; resolves with its answer. `signal` stops it. */
export function runAgent(group, messages, { signal } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker], { stdio: ["pipe", "pipe", "inherit"], signal });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code, sig) => {
      if (code === 0) return resolve(out.trim());
      reject(new Error(sig ? `agent killed by ${sig} mid-batch` : `agent exited with ${code}: ${out.trim().split("\n").at(-1)}`));
    });
    child.stdin.on("error", () => {}); // a worker that dies before reading
    child.stdin.end(JSON.stringify({ group, messages }));
  });
}
