"""Test-only DAG for the stack tests: logs the client secret and an access token on purpose.

A real executor's task logs must show ``***`` in their place (the secret is masked by Airflow when the
connection is read, the token by the hook when it obtains it). The token is also written to a file next
to the output, so the test knows the exact value to look for in the logs. Never copy this into a real DAG.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

OUTPUT_ROOT = os.environ.get("ECOINVENT_OUTPUT_ROOT", "file:///tmp/ecoinvent")

with DAG(
    dag_id="ecoinvent_stack_log_masking",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecoinvent", "test"],
) as dag:

    @task
    def log_credentials() -> None:
        from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

        hook = EcoinventHook()
        secret = hook.get_connection(hook.ecoinvent_conn_id).password
        token = hook.get_access_token()
        Path(OUTPUT_ROOT.removeprefix("file://"), "stack-access-token.txt").write_text(token)
        log = logging.getLogger("airflow.task")
        log.info("logged client secret: %s", secret)
        log.info("logged access token: %s", token)
        log.info("logged header: Authorization: Bearer %s", token)
        print(f"printed client secret: {secret}")
        print(f"printed access token: {token}")

    log_credentials()
