"""The Airflow pool that ecoinvent API tasks share, named without any I/O at DAG parse time.

A pool caps how many tasks call the API at once across every DAG. But Airflow (3.1 to 3.3) never
schedules a task whose pool does not exist: the scheduler logs "Tasks using non-existent pool ... will not
be scheduled" and the task waits for ever. A DAG file cannot check which pools exist (that is a database
query, and DAG files are parsed often), so the pool name comes from the environment: ``ECOINVENT_POOL``
once you have created the pool (``airflow pools set ecoinvent_api 4 "ecoinvent API calls"``), else
Airflow's ``default_pool``, which always exists.
"""

from __future__ import annotations

import os
from typing import Final

#: The environment variable naming the pool; set it where DAG files are parsed (the dag-processor).
POOL_ENV_VAR: Final = "ECOINVENT_POOL"
#: The pool name the docs recommend creating for ecoinvent API tasks.
RECOMMENDED_POOL: Final = "ecoinvent_api"
#: Airflow's own pool, present in every installation.
DEFAULT_POOL: Final = "default_pool"


def ecoinvent_pool() -> str:
    """The pool for ecoinvent API tasks: ``$ECOINVENT_POOL`` when set, else ``default_pool``.

    Reads only the environment, so it is safe at DAG parse time. Use it as ``pool=ecoinvent_pool()``
    or in ``default_args``.
    """
    return os.environ.get(POOL_ENV_VAR, "").strip() or DEFAULT_POOL


#: What DAG files import from here: the pool name, and the names it chooses between.
__all__ = ["DEFAULT_POOL", "POOL_ENV_VAR", "RECOMMENDED_POOL", "ecoinvent_pool"]
