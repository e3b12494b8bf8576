"""Helpers for operator tests: run a real DAG with ``dag.test()`` and read back what happened.

Each DAG file gets a failure callback that records the exception of a failed task (type and message)
as JSON, so tests can assert the error a user would see; XComs and asset events are read from the
metadata database the run wrote to.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow.sdk import DAG

_HEADER = """\
from __future__ import annotations

import json
import pathlib

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator, EcoinventOperator

ERRORS = pathlib.Path({errors!r})


def record_failure(context):
    exc = context.get("exception")
    (ERRORS / (context["ti"].task_id + ".json")).write_text(
        json.dumps({{"type": type(exc).__name__, "message": str(exc)}})
    )


with DAG(
    {dag_id!r},
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={params!r},
    default_args={{"on_failure_callback": record_failure, "retries": 0}},
) as dag:
"""


@dataclass
class DagResult:
    """What one ``dag.test()`` left behind."""

    state: str
    states: dict[str, str]
    xcom: dict[str, Any]
    errors: dict[str, dict[str, str]]
    asset_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class DagRunner:
    def __init__(self, write_dag: Callable[[str, str], DAG], errors: Path, dag_id: str, source: str) -> None:
        self.errors = errors
        self.dag_id = dag_id
        self.dag = write_dag(dag_id, source)

    def run(self, **test_kwargs: Any) -> DagResult:
        """One ``dag.test(**test_kwargs)``; the same ``logical_date`` twice is the same run, its tasks retried."""
        from airflow.models.asset import AssetEvent
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        for stale in self.errors.glob("*.json"):
            stale.unlink()
        dag_run = self.dag.test(**test_kwargs)
        with create_session() as session:
            states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}
            rows = session.execute(
                select(XComModel.task_id, XComModel.value).where(
                    XComModel.run_id == dag_run.run_id,
                    XComModel.dag_id == self.dag_id,
                    XComModel.key == "return_value",
                )
            ).all()
            events = [
                (event.asset.uri, dict(event.extra or {}))
                for event in session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == dag_run.run_id))
            ]
        errors = {path.stem: json.loads(path.read_text()) for path in self.errors.glob("*.json")}
        return DagResult(str(dag_run.state), states, {task: value for task, value in rows}, errors, events)


@pytest.fixture
def dag_runner(
    write_dag: Callable[[str, str], DAG], tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., DagRunner]:
    """``dag_runner(body, params={...})``: a DAG whose body (tasks, indented by the helper) is ``body``."""
    errors = tmp_path / "errors"
    errors.mkdir()
    counter = iter(range(1000))

    def make(body: str, *, params: dict[str, Any] | None = None) -> DagRunner:
        # Cut to 64 characters, so a digest of the whole test name keeps parametrized cases apart (Airflow 3.1
        # runs a DAG from the serialized DAG of its id, which an earlier case of the same name would have left).
        readable = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:64]
        digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
        name = f"op_{readable}_{digest}_{next(counter)}"
        source = _HEADER.format(errors=str(errors), dag_id=name, params=params or {})
        source += textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
        return DagRunner(write_dag, errors, name, source)

    return make
