// The group queue (NanoClaw's group-queue.ts): one agent run at a time per chat, at most
// `maxConcurrent` runs in all. Messages arriving while a chat's run is active wait for the next
// batch; chats over the limit wait for a free slot.

export class GroupQueue {
  /** `processMessages(chatJid)` dispatches one batch of the chat's new messages; resolves when done. */
  constructor({ maxConcurrent = 3, processMessages, log = console }) {
    this.maxConcurrent = maxConcurrent;
    this.processMessages = processMessages;
    this.log = log;
    this.groups = new Map(); // chatJid -> { active, pending }
    this.waiting = [];
    this.active = 0;
  }

  #state(chatJid) {
    let s = this.groups.get(chatJid);
    if (!s) this.groups.set(chatJid, (s = { active: false, pending: false }));
    return s;
  }

  enqueueMessageCheck(chatJid) {
    const s = this.#state(chatJid);
    if (s.active) {
      s.pending = true;
    } else if (this.active >= this.maxConcurrent) {
      s.pending = true;
      if (!this.waiting.includes(chatJid)) this.waiting.push(chatJid);
    } else {
      this.#run(chatJid);
    }
  }

  async #run(chatJid) {
    const s = this.#state(chatJid);
    s.active = true;
    s.pending = false;
    this.active++;
    try {
      await this.processMessages(chatJid);
    } catch (e) {
      this.log.error(`queue: processing ${chatJid} failed: ${e?.message ?? e}`);
    } finally {
      s.active = false;
      this.active--;
      this.#drain(chatJid);
    }
  }

  #drain(chatJid) {
    if (this.#state(chatJid).pending) return this.#run(chatJid);
    while (this.waiting.length && this.active < this.maxConcurrent) {
      const next = this.waiting.shift();
      if (this.#state(next).pending) this.#run(next);
    }
  }

  /** True when no run is active and nothing waits. */
  idle() {
    return this.active === 0 && this.waiting.length === 0;
  }
}
