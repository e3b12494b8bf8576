"""EcoinventVersionSensor: direct pokes, the deferral hand-off, execute_complete, and whole DAG runs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred  # airflow.sdk.exceptions: 3.2+
from airflow.sdk import PokeReturnValue

from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
)
from airflow_provider_ecoinvent.sensors.ecoinvent import EcoinventVersionSensor
from airflow_provider_ecoinvent.triggers.ecoinvent import EcoinventVersionTrigger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk import DAG

    from airflow_provider_ecoinvent.emulator import EmulatorServer

ALL_MODELS = ["cutoff", "apos", "consequential", "EN15804"]
CONTEXT: Any = {}


@pytest.fixture
def publish_after_polls(ecoinvent_conn: EmulatorServer) -> Iterator[Callable[[str, int], None]]:
    """``publish_after_polls(name, polls)``: publish once the sensor has looked ``polls`` times and missed.

    Counting polls instead of seconds makes the test independent of how long Airflow takes to start the task.
    """
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def watch(name: str, polls: int) -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            if ecoinvent_conn.stats()["requests"].get("GET /versions", 0) >= polls:
                ecoinvent_conn.publish_version(name, ALL_MODELS)
                return
            stop.wait(0.05)

    def schedule(name: str, polls: int) -> None:
        thread = threading.Thread(target=watch, args=(name, polls), daemon=True)
        threads.append(thread)
        thread.start()

    yield schedule
    stop.set()
    for thread in threads:
        thread.join()


def sensor(**kwargs: Any) -> EcoinventVersionSensor:
    return EcoinventVersionSensor(task_id="wait", **kwargs)


# -- construction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wanted", [{}, {"version": "3.12", "newer_than": "3.11"}, {"version": ""}], ids=["neither", "both", "empty"]
)
def test_exactly_one_of_version_and_newer_than(wanted: dict[str, Any]) -> None:
    with pytest.raises(EcoinventConfigError, match="exactly one"):
        sensor(**wanted)


@pytest.mark.parametrize("interval", [0, 0.5, timedelta(0)], ids=["zero", "below-minimum", "zero-timedelta"])
def test_poke_interval_below_the_minimum_is_refused(interval: Any) -> None:
    # 0 would poll the API in a tight loop (poke mode) or make the trigger do so (deferrable).
    with pytest.raises(EcoinventConfigError, match=r"poke_interval must be a number of seconds of at least 1"):
        sensor(version="3.12", poke_interval=interval)
    with pytest.raises(EcoinventConfigError, match=r"poke_interval must be .* at least 1 .*got 0\.5"):
        sensor(version="3.12", poke_interval=0.5, deferrable=True)
    assert sensor(version="3.12", poke_interval=1).poke_interval == 1


def test_templated_fields_and_defaults() -> None:
    task = sensor(version="{{ params.v }}")

    assert set(task.template_fields) == {"version", "newer_than", "system_model", "ecoinvent_conn_id"}
    assert task.system_model == "cutoff"
    assert task.ecoinvent_conn_id == "ecoinvent_default"
    assert task.deferrable is False  # [operators] default_deferrable is off here


# -- poke ------------------------------------------------------------------------------------------


def test_poke_returns_the_version_found(ecoinvent_conn: EmulatorServer) -> None:
    result = sensor(newer_than="3.9").poke(CONTEXT)

    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value == {"version": "3.11", "system_models": ALL_MODELS, "release_date": "2024-12-10"}


def test_poke_is_false_until_the_version_exists(ecoinvent_conn: EmulatorServer) -> None:
    task = sensor(version="3.12", system_model="apos")

    assert task.poke(CONTEXT) is False
    ecoinvent_conn.publish_version("3.12", ["cutoff"])
    assert task.poke(CONTEXT) is False  # no apos yet
    ecoinvent_conn.publish_version("3.13", ALL_MODELS)
    assert sensor(newer_than="3.12", system_model="apos").poke(CONTEXT)
    assert ecoinvent_conn.stats()["token_requests"] == 1  # the hook's process-wide token cache


def test_transient_errors_are_not_fatal(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0))
    emulator.add_fault("status", status=503, path="/versions", count=1)
    task = sensor(version="3.11")

    assert task.poke(CONTEXT) is False
    assert task.poke(CONTEXT)


def test_wrong_secret_is_fatal_at_once(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer) -> None:
    conn = emulator.connection_dict()
    conn["password"] = "wrong-secret"
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))

    with pytest.raises(EcoinventAuthError):
        sensor(version="3.12").poke(CONTEXT)
    assert emulator.stats()["token_requests"] == 1


def test_permanent_api_error_is_fatal(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=403, path="/versions", count=1)

    with pytest.raises(EcoinventApiError, match="403"):
        sensor(version="3.12").poke(CONTEXT)


def test_invalid_connection_is_fatal(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer) -> None:
    conn = emulator.connection_dict()
    conn["login"] = ""
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))

    with pytest.raises(EcoinventConfigError, match="client id"):
        sensor(version="3.12").poke(CONTEXT)


# -- deferrable: the hand-off and execute_complete -------------------------------------------------


def test_deferrable_returns_at_once_when_available(ecoinvent_conn: EmulatorServer) -> None:
    assert sensor(version="3.10", deferrable=True).execute(CONTEXT)["version"] == "3.10"


def test_deferrable_defers_to_the_trigger_with_a_deadline(ecoinvent_conn: EmulatorServer) -> None:
    task = sensor(newer_than="3.11", system_model="apos", deferrable=True, poke_interval=5, timeout=120)
    before = time.time()

    with pytest.raises(TaskDeferred) as deferred:
        task.execute(CONTEXT)

    trigger = deferred.value.trigger
    assert isinstance(trigger, EcoinventVersionTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None
    assert deferred.value.timeout >= timedelta(seconds=120)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_ecoinvent.triggers.ecoinvent.EcoinventVersionTrigger"
    assert kwargs["newer_than"] == "3.11"
    assert kwargs["version"] is None
    assert kwargs["system_model"] == "apos"
    assert kwargs["poke_interval"] == 5
    assert before + 120 <= kwargs["deadline"] <= time.time() + 120
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] == 1  # checked once on the worker


def test_execute_complete_success() -> None:
    event = {"status": "success", "version": {"version": "3.12", "system_models": ["cutoff"], "release_date": None}}

    assert sensor(version="3.12").execute_complete(CONTEXT, event) == event["version"]


@pytest.mark.parametrize(
    ("event", "error", "match"),
    [
        ({"status": "error", "message": "bad secret", "error_type": "EcoinventAuthError"}, EcoinventAuthError, "bad"),
        ({"status": "error", "message": "no conn", "error_type": "EcoinventConfigError"}, EcoinventConfigError, "no"),
        ({"status": "error", "message": "403 Forbidden", "error_type": "EcoinventApiError"}, EcoinventError, "403"),
        ({"status": "error"}, EcoinventError, "no message"),
        ({"status": "timeout", "message": "not before the deadline"}, AirflowSensorTimeout, "timed out"),
        (None, EcoinventError, "unexpected trigger event"),
        ({"status": "done"}, EcoinventError, "unexpected trigger event"),
        ("success", EcoinventError, "unexpected trigger event"),
        ({"status": "success"}, EcoinventError, "without a version"),
        ({"status": "success", "version": {"name": "3.12"}}, EcoinventError, "without a version"),
    ],
    ids=[
        "auth-error",
        "config-error",
        "api-error",
        "error-without-message",
        "timeout",
        "no-event",
        "unknown-status",
        "not-a-dict",
        "success-without-version",
        "success-malformed-version",
    ],
)
def test_execute_complete_failures(event: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        sensor(version="3.12").execute_complete(CONTEXT, event)


@pytest.mark.parametrize(
    ("event", "error", "match"),
    [
        ({"status": "error", "message": "bad secret", "error_type": "EcoinventAuthError"}, EcoinventAuthError, "bad"),
        ({"status": "error", "message": "no conn", "error_type": "EcoinventConfigError"}, EcoinventConfigError, "no"),
        ({"status": "error", "message": "403 Forbidden", "error_type": "EcoinventApiError"}, EcoinventError, "403"),
        ({"status": "done"}, EcoinventError, "unexpected trigger event"),
    ],
    ids=["auth-error", "config-error", "api-error", "unknown-status"],
)
def test_soft_fail_does_not_turn_an_error_event_into_a_skip(event: Any, error: type[Exception], match: str) -> None:
    # What the task runner calls when the trigger's event comes back; poke mode fails on these errors too.
    task = sensor(version="3.12", soft_fail=True, deferrable=True)
    with pytest.raises(error, match=match):
        task.resume_execution("execute_complete", {"event": event}, CONTEXT)


def test_deferred_sensor_with_soft_fail_fails_on_wrong_credentials(emulator: EmulatorServer) -> None:
    """The whole deferrable path: checked on the worker, deferred, the real trigger's error event resumed."""
    emulator.add_fault("status", status=401, path="/versions", count=-1, after=1)  # every later call refused
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json())
        task = sensor(version="3.12", soft_fail=True, deferrable=True)
        with pytest.raises(TaskDeferred) as deferred:
            task.execute(CONTEXT)
        events = asyncio.run(_events_of(deferred.value.trigger))

        assert [event["error_type"] for event in events] == ["EcoinventAuthError"]
        refused = r"^Waiting for ecoinvent version 3\.12 \(cutoff\) failed: The ecoinvent API refused a fresh"
        with pytest.raises(EcoinventAuthError, match=refused):
            task.resume_execution(deferred.value.method_name, {"event": events[0]}, CONTEXT)


