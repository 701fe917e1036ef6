// The host's store (NanoClaw keeps it in SQLite; here a JSON file rewritten atomically, so the
// example needs no package). Messages carry `processingStartedAt`, the marker of NanoClaw's B-01:
// set for a whole batch when it is dispatched, cleared when a bot response is stored for the chat
// after the message. A run that dies leaves its batch marked: nothing here requeues it.

import fs from "node:fs";
import path from "node:path";

export class Store {
  constructor(dir) {
    this.file = path.join(dir, "store.json");
    this.data = { messages: [], responses: [] };
    try {
      this.data = JSON.parse(fs.readFileSync(this.file, "utf8"));
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
    }
  }

  #save() {
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.data));
    fs.renameSync(tmp, this.file);
  }

  storeMessage(m) {
    if (this.data.messages.some((x) => x.id === m.id)) return false;
    this.data.messages.push({ ...m, dispatched: false, processingStartedAt: null });
    this.#save();
    return true;
  }

  /** Messages of `chatJid` never dispatched (NanoClaw's getNewMessages, past the chat's cursor). */
  newMessages(chatJid) {
    return this.data.messages.filter((m) => m.chatJid === chatJid && !m.dispatched);
  }

  /** Chats with new messages. */
  chatsWithNewMessages() {
    return [...new Set(this.data.messages.map((m) => m.chatJid))].filter((c) => this.newMessages(c).length > 0);
  }

  /** Marks a batch as dispatched to `runId`, all at once (one write: B-01's one transaction). */
  markProcessing(ids, at, runId) {
    for (const m of this.data.messages) {
      if (ids.includes(m.id)) Object.assign(m, { dispatched: true, processingStartedAt: at, runId, runOpen: true });
    }
    this.#save();
  }

  /** The run ended (answered or not). */
  endRun(runId) {
    for (const m of this.data.messages) if (m.runId === runId) m.runOpen = false;
    this.#save();
  }

  /** Runs a previous process of the host started and never ended (it died during them). */
  runsLeftOpen() {
    return [...new Set(this.data.messages.filter((m) => m.runOpen).map((m) => m.runId))];
  }

  /** Stores the bot's answer and clears the marker of the chat's messages up to its time. */
  storeBotResponse(chatJid, text, timestamp, runId) {
    this.data.responses.push({ chatJid, text, timestamp, runId });
    for (const m of this.data.messages) {
      if (m.chatJid === chatJid && m.processingStartedAt !== null && m.timestamp <= timestamp) {
        m.processingStartedAt = null;
      }
    }
    this.#save();
  }
}
