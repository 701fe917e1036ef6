"""A host inside a run block when SIGTERM comes (as systemd or docker stop sends it). It has no
SIGTERM handler of its own and no shutdown code: the client's are all there is.

Usage: sigterm_run.py URL SPOOL_DIR|- RUN_ID EXIT_TIMEOUT sync|async
Prints RUNNING inside the block, and at the very end (after the client's own exit hook) EXIT
with the client's stats."""

import atexit
import json
import logging
import sys

lk = None


def report():  # registered before lookout_client's hook, so it runs after it
    print("EXIT", json.dumps(lk.stats() if lk else None), flush=True)


atexit.register(report)
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")

from lookout_client import Lookout  # noqa: E402

url, spool_dir, run_id, exit_timeout, mode = sys.argv[1:6]
lk = Lookout(url, spool_dir=None if spool_dir == "-" else spool_dir,
             exit_timeout=float(exit_timeout), max_backoff=0.2)

if mode == "sync":
    import time

    with lk.run(run_id, "main", task="nightly"):
        print("RUNNING", flush=True)
        while True:
            time.sleep(1)
else:
    import asyncio

    async def main():
        async with lk.arun(run_id, "main", task="nightly"):
            print("RUNNING", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
