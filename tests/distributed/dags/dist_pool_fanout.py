"""Distributed suite: four slow ingestions at once, competing for the ``ecoinvent_api`` pool.

Each task keeps at most ``MAX_IN_FLIGHT`` batch calls open; the pool admits as many tasks as it has slots,
whichever worker runs them, so the API sees at most slots x ``MAX_IN_FLIGHT`` calls at a time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

MAX_IN_FLIGHT = 2
PARTS = 4

with DAG(
    dag_id="dist_pool_fanout",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecoinvent", "distributed-test"],
) as dag:
    EcoinventDatasetsOperator.partial(
        task_id="score_part",
        indicator_ids=[1],
        version="3.11",
        system_model="cutoff",
        max_in_flight=MAX_IN_FLIGHT,
        max_unique_datasets=100,
        pool="ecoinvent_api",
        ecoinvent_conn_id="ecoinvent_small_batches",
    ).expand_kwargs(
        [
            {
                "dataset_ids": list(range(1 + 100 * part, 101 + 100 * part)),
                "output_uri": "{{ dag_run.conf['output_root'] }}/part-" + str(part) + ".jsonl",
            }
            for part in range(PARTS)
        ]
    )