async def _events_of(trigger: Any) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def test_timeout_event_is_a_skip_with_soft_fail() -> None:
    from airflow.providers.common.compat.sdk import AirflowSkipException  # airflow.sdk.exceptions: Airflow 3.2+

    task = sensor(version="3.12", soft_fail=True)
    with pytest.raises(AirflowSkipException):
        task.resume_execution("execute_complete", {"event": {"status": "timeout", "message": "late"}}, CONTEXT)


# -- whole DAG runs with dag.test() ----------------------------------------------------------------

DAG_SOURCE = """
from __future__ import annotations

import json
import pendulum
from airflow.sdk import DAG, task

from airflow_provider_ecoinvent.sensors.ecoinvent import EcoinventVersionSensor

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    wait = EcoinventVersionSensor(
        task_id="wait", version="{{{{ params.wanted }}}}", params={{"wanted": "3.12"}}, {sensor_args}
    )

    @task
    def report(found: dict) -> str:
        return found["version"] + ":" + ",".join(found["system_models"])

    report(wait.output)
"""


def run_dag(write_dag: Callable[[str, str], DAG], dag_id: str, sensor_args: str) -> tuple[Any, dict[str, Any]]:
    dag = write_dag(dag_id, DAG_SOURCE.format(dag_id=dag_id, sensor_args=sensor_args))
    dag_run = dag.test()
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    wait_ti = dag_run.get_task_instance("wait")
    report_ti = dag_run.get_task_instance("report")
    return states, {
        "found": wait_ti.xcom_pull(task_ids="wait") if wait_ti else None,
        "report": report_ti.xcom_pull(task_ids="report") if report_ti else None,
    }


