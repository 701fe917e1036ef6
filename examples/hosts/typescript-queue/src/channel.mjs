// The chat channel, reduced to HTTP so the example runs anywhere (NanoClaw's is WhatsApp):
// inbound messages are `POST /inbound {chat_jid, id, sender, text}`, or an array of them arriving
// together (a burst after a reconnect: stored in one go, so they make one batch); what the bot
// sends is appended to <data>/outbox.jsonl and printed.

import fs from "node:fs";
import http from "node:http";
import path from "node:path";

export class HttpChannel {
  constructor({ name = "whatsapp", dataDir, onMessage }) {
    this.name = name;
    this.outbox = path.join(dataDir, "outbox.jsonl");
    this.onMessage = onMessage;
    this.server = http.createServer((req, res) => this.#serve(req, res));
  }

  /** Listens on 127.0.0.1:`port` (0: any free port); resolves with the port. */
  connect(port) {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => resolve(this.server.address().port));
    });
  }

  async #serve(req, res) {
    if (req.method !== "POST" || req.url !== "/inbound") {
      res.writeHead(404).end();
      return;
    }
    let body = "";
    for await (const chunk of req) body += chunk;
    try {
      const parsed = JSON.parse(body);
      const messages = Array.isArray(parsed) ? parsed : [parsed];
      for (const m of messages) {
        if (typeof m?.chat_jid !== "string" || typeof m?.id !== "string") throw new Error("chat_jid and id are required");
      }
      for (const m of messages) this.onMessage({ chatJid: m.chat_jid, id: m.id, sender: m.sender ?? null, text: m.text ?? "" });
      res.writeHead(202).end();
    } catch (e) {
      res.writeHead(400, { "content-type": "text/plain" }).end(String(e?.message ?? e));
    }
  }

  sendMessage(chatJid, text) {
    fs.appendFileSync(this.outbox, JSON.stringify({ chat_jid: chatJid, text }) + "\n");
    console.log(`-> ${chatJid}: ${text}`);
  }

  close() {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
