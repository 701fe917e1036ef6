"""A host that emits while lookoutd is down, says SPOOLED once everything is on disk, then hangs
until the test kills it with SIGKILL.   Usage: spool_then_hang.py URL SPOOL_DIR TAG N"""

import json
import sys
import time

from lookout_client import Lookout

url, spool_dir, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lk = Lookout(url, spool_dir=spool_dir, max_backoff=0.2)
with lk.run(tag, "main", task="killed"):  # never finishes: the process dies inside
    for i in range(n):
        lk.emit("heartbeat", target="t", t=tag, n=i)
    deadline = time.monotonic() + 120
    while True:
        s = lk.stats()
        if s["queued"] == 0 and s["spooled"] == n + 1:
            break
        if time.monotonic() > deadline:
            print("STUCK", json.dumps(s), flush=True)
            sys.exit(1)
        time.sleep(0.01)
    print("SPOOLED", json.dumps(s), flush=True)
    time.sleep(3600)
