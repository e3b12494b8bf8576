"""Operators for the ecoinvent API: the public import path of both.

* :class:`EcoinventOperator` (:mod:`.generic`) calls any endpoint; small answers go to XCom, large ones to a
  JSON Lines file on any ``ObjectStoragePath``.
* :class:`EcoinventDatasetsOperator` (:mod:`.datasets`) is the ingestion workhorse: selected datasets, scored
  for a list of indicators against one pinned version, streamed to JSON Lines or Parquet, atomically, with a
  licence cost guard, a dry run and a manifest in XCom and on the outlet asset events; with an ``output_uri``
  ending with ``/``, a partitioned, resumable dataset directory, fanned out with ``shard``/:func:`shards`
  and completed by :class:`EcoinventDatasetsCommitOperator` (:mod:`.commit`).

Both validate their arguments in the constructor (values that are templated: at the start of
``execute``, once rendered), always before any network call, and never do I/O in the constructor.
Serialized DAGs record each class's own module (``_task_module``); Airflow uses it only to match
plugin-defined extra links and to show it, and a DAG is serialized again when its file is parsed.
"""

from __future__ import annotations

from airflow_provider_ecoinvent.operators._partitions import shards
from airflow_provider_ecoinvent.operators.commit import EcoinventDatasetsCommitOperator
from airflow_provider_ecoinvent.operators.datasets import EcoinventDatasetsOperator
from airflow_provider_ecoinvent.operators.generic import EcoinventOperator

__all__ = ["EcoinventDatasetsCommitOperator", "EcoinventDatasetsOperator", "EcoinventOperator", "shards"]
