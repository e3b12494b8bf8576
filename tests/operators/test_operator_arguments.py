"""Argument validation (at construction, or once rendered: always before any call), on_kill, lineage."""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventError
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator, EcoinventOperator

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

OUT = "file:///tmp/ecoinvent-never-written/out.jsonl"


def assert_no_calls(emulator: EmulatorServer) -> None:
    stats = emulator.stats()
    assert (stats["api_calls"], stats["token_requests"]) == (0, 0), stats["requests"]


BAD_DATASETS_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    # Any number of indicator ids is fine now (issue 13); ids and names are one or the other.
    (
        "ids-and-names",
        {"dataset_ids": [1], "indicator_ids": [1], "indicators": [{"method": "EF v3.1"}]},
        "Give either indicator_ids or indicators, not both",
    ),
    ("empty-indicators", {"dataset_ids": [1], "indicators": []}, "indicators is empty"),
    ("one-part-name", {"dataset_ids": [1], "indicators": ["EF v3.1"]}, "must read 'method | category | indicator'"),
    ("bad-indicator-key", {"dataset_ids": [1], "indicators": [{"name": "x"}]}, "a dict selector takes the keys"),
    ("negative-indicator-guard", {"dataset_ids": [1], "max_unique_indicators": -1}, "max_unique_indicators must be"),
    ("non-integer-id", {"dataset_ids": [1, "2"]}, "dataset ids must be positive integers; got '2'"),
    ("float-id", {"dataset_ids": [1.5]}, "got 1.5"),
    ("bool-id", {"dataset_ids": [True]}, "got True"),
    ("negative-id", {"dataset_ids": [-3]}, "got -3"),
    ("string-list-with-text", {"dataset_ids": "[1, 'x']"}, "got 'x'"),
    ("unreadable-string", {"dataset_ids": "1, 2, x"}, "could not read '1, 2, x' as a list"),
    ("dict-ids", {"dataset_ids": {"a": 1}}, "dataset_ids must be a list of integers, got dict"),
    ("non-integer-indicator", {"dataset_ids": [1], "indicator_ids": ["a"]}, "indicator ids must be positive integers"),
    ("ids-and-query", {"dataset_ids": [1], "query": "steel"}, "Give either dataset_ids or a search"),
    ("ids-and-filters", {"dataset_ids": [1], "search_filters": {"geography": "Global (GLO)"}}, "not both"),
    ("no-selection", {}, "No datasets selected"),
    ("unknown-format", {"dataset_ids": [1], "format": "csv"}, "format must be one of jsonl, parquet, got 'csv'"),
    ("unknown-layout", {"dataset_ids": [1], "layout": "wide"}, "layout must be one of nested, flat, got 'wide'"),
    ("parquet-nested", {"dataset_ids": [1], "format": "parquet"}, "set layout='flat'"),
    ("uri-without-scheme", {"dataset_ids": [1], "output_uri": "/data/out.jsonl"}, "must be a URI with a scheme"),
    # A folder is a dataset directory (partitioned output, issue 14), but a store's root is not one.
    ("uri-is-root-folder", {"dataset_ids": [1], "output_uri": "file:///"}, "names no folder: a dataset directory"),
    ("no-output-uri", {"dataset_ids": [1], "output_uri": None}, "output_uri is required"),
    ("max-in-flight-0", {"dataset_ids": [1], "max_in_flight": 0}, "max_in_flight must be a whole number >= 1"),
    ("max-in-flight-above-pool", {"dataset_ids": [1], "max_in_flight": 64}, "max_in_flight must be at most 32 (the"),
    ("negative-guard", {"dataset_ids": [1], "max_unique_datasets": -1}, "max_unique_datasets must be a whole number"),
    ("reserved-filter", {"search_filters": {"version": "3.9"}}, "search_filters must not set 'version'"),
    ("filter-not-dict", {"search_filters": ["geography"]}, "search_filters must be a dict"),
    ("empty-version", {"dataset_ids": [1], "version": " "}, "version must be a non-empty string"),
    ("progress-0", {"dataset_ids": [1], "progress_interval": 0}, "progress_interval must be a positive number"),
]


