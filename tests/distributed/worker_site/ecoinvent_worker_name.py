"""The Celery workers' ``[core] hostname_callable``: each reports its own name, as two hosts would.

Both workers of the distributed suite run on one machine, so the default (the FQDN) would give every task
instance the same ``hostname`` and hide which worker ran it.
"""

from __future__ import annotations

import os


def get() -> str:
    return os.environ["ECOINVENT_WORKER_NAME"]