@pytest.mark.integration
@pytest.mark.parametrize(
    ("mode", "sensor_args"),
    [
        ("poke", 'mode="poke", poke_interval=1, timeout=60'),
        ("reschedule", 'mode="reschedule", poke_interval=1, timeout=60'),
        ("deferrable", "deferrable=True, poke_interval=1, timeout=60"),
    ],
    ids=["poke", "reschedule", "deferrable"],
)
def test_sensor_waits_for_a_publication_in_a_dag_run(
    write_dag: Callable[[str, str], DAG],
    ecoinvent_conn: EmulatorServer,
    publish_after_polls: Callable[[str, int], None],
    mode: str,
    sensor_args: str,
) -> None:
    publish_after_polls("3.12", 2)

    states, xcoms = run_dag(write_dag, f"ecoinvent_sensor_{mode}", sensor_args)

    assert states == {"wait": "success", "report": "success"}
    assert xcoms["found"]["version"] == "3.12"
    assert xcoms["found"]["system_models"] == ALL_MODELS
    assert set(xcoms["found"]) == {"version", "system_models", "release_date"}
    assert xcoms["report"] == "3.12:" + ",".join(ALL_MODELS)
    # It missed at least twice (in deferrable mode: once on the worker, then in the trigger) before finding it.
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] >= 3


@pytest.mark.integration
def test_deferrable_sensor_times_out_in_a_dag_run(
    write_dag: Callable[[str, str], DAG], ecoinvent_conn: EmulatorServer
) -> None:
    states, xcoms = run_dag(
        write_dag, "ecoinvent_sensor_deferrable_timeout", "deferrable=True, poke_interval=1, timeout=1"
    )

    assert states["wait"] == "failed"
    assert xcoms["found"] is None


SOFT_FAIL_CASES = {
    "poke-error": ('mode="poke", timeout=60', "failed"),
    "reschedule-error": ('mode="reschedule", timeout=60', "failed"),
    "deferrable-error": ("deferrable=True, timeout=60", "failed"),
    "poke-timeout": ('mode="poke", timeout=1', "skipped"),
    "reschedule-timeout": ('mode="reschedule", timeout=1', "skipped"),
    "deferrable-timeout": ("deferrable=True, timeout=1", "skipped"),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", list(SOFT_FAIL_CASES))
def test_soft_fail_skips_on_timeout_only_in_every_mode(
    write_dag: Callable[[str, str], DAG], emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """soft_fail=True: the sensor's timeout is a skip; wrong credentials fail the task, whatever the mode."""
    mode_args, outcome = SOFT_FAIL_CASES[case]
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json())
    if outcome == "failed":
        # The first look (on the worker) misses; from the second on, the API refuses every token.
        emulator.add_fault("status", status=401, path="/versions", count=-1, after=1)

    dag_id = "ecoinvent_soft_fail_" + case.replace("-", "_")
    states, xcoms = run_dag(write_dag, dag_id, f"soft_fail=True, poke_interval=1, {mode_args}")

    assert states["wait"] == outcome
    assert states["report"] in {"upstream_failed", "skipped"}
    assert xcoms["found"] is None
    if outcome == "failed":
        assert emulator.stats()["requests"]["GET /versions"] >= 2  # refused after the first look, not before
