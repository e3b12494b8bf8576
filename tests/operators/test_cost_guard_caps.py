"""The connection's cost guard is a cap set by an admin: no task argument, hook call or generic call gets past it.

Each path that scores datasets counts distinct ids before any call: ``EcoinventDatasetsOperator`` (an
argument may lower the extra, never raise it), ``EcoinventHook.get_datasets`` and ``EcoinventOperator`` on a
scored ``datasets`` endpoint. The emulator's ledger shows that no scored call was made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventCostGuardError
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer


@pytest.fixture
def capped(ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """The emulator's connection with the admin's caps: 2 datasets, 3 indicators per task."""
    extras = {"max_unique_datasets": 2, "max_unique_indicators": 3}
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(**extras))
    return ecoinvent_conn


def no_scored_call(emulator: EmulatorServer) -> bool:
    stats = emulator.stats()
    return stats["scored_calls"] == 0 and "POST /datasets/batch" not in stats["requests"]


def test_an_operator_argument_may_lower_the_connection_cap_but_not_raise_it(
    dag_runner: Callable[..., Any], capped: EmulatorServer, tmp_path: Path
) -> None:
    result = dag_runner(
        f"""
        common = dict(indicator_ids=[1], output_uri="file://{tmp_path}/" + "{{{{ task.task_id }}}}.jsonl")
        EcoinventDatasetsOperator(task_id="raised", dataset_ids=[1, 2, 3, 4, 5], max_unique_datasets=1000, **common)
        EcoinventDatasetsOperator(
            task_id="raised_indicators", dataset_ids=[1], max_unique_indicators=50, **common
        )
        EcoinventDatasetsOperator(task_id="lowered", dataset_ids=[1, 2], max_unique_datasets=1, **common)
        EcoinventDatasetsOperator(task_id="within", dataset_ids=[1, 2], max_unique_datasets=2, **common)
        """
    ).run()
    assert result.states == {
        "raised": "failed",
        "raised_indicators": "failed",
        "lowered": "failed",
        "within": "success",
    }
    raised = result.errors["raised"]
    assert raised["type"] == "EcoinventCostGuardError"
    assert "max_unique_datasets=1000 is more than the connection's max_unique_datasets=2" in raised["message"]
    assert "the connection extra caps the argument" in raised["message"]
    assert (
        "max_unique_indicators=50 is more than the connection's max_unique_indicators=3"
        in (result.errors["raised_indicators"]["message"])
    )
    assert (
        "would score 2 distinct datasets for 1 indicators, more than max_unique_datasets=1"
        in (result.errors["lowered"]["message"])
    )
    assert result.xcom["within"]["record_count"] == 2
    assert capped.stats()["requests"]["POST /datasets/batch"] == 1  # the successful task's call only
    assert not (tmp_path / "raised.jsonl").exists()


@pytest.mark.parametrize(
    ("datasets", "indicators", "message"),
    [
        ([1, 2, 3, 4, 5], [1], "would score 5 distinct datasets for 1 indicators, more than max_unique_datasets=2"),
        ([1, 1, 2, 2], [1, 2, 3, 4], "would score 4 distinct indicators, more than max_unique_indicators=3"),
    ],
    ids=["datasets", "indicators"],
)
def test_the_hook_holds_the_connection_cap_before_any_call(
    capped: EmulatorServer, datasets: list[int], indicators: list[int], message: str
) -> None:
    hook = EcoinventHook()
    with pytest.raises(EcoinventCostGuardError, match=message):
        hook.get_datasets(datasets, indicator_ids=indicators, version="3.11")
    assert hook.api_calls == 0
    assert no_scored_call(capped)
    # Within the caps (duplicates count once), and unscored whatever the count: allowed.
    assert [d["id"] for d in hook.get_datasets([1, 2, 1], indicator_ids=[1, 2, 3], version="3.11")] == [1, 2]
    assert len(list(hook.get_datasets(range(1, 11), version="3.11"))) == 10


def test_the_generic_operator_holds_the_connection_cap_on_a_scored_datasets_call(
    dag_runner: Callable[..., Any], capped: EmulatorServer, tmp_path: Path
) -> None:
    result = dag_runner(
        f"""
        EcoinventOperator(
            task_id="batch", endpoint="datasets/batch", method="POST", query={{"limit": 100}},
            body={{"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]}},
        )
        EcoinventOperator(
            task_id="to_file", endpoint="datasets/batch", method="POST", paginate=True,
            body={{"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]}},
            output_uri="file://{tmp_path}/refused/answer.jsonl",
        )
        EcoinventOperator(
            task_id="unscored", endpoint="datasets/batch", method="POST", query={{"limit": 100}},
            body={{"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": []}},
        )
        """
    ).run()
    assert result.states == {"batch": "failed", "to_file": "failed", "unscored": "success"}
    for task in ("batch", "to_file"):
        error = result.errors[task]
        assert error["type"] == "EcoinventCostGuardError"
        assert "would score 5 distinct datasets for 1 indicators, more than max_unique_datasets=2" in error["message"]
    assert not (tmp_path / "refused").exists()  # refused before the output (its folder included) is touched
    assert capped.stats()["scored_calls"] == 0
    assert capped.stats()["requests"]["POST /datasets/batch"] == 1  # the unscored call only


def test_the_hook_holds_the_connection_cap_on_a_scored_single_dataset_get(capped: EmulatorServer) -> None:
    """``get_dataset`` with indicators is a scored call: the caps hold for it, before the call."""
    hook = EcoinventHook()
    with pytest.raises(EcoinventCostGuardError, match="would score 4 distinct indicators, more than max_unique_"):
        hook.get_dataset(1, indicator_ids=[1, 2, 3, 4], version="3.11")
    assert hook.api_calls == 0
    assert capped.stats()["scored_calls"] == 0
    assert hook.get_dataset(1, indicator_ids=[1, 2, 3], version="3.11")["id"] == 1  # within the cap
    assert capped.stats()["scored_calls"] == 1


def test_a_connection_allowing_no_scored_dataset_refuses_get_dataset(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(max_unique_datasets=0))
    hook = EcoinventHook()
    with pytest.raises(EcoinventCostGuardError, match="would score 1 distinct datasets for 1 indicators"):
        hook.get_dataset(1, indicator_ids=[1], version="3.11")
    assert ecoinvent_conn.stats()["scored_calls"] == 0
    assert hook.get_dataset(1, version="3.11")["id"] == 1  # unscored: free, allowed


def test_the_generic_operator_holds_the_connection_cap_on_a_scored_single_dataset_get(
    dag_runner: Callable[..., Any], capped: EmulatorServer
) -> None:
    result = dag_runner(
        """
        EcoinventOperator(
            task_id="scored", endpoint="datasets/1", query={"version": "3.11", "indicator_ids": [1, 2, 3, 4]},
        )
        EcoinventOperator(
            task_id="one_text", endpoint="/datasets/1/", query={"version": "3.11", "indicator_ids": "1,2,3,4"},
        )
        EcoinventOperator(task_id="within", endpoint="datasets/2", query={"version": "3.11", "indicator_ids": [1]})
        EcoinventOperator(task_id="unscored", endpoint="datasets/3", query={"version": "3.11"})
        """
    ).run()
    assert result.states == {"scored": "failed", "one_text": "failed", "within": "success", "unscored": "success"}
    for task in ("scored", "one_text"):
        error = result.errors[task]
        assert error["type"] == "EcoinventCostGuardError"
        assert "would score 4 distinct indicators, more than max_unique_indicators=3" in error["message"]
    stats = capped.stats(include_ids=True)
    assert stats["scored_calls"] == 1  # the call within the caps only
    assert stats["usage"][capped.client_id]["dataset_ids"] == [2]
    assert stats["requests"]["GET /datasets/{id}"] == 2  # within and unscored


def test_the_probe_obeys_the_cost_guard_for_its_scored_call(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_ecoinvent._client.tokens import TokenCache
    from airflow_provider_ecoinvent.probe import run_probe
    from airflow_provider_ecoinvent.probe.run import PROBE_RETRY_POLICY

    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(max_unique_indicators=0))
    notices: list[str] = []
    hook = EcoinventHook(retry_policy=PROBE_RETRY_POLICY, token_cache=TokenCache())
    report = run_probe(scored=True, hook=hook, notify=notices.append)
    scored = report.endpoint("scored")
    assert scored.status == "failed"
    assert scored.error is not None
    assert scored.error.startswith("not made: the connection's cost guard refuses it.")
    assert "more than max_unique_indicators=0" in scored.error
    assert report.exit_code == 1
    assert report.billed is None
    assert notices == []  # no "Scored call: ..." announcement: none is made
    stats = ecoinvent_conn.stats()
    assert stats["scored_calls"] == 0
    assert "POST /datasets/batch" not in stats["requests"]


def test_a_raw_scored_request_through_the_hook_holds_the_connection_cap(capped: EmulatorServer) -> None:
    """``EcoinventHook.request`` itself refuses a scored call over the caps: no way around the typed methods."""
    hook = EcoinventHook()
    query = {"version": "3.11", "from": 0, "limit": 100}
    with pytest.raises(EcoinventCostGuardError, match="would score 3 distinct datasets for 1 indicators"):
        hook.request("POST", "/datasets/batch", query=query, json={"dataset_ids": [1, 2, 3], "indicator_ids": [1]})
    with pytest.raises(EcoinventCostGuardError, match="would score 4 distinct indicators"):
        hook.request("GET", "datasets/1", query={"version": "3.11", "indicator_ids": [1, 2, 3, 4]})
    assert hook.api_calls == 0
    assert no_scored_call(capped)
    unscored = hook.request("POST", "datasets/batch", query=query, json={"dataset_ids": [1, 2, 3]})
    assert [dataset["id"] for dataset in unscored["datasets"]] == [1, 2, 3]
    assert capped.stats()["scored_calls"] == 0


@pytest.mark.parametrize(
    ("method", "endpoint", "options"),
    [
        ("POST", "datasets/batch?", {"json": {"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]}}),
        ("POST", "datasets/batch%3F", {"json": {"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]}}),
        ("POST", "datasets/batch;x", {"json": {"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]}}),
        ("GET", "datasets/1?indicator_ids=1&indicator_ids=2&indicator_ids=3&indicator_ids=4", {}),
        ("GET", "datasets/1%3Findicator_ids=1&indicator_ids=2&indicator_ids=3&indicator_ids=4", {}),
        ("GET", "datasets/1#x", {"query": {"indicator_ids": [1, 2, 3, 4]}}),
        ("GET", "datasets/1%23x", {"query": {"indicator_ids": [1]}}),
        ("GET", "datasets/1%3b", {"query": {"indicator_ids": [1]}}),
    ],
    ids=["batch?", "batch%3F", "batch;", "get?", "get%3F", "get#", "get%23", "get%3b"],
)
def test_a_query_string_in_the_endpoint_is_refused_before_any_call(
    capped: EmulatorServer, method: str, endpoint: str, options: dict[str, Any]
) -> None:
    """A ``?`` (``#``, ``;``, or their percent-encoded forms) in the path would hide ids from the cost guard."""
    hook = EcoinventHook()
    with pytest.raises(EcoinventConfigError, match=r"pass the parameters as query=\{\.\.\.\}"):
        hook.request(method, endpoint, **options)
    assert hook.api_calls == 0
    assert no_scored_call(capped)


def test_the_generic_operator_refuses_an_encoded_query_string_in_its_endpoint(
    dag_runner: Callable[..., Any], capped: EmulatorServer
) -> None:
    result = dag_runner(
        """
        EcoinventOperator(
            task_id="batch", endpoint="{{ 'datasets/batch%3F' }}", method="POST",
            body={"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]},
        )
        EcoinventOperator(task_id="get", endpoint="{{ 'datasets/1;x' }}", query={"indicator_ids": [1]})
        """
    ).run()
    assert result.states == {"batch": "failed", "get": "failed"}
    for task in ("batch", "get"):
        assert result.errors[task]["type"] == "EcoinventConfigError"
        assert "pass the parameters as query={...}" in result.errors[task]["message"]
    assert no_scored_call(capped)
    assert capped.stats()["requests"].get("GET /datasets/{id}", 0) == 0


def test_a_single_dataset_path_counts_the_body_ids_too(capped: EmulatorServer) -> None:
    """``datasets/{x}`` counts one dataset plus any ``dataset_ids`` of its body: never fewer than it may score."""
    hook = EcoinventHook()
    body = {"dataset_ids": [2, 3], "indicator_ids": [1]}
    with pytest.raises(EcoinventCostGuardError, match="would score 3 distinct datasets for 1 indicators"):
        hook.request("POST", "datasets/1", query={"version": "3.11"}, json=body)
    assert hook.api_calls == 0
    assert no_scored_call(capped)


def test_a_loop_of_single_dataset_calls_over_one_hook_is_capped(capped: EmulatorServer) -> None:
    """The guard counts every scored call of one hook: three calls of one dataset each pass a cap of 2."""
    hook = EcoinventHook()
    assert [hook.get_dataset(i, indicator_ids=[1], version="3.11")["id"] for i in (1, 2)] == [1, 2]
    with pytest.raises(EcoinventCostGuardError, match="would score 3 distinct datasets for 1 indicators") as caught:
        hook.get_dataset(3, indicator_ids=[1], version="3.11")
    assert "already scored" in str(caught.value)
    with pytest.raises(EcoinventCostGuardError, match="would score 3 distinct datasets"):  # raw calls count too
        hook.request("GET", "datasets/3", query={"version": "3.11", "indicator_ids": [1]})
    with pytest.raises(EcoinventCostGuardError, match="would score 3 distinct datasets"):  # and batches
        hook.get_datasets([2, 3], indicator_ids=[1], version="3.11")
    assert capped.stats(include_ids=True)["usage"][capped.client_id]["dataset_ids"] == [1, 2]
    # Ids already counted add nothing: repeats and a new indicator within the cap pass.
    assert hook.get_dataset(1, indicator_ids=[1, 2], version="3.11")["id"] == 1
    assert [d["id"] for d in hook.get_datasets([2, 1], indicator_ids=[3], version="3.11")] == [2, 1]
    with pytest.raises(EcoinventCostGuardError, match="would score 4 distinct indicators"):
        hook.get_dataset(1, indicator_ids=[4], version="3.11")
    assert hook.get_dataset(3, version="3.11")["id"] == 3  # unscored: free, never counted
    assert capped.stats()["scored_calls"] == 4
    assert EcoinventHook().get_dataset(3, indicator_ids=[1], version="3.11")["id"] == 3  # a new hook: a new count


def test_the_scored_count_never_reads_a_query_string_as_part_of_the_path() -> None:
    """Behind the refusal of ``?`` (``check_endpoint``), the count itself cuts the path at ``?``, ``#``, ``;``."""
    from airflow_provider_ecoinvent._client.ids import scored_ids

    body = {"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]}
    assert scored_ids("datasets/batch%3F", None, body) == ({"1", "2", "3", "4", "5"}, {"1"})
    assert scored_ids("/datasets/batch;x/", None, body) == ({"1", "2", "3", "4", "5"}, {"1"})
    assert scored_ids("datasets/7?a=b", {"indicator_ids": [1, 2]}, None) == ({"7"}, {"1", "2"})
    assert scored_ids("datasets/7", {"indicator_ids": [1]}, {"dataset_ids": [8]}) == ({"7", "8"}, {"1"})
    assert scored_ids("datasets/batch", {"indicator_ids": []}, body | {"indicator_ids": []}) is None
