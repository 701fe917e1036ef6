"""The host's chat side, reduced to files so the example runs anywhere.

- `MessageStore`: the messages the host has received (SQLite, like pynchy's `messages` table).
- `FakeSlack`: a channel whose upstream history is `<data>/slack-history.jsonl` (what Slack holds:
  one JSON object a line, `{"id", "chat", "sender", "text"}`), and whose outbound messages (the
  host's own: boot message, task output) are appended to `<data>/outbox.jsonl` and printed.
"""

import json
import sqlite3
import time
from pathlib import Path


class MessageStore:
    def __init__(self, path):
        self.db = sqlite3.connect(str(path))
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, chat TEXT NOT NULL,"
            " sender TEXT, text TEXT, stored_at REAL NOT NULL, source TEXT NOT NULL)")
        self.db.commit()

    def has(self, message_id):
        return self.db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() \
            is not None

    def store(self, messages, source):
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                [(m["id"], m["chat"], m.get("sender"), m.get("text"), time.time(), source)
                 for m in messages])


class FakeSlack:
    def __init__(self, name, data_dir):
        self.name = name
        self.history = Path(data_dir) / "slack-history.jsonl"
        self.outbox = Path(data_dir) / "outbox.jsonl"
        self.connected = False

    def connect(self):
        self.connected = True

    def fetch_history(self, chat):
        """Every message upstream holds for `chat` (a reconnect's catch-up query)."""
        if not self.history.exists():
            return []
        out = []
        for line in self.history.read_text().splitlines():
            if line.strip():
                m = json.loads(line)
                if m.get("chat") == chat:
                    out.append(m)
        return out

    def send(self, group, text):
        with open(self.outbox, "a", encoding="utf-8") as f:
            f.write(json.dumps({"group": group, "text": text}, ensure_ascii=False) + "\n")
        print("[%s] %s" % (group, text), flush=True)
