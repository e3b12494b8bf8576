"""One ingestion per system model of a version, with dynamic task mapping.

The system models a licence offers are only known at run time (``/versions`` lists them), so the
ingestion task is mapped over them: one task instance, one output file and one retry unit per model.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator
from airflow_provider_ecoinvent.pools import ecoinvent_pool

OUTPUT_ROOT = os.environ.get("ECOINVENT_OUTPUT_ROOT", "file:///tmp/ecoinvent")
DATASET_IDS = list(range(1, 101))  # a fixed panel of datasets, scored under every system model

with DAG(
    dag_id="ecoinvent_system_models",
    description="Score a panel of datasets under every system model of the latest version",
    schedule="@monthly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "pool": ecoinvent_pool()},
    tags=["ecoinvent", "example"],
) as dag:

    @task
    def plan_ingestions(**context) -> list[dict[str, str]]:
        """One set of arguments per system model of the latest version, each with its own output file."""
        from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook
        from airflow_provider_ecoinvent.versions import newest

        latest = newest(EcoinventHook().get_versions())
        if latest is None:
            raise ValueError("The licence lists no ecoinvent version.")
        root = context["var"]["value"].get("ecoinvent_output_root", OUTPUT_ROOT)
        day = context["dag_run"].run_after.strftime("%Y-%m-%d")
        return [
            {
                "version": latest.name,
                "system_model": model,
                "output_uri": f"{root}/system_models/{day}/{latest.name}/{model}.jsonl",
            }
            for model in latest.system_models
        ]

    # [START howto_system_models_mapping]
    EcoinventDatasetsOperator.partial(
        task_id="score_per_system_model",
        dataset_ids=DATASET_IDS,
        indicator_ids=[1, 2],
        max_unique_datasets=len(DATASET_IDS),
        max_active_tis_per_dagrun=2,  # the mapped tasks share the API politely
    ).expand_kwargs(plan_ingestions())
    # [END howto_system_models_mapping]
