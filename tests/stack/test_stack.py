"""End to end on a real Airflow stack (api-server, scheduler + LocalExecutor, dag-processor, triggerer).

The stack and the emulator are shared by the tests of this module (see ``conftest.py``); each test uses
its own DAG, so they do not depend on each other's order.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import AirflowStack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

WATCHER_DAG = "ecoinvent_release_watcher"
INGEST_DAG = "ecoinvent_ingest_datasets"
MASKING_DAG = "ecoinvent_stack_log_masking"
INGEST_TASKS = {"resolve_version", "pick_datasets", "score_datasets", "summarise"}

#: Three dot-separated base64url runs: the emulator's tokens (``token_urlsafe`` x 3), JWTs, most opaque tokens.
TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")
#: A bearer credential that is not the masker's ``***``.
BEARER_VALUE = re.compile(r"Bearer\s+(?!\*{3})[A-Za-z0-9_.~+/=-]{8,}")
#: What Airflow's secret masker logs when it is handed a string under five characters.
SHORT_SECRET_WARNING = "Skipping masking for a secret as it's too short"
#: An ``access_token`` key followed by a value that is not ``***`` (JSON, repr or ``key=value``).
ACCESS_TOKEN_VALUE = re.compile(r"""access_token["']?\s*[:=]\s*["']?(?!\*{3})[A-Za-z0-9_.~+/=-]{8,}""")


# -- helpers ----------------------------------------------------------------------------------------


def versions_polls(stack: AirflowStack) -> int:
    requests: dict[str, int] = stack.emulator.stats()["requests"]
    return sum(count for endpoint, count in requests.items() if endpoint.endswith("/versions"))


def read_records(path: Path) -> list[dict[str, Any]]:
    assert path.is_file(), f"{path} was not written"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def settled_runs(stack: AirflowStack, dag_id: str, count: int) -> list[dict[str, Any]] | None:
    """The DAG's runs (oldest first) once ``count`` exist and all succeeded; fails at once if one failed."""
    runs = sorted(stack.dag_runs_api(dag_id), key=lambda r: r["queued_at"] or r["run_after"] or "")
    failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
    assert not failed, f"{dag_id} run(s) failed: {failed}\n{stack.diagnostics()}"
    if len(runs) >= count and all(r["state"] == "success" for r in runs):
        return runs
    return None


def logged_texts(stack: AirflowStack, *extra: tuple[str, str]) -> dict[str, str]:
    """Every log: all files under ``$AIRFLOW_HOME/logs``, each component's output, and ``extra`` (name, text)."""
    texts = {str(p.relative_to(stack.home)): p.read_text(errors="replace") for p in stack.log_files()}
    texts.update({f"{name} output": p.read_text(errors="replace") for name, p in stack.component_logs().items()})
    texts.update(extra)
    return texts


def leaks(texts: dict[str, str], secrets: list[str]) -> list[str]:
    """Where a secret, a bearer credential, an ``access_token`` value or a token-like string shows up."""
    found = []
    for name, text in texts.items():
        for secret in secrets:
            if secret in text:
                found.append(f"{name}: contains the secret {secret[:4]}...")
        for pattern in (TOKEN_LIKE, BEARER_VALUE, ACCESS_TOKEN_VALUE):
            found.extend(f"{name}: {m.group(0)[:12]}... ({pattern.pattern[:24]})" for m in pattern.finditer(text))
    return found


# -- tests ------------------------------------------------------------------------------------------


def test_watcher_triggers_a_run_per_new_release(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    releases = stack.output_dir / "releases"
    assert versions_polls(stack) == 0, "something polled /versions before the watcher DAG was unpaused"

    stack.airflow("dags", "unpause", WATCHER_DAG)
    # Unpausing makes the triggerer start the watcher; its first poll records 3.9-3.11 as the baseline.
    stack.wait_for("the watcher to poll /versions", lambda: versions_polls(stack) >= 2)
    assert stack.dag_runs_api(WATCHER_DAG) == [], "a run started although no version was published"

    stack.emulator.publish_version("3.12")
    first = stack.wait_for("a successful run for 3.12", lambda: settled_runs(stack, WATCHER_DAG, 1))
    assert len(first) == 1, first
    assert first[0]["run_type"] == "asset_triggered", first
    records = read_records(releases / "3.12" / "cement.jsonl")
    assert records, "3.12/cement.jsonl has no records"
    assert all("/3.12/cutoff/" in r["url"] for r in records), [r["url"] for r in records[:3]]

    stack.emulator.publish_version("3.13")
    second = stack.wait_for("a successful run for 3.13", lambda: settled_runs(stack, WATCHER_DAG, 2))
    assert len(second) == 2, second
    assert [r["run_type"] for r in second] == ["asset_triggered"] * 2, second
    records = read_records(releases / "3.13" / "cement.jsonl")
    assert records, "3.13/cement.jsonl has no records"
    assert all("/3.13/cutoff/" in r["url"] for r in records), [r["url"] for r in records[:3]]

    # Nothing new is published now: further polls must not start another run (the watcher fires on a
    # change, never on a state that stays true, such as "3.13 is the latest").
    polls = versions_polls(stack)
    stack.wait_for("5 more polls of /versions", lambda: versions_polls(stack) >= polls + 5, timeout=60)
    time.sleep(4)  # two scheduler heartbeats: time enough to turn a (wrong) asset event into a run
    runs = stack.dag_runs_cli(WATCHER_DAG)  # `airflow dags list-runs -o json`, the user's view
    assert len(runs) == 2, runs
    assert [r["state"] for r in runs] == ["success", "success"], runs
    assert sorted(p.name for p in releases.iterdir()) == ["3.12", "3.13"]


def test_task_log_masks_secret_and_token(airflow_stack: AirflowStack) -> None:
    """The example ingestion under a real executor: no client secret and no access token in any log."""
    stack = airflow_stack
    tokens_before = stack.emulator.stats()["tokens_issued"]

    result = stack.airflow("dags", "test", "--use-executor", INGEST_DAG)
    cli_output = result.stdout + result.stderr
    assert "state=success" in cli_output, cli_output[-3000:]
    assert "state=failed" not in cli_output, cli_output[-3000:]
    assert list((stack.output_dir / "scored").rglob("*.jsonl")), "the ingestion wrote no output"
    # The tasks really obtained tokens (so there was something to leak), one per task process at least.
    assert stack.emulator.stats()["tokens_issued"] - tokens_before >= 3

    task_logs = stack.task_logs(INGEST_DAG)
    assert {p.parent.name.removeprefix("task_id=") for p in task_logs} == INGEST_TASKS, task_logs
    task_text = "\n".join(p.read_text() for p in task_logs)
    assert "Obtained an ecoinvent access token" in task_text  # the hook's own log line made it to the file

    texts = logged_texts(stack, ("`airflow dags test --use-executor`", cli_output))
    found = leaks(texts, [stack.emulator.client_secret])
    assert not found, "credentials in the logs:\n" + "\n".join(found)
    # Reading the connection made Airflow's masker warn about a short "secret" (api_prefix "/v0") in every
    # task; the secret is still masked (above), and no log, task or component, has that warning any more.
    warned = [name for name, text in texts.items() if SHORT_SECRET_WARNING in text]
    assert not warned, f"the short-secret masking warning is in: {warned}"


def test_secrets_a_task_logs_show_as_stars(airflow_stack: AirflowStack) -> None:
    """A test DAG logs the client secret and an access token on purpose: the task log shows ``***``.

    The control for the test above: it proves the masker is active in these task logs and that the scan
    would see a leak (the secret is masked because Airflow read the connection, the token only because the
    hook registered it with ``mask_secret``).
    """
    stack = airflow_stack
    stack.api(f"/api/v2/dags/{MASKING_DAG}", method="PATCH", body={"is_paused": False})
    stack.api(f"/api/v2/dags/{MASKING_DAG}/dagRuns", method="POST", body={"logical_date": None})
    stack.wait_for(f"a successful run of {MASKING_DAG}", lambda: settled_runs(stack, MASKING_DAG, 1))

    token = (stack.output_dir / "stack-access-token.txt").read_text()
    assert TOKEN_LIKE.fullmatch(token), "the emulator's token format changed: update TOKEN_LIKE"
    (task_log,) = stack.task_logs(MASKING_DAG)
    events = [json.loads(line).get("event", "") for line in task_log.read_text().splitlines() if line.strip()]
    for expected in (
        "logged client secret: ***",
        "logged access token: ***",
        "logged header: Authorization: Bearer ***",
        "printed client secret: ***",
        "printed access token: ***",
    ):
        assert expected in events, f"{expected!r} not in the task log:\n" + "\n".join(events)

    # Only the log files: on 3.3.2 the LocalExecutor also echoes every task log line to the scheduler's
    # stdout (``subprocess_logs_to_stdout=True``) and that copy is NOT redacted, so this DAG's deliberate
    # leak shows in clear there. That is Airflow's, not the provider's; the test above checks that the
    # provider itself never logs a credential, which keeps that console clean too.
    texts = {str(p.relative_to(stack.home)): p.read_text(errors="replace") for p in stack.log_files()}
    found = leaks(texts, [stack.emulator.client_secret, token])
    assert not found, "credentials in the log files:\n" + "\n".join(found)
