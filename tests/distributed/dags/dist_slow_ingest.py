"""Distributed suite: one ingestion whose output key comes from the run's conf, retried within seconds.

Scores 200 datasets of a pinned version in batches of 25 (the ``ecoinvent_small_batches`` connection), so
a test can slow the batches down at the emulator and kill the worker in the middle of the write.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

with DAG(
    dag_id="dist_slow_ingest",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2), "pool": "ecoinvent_api"},
    tags=["ecoinvent", "distributed-test"],
) as dag:
    EcoinventDatasetsOperator(
        task_id="score",
        dataset_ids=list(range(1, 201)),
        indicator_ids=[1, 2],
        version="3.11",
        system_model="cutoff",
        output_uri="{{ dag_run.conf['output_uri'] }}",
        max_in_flight=2,
        max_unique_datasets=200,
        ecoinvent_conn_id="ecoinvent_small_batches",
    )
