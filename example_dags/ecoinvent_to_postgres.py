"""Warehouse hand-off: load each scored ingestion into a PostgreSQL table, idempotently.

Scheduled on the ``ecoinvent_scored_datasets`` asset, so it runs after every successful
``ecoinvent_ingest_datasets`` run. It reads the file that run wrote (the asset event carries the
ingestion's manifest: ``output_uri``, ``version``, ``system_model``), flattens it to one row per dataset
and indicator with the package's own flat layout, and upserts the rows in one transaction:

* the table's primary key is (version, system model, dataset, indicator), so loading the same output
  twice, or two ingestions of the same release, changes nothing; a new release adds rows;
* a failure rolls the whole load back: the table never holds part of an ingestion.

The warehouse is the Airflow connection ``ecoinvent_warehouse`` (a ``postgres`` connection). A manual
run can load one file: trigger it with conf ``{"output_uri": ..., "version": ..., "system_model": ...}``.
Datasets the API returned without a score have no indicator and no row here.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, Asset, task

WAREHOUSE_CONN_ID = "ecoinvent_warehouse"
TABLE = "ecoinvent_scores"
#: One row per (version, system model, dataset, indicator): the upsert key.
KEY = ("version", "system_model", "dataset_id", "indicator_id")
COLUMNS = (*KEY, "activity", "product", "geography", "unit", "method", "category", "indicator", "score", "score_unit")

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    version      TEXT NOT NULL,
    system_model TEXT NOT NULL,
    dataset_id   INTEGER NOT NULL,
    indicator_id INTEGER NOT NULL,
    activity     TEXT,
    product      TEXT,
    geography    TEXT,
    unit         TEXT,
    method       TEXT,
    category     TEXT,
    indicator    TEXT,
    score        DOUBLE PRECISION,
    score_unit   TEXT,
    PRIMARY KEY ({", ".join(KEY)})
)
"""

scored_datasets = Asset(name="ecoinvent_scored_datasets", uri="ecoinvent://scored-datasets/cutoff")

with DAG(
    dag_id="ecoinvent_to_postgres",
    description="Upsert every scored ingestion into a PostgreSQL table",
    schedule=[scored_datasets],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two loads of one key never race
    default_args={"retries": 2},
    tags=["ecoinvent", "example", "warehouse"],
) as dag:

    @task
    def ingestions(**context: Any) -> list[dict[str, str]]:
        """The outputs to load: from the triggering asset events, or from a manual run's conf."""
        conf = context["dag_run"].conf or {}
        if conf.get("output_uri"):
            wanted = [conf]
        else:
            wanted = [dict(event.extra) for event in context["triggering_asset_events"][scored_datasets]]
        loads = []
        for manifest in wanted:
            missing = [name for name in ("output_uri", "version", "system_model") if not manifest.get(name)]
            if missing:
                raise ValueError(f"An ingestion to load lacks {missing}: {manifest!r}. Nothing was loaded.")
            if manifest.get("layout", "nested") != "nested" or manifest.get("format", "jsonl") != "jsonl":
                raise ValueError(f"Only nested JSON Lines outputs are loaded here, got {manifest!r}.")
            loads.append({name: str(manifest[name]) for name in ("output_uri", "version", "system_model")})
        return loads

    create_table = SQLExecuteQueryOperator(task_id="create_table", conn_id=WAREHOUSE_CONN_ID, sql=CREATE_TABLE)

    @task
    def load(loads: list[dict[str, str]]) -> int:
        """Flatten each output and upsert it: one transaction for the whole run."""
        rows = [row for spec in loads for row in _flat_rows(**spec)]
        if not rows:
            print("Nothing to load.")
            return 0
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        PostgresHook(postgres_conn_id=WAREHOUSE_CONN_ID).insert_rows(
            TABLE,
            rows,
            target_fields=list(COLUMNS),
            # One chunk, so one transaction: all rows or none. (Not 0: with executemany, common-sql then
            # makes no chunk at all and loads nothing.)
            commit_every=len(rows),
            replace=True,
            replace_index=list(KEY),
            executemany=True,
        )
        print(f"Upserted {len(rows)} rows into {TABLE} from {[spec['output_uri'] for spec in loads]}.")
        return len(rows)

    create_table >> load(ingestions())


def _flat_rows(output_uri: str, version: str, system_model: str) -> list[tuple[Any, ...]]:
    """The ingestion's nested records in the package's flat layout, as tuples in ``COLUMNS`` order."""
    import json

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_ecoinvent.records import flat_rows

    rows = []
    with ObjectStoragePath(output_uri).open("rb") as file:
        for line in file:
            if not line.strip():
                continue
            for row in flat_rows(json.loads(line), version, system_model):
                if row["indicator_id"] is not None:
                    rows.append(tuple(row[column] for column in COLUMNS))
    return rows
