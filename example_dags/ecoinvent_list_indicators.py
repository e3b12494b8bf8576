"""List the LCIA indicators of a version into a file: the ids (and names) to choose ``indicator_ids`` from.

``EcoinventOperator`` calls any endpoint of the API. With ``paginate=True`` it follows every page, and with
``output_uri`` it streams the records to a JSON Lines file and returns a small manifest (the records never
pass through XCom). Listing indicators is free: it is not billed.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventOperator
from airflow_provider_ecoinvent.pools import ecoinvent_pool

OUTPUT_ROOT = os.environ.get("ECOINVENT_OUTPUT_ROOT", "file:///tmp/ecoinvent")

with DAG(
    dag_id="ecoinvent_list_indicators",
    description="Write the LCIA indicators of the latest ecoinvent version to a JSON Lines file",
    schedule=None,  # run it by hand when you choose indicators
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "pool": ecoinvent_pool()},
    tags=["ecoinvent", "example"],
) as dag:
    # [START howto_generic_operator]
    list_indicators = EcoinventOperator(
        task_id="list_indicators",
        endpoint="indicators",
        query={"version": "latest", "system_model": "cutoff"},
        paginate=True,  # follow `from` and `limit` until `total`
        output_uri=(
            "{{ var.value.get('ecoinvent_output_root', '" + OUTPUT_ROOT + "') }}"
            "/indicators/{{ dag_run.run_after | ds }}.jsonl"
        ),
    )
    # [END howto_generic_operator]
