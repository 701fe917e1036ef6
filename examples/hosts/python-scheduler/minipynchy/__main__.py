"""minipynchy: a small agent host shaped like pynchy, wired to Lookout.

    python -m minipynchy --config config.toml --data DIR [--once]

Start-up (pynchy's `startup_handler.py`): load the settings, open the message store, connect the
channel, send the boot message to the admin group, reconcile the channel, then run the scheduler.
With `--once` it exits after every task ran once. The lines that talk to Lookout end in
`# lookout` (README.md counts them).
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from lookout_client import Lookout  # lookout

from . import config
from .channels import FakeSlack, MessageStore
from .reconciler import Reconciler
from .task_scheduler import Scheduler

SERVICE = "pynchy"
VERSION = "0.3.1"
log = logging.getLogger("minipynchy")


def main(argv=None):
    p = argparse.ArgumentParser(prog="minipynchy")
    p.add_argument("--config", required=True)
    p.add_argument("--data", required=True, help="the host's data directory")
    p.add_argument("--once", action="store_true", help="exit after every task ran once")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)

    # LOOKOUT_URL from the env; a run's heartbeats every LOOKOUT_HEARTBEAT_INTERVAL seconds (60),
    # the same interval as lookoutd's thresholds.heartbeat_interval.
    heartbeat = float(os.environ.get("LOOKOUT_HEARTBEAT_INTERVAL", 60))  # lookout
    lk = Lookout(spool_dir=data / "lookout-spool", heartbeat_interval=heartbeat)  # lookout
    lk.boot_begin(SERVICE, version=VERSION)  # lookout
    try:
        settings = config.load(args.config)
        store = MessageStore(data / "messages.db")
        slack = FakeSlack(settings.slack_channel, data)
        slack.connect()
    except Exception as e:
        cause = "%s: %s" % (type(e).__name__, e)
        lk.boot_fail(SERVICE, cause=cause)  # lookout
        log.critical("boot failed: %s", cause)
        return 1
    report = lk.boot_ready(SERVICE)  # lookout
    warning = (report or {}).get("message")  # lookout
    slack.send(settings.admin_group, "🦞 online" + ("\n" + warning if warning else ""))

    reconciler = Reconciler(store, slack, settings.slack_chat, settings.slack_group, lk)  # lookout
    reconciler.reconcile_all_channels()
    Scheduler(settings.tasks, slack, lk).run_forever(once=args.once)  # lookout
    return 0


if __name__ == "__main__":
    sys.exit(main())
