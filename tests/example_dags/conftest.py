"""Running an example DAG file under ``dag.test()`` against an emulator, shared by the example-DAG tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import DAG

    from airflow_provider_ecoinvent.emulator import EmulatorServer

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


@pytest.fixture
def run_example(write_dag: Callable[[str, str], DAG], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``run_example(dag_id, emulator, output, **env)``: run an example DAG file with ``dag.test()`` in this
    process (the same runner as ``airflow dags test``, without a CLI start-up per DAG), against ``emulator``,
    writing under ``output``; assert that the run succeeded and return it (the DAG run)."""

    def run(dag_id: str, emulator: EmulatorServer, output: Path, **env: str) -> Any:
        from airflow.utils.state import DagRunState

        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json())
        monkeypatch.setenv("ECOINVENT_OUTPUT_ROOT", output.as_uri())
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        dag = write_dag(dag_id, (EXAMPLES / f"{dag_id}.py").read_text())
        run = dag.test()
        assert run.state == DagRunState.SUCCESS
        return run

    return run
