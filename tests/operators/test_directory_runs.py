"""Runs into a dataset directory across DAG runs and tries (issue 22).

An ``overwrite=True`` run resumed by its next try, a dry run that reports what a real run would score, the
selection resolved once per DAG run for every shard, progress lines, and a rerun that changes nothing
leaving the directory untouched (and, when asked, emitting no asset event). Real task execution
(``dag.test()``, a real subprocess SIGKILLed) against the emulator; outcomes read from the directory, the
XCom manifests, the asset events and the emulator's ledger.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from airflow_provider_ecoinvent.operators._partitions import plan_parts
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator
from tests.operators.test_partitioned_output import (
    IMPORTS,
    LOGICAL_DATE,
    ingest,
    kill_after_first_part_moved,
    part_files,
    partials,
    scored_ids,
    sharded,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

ASSET = 'Asset("ecoinvent://emulator/release")'


def name_of(part: list[int] | tuple[int, ...]) -> str:
    return f"part-{part[0]:012d}-{part[-1]:012d}.parquet"


def stamps(folder: Path, *, skip: tuple[str, ...] = ("_shards",)) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` (but the bookkeeping folders in ``skip``): modification time and bytes."""
    return {
        str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).parts[0] not in skip
    }


# -- 1. overwrite applies to the DAG run: its next try resumes -------------------------------------


