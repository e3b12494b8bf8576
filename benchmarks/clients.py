"""The ways of ingesting N datasets that the benchmarks compare, each returning what it did.

* :func:`hook_fetch`: ``EcoinventHook.get_datasets`` iterated to the end (ours, no file).
* :func:`operator_ingest`: ``EcoinventDatasetsOperator.execute`` called directly with a minimal context
  (not through ``dag.test()``): resolves the version, streams the datasets, writes JSON Lines atomically.
* :class:`BareClient`: the floor. One ``requests.Session``, a token fetched before timing starts, the version
  known in advance, one ``POST /datasets/batch`` per 100 ids, sequential; optionally writing
  ``json.dumps(dataset)`` lines, the way a hand-written loop would.
* :func:`http_provider_ingest`: what users have today, the official http provider: ``HttpHook`` with an
  ``http`` connection, a hand-written token call (HTTP Basic from the connection's login/password), then one
  ``HttpHook.run`` per page of 100 ids, writing JSON Lines.

Every run of ours starts with an empty token cache, as a task run in a fresh worker process does, so "token
requests" means "per task run".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from benchmarks._common import PAGE_LIMIT, SYSTEM_MODEL

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import requests

    from airflow_provider_ecoinvent.emulator.control import EmulatorProcess

ECOINVENT_CONN_ID: Final = "ecoinvent_default"
HTTP_API_CONN_ID: Final = "ecoinvent_http_api"
HTTP_SSO_CONN_ID: Final = "ecoinvent_http_sso"
TOKEN_PATH: Final = "/realms/ecoinvent/protocol/openid-connect/token"


@dataclass
class RunResult:
    """What one ingestion did, as the client saw it."""

    datasets: int
    api_calls: int | None = None
    token_requests: int | None = None
    manifest: dict[str, Any] | None = None


def use_emulator(emulator: EmulatorProcess) -> None:
    """Point ``ecoinvent_default`` and the two http connections at ``emulator`` (env vars, JSON form)."""
    os.environ[f"AIRFLOW_CONN_{ECOINVENT_CONN_ID.upper()}"] = emulator.connection_json()
    os.environ[f"AIRFLOW_CONN_{HTTP_API_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "http", "host": emulator.base_url}
    )
    os.environ[f"AIRFLOW_CONN_{HTTP_SSO_CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "http",
            "host": emulator.base_url,
            "login": emulator.client_id,
            "password": emulator.client_secret,
        }
    )


def _fresh_task_process() -> None:
    """Forget cached tokens: a task run in a new worker process starts without one."""
    from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE

    TOKEN_CACHE.clear()


def hook_fetch(ids: Sequence[int], indicator_ids: Sequence[int], *, max_in_flight: int = 1) -> RunResult:
    """``EcoinventHook().get_datasets(...)`` with the default ``version="latest"``, iterated to the end."""
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    _fresh_task_process()
    hook = EcoinventHook(ECOINVENT_CONN_ID)
    stream = hook.get_datasets(ids, indicator_ids=indicator_ids, max_in_flight=max_in_flight)
    count = sum(1 for _ in stream)
    return RunResult(count, hook.api_calls, hook.token_requests)


def operator_ingest(
    ids: Sequence[int],
    indicator_ids: Sequence[int],
    output: Path | str,
    *,
    max_in_flight: int = 8,
    context: dict[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """``EcoinventDatasetsOperator(...).execute(context)``: JSON Lines, nested layout, version "latest",
    unless ``options`` (more operator arguments) say otherwise; ``output`` is a path or a URI; ``context``
    defaults to an empty one (no task instance).

    The operator is built inside the timed region (its constructor validates and sorts the ids too), so
    the figure is, if anything, pessimistic for us.
    """
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

    _fresh_task_process()
    operator = EcoinventDatasetsOperator(
        task_id="bench_ingest",
        dataset_ids=list(ids),
        indicator_ids=list(indicator_ids),
        output_uri=output if isinstance(output, str) else output.as_uri(),
        max_in_flight=max_in_flight,
        progress_interval=3600.0,
        ecoinvent_conn_id=ECOINVENT_CONN_ID,
        **options,
    )
    # Called the way the task runner calls it (the sentinel keeps Airflow's "outside the Task Runner"
    # safeguard quiet); no DAG run, no metadata database, no XCom push.
    from airflow.sdk.bases.operator import ExecutorSafeguard

    sentinel = {f"{type(operator).__name__}__sentinel": ExecutorSafeguard.sentinel_value}
    manifest = operator.execute(context or {}, **sentinel)
    return RunResult(manifest["datasets_written"], manifest["api_calls"], manifest["token_requests"], manifest)


class BareClient:
    """The minimal client: what the API's limits allow and nothing more (no retries, no checks beyond 2xx)."""

    def __init__(self, emulator: EmulatorProcess, version: str) -> None:
        import requests

        self.api_url = emulator.api_url
        self.version = version
        response = requests.post(
            emulator.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
            },
            timeout=30,
        )
        response.raise_for_status()
        #: Fetched once, before any timing: the bare loop pays no token request.
        self.token: str = response.json()["access_token"]

    def fetch(self, ids: Sequence[int], indicator_ids: Sequence[int], output: Path | None = None) -> RunResult:
        import requests

        count = calls = 0
        indicators = list(indicator_ids)
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {self.token}"
            sink = output.open("w", encoding="utf-8") if output is not None else None
            try:
                for start in range(0, len(ids), PAGE_LIMIT):
                    chunk = list(ids[start : start + PAGE_LIMIT])
                    datasets = self._page(session, chunk, indicators)
                    calls += 1
                    count += len(datasets)
                    if sink is not None:
                        for dataset in datasets:
                            sink.write(json.dumps(dataset) + "\n")
            finally:
                if sink is not None:
                    sink.close()
        return RunResult(count, calls, 0)

    def _page(self, session: requests.Session, chunk: list[int], indicators: list[int]) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {
            "from": 0,
            "limit": len(chunk),
            "version": self.version,
            "system_model": SYSTEM_MODEL,
        }
        response = session.post(
            f"{self.api_url}/datasets/batch",
            params=params,
            json={"dataset_ids": chunk, "indicator_ids": indicators},
            timeout=60,
        )
        response.raise_for_status()
        datasets: list[dict[str, Any]] = response.json()["datasets"]
        return datasets


