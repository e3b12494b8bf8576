"""Weekly ingestion: score a selection of ecoinvent datasets and land them in object storage.

resolve the latest version (pinned for the whole run) -> pick datasets with a free search -> score them
for a few indicators chosen by name (billed: the cost guards cap it) -> write JSON Lines atomically -> log a summary.

Where the output goes: the Airflow Variable ``ecoinvent_output_root`` if set, else the environment
variable ``ECOINVENT_OUTPUT_ROOT``, else ``file:///tmp/ecoinvent``. Any ``ObjectStoragePath`` URL works,
e.g. ``s3://aws_default@my-bucket/ecoinvent``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator
from airflow_provider_ecoinvent.pools import ecoinvent_pool

# Cheap module-level constants only: this file is parsed often, so no connection or Variable is read here.
OUTPUT_ROOT = os.environ.get("ECOINVENT_OUTPUT_ROOT", "file:///tmp/ecoinvent")
SYSTEM_MODEL = "cutoff"
SEARCH = "electricity"  # a free search; only the scoring below is billed
MAX_DATASETS = 250  # the selection size: a licence counts every distinct dataset scored
MAX_INDICATORS = 10  # a licence counts every distinct indicator scored, too

scored_datasets = Asset(name="ecoinvent_scored_datasets", uri="ecoinvent://scored-datasets/cutoff")

with DAG(
    dag_id="ecoinvent_ingest_datasets",
    description="Score selected ecoinvent datasets and write them to object storage",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        # Every API task shares one pool, so several DAGs cannot overrun the API together: $ECOINVENT_POOL
        # once you created it (docs/scheduling.md), else default_pool (a missing pool would block the tasks).
        "pool": ecoinvent_pool(),
    },
    tags=["ecoinvent", "example"],
) as dag:

    @task
    def resolve_version() -> str:
        """Resolve "latest" once: every later task of the run reads the same release."""
        from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

        return EcoinventHook().resolve_version("latest", SYSTEM_MODEL)

    @task
    def pick_datasets(version: str) -> list[int]:
        """Search (free, not billed) and hand the ids downstream through XCom: a small list of ints."""
        from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

        found = EcoinventHook().search_datasets(SEARCH, version=version, system_model=SYSTEM_MODEL)
        return sorted(dataset["id"] for dataset in found)[:MAX_DATASETS]

    version = resolve_version()
    # [START howto_datasets_operator]
    ingest = EcoinventDatasetsOperator(
        task_id="score_datasets",
        dataset_ids=pick_datasets(version),
        # By name, resolved against the pinned version at run time (a free call); ids work too: [1, 2, 3].
        indicators=[
            "IPCC 2021 | climate change | global warming potential (GWP100)",  # one indicator
            {"method": "EF v3.1", "category": "water use"},  # every indicator matching these keys
            {"method": "ReCiPe 2016 v1.03, midpoint (H)", "category": "land use"},
            # {"method": "EF v3.1"} alone would take every indicator of the method, any number of them.
        ],
        version=version,
        system_model=SYSTEM_MODEL,
        # run_after exists for manual and asset-triggered runs too, unlike the logical date ({{ ds }}).
        output_uri=(
            "{{ var.value.get('ecoinvent_output_root', '" + OUTPUT_ROOT + "') }}"
            "/scored/{{ dag_run.run_after | ds }}/{{ run_id | replace(':', '_') | replace('+', '_') }}.jsonl"
        ),
        max_unique_datasets=MAX_DATASETS,  # fail before any billed call if the selection grows
        max_unique_indicators=MAX_INDICATORS,
        outlets=[scored_datasets],
    )
    # [END howto_datasets_operator]

    # [START howto_read_manifest]
    @task
    def summarise(manifest: dict) -> None:
        """The manifest is small (counts, uri, sha256); the records themselves never pass through XCom."""
        print(
            f"Wrote {manifest['record_count']} datasets of ecoinvent {manifest['version']}/"
            f"{manifest['system_model']} to {manifest['output_uri']} "
            f"({manifest['bytes']} bytes, {manifest['api_calls']} API calls, "
            f"{manifest['missing_datasets']} ids missing)."
        )

    # [END howto_read_manifest]

    summarise(ingest.output)
