"""Distributed suite: a deferred versions sensor waiting for the release named in the run's conf."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_ecoinvent.sensors.ecoinvent import EcoinventVersionSensor

with DAG(
    dag_id="dist_versions_sensor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecoinvent", "distributed-test"],
) as dag:
    EcoinventVersionSensor(
        task_id="wait_for_version",
        version="{{ dag_run.conf['version'] }}",
        deferrable=True,
        poke_interval=2,
        timeout=600,
    )
