"""Seed 000, fix 3: the service crashed three times in 30 seconds on a renamed config key
(`caldav.nextcloud.password`, now `password_env`) and nobody was told. With the boot handler wired
(`boot_begin` / `boot_fail` / `boot_ready`), the third failed start is a crash-loop alert naming the
key, and the first good start says it recovered, in the host's own boot message too."""

import time

from conftest import SERVICE, host_config

CRASH_LOOP = "🔁 pynchy is crash-looping: 3 failed start(s) in 5m with no ready. Last failure: {}"
RECOVERED = "⚠️ Service recovered after 3 failed start(s). Last failure: {}"


def test_a_renamed_config_key_crash_loops_then_the_recovery_is_reported(hook, start_host):
    bad = host_config(renamed_key=True)
    causes = []
    for attempt in range(1, 4):
        started_at = time.monotonic()
        host = start_host(bad, name="bad%d" % attempt)
        assert host.wait() == 1, host.output()
        causes.append(host.wait_for_line(r"boot failed: (.*)").group(1))
        if attempt < 3:
            assert not hook.matching(lambda n: n["key"] == "crash_loop:" + SERVICE), hook.texts()
    cause = causes[-1]
    assert cause == ("ConfigError: caldav.nextcloud.password: extra inputs are not permitted "
                     "[type=extra_forbidden]")
    assert causes == [cause] * 3

    # The N-th failed start is the alert, with the cause the host gave.
    [loop] = hook.wait_for(lambda n: n["key"] == "crash_loop:" + SERVICE, "the crash-loop alert")
    assert loop.text == CRASH_LOOP.format(cause)
    assert loop["severity"] == "critical"
    assert loop["payload"]["failed_starts"] == 3
    print("crash-loop alert %.2fs after the third start began" % (loop["at"] - started_at))
    assert loop["at"] - started_at < 15

    # The key fixed: the next start is ready, and says what happened before it.
    started_at = time.monotonic()
    host = start_host(host_config(), name="fixed")
    assert host.wait() == 0, host.output()
    [recovered] = hook.wait_for(lambda n: n["key"] == "boot_recovered:" + SERVICE,
                                "the recovery report")
    assert recovered.text == SERVICE + ": " + RECOVERED.format(cause)
    assert recovered["payload"]["failed_starts"] == 3
    print("recovery report %.2fs after the good start began" % (recovered["at"] - started_at))
    assert recovered["at"] - started_at < 15
    # The host's own boot message (to its admin group) carries the same line.
    assert host.outbox()[-1] == {"group": "admin-1",
                                 "text": "🦞 online\n" + RECOVERED.format(cause)}

    # A recovery is announced once: the next clean start says nothing more.
    host = start_host(host_config(), name="again")
    assert host.wait() == 0, host.output()
    assert host.outbox()[-1] == {"group": "admin-1", "text": "🦞 online"}
    time.sleep(2)  # what lookoutd would send about it has had time to arrive
    assert len(hook.matching(lambda n: n["key"] == "boot_recovered:" + SERVICE)) == 1
    assert len(hook.matching(lambda n: n["key"] == "crash_loop:" + SERVICE)) == 1, hook.texts()