@pytest.mark.parametrize(("kwargs", "message"), [pytest.param(k, m, id=i) for i, k, m in BAD_DATASETS_ARGUMENTS])
def test_datasets_operator_rejects_bad_arguments_at_construction(
    ecoinvent_conn: EmulatorServer, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(EcoinventConfigError, match=re.escape(message)):
        EcoinventDatasetsOperator(task_id="bad", **{"output_uri": OUT, **kwargs})
    assert_no_calls(ecoinvent_conn)


BAD_GENERIC_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("absolute-url", {"endpoint": "https://evil.example/v0/versions"}, "not a URL"),
    ("query-in-endpoint", {"endpoint": "datasets?query=steel"}, "pass the parameters as query="),
    ("unknown-method", {"endpoint": "versions", "method": "FETCH"}, "method must be one of"),
    ("query-not-dict", {"endpoint": "versions", "query": [("a", 1)]}, "query must be a dict"),
    ("xcom-limit-0", {"endpoint": "versions", "max_xcom_bytes": 0}, "max_xcom_bytes must be a whole number >= 1"),
    ("uri-without-scheme", {"endpoint": "versions", "output_uri": "out.jsonl"}, "must be a URI with a scheme"),
]


@pytest.mark.parametrize(("kwargs", "message"), [pytest.param(k, m, id=i) for i, k, m in BAD_GENERIC_ARGUMENTS])
def test_generic_operator_rejects_bad_arguments_at_construction(
    ecoinvent_conn: EmulatorServer, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(EcoinventConfigError, match=re.escape(message)):
        EcoinventOperator(task_id="bad", **kwargs)
    assert_no_calls(ecoinvent_conn)


def test_templated_values_are_not_validated_before_rendering() -> None:
    operator = EcoinventDatasetsOperator(
        task_id="later",
        dataset_ids="{{ ti.xcom_pull(task_ids='pick') }}",
        indicator_ids="{{ params.indicators }}",
        version="{{ params.version }}",
        output_uri="{{ params.uri }}",
    )
    assert operator.dataset_ids == "{{ ti.xcom_pull(task_ids='pick') }}"
    assert operator.dry_run_only is False


# Values that only fail once rendered: the task fails at the start of execute, before any call.
BAD_TEMPLATED: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "non-integer-id",
        "dataset_ids='{{ params.value }}'",
        {"value": [1, "a"]},
        "dataset ids must be positive integers; got 'a'",
    ),
    ("not-a-list", "dataset_ids='{{ params.value }}'", {"value": "steel"}, "could not read 'steel' as a list"),
    ("empty-indicators", "dataset_ids=[1], indicators='{{ params.value }}'", {"value": []}, "indicators is empty"),
    (
        "bad-selector",
        "dataset_ids=[1], indicators='{{ params.value }}'",
        {"value": [{"method": ""}]},
        "must be a non-empty name",
    ),
    (
        "uri-without-scheme",
        "dataset_ids=[1], output_uri='{{ params.value }}'",
        {"value": "relative/out.jsonl"},
        "output_uri must be a URI with a scheme",
    ),
    ("empty-version", "dataset_ids=[1], version='{{ params.value }}'", {"value": ""}, "version must be a non-empty"),
    ("empty-conn-id", "dataset_ids=[1], ecoinvent_conn_id='{{ params.value }}'", {"value": ""}, "ecoinvent_conn_id"),
]


@pytest.mark.parametrize(
    ("arguments", "params", "message"), [pytest.param(a, p, m, id=i) for i, a, p, m in BAD_TEMPLATED]
)
def test_templated_bad_values_fail_at_execute_before_any_call(
    dag_runner: Callable[..., Any],
    ecoinvent_conn: EmulatorServer,
    arguments: str,
    params: dict[str, Any],
    message: str,
) -> None:
    output = "" if "output_uri" in arguments else f"output_uri={OUT!r}, "
    result = dag_runner(f"EcoinventDatasetsOperator(task_id='bad', {output}{arguments})", params=params).run()
    assert result.states == {"bad": "failed"}
    assert result.errors["bad"]["type"] == "EcoinventConfigError"
    assert message in result.errors["bad"]["message"]
    assert_no_calls(ecoinvent_conn)


