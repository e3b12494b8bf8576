"""A whole ecoinvent release: every dataset, scored for every indicator of one method, as one Parquet dataset.

N mapped ingestion shards (each selects every dataset of the pinned release with the free search, plans the
same parts over the whole selection and writes only its share of them) -> one commit step (no API call: it
checks every shard and every part, then writes ``_manifest.json`` and ``_SUCCESS``, and emits the asset).

What it costs: the real 3.11 cutoff release has about 25,000 datasets; EF v3.1 has 25 indicators, so a full
run makes about 250 scored batch calls (100 datasets x up to 100 indicators each; each shard rounds its own
share up to 100) and writes 625,000 rows in about 50 parts of at most 1,000 datasets. The test suite runs
exactly that against the emulator (25,000 datasets, no latency) in about a minute. Crashes cost only the parts
in flight: a retried shard keeps the parts it committed. The weekly rerun against the unchanged release makes
no scored call at all (every part is already there and verified) and reports ``skipped``; a new release is a
new directory.

Where it goes: ``{root}/full_release/{release}/cutoff/ef_v3.1/``, where root is the Airflow Variable
``ecoinvent_output_root`` if set, else the environment variable ``ECOINVENT_OUTPUT_ROOT``, else
``file:///tmp/ecoinvent``; use object storage (``s3://aws_default@my-bucket/ecoinvent``) when the shards run
on several workers. The release is the DAG parameter ``release`` (trigger with another to ingest it).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, Param

from airflow_provider_ecoinvent.operators.ecoinvent import (
    EcoinventDatasetsCommitOperator,
    EcoinventDatasetsOperator,
    shards,
)
from airflow_provider_ecoinvent.pools import ecoinvent_pool

# Cheap module-level constants only: this file is parsed often, so no connection or Variable is read here.
OUTPUT_ROOT = os.environ.get("ECOINVENT_OUTPUT_ROOT", "file:///tmp/ecoinvent")
RELEASE = "3.11"  # pinned: a full-release dataset is one release; trigger with {"release": ...} for another
SYSTEM_MODEL = "cutoff"
METHOD = "EF v3.1"  # every indicator of the method (25); the licence counts each distinct indicator scored
SHARDS = 4  # mapped tasks; the ecoinvent_api pool caps how many run at once
MAX_DATASETS = 30_000  # the cost guard: a release larger than this fails before any scored call

full_release = Asset(name="ecoinvent_full_release", uri="ecoinvent://full-release/cutoff/ef-v3.1")

with DAG(
    dag_id="ecoinvent_full_release",
    description="Every dataset of an ecoinvent release, scored for one LCIA method, as a partitioned Parquet dataset",
    schedule="@weekly",  # a rerun of the same release fetches nothing: every part is already there
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"release": Param(RELEASE, type="string", description="the ecoinvent version to ingest, e.g. 3.11")},
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        # $ECOINVENT_POOL once you created the pool (docs/scheduling.md), else default_pool.
        "pool": ecoinvent_pool(),
    },
    tags=["ecoinvent", "example"],
) as dag:
    # [START howto_full_release]
    # A directory (the URI ends with "/"): parts, then _manifest.json and _SUCCESS. The same for every task.
    dataset_uri = (
        "{{ var.value.get('ecoinvent_output_root', '" + OUTPUT_ROOT + "') }}"
        "/full_release/{{ params.release }}/" + SYSTEM_MODEL + "/ef_v3.1/"
    )
    ingest = EcoinventDatasetsOperator.partial(
        task_id="ingest_shard",
        version="{{ params.release }}",
        system_model=SYSTEM_MODEL,
        query="",  # the free search without text: every dataset of the release
        indicators=[{"method": METHOD}],  # every indicator of the method, resolved by name at run time
        layout="flat",
        format="parquet",
        output_uri=dataset_uri,
        partition_size=1000,  # datasets per part: a crash costs at most the parts in flight
        max_unique_datasets=MAX_DATASETS,
    ).expand(shard=shards(SHARDS))  # [[0, 4], [1, 4], [2, 4], [3, 4]]: each writes its share of the parts
    commit = EcoinventDatasetsCommitOperator(
        task_id="commit",
        output_uri=dataset_uri,
        shard_count=SHARDS,  # a missing or stale shard fails here, naming the mapped task to clear
        outlets=[full_release],  # the asset event carries the manifest
    )
    ingest >> commit
    # [END howto_full_release]
