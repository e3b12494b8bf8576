"""Event-driven: a run starts when ecoinvent publishes a new database version, and ingests that version.

The asset's watcher (``EcoinventNewVersionTrigger``) polls ``/versions`` on the triggerer and emits one
asset event per newly published version; the DAG is scheduled on the asset, so each event starts one run.
Watchers run only while this DAG is unpaused and a triggerer is running.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator
from airflow_provider_ecoinvent.pools import ecoinvent_pool
from airflow_provider_ecoinvent.triggers.ecoinvent import EcoinventNewVersionTrigger

OUTPUT_ROOT = os.environ.get("ECOINVENT_OUTPUT_ROOT", "file:///tmp/ecoinvent")
# Seconds between polls of /versions; releases come a few times a year, so hourly is plenty.
POLL_SECONDS = float(os.environ.get("ECOINVENT_WATCH_INTERVAL", "3600"))

# [START howto_release_watcher]
new_ecoinvent_release = Asset(
    name="ecoinvent_new_release",
    uri="ecoinvent://versions/cutoff",
    watchers=[
        AssetWatcher(
            name="ecoinvent_release_watcher",
            trigger=EcoinventNewVersionTrigger(system_model="cutoff", poll_interval=POLL_SECONDS),
        )
    ],
)
# [END howto_release_watcher]

with DAG(
    dag_id="ecoinvent_release_watcher",
    description="Ingest each new ecoinvent release as soon as it is published",
    schedule=[new_ecoinvent_release],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "pool": ecoinvent_pool()},
    tags=["ecoinvent", "example"],
) as dag:

    @task
    def released_version(**context) -> str:
        """The version named by the asset event that started this run; a manual run takes the latest."""
        events = context["triggering_asset_events"][new_ecoinvent_release]
        if events:
            return events[-1].extra["payload"]["version"]
        from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

        return EcoinventHook().resolve_version("latest", "cutoff")

    version = released_version()
    EcoinventDatasetsOperator(
        task_id="ingest_new_release",
        version=version,
        system_model="cutoff",
        query="cement",
        indicator_ids=[1, 2, 3],
        max_unique_datasets=500,
        output_uri=(
            "{{ var.value.get('ecoinvent_output_root', '" + OUTPUT_ROOT + "') }}"
            "/releases/{{ ti.xcom_pull(task_ids='released_version') }}/cement.jsonl"
        ),
    )