def test_templated_endpoint_url_is_refused_before_any_call(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer
) -> None:
    result = dag_runner(
        "EcoinventOperator(task_id='bad', endpoint='{{ params.url }}')", params={"url": "https://evil.example/x"}
    ).run()
    assert result.states == {"bad": "failed"}
    assert "not a URL" in result.errors["bad"]["message"]
    assert_no_calls(ecoinvent_conn)


def test_parquet_without_pyarrow_names_the_extra(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    operator = EcoinventDatasetsOperator(
        task_id="parquet", dataset_ids=[1], layout="flat", format="parquet", output_uri=f"file://{tmp_path}/x.parquet"
    )
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(EcoinventConfigError, match=re.escape("pip install 'airflow-provider-ecoinvent[parquet]'")):
        operator.execute({})  # type: ignore[arg-type]
    assert_no_calls(ecoinvent_conn)


def test_on_kill_stops_in_flight_work_and_leaves_no_partial_file(
    ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    ecoinvent_conn.add_fault("latency", ms=150, path="/datasets/batch", count=-1)
    out = tmp_path / "killed.jsonl"
    operator = EcoinventDatasetsOperator(
        task_id="killed",
        dataset_ids=list(range(1, 1001)),
        indicator_ids=[1],
        max_in_flight=2,
        output_uri=f"file://{out}",
    )
    operator.on_kill()  # before execute: nothing to stop, never raises
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute({})  # type: ignore[arg-type]
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not list(tmp_path.glob("*.partial")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(tmp_path.glob("*.partial")), "the run never started writing"
    operator.on_kill()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], EcoinventError)
    assert "killed" in str(outcome[0])
    assert list(tmp_path.iterdir()) == []
    # Stopped early: far fewer than the 10 batches of a full run (none at all when the kill came first).
    assert ecoinvent_conn.stats()["requests"].get("POST /datasets/batch", 0) < 10


@pytest.mark.parametrize(
    "make_operator",
    [
        lambda: EcoinventOperator(task_id="generic", endpoint="versions"),
        lambda: EcoinventDatasetsOperator(task_id="datasets", dataset_ids=[1, 2], indicator_ids=[1], dry_run=True),
    ],
    ids=["generic", "datasets-free-calls"],
)
def test_on_kill_wakes_a_retry_after_wait_and_no_call_follows(
    ecoinvent_conn: EmulatorServer, make_operator: Callable[[], EcoinventOperator | EcoinventDatasetsOperator]
) -> None:
    """Review 3.3: on_kill stops the hook, so a wait on Retry-After ends at once and nothing is retried.

    The wait is real (no ``_sleep`` replacement): the first GET /versions answers 429 with Retry-After 60 s.
    """
    ecoinvent_conn.add_fault("status", status=429, retry_after="60", path="/versions", count=1)
    operator = make_operator()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute({})  # type: ignore[arg-type]
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not ecoinvent_conn.stats()["requests"].get("GET /versions") and time.monotonic() < deadline:
        time.sleep(0.01)
    at_kill = ecoinvent_conn.stats()["requests"]
    assert at_kill.get("GET /versions") == 1, "the run never made its first call"
    operator.on_kill()
    worker.join(timeout=10)  # a bound of the test: without the fix the worker sleeps out the 60 s
    assert not worker.is_alive(), "on_kill did not wake the Retry-After wait"
    assert len(outcome) == 1
    assert isinstance(outcome[0], EcoinventError)
    assert "GET /v0/versions abandoned: the run it belonged to was stopped." in str(outcome[0])
    assert ecoinvent_conn.stats()["requests"] == at_kill  # no call after the kill


def test_openlineage_facets_and_progress_are_reported(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = EcoinventDatasetsOperator(
        task_id="lineage",
        dataset_ids=list(range(1, 201)),
        indicator_ids=[1],
        progress_interval=0.001,
        max_in_flight=1,
        output_uri=f"file://{tmp_path}/out.jsonl",
    )
    assert operator.get_openlineage_facets_on_complete(None) is None  # before execute
    operator.execute({})  # type: ignore[arg-type]
    assert "Progress: 200/200 datasets (100.0%)" in capsys.readouterr().out
    facets = operator.get_openlineage_facets_on_complete(None)
    # The openlineage provider is in the test extra: the facets are asserted, never skipped.
    from airflow.providers.openlineage.extractors import OperatorLineage

    assert isinstance(facets, OperatorLineage)
    assert [(d.namespace, d.name) for d in facets.inputs] == [
        (f"ecoinvent://127.0.0.1:{ecoinvent_conn.port}", "datasets/3.11/cutoff")
    ]
    assert [(d.namespace, d.name) for d in facets.outputs] == [("file", str(tmp_path / "out.jsonl"))]


@pytest.mark.parametrize("to_file", [True, False], ids=["to-a-file", "to-xcom"])
def test_generic_operator_openlineage_facets(ecoinvent_conn: EmulatorServer, tmp_path: Path, to_file: bool) -> None:
    from airflow.providers.openlineage.extractors import OperatorLineage

    output_uri = f"file://{tmp_path}/versions.json" if to_file else None
    operator = EcoinventOperator(task_id="versions", endpoint="versions", output_uri=output_uri)
    assert operator.get_openlineage_facets_on_complete(None) is None  # before execute
    operator.execute({})  # type: ignore[arg-type]

    facets = operator.get_openlineage_facets_on_complete(None)

    assert isinstance(facets, OperatorLineage)
    assert [(d.namespace, d.name) for d in facets.inputs] == [
        (f"ecoinvent://127.0.0.1:{ecoinvent_conn.port}", "versions")
    ]
    expected_outputs = [("file", str(tmp_path / "versions.json"))] if to_file else []
    assert [(d.namespace, d.name) for d in facets.outputs] == expected_outputs


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "s3://aws_default@bucket/scores.jsonl",
            "needs a filesystem for scheme 's3', and none is registered: "
            "pip install 'apache-airflow-providers-amazon[s3fs]' on every worker",
        ),
        ("gs://bucket/scores.jsonl", "pip install 'apache-airflow-providers-google' (it brings gcsfs)"),
        ("abfs://container/scores.jsonl", "pip install 'apache-airflow-providers-microsoft-azure' (it brings adlfs)"),
        ("az://container/scores.jsonl", "registers no filesystem for scheme 'az'; write 'abfs://...' instead"),
        (
            "nosuch://bucket/scores.jsonl",
            "no filesystem is registered for scheme 'nosuch'. Install the Airflow provider",
        ),
    ],
    ids=["s3", "gs", "abfs", "az", "unknown"],
)
@pytest.mark.parametrize("operator_class", [EcoinventDatasetsOperator, EcoinventOperator], ids=["datasets", "generic"])
def test_output_store_without_its_provider_names_the_package_before_any_call(
    ecoinvent_conn: EmulatorServer, uri: str, message: str, operator_class: type[Any]
) -> None:
    """Issue 12: s3:// output without the amazon provider failed with Airflow's bare "No filesystem registered
    for scheme s3", and only after the first calls."""
    from airflow.sdk.io.fs import has_fs

    assert not has_fs(uri.partition("://")[0]), "this environment installs that provider: the case cannot be shown"
    if operator_class is EcoinventDatasetsOperator:
        operator = operator_class(task_id="t", dataset_ids=[1, 2], indicator_ids=[1], output_uri=uri)
    else:
        operator = operator_class(task_id="t", endpoint="versions", output_uri=uri)
    with pytest.raises(EcoinventConfigError) as raised:
        operator.execute({})  # type: ignore[arg-type]
    assert message in str(raised.value)
    assert str(raised.value).endswith("No call was made to the ecoinvent API.")
    assert_no_calls(ecoinvent_conn)
