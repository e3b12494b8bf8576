"""Output URIs: ``..`` is refused in every mode, ``file:`` URIs mean what RFC 8089 says, oversized ones are refused.

Each refusal comes before any network call (the emulator's ledger stays at zero) and leaves nothing on disk;
each accepted form is run for real and the file is looked for where the URI names it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.operators.commit import EcoinventDatasetsCommitOperator
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator, EcoinventOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

GOOD: dict[str, Any] = {"dataset_ids": [1, 2, 3], "indicator_ids": [1]}


def no_calls(emulator: EmulatorServer) -> None:
    stats = emulator.stats()
    assert (stats["token_requests"], stats["api_calls"]) == (0, 0), stats["requests"]


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own: Airflow's path read ``file://localhost/x`` relative to it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


# -- '..' in every mode -------------------------------------------------------------------------------

CLIMBING = [
    ("file", "file://{tmp}/a/../out.jsonl"),
    ("file-at-end", "file://{tmp}/a/.."),
    ("s3", "s3://bucket/a/../out.jsonl"),
    ("localhost", "file://localhost{tmp}/a/../out.jsonl"),
]


@pytest.mark.parametrize(
    ("uri", "as_path"),
    [pytest.param(uri, False, id=f"string-{name}") for name, uri in CLIMBING]
    # s3 as a path object would need the amazon provider, which make test does not install: the memory store
    # stands for a remote one there.
    + [pytest.param(uri.replace("s3://", "memory://"), True, id=f"path-object-{name}") for name, uri in CLIMBING],
)
def test_a_single_file_output_climbing_out_with_dot_dot_is_refused_at_construction(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, uri: str, as_path: bool
) -> None:
    from airflow.sdk import ObjectStoragePath

    text = uri.format(tmp=tmp_path)
    output: Any = ObjectStoragePath(text) if as_path else text
    for build in (
        lambda: EcoinventDatasetsOperator(task_id="ingest", output_uri=output, **GOOD),
        lambda: EcoinventOperator(task_id="get", endpoint="versions", output_uri=output),
    ):
        with pytest.raises(EcoinventConfigError, match=r"has a '\.\.' segment: name the output without climbing out"):
            build()
    no_calls(ecoinvent_conn)
    assert files_under(tmp_path) == []


def test_a_templated_single_file_output_climbing_out_fails_once_rendered_before_any_call(
    ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    operator = EcoinventDatasetsOperator(task_id="ingest", output_uri="{{ params.out }}", **GOOD)
    operator.output_uri = f"file://{tmp_path}/a/../out.jsonl"  # what the template renders to
    with pytest.raises(EcoinventConfigError, match=r"has a '\.\.' segment"):
        operator.execute({})  # type: ignore[arg-type]
    no_calls(ecoinvent_conn)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("uri", ["file://{tmp}/a/../", "file://localhost{tmp}/a/../dir/"], ids=["end", "middle"])
def test_a_directory_climbing_out_is_refused_by_both_operators(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, uri: str
) -> None:
    text = uri.format(tmp=tmp_path)
    with pytest.raises(EcoinventConfigError, match=r"has a '\.\.' segment: name the dataset directory"):
        EcoinventDatasetsOperator(task_id="ingest", output_uri=text, **GOOD)
    with pytest.raises(EcoinventConfigError, match=r"has a '\.\.' segment: name the dataset directory"):
        EcoinventDatasetsCommitOperator(task_id="commit", output_uri=text)
    no_calls(ecoinvent_conn)


# -- file: URIs in their standard meaning -------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["file://localhost{tmp}/out/data.jsonl", "file://LOCALHOST{tmp}/out/data.jsonl", "file:///{tmp}/out/data.jsonl"],
    ids=["localhost", "localhost-upper-case", "four-slashes"],
)
def test_a_file_uri_names_the_absolute_path_not_one_under_the_working_directory(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, elsewhere: Path, uri: str
) -> None:
    manifest = EcoinventDatasetsOperator(task_id="ingest", output_uri=uri.format(tmp=tmp_path), **GOOD).execute({})  # type: ignore[arg-type]
    written = tmp_path / "out" / "data.jsonl"
    assert [json.loads(line)["id"] for line in written.read_text().splitlines()] == [1, 2, 3]
    assert manifest["record_count"] == 3
    assert files_under(elsewhere) == []


@pytest.mark.parametrize(
    "uri", ["file://localhost{tmp}/release/", "file:////{tmp}/release/"], ids=["localhost", "four-slashes"]
)
def test_a_file_uri_dataset_directory_names_the_absolute_path(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, elsewhere: Path, uri: str
) -> None:
    text = uri.format(tmp=tmp_path)
    EcoinventDatasetsOperator(task_id="ingest", output_uri=text, **GOOD).execute({})  # type: ignore[arg-type]
    assert (tmp_path / "release" / "_SUCCESS").exists()
    assert files_under(elsewhere) == []
    commit = EcoinventDatasetsCommitOperator(task_id="commit", output_uri=text)
    assert commit.output_uri == text  # accepted at construction: the same rule as the datasets operator


@pytest.mark.parametrize(
    ("uri", "host"),
    [("file://server/share/out.jsonl", "server"), ("file://data/out.jsonl", "data"), ("file://nas/release/", "nas")],
    ids=["server", "relative-looking", "directory"],
)
def test_a_file_uri_naming_another_host_is_refused(ecoinvent_conn: EmulatorServer, uri: str, host: str) -> None:
    with pytest.raises(EcoinventConfigError, match=f"names the host '{host}', but a file: URI is a path on the"):
        EcoinventDatasetsOperator(task_id="ingest", output_uri=uri, **GOOD)
    no_calls(ecoinvent_conn)


@pytest.mark.parametrize("uri", ["file://localhost/", "file:////"], ids=["localhost", "four-slashes"])
def test_a_file_uri_naming_the_root_is_refused_as_a_directory(ecoinvent_conn: EmulatorServer, uri: str) -> None:
    with pytest.raises(EcoinventConfigError, match="names no folder: a dataset directory needs its own folder"):
        EcoinventDatasetsOperator(task_id="ingest", output_uri=uri, **GOOD)
    no_calls(ecoinvent_conn)


# -- oversized URIs -----------------------------------------------------------------------------------


def test_a_megabyte_output_uri_is_refused_clearly_before_any_call(
    ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    operator = EcoinventDatasetsOperator(task_id="ingest", output_uri="{{ params.out }}", **GOOD)
    operator.output_uri = f"file://{tmp_path}/" + "a/" * 500_000 + "out.jsonl"  # a template gone wrong
    with pytest.raises(EcoinventConfigError, match=r"output_uri is 1,000,\d{3} characters long, more than the 4,096"):
        operator.execute({})  # type: ignore[arg-type]
    no_calls(ecoinvent_conn)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "limit"), [("f" * 200 + ".jsonl", 185), ("d" * 256 + "/out.jsonl", 255)], ids=["file", "folder"]
)
def test_a_name_longer_than_a_local_disk_allows_is_refused_clearly(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, name: str, limit: int
) -> None:
    with pytest.raises(EcoinventConfigError, match=f"more than the {limit} a local disk allows there"):
        EcoinventDatasetsOperator(task_id="ingest", output_uri=f"file://{tmp_path}/{name}", **GOOD)
    no_calls(ecoinvent_conn)


def test_the_longest_local_file_name_accepted_can_be_written(ecoinvent_conn: EmulatorServer, tmp_path: Path) -> None:
    """The limit leaves room for the temporary sibling: the longest accepted name is written, not an OSError."""
    name = "n" * 185
    operator = EcoinventDatasetsOperator(task_id="ingest", output_uri=f"file://{tmp_path}/{name}", **GOOD)
    operator.execute({})  # type: ignore[arg-type]
    assert files_under(tmp_path) == [name]
