"""docs/output.md lists every field the datasets operator writes, and only those: checked against a real run,
and against the manifests' types (:mod:`airflow_provider_ecoinvent.operators._manifests`)."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

import pytest

from airflow_provider_ecoinvent.operators._manifests import (
    CommitManifest,
    DirectoryManifest,
    DirectoryPreview,
    DryRunManifest,
    FileManifest,
    Selected,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import DAG

    from airflow_provider_ecoinvent.emulator import EmulatorServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "output.md"
OPERATORS_DOC = DOC.with_name("operators.md")


def documented(table: str) -> list[tuple[str, str]]:
    """(name, type) of each row of the table after ``<!-- fields: table -->`` in docs/output.md."""
    text = DOC.read_text()
    match = re.search(rf"<!-- fields: {re.escape(table)} -->\n((?:\|[^\n]*\n)+)", text)
    assert match is not None, f"docs/output.md has no table marked {table!r}"
    rows = [line.split("|")[1:3] for line in match.group(1).splitlines()[2:]]
    return [(name.strip().strip("`"), kind.strip()) for name, kind in rows]


def names(table: str) -> set[str]:
    return {name for name, _ in documented(table)}


@pytest.mark.integration
def test_documented_fields_are_what_the_operator_writes(
    write_dag: Callable[[str, str], DAG], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq
    from airflow.utils.state import DagRunState

    dag = write_dag(
        "docs_output_fields",
        f"""
        import json
        import pendulum
        from airflow.sdk import DAG, task
        from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

        with DAG("docs_output_fields", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            nested = EcoinventDatasetsOperator(
                task_id="nested", dataset_ids=[1, 2, 3], indicator_ids=[1, 2], output_uri="file://{tmp_path}/n.jsonl"
            )
            flat = EcoinventDatasetsOperator(
                task_id="flat", dataset_ids=[1, 2], indicator_ids=[1], layout="flat", format="parquet",
                output_uri="file://{tmp_path}/f.parquet",
            )
            dry = EcoinventDatasetsOperator(task_id="dry", dataset_ids=[1, 2], indicator_ids=[1], dry_run=True)

            @task
            def keep(real: dict, dry_run: dict) -> None:
                with open("{tmp_path}/manifests.json", "w") as file:
                    json.dump({{"real": real, "dry_run": dry_run}}, file)

            keep(nested.output, dry.output)
        """,
    )
    assert dag.test().state == DagRunState.SUCCESS

    records = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert {key for record in records for key in record} == names("nested")
    assert {key for record in records for score in record["impact_scores"] for key in score} == names("impact_score")

    schema = pq.read_schema(tmp_path / "f.parquet")
    assert [(field.name, str(field.type)) for field in schema] == documented("flat")

    manifests = json.loads((tmp_path / "manifests.json").read_text())
    real, dry_run = set(manifests["real"]), set(manifests["dry_run"])
    assert real == names("manifest")
    assert dry_run - real == names("manifest-dry-run")
    assert not names("manifest-dry-run") & real


_PLURALS = {"string": "strings", "integer": "integers", "object": "objects"}


def described(annotation: Any) -> str:
    """A type annotation in the words of the docs' type column (``list of integers``, ``integer or null``)."""
    simple = {str: "string", int: "integer", bool: "boolean", float: "number", dict: "object"}
    if annotation in simple:
        return simple[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        (kept,) = [arg for arg in args if arg is not type(None)]
        return f"{described(kept)} or null"
    if origin is list:
        return f"list of {_PLURALS[described(args[0])]}"
    if origin is dict:
        return "object"
    raise AssertionError(f"no documented wording for {annotation!r}")


def typed(kind: Any, keys: set[str]) -> list[tuple[str, str]]:
    """(name, documented type) of ``keys`` of a TypedDict, in the docs' words."""
    hints = get_type_hints(kind)
    return sorted((key, described(hints[key])) for key in keys)


@pytest.mark.parametrize(
    ("table", "kind"),
    [("manifest", FileManifest), ("manifest-directory", DirectoryManifest)],
    ids=["single-file", "directory"],
)
def test_a_documented_manifest_table_is_its_type(table: str, kind: Any) -> None:
    """A field added to the type but not to docs/output.md (or the reverse), or typed otherwise, fails."""
    assert set(kind.__required_keys__) == names(table)
    assert typed(kind, names(table)) == sorted(documented(table))


def test_the_dry_run_manifest_type_adds_the_documented_fields_to_the_listed_ones() -> None:
    """The dry run: its table's fields, the single-file fields docs/output.md lists by name, and the preview."""
    required = set(DryRunManifest.__required_keys__)
    assert required - names("manifest") == names("manifest-dry-run")
    effort = {"api_calls", "token_requests", "elapsed_seconds"}
    listed = set(Selected.__required_keys__) | {"output_uri", "dry_run"} | effort
    assert required & names("manifest") == listed
    assert typed(DryRunManifest, names("manifest-dry-run")) == sorted(documented("manifest-dry-run"))
    assert described(get_type_hints(DryRunManifest)["output_uri"]) == "string or null"  # "may be null"
    assert "(`output_uri` may be `null`)" in DOC.read_text()
    assert set(DryRunManifest.__optional_keys__) == set(DirectoryPreview.__annotations__) | {
        "indicator_selectors",
        "indicators",
    }


def test_the_commit_manifest_type_is_the_directory_table_without_the_shards_own_effort() -> None:
    text = " ".join(DOC.read_text().split())
    assert "leaves `token_requests` and `elapsed_seconds` to the shard records" in text
    expected = names("manifest-directory") - {"token_requests", "elapsed_seconds"} | {"shards"}
    assert set(CommitManifest.__required_keys__) == expected
    assert "step's manifest adds `shards`" in text


@pytest.mark.parametrize("kind", [FileManifest, DryRunManifest, DirectoryManifest], ids=lambda kind: kind.__name__)
def test_optional_manifest_fields_are_documented(kind: Any) -> None:
    """Fields only some runs write (indicators by name, a dry run's preview) are named in the docs' prose."""
    text = DOC.read_text() + OPERATORS_DOC.read_text()
    assert kind.__optional_keys__, "no optional field: the check below would be vacuous"
    assert sorted(key for key in kind.__optional_keys__ if f"`{key}`" not in text) == []


def test_the_tables_are_read() -> None:
    """The parser finds every table (a renamed marker must not make the check above vacuous)."""
    assert len(documented("nested")) >= 15
    assert documented("flat")[0] == ("dataset_id", "int64")
    assert ("requested_version", "string") in documented("manifest")
    assert any(name == "within_cost_guard" for name, _ in documented("manifest-dry-run"))


@pytest.mark.integration
def test_documented_directory_manifest_is_what_the_operator_returns(
    write_dag: Callable[[str, str], DAG], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    from airflow.utils.state import DagRunState

    dag = write_dag(
        "docs_output_directory",
        f"""
        import json
        import pendulum
        from airflow.sdk import DAG, task
        from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

        with DAG("docs_output_directory", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            ingest = EcoinventDatasetsOperator(
                task_id="ingest", dataset_ids=[1, 2, 3], indicator_ids=[1], output_uri="file://{tmp_path}/d/"
            )

            @task
            def keep(manifest: dict) -> None:
                with open("{tmp_path}/manifest.json", "w") as file:
                    json.dump(manifest, file)

            keep(ingest.output)
        """,
    )
    assert dag.test().state == DagRunState.SUCCESS
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest) == names("manifest-directory")
    assert manifest == json.loads((tmp_path / "d" / "_manifest.json").read_text())
    assert ("refetched_parts", "list of strings") in documented("manifest-directory")


def test_file_uri_path_objects_keep_airflows_reading_as_documented_while_strings_get_the_standard_one(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``file://localhost/...`` string names an absolute path; the same text as an ``ObjectStoragePath`` is
    read by Airflow under the working directory and keeps no trace of its form: docs/output.md says so."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    uri = f"file://localhost{tmp_path}/out.jsonl"
    as_object = ObjectStoragePath(uri)
    assert as_object.path == f"{cwd}/localhost{tmp_path}/out.jsonl"
    assert uri not in (str(as_object), repr(as_object))  # the form written is gone: nothing to refuse
    assert as_object.storage_options == {}
    for output_uri in (uri, as_object):
        task = EcoinventDatasetsOperator(task_id="t", dataset_ids=[1], indicator_ids=[1], output_uri=output_uri)
        task.execute({})  # type: ignore[arg-type]
    assert (tmp_path / "out.jsonl").is_file()  # the string: the standard meaning
    assert (cwd / f"localhost{tmp_path}" / "out.jsonl").is_file()  # the path object: Airflow's
    text = " ".join(DOC.read_text().split())
    assert "Path objects cannot be given this meaning" in text
    assert 'ObjectStoragePath("file://localhost/data/x.jsonl")' in text
    assert "keeps no trace of the form written" in text
