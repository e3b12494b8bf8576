"""Distributed suite: one request written as a partitioned dataset, by one task or by mapped shards.

Both DAGs ask for exactly the same request (200 datasets of a pinned version, indicators 1 and 2, flat
Parquet, parts of 25 datasets: 8 parts), into the directory the run's conf names (``output_uri``, ending
with ``/``), so their part files must be byte-identical:

* ``dist_partitioned_ingest``: one task, retried within seconds, writes every part, ``_manifest.json`` and
  ``_SUCCESS`` (the crash test kills its worker between parts);
* ``dist_partitioned_fanout``: the same request dealt to ``SHARDS`` mapped tasks (``shard=(i, SHARDS)``),
  then the commit step that verifies every part and writes ``_manifest.json`` and ``_SUCCESS``.

The ``ecoinvent_small_batches`` connection sends batches of 25 ids: one scored call per part.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_ecoinvent.operators.ecoinvent import (
    EcoinventDatasetsCommitOperator,
    EcoinventDatasetsOperator,
    shards,
)

DATASETS = 200
PARTITION_SIZE = 25
SHARDS = 4
#: The request both DAGs send; only the output directory (from the run's conf) and the sharding differ.
REQUEST: dict[str, Any] = {
    "dataset_ids": list(range(1, DATASETS + 1)),
    "indicator_ids": [1, 2],
    "version": "3.11",
    "system_model": "cutoff",
    "format": "parquet",
    "layout": "flat",
    "partition_size": PARTITION_SIZE,
    "max_in_flight": 2,
    "max_unique_datasets": DATASETS,
    "ecoinvent_conn_id": "ecoinvent_small_batches",
    "output_uri": "{{ dag_run.conf['output_uri'] }}",
}
DEFAULT_ARGS: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=2), "pool": "ecoinvent_api"}

with DAG(
    dag_id="dist_partitioned_ingest",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ecoinvent", "distributed-test"],
):
    EcoinventDatasetsOperator(task_id="score", **REQUEST)

with DAG(
    dag_id="dist_partitioned_fanout",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ecoinvent", "distributed-test"],
):
    # [START sharded]
    ingest = EcoinventDatasetsOperator.partial(task_id="score_shard", **REQUEST).expand(shard=shards(SHARDS))
    # No API call: it needs no slot of the ecoinvent_api pool.
    commit = EcoinventDatasetsCommitOperator(
        task_id="commit", output_uri="{{ dag_run.conf['output_uri'] }}", pool="default_pool"
    )
    ingest >> commit
    # [END sharded]
