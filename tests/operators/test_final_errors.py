"""Errors that no retry can fix fail the task once, for good; a transient error still spends Airflow retries.

``EcoinventConfigError`` (and its ``EcoinventIndicatorError``) and ``EcoinventCostGuardError`` are
``AirflowFailException``: Airflow's task runner fails the task without retrying, whatever its ``retries``.
Run under real Airflow (``dag.test()``) with ``retries=2``: a final error leaves the task failed at try 1
and the emulator's ledger shows the one attempt; a 503 outliving the hook's retries is retried by Airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import (
    EcoinventConfigError,
    EcoinventCostGuardError,
    EcoinventError,
    EcoinventIndicatorError,
    EcoinventRetriesExhaustedError,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

#: Two Airflow retries, at once (dag.test() runs a retry as soon as its delay has passed).
RETRIES = 'retries=2, retry_delay=__import__("datetime").timedelta(0)'


def try_numbers(dag_id: str) -> dict[str, tuple[str, int]]:
    """Each task's final state and try number, as the metadata database holds them."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id)).all()
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in rows}


def test_the_errors_no_retry_can_fix_are_airflow_fail_exceptions() -> None:
    from airflow.exceptions import AirflowFailException  # the one class on Airflow 3.1 and 3.2+ alike

    for final in (EcoinventConfigError, EcoinventIndicatorError, EcoinventCostGuardError):
        assert issubclass(final, AirflowFailException)
        assert issubclass(final, EcoinventError)  # ``except EcoinventError`` still catches them
    assert issubclass(EcoinventConfigError, ValueError)
    assert not issubclass(EcoinventRetriesExhaustedError, AirflowFailException)


def test_final_errors_fail_the_task_once_without_spending_its_retries(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    runner = dag_runner(
        f"""
        common = dict({RETRIES}, output_uri="file://{tmp_path}/" + "{{{{ task.task_id }}}}.jsonl")
        EcoinventDatasetsOperator(
            task_id="cost_guard", dataset_ids=[1, 2, 3], indicator_ids=[1], max_unique_datasets=2, **common
        )
        EcoinventDatasetsOperator(task_id="bad_argument", dataset_ids="{{{{ params.ids }}}}", **common)
        EcoinventDatasetsOperator(task_id="unknown_version", dataset_ids=[1], version="9.99", **common)
        EcoinventDatasetsOperator(
            task_id="unmatched_selector", dataset_ids=[1], version="3.11",
            indicators=[dict(method="no such method")], **common,
        )
        """,
        params={"ids": "[1, -2]"},
    )
    result = runner.run()
    final = ("cost_guard", "bad_argument", "unknown_version", "unmatched_selector")
    assert try_numbers(runner.dag_id) == {task: ("failed", 1) for task in final}
    assert {task: result.errors[task]["type"] for task in final} == {
        "cost_guard": "EcoinventCostGuardError",
        "bad_argument": "EcoinventConfigError",
        "unknown_version": "EcoinventConfigError",
        "unmatched_selector": "EcoinventIndicatorError",
    }
    assert "Version '9.99' is not available" in result.errors["unknown_version"]["message"]
    # One try each: one version listing for each of the three tasks that got that far (the cost guard is
    # counted once the version is resolved), one indicator listing (697 indicators: 7 pages).
    requests = ecoinvent_conn.stats()["requests"]
    assert requests["GET /versions"] == 3
    assert requests["GET /indicators"] == 7
    assert ecoinvent_conn.stats()["scored_calls"] == 0


def test_a_transient_error_still_spends_the_airflow_retries(
    dag_runner: Callable[..., Any], emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0))
    emulator.add_fault("status", status=503, path="/versions", count=2)
    runner = dag_runner(f'EcoinventOperator(task_id="transient", endpoint="versions", {RETRIES})')
    result = runner.run()
    assert try_numbers(runner.dag_id) == {"transient": ("success", 3)}  # two 503s, two Airflow retries
    assert result.xcom["transient"]
    assert emulator.stats()["requests"]["GET /versions"] == 3


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_a_sensor_with_soft_fail_fails_on_a_final_error_rather_than_skipping(
    dag_runner: Callable[..., Any], emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Airflow's sensor skips on an ``AirflowFailException`` with ``soft_fail``; an invalid connection is no
    "not there yet": the sensor fails, once."""
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(batch_size=0))
    runner = dag_runner(
        f"""
        from airflow_provider_ecoinvent.sensors.ecoinvent import EcoinventVersionSensor

        EcoinventVersionSensor(
            task_id="wait", version="3.12", soft_fail=True, mode={mode!r}, poke_interval=1, timeout=60, {RETRIES}
        )
        """
    )
    result = runner.run()
    assert try_numbers(runner.dag_id) == {"wait": ("failed", 1)}
    assert result.errors["wait"]["type"] == "EcoinventConfigError"
    assert "batch_size" in result.errors["wait"]["message"]
    assert emulator.stats()["requests"] == {}
