"""Lookout's Python client: tell lookoutd what an agent host does, without ever harming the host.

    from lookout_client import Lookout

    lk = Lookout()  # LOOKOUT_URL, LOOKOUT_TOKEN; spool_dir= to survive lookoutd being down
    lk.message_received("slack", chat_jid="C1", message_id="m1")
    with lk.run("run-42", group="main", task="nightly") as run:
        run.progress(step=1)
        ...

`emit` and the typed helpers return at once and never raise; a background thread sends events in
batches, spools them to disk while lookoutd is unreachable and replays them in order (each with an
idempotency key, so nothing is stored twice). See docs/clients/python.md in the repository.
"""

from ._client import Lookout, Run, Terminated
from ._version import __version__

__all__ = ["Lookout", "Run", "Terminated", "__version__"]