def http_provider_token() -> str:
    """The hand-written token task a user writes with the http provider (client id/secret as login/password).

    In a DAG this is a ``@task`` returning the token: it then sits in XCom, in the metadata database, in
    clear, unless the user remembers ``mask_secret`` (which masks logs only, not XCom).
    """
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=HTTP_SSO_CONN_ID)
    response = hook.run(endpoint=TOKEN_PATH, data={"grant_type": "client_credentials"})
    token: str = response.json()["access_token"]
    return token


def http_provider_ingest(
    ids: Sequence[int], indicator_ids: Sequence[int], version: str, output: Path, *, api_prefix: str = "/v0"
) -> RunResult:
    """The same ingestion with ``HttpHook``: one token, then one ``run`` per 100 ids, JSON Lines out.

    ``version`` is pinned by the user (a constant in the DAG); the http provider has no notion of "latest".
    """
    from urllib.parse import urlencode

    from airflow.providers.http.hooks.http import HttpHook

    token = http_provider_token()
    hook = HttpHook(method="POST", http_conn_id=HTTP_API_CONN_ID)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    indicators = list(indicator_ids)
    count = calls = 0
    with output.open("w", encoding="utf-8") as sink:
        for start in range(0, len(ids), PAGE_LIMIT):
            chunk = list(ids[start : start + PAGE_LIMIT])
            query = urlencode({"from": 0, "limit": len(chunk), "version": version, "system_model": SYSTEM_MODEL})
            response = hook.run(
                endpoint=f"{api_prefix.strip('/')}/datasets/batch?{query}",
                json={"dataset_ids": chunk, "indicator_ids": indicators},
                headers=headers,
            )
            calls += 1
            for dataset in response.json()["datasets"]:
                sink.write(json.dumps(dataset) + "\n")
                count += 1
    return RunResult(count, calls, 1)
