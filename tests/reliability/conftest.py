"""Shared machinery of the reliability suite: the fault table, the secret-leak scanner and a DAG runner.

* ``fault_table`` (session): every fault case adds a row (fault, expected, observed, attempts, elapsed);
  the table is printed when the session ends (visible with ``-s``) and written to the terminal summary.
* ``leak_scan`` (autouse): every test of this folder runs with log capture at DEBUG and fd capture; the
  access tokens the provider obtains are recorded as they are parsed (a spy on ``parse_token_response``
  that changes nothing). At teardown the client secret(s) and every token are searched for in the log
  records, stdout/stderr, Airflow's task log files and whatever the test registered with
  ``leak_scan.add(...)`` (exception texts, XCom values, rendered fields, trigger kwargs, reprs).
* ``run_ingestion`` runs an ``EcoinventDatasetsOperator`` in a real DAG run (``dag.test()`` via
  ``write_dag``) and reads back states, XComs, the error, the rendered template fields and the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.config import DEFAULT_CLIENT_SECRET

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk import DAG

SOAK_ENV = "ECOINVENT_SOAK_SECONDS"
# Rows go to a file shared by every xdist worker, so the controller can print the whole table at the end.
# tests/conftest.py names the file before the workers start (they inherit it): this conftest loads too late.
_TABLE_FILE_ENV = "ECOINVENT_FAULT_TABLE_FILE"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"soak: long soak test; runs only with {SOAK_ENV}=<seconds> (make soak: 300 s)")


# -- the fault table -------------------------------------------------------------------------------


class FaultTable:
    """Rows of the fault report; shared by the whole session."""

    def add(self, fault: str, expected: str, observed: str, attempts: int | str, elapsed: float) -> None:
        row = [fault, expected, observed, str(attempts), f"{elapsed:.2f} s"]
        with open(os.environ[_TABLE_FILE_ENV], "a", encoding="utf-8") as table:
            table.write(json.dumps(row) + "\n")  # one short append: atomic across worker processes


@pytest.fixture(scope="session")
def fault_table() -> FaultTable:
    return FaultTable()


# -- the leak scanner ------------------------------------------------------------------------------


@dataclass
class LeakScan:
    """What one test exposed, and the secrets that must appear in none of it."""

    secrets: set[str] = field(default_factory=lambda: {DEFAULT_CLIENT_SECRET})
    tokens: set[str] = field(default_factory=set)
    artefacts: list[tuple[str, str]] = field(default_factory=list)
    #: Set by a test that deliberately handles secrets in plain text (e.g. a redirect server's record).
    disabled: bool = False

    def secret(self, value: str) -> None:
        """Also look for this credential (a wrong secret a test used is still the customer's)."""
        self.secrets.add(value)

    def token(self, value: str) -> None:
        self.tokens.add(value)

    def add(self, name: str, value: Any) -> None:
        """Register an artefact a user or an operator could see: its ``str``, ``repr`` and JSON are scanned."""
        texts = [str(value), repr(value)]
        with contextlib.suppress(TypeError, ValueError):
            texts.append(json.dumps(value, default=repr))
        if isinstance(value, BaseException):
            texts += [repr(value.args), str(getattr(value, "__cause__", "")), str(getattr(value, "__context__", ""))]
        self.artefacts.append((name, "\n".join(texts)))


def _spy_tokens(monkeypatch: pytest.MonkeyPatch, scan: LeakScan) -> None:
    """Record every access token the provider parses: the sync hook and the async client both read token
    answers through ``_client.tokens.read_token_response``, which calls ``_client.tokens.parse_token_response``."""
    import airflow_provider_ecoinvent._client.tokens as tokens

    parse_token_response = tokens.parse_token_response

    def spy(body: str | bytes, now: float) -> Any:
        token = parse_token_response(body, now)
        scan.token(token.value)
        return token

    monkeypatch.setattr(tokens, "parse_token_response", spy)


def _task_log_texts(since: float) -> list[tuple[str, str]]:
    home = Path(os.environ["AIRFLOW_HOME"])
    texts = []
    for path in home.rglob("*.log"):
        try:
            if path.stat().st_mtime >= since - 1:
                texts.append((f"task log {path.relative_to(home)}", path.read_text(errors="replace")))
        except OSError:
            continue
    return texts


@pytest.fixture(autouse=True)
def leak_scan(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LeakScan]:
    from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE

    scan = LeakScan()
    caplog.set_level(logging.DEBUG)
    _spy_tokens(monkeypatch, scan)
    started = time.time()
    yield scan
    # Tokens still cached (the spy sees them all; this is a second source).
    for token in list(TOKEN_CACHE._tokens.values()):
        scan.token(token.value)
    out, err = capfd.readouterr()
    texts: list[tuple[str, str]] = [("stdout", out), ("stderr", err), ("caplog", caplog.text)]
    for record in caplog.records:
        texts.append((f"log record {record.name}", f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"))
    texts += _task_log_texts(started)
    texts += scan.artefacts
    # Echo what the test printed, so -s still shows it (capfd swallowed it).
    if out:
        print(out, end="")
    if scan.disabled:
        return
    needles = {f"client secret {s!r}": s for s in scan.secrets if s} | {
        f"access token #{n}": t for n, t in enumerate(sorted(scan.tokens)) if t
    }
    leaks = [f"{what} in {where}" for where, text in texts for what, needle in needles.items() if needle in text]
    assert not leaks, "credentials leaked: " + "; ".join(leaks)


# -- running the datasets operator in a DAG run ----------------------------------------------------

_DAG_SOURCE = """\
from __future__ import annotations

import json
import pathlib

import pendulum
from airflow.sdk import DAG

from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

ERRORS = pathlib.Path({errors!r})


def record_failure(context):
    exc = context.get("exception")
    (ERRORS / (context["ti"].task_id + ".json")).write_text(
        json.dumps({{"type": type(exc).__name__, "message": str(exc), "repr": repr(exc)}})
    )


with DAG(
    {dag_id!r},
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={{"on_failure_callback": record_failure, "retries": 0}},
) as dag:
    EcoinventDatasetsOperator(task_id="ingest", **{kwargs})
"""


@dataclass
class Ingestion:
    state: str
    xcom: Any
    error: dict[str, str] | None
    rendered: dict[str, Any]
    output: bytes | None
    leftovers: list[str]
    elapsed: float


def _partial_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial")) if folder.exists() else []


@pytest.fixture
def run_ingestion(
    write_dag: Callable[[str, str], DAG], tmp_path: Path, request: pytest.FixtureRequest, leak_scan: LeakScan
) -> Callable[..., Ingestion]:
    """``run_ingestion(name, **operator_kwargs)``: one ``dag.test()`` of a datasets operator writing to
    ``tmp_path/<name>/out.jsonl`` (unless ``output_uri`` is given)."""
    counter = iter(range(1000))

    def run(name: str, **kwargs: Any) -> Ingestion:
        from airflow.models.renderedtifields import RenderedTaskInstanceFields
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        folder = tmp_path / name
        errors = folder / "errors"
        errors.mkdir(parents=True)
        out = folder / "data" / "out.jsonl"
        kwargs.setdefault("output_uri", f"file://{out}")
        base = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:60]
        dag_id = f"rel_{base}_{name}_{next(counter)}"
        dag = write_dag(dag_id, _DAG_SOURCE.format(errors=str(errors), dag_id=dag_id, kwargs=repr(kwargs)))
        started = time.monotonic()
        dag_run = dag.test()
        elapsed = time.monotonic() - started
        with create_session() as session:
            tis = {ti.task_id: ti for ti in dag_run.get_task_instances(session=session)}
            state = str(tis["ingest"].state)
            xcom = session.scalar(
                select(XComModel.value).where(
                    XComModel.run_id == dag_run.run_id, XComModel.dag_id == dag_id, XComModel.key == "return_value"
                )
            )
            rtif = session.scalar(
                select(RenderedTaskInstanceFields.rendered_fields).where(
                    RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == dag_run.run_id
                )
            )
        error_file = errors / "ingest.json"
        error = json.loads(error_file.read_text()) if error_file.exists() else None
        result = Ingestion(
            state=state,
            xcom=json.loads(xcom) if isinstance(xcom, str) else xcom,
            error=error,
            rendered=dict(rtif or {}),
            output=out.read_bytes() if out.exists() else None,
            leftovers=_partial_files(out.parent),
            elapsed=elapsed,
        )
        leak_scan.add(f"{name}: XCom", result.xcom)
        leak_scan.add(f"{name}: error", result.error)
        leak_scan.add(f"{name}: rendered fields", result.rendered)
        leak_scan.add(f"{name}: dag run", repr(dag_run))
        return result

    return run


def dedent(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"
