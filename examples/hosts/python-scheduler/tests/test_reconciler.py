"""Seed 000, fix 1: a Slack message dropped during the restart cycle was found by the channel
reconciler but nobody was told. Now the host reports `messages_recovered` and lookoutd tells the
group within 10 seconds; messages already recovered are not news again."""

import json
import time

from conftest import GROUP, host_config

from minipynchy.channels import MessageStore

RECOVERED = "Recovered 2 missed message(s) from #slack — processing now."


def test_messages_found_by_the_reconciler_are_announced_to_the_group(hook, start_host, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    history = [
        {"id": "1772010001.000100", "chat": "C0ADMIN1", "sender": "U1", "text": "morning"},
        {"id": "1772010002.000200", "chat": "C0ADMIN1", "sender": "U1",
         "text": "is your local git repo dirty?"},
        {"id": "1772010003.000300", "chat": "C0ADMIN1", "sender": "U1", "text": "c"},
        {"id": "1772010004.000400", "chat": "C0OTHER", "sender": "U2", "text": "another chat"},
    ]
    (data / "slack-history.jsonl").write_text("".join(json.dumps(m) + "\n" for m in history))
    # The host received the first one before the Socket Mode gap.
    store = MessageStore(data / "messages.db")
    store.store(history[:1], source="socket")
    store.db.close()

    host = start_host(host_config())
    host.wait_for_line(r"recovered 2 missed message")
    recovered_at = time.monotonic()
    assert host.wait() == 0, host.output()
    [note] = hook.wait_for(lambda n: n.text.startswith("Recovered"), "the recovery notice")
    assert note.text == RECOVERED
    assert (note["group"], note["severity"]) == (GROUP, "info")
    print("recovery notice %.2fs after the host recovered them" % (note["at"] - recovered_at))
    assert note["at"] - recovered_at < 10

    # The next start finds nothing missing: no second notice.
    host = start_host(host_config(), name="again")
    assert host.wait() == 0, host.output()
    time.sleep(3)
    assert [n.text for n in hook.matching(lambda n: n.text.startswith("Recovered"))] == [RECOVERED]