def test_a_retry_of_an_overwrite_run_fetches_only_the_parts_its_killed_try_did_not_commit(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    ids = list(range(1, 121))
    assert dag_runner(ingest("ingest", out, ids, partition_size=40)).run().state == "success"  # an earlier run
    runner = dag_runner(ingest("ingest", out, ids, partition_size=40, overwrite=True))
    ecoinvent_conn.reset()
    kill_after_first_part_moved(runner, tmp_path)
    planned = plan_parts(ids, 40)
    first = planned[0]  # ids come sorted: the first part is committed first
    assert scored_ids(ecoinvent_conn)[: len(first)] == first

    ecoinvent_conn.reset()
    when = pendulum.parse(LOGICAL_DATE)
    retry = runner.run(logical_date=when, run_after=when)  # the same DAG run: the task's next try
    assert retry.state == "success", retry.errors
    manifest = retry.xcom["ingest"]
    # The part the killed try committed is kept; the parts of the earlier run are refetched (overwrite).
    assert scored_ids(ecoinvent_conn) == sorted(set(ids) - set(first))
    assert (manifest["reused_parts"], manifest["fetched_parts"]) == (1, len(planned) - 1)
    assert partials(out) == []

    ecoinvent_conn.reset()  # another DAG run with overwrite=True rewrites every part
    again = runner.run()
    assert again.state == "success", again.errors
    assert scored_ids(ecoinvent_conn) == ids


@pytest.mark.parametrize("fan_out", [False, True], ids=["one task", "three shards"])
def test_clearing_a_finished_overwrite_task_in_the_same_dag_run_refetches_every_part(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, fan_out: bool
) -> None:
    """A run's own parts are kept only while its output is unfinished: a Clear of a finished run starts over."""
    out = tmp_path / "release"
    ids = list(range(1, 121))
    source = sharded(out, ids, overwrite=True) if fan_out else ingest("ingest", out, ids, overwrite=True)
    runner = dag_runner(source)
    when = pendulum.parse(LOGICAL_DATE)
    assert runner.run(logical_date=when, run_after=when).state == "success"
    assert scored_ids(ecoinvent_conn) == ids

    ecoinvent_conn.reset()
    cleared = runner.run(logical_date=when, run_after=when)  # the same DAG run, its finished tasks rerun
    assert cleared.state == "success", cleared.errors
    assert scored_ids(ecoinvent_conn) == ids
    manifest = json.loads((out / "_manifest.json").read_text())
    assert (manifest["fetched_parts"], manifest["reused_parts"]) == (len(plan_parts(ids, 20)), 0)
    assert "run" not in manifest  # the shards' run mark stays in their records
    assert partials(out) == []


def test_a_retry_of_an_overwrite_shard_resumes_although_an_earlier_run_left_its_shard_record(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard is finished only by its record *of this DAG run*: an earlier run's record does not restart it."""
    out = tmp_path / "release"
    ids = list(range(1, 121))
    runner = dag_runner(sharded(out, ids, "shards(1)", overwrite=True))
    assert runner.run().state == "success"  # an earlier DAG run: its shard record stays in _shards/
    earlier = json.loads((out / "_shards" / "shard-00000-of-00001.json").read_text())["run"]

    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", ecoinvent_conn.connection_json(batch_size=10))
    ecoinvent_conn.reset()
    ecoinvent_conn.add_fault("status", status=400, detail="refused", path="/datasets/batch", after=5)
    when = pendulum.parse(LOGICAL_DATE)
    assert runner.run(logical_date=when, run_after=when).state == "failed"  # after some parts
    records = [json.loads(path.read_text()) for path in (out / "_parts").glob("*.json")]
    kept = [record for record in records if record["run"] != earlier]
    assert kept  # at least one part committed by the failed try of this run

    ecoinvent_conn.clear_faults()
    ecoinvent_conn.reset()
    retry = runner.run(logical_date=when, run_after=when)  # the same DAG run: the shard's next try
    assert retry.state == "success", retry.errors
    kept_ids = {ident for record in kept for ident in range(record["first_dataset_id"], record["last_dataset_id"] + 1)}
    assert scored_ids(ecoinvent_conn) == sorted(set(ids) - kept_ids)


# -- 2. a dry run reports what a real run would score ----------------------------------------------


def dry(out: Path, ids: list[int], **arguments: Any) -> str:
    return ingest("dry", out, ids, dry_run=True, **arguments)


def test_a_dry_run_of_a_complete_or_partial_directory_reports_what_a_real_run_would_score(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    ids = list(range(1, 121))
    planned = plan_parts(ids, 20)
    assert dag_runner(ingest("ingest", out, ids)).run().state == "success"

    ecoinvent_conn.reset()
    complete = dag_runner(dry(out, ids)).run()
    assert complete.state == "success", complete.errors
    preview = complete.xcom["dry"]
    assert (preview["unique_datasets"], preview["parts_to_fetch"], preview["reused_parts"]) == (0, 0, len(planned))
    assert preview["requested_datasets"] == len(ids)
    assert ecoinvent_conn.stats()["scored_calls"] == 0

    # Two parts lost: one deleted, one altered.
    (out / name_of(planned[1])).unlink()
    (out / name_of(planned[4])).write_bytes(b"not parquet")
    lost = sorted([*planned[1], *planned[4]])
    partial = dag_runner(dry(out, ids)).run().xcom["dry"]
    assert (partial["unique_datasets"], partial["parts_to_fetch"]) == (len(lost), 2)
    assert partial["refetched_parts"] == [name_of(planned[1]), name_of(planned[4])]
    forced = dag_runner(dry(out, ids, overwrite=True)).run().xcom["dry"]
    assert (forced["unique_datasets"], forced["parts_to_fetch"]) == (len(ids), len(planned))
    assert ecoinvent_conn.stats()["scored_calls"] == 0
    assert not (out / name_of(planned[1])).exists()  # a dry run writes nothing

    ecoinvent_conn.reset()  # the real run scores exactly what the dry run announced
    real = dag_runner(ingest("ingest", out, ids)).run()
    assert real.state == "success", real.errors
    assert scored_ids(ecoinvent_conn) == lost


def test_a_dry_run_of_one_shard_counts_only_its_parts(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    ids = list(range(1, 121))
    planned = plan_parts(ids, 20)
    mine = [part for number, part in enumerate(planned) if number % 3 == 1]
    result = dag_runner(dry(out, ids, shard=[1, 3])).run()
    assert result.state == "success", result.errors
    preview = result.xcom["dry"]
    assert (preview["unique_datasets"], preview["parts_to_fetch"]) == (sum(map(len, mine)), len(mine))
    assert not out.exists()


# -- 3. the selection is resolved once per DAG run for every shard ---------------------------------


def searched(out: Path, **arguments: Any) -> str:
    """Four shards selecting by search, indicators by name: the selection costs several free calls."""
    options = {"indicators": [{"method": "EF v3.1"}], "partition_size": 50, **arguments}
    body = sharded(out, [0], "shards(4)", **options)
    return body.replace("dataset_ids=[0]", "search_filters={'geography': 'Switzerland (CH)'}").replace(
        "    indicator_ids=[1, 2],\n", ""
    )


def test_every_shard_of_a_complete_rerun_reads_the_selection_the_first_one_resolved(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    body = searched(out)
    first = dag_runner(body).run()
    assert first.state == "success", first.errors

    ecoinvent_conn.reset()  # what one resolution of the selection costs
    probe = EcoinventDatasetsOperator(
        task_id="probe",
        version="3.11",
        search_filters={"geography": "Switzerland (CH)"},
        indicators=[{"method": "EF v3.1"}],
        dry_run=True,
    )
    probe.execute({})  # type: ignore[arg-type]
    one = ecoinvent_conn.stats()["api_calls"]
    assert one >= 3

    ecoinvent_conn.reset()
    rerun = dag_runner(body).run()
    assert rerun.state == "success", rerun.errors
    stats = ecoinvent_conn.stats()
    assert stats["scored_calls"] == 0
    assert stats["api_calls"] == one  # not one resolution per shard (4 x one)
    commit = rerun.xcom["commit"]
    print(
        f"\n[selection] complete 4-shard rerun of {commit['requested_datasets']} datasets and "
        f"{len(commit['indicator_ids'])} indicators: {stats['api_calls']} API calls ({one} per resolution)"
    )
    assert rerun.xcom["commit"]["skipped"] is True


# -- 4. progress and ETA in directory mode ---------------------------------------------------------


def test_a_directory_run_logs_progress_with_an_eta(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = EcoinventDatasetsOperator(
        task_id="progress",
        dataset_ids=list(range(1, 201)),
        indicator_ids=[1],
        progress_interval=0.001,
        max_in_flight=1,
        partition_size=50,
        output_uri=f"file://{tmp_path}/release/",
    )
    operator.execute({})  # type: ignore[arg-type]
    text = capsys.readouterr().out
    assert "Progress: 200/200 datasets (100.0%)" in text
    assert "ETA" in text


# -- 5. a rerun that changes nothing leaves the directory untouched --------------------------------


def test_an_unchanged_rerun_leaves_every_file_untouched_and_can_emit_no_asset_event(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    ids = list(range(1, 121))
    body = ingest("ingest", out, ids, emit_unchanged=False, outlets=["ASSET"]).replace("'ASSET'", ASSET)
    first = dag_runner(body).run()
    assert first.state == "success", first.errors
    assert [uri for uri, _ in first.asset_events] == ["ecoinvent://emulator/release"]  # it changed: an event
    before = stamps(out)

    again = dag_runner(body).run()
    assert again.state == "success", again.errors
    assert again.states == {"ingest": "success"}
    assert again.xcom["ingest"]["skipped"] is True
    assert again.asset_events == []
    assert stamps(out) == before

    emitting = dag_runner(body.replace("emit_unchanged=False", "emit_unchanged=True")).run()
    assert [uri for uri, _ in emitting.asset_events] == ["ecoinvent://emulator/release"]
    assert stamps(out) == before

    # Killed between the manifest and the marker: the rerun writes _SUCCESS, a change readers wait for.
    (out / "_SUCCESS").unlink()
    completed = dag_runner(body).run()
    assert completed.state == "success", completed.errors
    assert (completed.xcom["ingest"]["skipped"], completed.xcom["ingest"]["unchanged"]) == (True, False)
    assert [uri for uri, _ in completed.asset_events] == ["ecoinvent://emulator/release"]
    assert (out / "_SUCCESS").exists()


def test_an_unchanged_fan_out_leaves_the_dataset_untouched_and_its_commit_can_emit_no_event(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "fanned"
    ids = list(range(1, 121))
    body = sharded(out, ids).replace("outlets=[", "emit_unchanged=False, outlets=[")
    first = dag_runner(body).run()
    assert first.state == "success", first.errors
    assert [uri for uri, _ in first.asset_events] == ["ecoinvent://emulator/fan-out"]
    before = stamps(out, skip=("_shards",))

    again = dag_runner(body).run()
    assert again.state == "success", again.errors
    assert again.states == {"ingest": "success", "commit": "success"}
    assert again.xcom["commit"]["skipped"] is True
    assert again.asset_events == []
    assert stamps(out, skip=("_shards",)) == before

    # A part lost: the rerun refetches it, rewrites the manifest and emits the event again.
    victim = sorted(part_files(out))[2]
    (out / victim).unlink()
    changed = dag_runner(body).run()
    assert changed.state == "success", changed.errors
    assert [uri for uri, _ in changed.asset_events] == ["ecoinvent://emulator/fan-out"]
    assert changed.xcom["commit"]["skipped"] is False


def test_a_shard_takes_the_selection_another_shard_wrote_while_it_resolved(tmp_path: Path) -> None:
    """The race of two shards starting together: the later one uses the stored selection, not its own."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_ecoinvent.operators._directory import Directory
    from airflow_provider_ecoinvent.operators._selection import Selection, selection_name, shared_selection

    directory = Directory(ObjectStoragePath(f"file://{tmp_path}/release"))
    inputs = {"version": "latest", "query": "steel"}
    theirs = Selection("3.11", None, [1, 2, 3])
    calls: list[str] = []

    def resolve_while_another_shard_writes() -> Selection:
        calls.append("resolved")
        shared_selection(directory, "run-a" * 8, inputs, lambda: theirs, log=_Log())
        return Selection("3.12", None, [1, 2, 3, 4])  # "latest" moved meanwhile

    run = "run-a" * 8
    assert shared_selection(directory, run, inputs, resolve_while_another_shard_writes, _Log()) == theirs
    assert shared_selection(directory, run, inputs, _fail, _Log()) == theirs  # a retry: no resolution at all
    assert calls == ["resolved"]
    # Another request in the same run, another run, or a damaged file: never taken for this one.
    copper = Selection("3.11", None, [5])
    assert shared_selection(directory, run, {**inputs, "query": "copper"}, lambda: copper, _Log()) == copper
    assert shared_selection(directory, "run-b" * 8, inputs, lambda: Selection("3.12", None, [9]), _Log()) == (
        Selection("3.12", None, [9])
    )
    path = tmp_path / "release" / selection_name(run, inputs)
    path.write_text('{"key": "0", "version": "3.11", "indicators": null, "ids": [1]}')
    assert shared_selection(directory, run, inputs, lambda: Selection("3.12", None, [7]), _Log()).ids == [7]


@pytest.mark.parametrize(
    ("argument", "first", "second"),
    [
        ("user_id", "alice", "bob"),
        ("organization_id", "org-a", "org-b"),
        ("ecoinvent_conn_id", "ecoinvent_default", "ecoinvent_other"),
    ],
)
def test_fan_outs_under_another_account_in_one_dag_run_never_share_a_selection(
    dag_runner: Callable[..., Any],
    ecoinvent_conn: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argument: str,
    first: str,
    second: str,
) -> None:
    """A search answers per licence: two fan-outs of one DAG run into one directory, under two accounts,
    resolve their selections apart (one selection file each, holding no user, organisation or connection)."""
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_OTHER", ecoinvent_conn.connection_json())
    out = tmp_path / "release"
    ids = list(range(1, 41))

    def fan_out(task_id: str, value: str) -> str:
        mapped = ingest(task_id, out, ids, **{argument: value}).replace(
            f"EcoinventDatasetsOperator(\n    task_id={task_id!r},",
            f"EcoinventDatasetsOperator.partial(\n    task_id={task_id!r},",
        )
        return f"{task_id} = {mapped.rstrip()}.expand(shard=shards(2))\n"

    source = IMPORTS + fan_out("first", first) + fan_out("second", second) + "first >> second\n"
    run = dag_runner(source).run()
    assert run.state == "success", run.errors
    selections = sorted((out / "_shards").glob("selection-*.json"))
    assert len(selections) == 2, selections
    stored = "".join(path.read_text() for path in selections)
    assert not any(value in stored for value in (first, second))


class _Log:
    def info(self, *args: Any) -> None:
        pass


def _fail() -> Any:
    raise AssertionError("resolved again although the selection is stored")


@pytest.mark.parametrize("value", ["false", 0, None])
def test_emit_unchanged_must_be_a_boolean_on_both_operators(value: Any) -> None:
    from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsCommitOperator

    message = f"emit_unchanged must be True or False, got {value!r}."
    with pytest.raises(EcoinventConfigError, match=re.escape(message)):
        EcoinventDatasetsOperator(
            task_id="t", dataset_ids=[1], indicator_ids=[1], output_uri="file:///data/d/", emit_unchanged=value
        )
    with pytest.raises(EcoinventConfigError, match=re.escape(message)):
        EcoinventDatasetsCommitOperator(task_id="c", output_uri="file:///data/d/", emit_unchanged=value)
