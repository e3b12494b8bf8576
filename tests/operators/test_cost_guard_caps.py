"""The connection's cost guard is a cap set by an admin: no task argument, hook call or generic call gets past it.

Each path that scores datasets counts distinct ids before any call: ``EcoinventDatasetsOperator`` (an
argument may lower the extra, never raise it), ``EcoinventHook.get_datasets`` and ``EcoinventOperator`` on a
scored ``datasets`` endpoint. The emulator's ledger shows that no scored call was made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventCostGuardError
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
    dag_runner: Callable[..., Any], capped: EmulatorServer
) -> None:
    result = dag_runner(
        """
        EcoinventOperator(
            task_id="batch", endpoint="datasets/batch", method="POST", query={"limit": 100},
            body={"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": [1]},
        )
        EcoinventOperator(
            task_id="unscored", endpoint="datasets/batch", method="POST", query={"limit": 100},
            body={"dataset_ids": [1, 2, 3, 4, 5], "indicator_ids": []},
        )
        """
    ).run()
    assert result.states == {"batch": "failed", "unscored": "success"}
    error = result.errors["batch"]
    assert error["type"] == "EcoinventCostGuardError"
    assert "would score 5 distinct datasets for 1 indicators, more than max_unique_datasets=2" in error["message"]
    assert capped.stats()["scored_calls"] == 0
    assert capped.stats()["requests"]["POST /datasets/batch"] == 1  # the unscored call only
