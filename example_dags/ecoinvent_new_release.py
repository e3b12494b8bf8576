"""Wait for the next ecoinvent release, then ingest it, pinned to the version that arrived.

The sensor is deferrable: while it waits (days, weeks) it holds no worker slot, only a cheap poll on the
triggerer. It pushes the version it found, and the ingestion reads that exact version, never "latest"
(a second release published mid-run must not change what this run reads).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator
from airflow_provider_ecoinvent.pools import ecoinvent_pool
from airflow_provider_ecoinvent.sensors.ecoinvent import EcoinventVersionSensor

OUTPUT_ROOT = os.environ.get("ECOINVENT_OUTPUT_ROOT", "file:///tmp/ecoinvent")
# Seconds between checks while waiting; releases come a few times a year, so hourly is plenty.
POLL_SECONDS = float(os.environ.get("ECOINVENT_WATCH_INTERVAL", "3600"))

with DAG(
    dag_id="ecoinvent_new_release",
    description="Wait for a release newer than the one we have, then ingest it",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "pool": ecoinvent_pool()},
    tags=["ecoinvent", "example"],
) as dag:
    # [START howto_version_sensor]
    wait_for_release = EcoinventVersionSensor(
        task_id="wait_for_release",
        # The release we already ingested; set the Variable after each ingestion, or keep it in code.
        newer_than="{{ var.value.get('ecoinvent_known_version', '3.10') }}",
        system_model="cutoff",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(days=1).total_seconds(),  # the next daily run takes over
    )
    # [END howto_version_sensor]

    ingest_release = EcoinventDatasetsOperator(
        task_id="ingest_release",
        version="{{ ti.xcom_pull(task_ids='wait_for_release')['version'] }}",
        system_model="cutoff",
        query="steel",  # the selection: a free search; only the scoring is billed
        indicator_ids=[1, 2, 3],
        max_unique_datasets=500,
        output_uri=(
            "{{ var.value.get('ecoinvent_output_root', '" + OUTPUT_ROOT + "') }}"
            "/releases/{{ ti.xcom_pull(task_ids='wait_for_release')['version'] }}/steel.jsonl"
        ),
    )

    wait_for_release >> ingest_release
