"""Channel reconciliation (pynchy's `chat/reconciler.py`): after a (re)connect, ask upstream for
the chat's history and store what never arrived. Before Lookout this was silent; now the host
reports what it recovered and lookoutd tells the group."""

import logging

log = logging.getLogger("minipynchy.reconciler")


class Reconciler:
    def __init__(self, store, channel, chat, group, lk):  # lookout
        self.store, self.channel, self.chat, self.group = store, channel, chat, group
        self.lk = lk  # lookout

    def reconcile_all_channels(self):
        missed = [m for m in self.channel.fetch_history(self.chat) if not self.store.has(m["id"])]
        if not missed:
            return 0
        self.store.store(missed, source="reconciler")
        ids, channel = [m["id"] for m in missed], self.channel.name
        log.info("recovered %d missed message(s) from #%s: %s", len(ids), channel, ids)
        self.lk.messages_recovered(channel, ids, chat_jid=self.chat, group=self.group)  # lookout
        return len(ids)
