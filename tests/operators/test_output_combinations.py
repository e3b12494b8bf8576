"""Outputs where users combine features (issue 22): mapped chunks, path objects, folders, kills on object stores.

Real DAG runs (``dag.test()``) against the emulator over loopback; outcomes are read from storage and from the
emulator's ledger (a refusal must come before any call, scored or free).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem
from fsspec.spec import AbstractBufferedFile

from airflow_provider_ecoinvent.operators._output import WRITE_BUFFER_BYTES, AtomicOutput
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsCommitOperator

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer

IMPORTS = (
    "from airflow.sdk import ObjectStoragePath\n"
    "from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsCommitOperator, shards\n"
)
COMMON = "version='3.11', system_model='cutoff', indicator_ids=[1, 2], partition_size=20"


def part_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("part-*"))}


def records_in(folder: Path) -> list[int]:
    """The dataset ids of every nested JSON Lines record in the parts of ``folder``."""
    return sorted(
        json.loads(line)["id"] for path in folder.glob("part-*") for line in path.read_text().splitlines() if line
    )


def everything(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# -- item 1: mapped chunks into one output ----------------------------------------------------------


@pytest.mark.parametrize("form", ["directory", "file"])
def test_mapped_chunks_into_one_output_fail_before_any_call_naming_shards(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, form: str
) -> None:
    """``.partial(output_uri=X).expand(dataset_ids=chunks)``: every chunk billed, one kept. Refused instead."""
    out = tmp_path / "out"
    uri = f"file://{out}/" if form == "directory" else f"file://{out}.jsonl"
    chunks = [list(range(1, 41)), list(range(41, 81)), list(range(81, 121))]
    body = (
        f"EcoinventDatasetsOperator.partial(task_id='ingest', {COMMON}, output_uri={uri!r})"
        f".expand(dataset_ids={chunks!r})\n"
    )
    result = dag_runner(body).run()
    assert result.states == {"ingest": "failed"}
    error = result.errors["ingest"]
    assert error["type"] == "EcoinventConfigError"
    assert error["message"].startswith(
        f"3 mapped task instances of 'ingest' write one output_uri (this one {uri!r}) without shard: each would "
        "take its own chunk for the whole request and replace what the others wrote"
    )
    assert ".expand(shard=shards(3))" in error["message"]
    assert "EcoinventDatasetsCommitOperator" in error["message"]
    assert ecoinvent_conn.stats()["api_calls"] == 0  # no scored call, not even the free ones
    assert not out.exists()
    assert not (tmp_path / "out.jsonl").exists()


def test_mapping_each_chunk_to_its_own_directory_or_over_shards_still_works(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """Legitimate mapping: one directory per instance (expand, expand_kwargs) and a fan-out over ``shard``."""
    first, second, fanned = tmp_path / "a", tmp_path / "b", tmp_path / "fanned"
    ids = list(range(1, 61))
    body = (
        IMPORTS
        + f"EcoinventDatasetsOperator.partial(task_id='dirs', {COMMON}, dataset_ids={ids!r})"
        + f".expand(output_uri=['file://{first}/', 'file://{second}/'])\n"
        + f"EcoinventDatasetsOperator.partial(task_id='kwargs', {COMMON}).expand_kwargs(["
        + f"{{'dataset_ids': [1, 2, 3], 'output_uri': 'file://{tmp_path}/k1/'}}, "
        + f"{{'dataset_ids': [4, 5], 'output_uri': 'file://{tmp_path}/k2/'}}])\n"
        + f"ingest = EcoinventDatasetsOperator.partial(task_id='ingest', {COMMON}, dataset_ids={ids!r}, "
        + f"output_uri='file://{fanned}/').expand(shard=shards(2))\n"
        + f"ingest >> EcoinventDatasetsCommitOperator(task_id='commit', output_uri='file://{fanned}/')\n"
    )
    result = dag_runner(body).run()
    assert result.state == "success", result.errors
    assert records_in(first) == records_in(second) == ids
    assert part_files(first) == part_files(second) == part_files(fanned)
    assert (records_in(tmp_path / "k1"), records_in(tmp_path / "k2")) == ([1, 2, 3], [4, 5])


def test_mapping_over_dataset_ids_and_output_uri_crosses_them_and_is_refused(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """``expand(dataset_ids=[c1, c2], output_uri=[a, b])`` makes 4 instances for 2 directories: refused."""
    body = (
        f"EcoinventDatasetsOperator.partial(task_id='ingest', {COMMON}).expand("
        f"dataset_ids=[[1, 2], [3, 4]], output_uri=['file://{tmp_path}/a/', 'file://{tmp_path}/b/'])\n"
    )
    result = dag_runner(body).run()
    assert result.errors["ingest"]["message"].startswith(
        "4 mapped task instances of 'ingest' write only 2 distinct output_uri values"
    )
    assert ecoinvent_conn.stats()["api_calls"] == 0


GROUP_IMPORTS = "from airflow.sdk import task_group\n"


@pytest.mark.parametrize("given", ["list", "xcom"])
def test_a_mapped_task_group_writing_chunks_into_one_output_fails_before_any_call(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, given: str
) -> None:
    """An operator inside ``@task_group`` expanded over chunks is no ``MappedOperator``, yet its instances share
    the output just the same: 3 chunks of 40 were billed and 40 kept, the run green. Refused instead."""
    out = tmp_path / "out"
    chunks = [list(range(1, 41)), list(range(41, 81)), list(range(81, 121))]
    body = (
        GROUP_IMPORTS
        + "@task\n"
        + f"def chunks():\n    return {chunks!r}\n"
        + "@task_group\n"
        + "def g(chunk):\n"
        + f"    EcoinventDatasetsOperator(task_id='ingest', {COMMON}, dataset_ids=chunk, output_uri='file://{out}/')\n"
        + (f"g.expand(chunk={chunks!r})\n" if given == "list" else "g.expand(chunk=chunks())\n")
    )
    result = dag_runner(body).run()
    assert result.states["g.ingest"] == "failed"
    error = result.errors["g.ingest"]
    assert error["type"] == "EcoinventConfigError"
    assert error["message"].startswith("3 mapped task instances of 'g.ingest' write one output_uri")
    assert "{{ ti.map_index }}" in error["message"]
    assert ecoinvent_conn.stats()["api_calls"] == 0  # no scored call, not even the free ones
    assert not out.exists()


def test_a_mapped_task_group_giving_each_instance_its_own_output_still_works(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """The group's own argument as output_uri, or a template naming the map index: one output per instance."""
    body = (
        GROUP_IMPORTS
        + "@task_group\n"
        + "def g(chunk, out):\n"
        + f"    EcoinventDatasetsOperator(task_id='by_arg', {COMMON}, dataset_ids=chunk, output_uri=out)\n"
        + f"    EcoinventDatasetsOperator(task_id='by_index', {COMMON}, dataset_ids=chunk, "
        + f"output_uri='file://{tmp_path}/i{{{{ ti.map_index }}}}/')\n"
        + f"g.expand_kwargs([{{'chunk': [1, 2], 'out': 'file://{tmp_path}/a/'}}, "
        + f"{{'chunk': [3], 'out': 'file://{tmp_path}/b/'}}])\n"
    )
    result = dag_runner(body).run()
    assert result.state == "success", result.errors
    assert (records_in(tmp_path / "a"), records_in(tmp_path / "b")) == ([1, 2], [3])
    assert (records_in(tmp_path / "i0"), records_in(tmp_path / "i1")) == ([1, 2], [3])


def test_an_instance_whose_mapping_cannot_be_read_is_judged_by_its_own_output() -> None:
    """The fallback: a mapped instance whose expand input cannot be resolved (here, no XCom to read) is refused
    when its output cannot vary per instance, and left alone when it names the map index."""
    from types import SimpleNamespace

    import pendulum
    from airflow.sdk import DAG, task, task_group

    from airflow_provider_ecoinvent.operators._mapping import mapped_outputs
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

    with DAG("fallback", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:

        @task
        def chunks() -> list[list[int]]:
            return [[1], [2]]

        @task_group
        def g(chunk: Any) -> None:
            for name, uri in (("fixed", "file:///out/"), ("own", "file:///out/{{ ti.map_index }}/")):
                EcoinventDatasetsOperator(task_id=name, version="3.11", dataset_ids=chunk, output_uri=uri)

        g.expand(chunk=chunks())

    context = {"ti": SimpleNamespace(map_index=1)}
    assert mapped_outputs(dag.task_dict["g.fixed"], context) == (math.inf, 1)
    assert mapped_outputs(dag.task_dict["g.own"], context) is None
    assert mapped_outputs(dag.task_dict["g.fixed"], {"ti": SimpleNamespace(map_index=-1)}) is None


def test_a_mapped_dry_run_into_one_output_previews_each_chunk(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """A dry run writes nothing, so mapped dry runs sharing one output_uri (a cost preview per chunk) run."""
    out = tmp_path / "out"
    body = (
        f"EcoinventDatasetsOperator.partial(task_id='preview', {COMMON}, dry_run=True, output_uri='file://{out}/')"
        ".expand(dataset_ids=[[1, 2], [3, 4, 5]])\n"
    )
    result = dag_runner(body).run()
    assert result.state == "success", result.errors
    assert ecoinvent_conn.stats()["scored_calls"] == 0
    assert not out.exists()


def test_templates_that_vary_per_instance_give_each_instance_its_own_output(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """A template naming a mapped argument (``task.dataset_ids``) or the map index varies per instance: accepted,
    crossed with a mapped output_uri too; one naming neither (``params``) is the same for all: refused."""
    body = (
        f"EcoinventDatasetsOperator.partial(task_id='by_ids', {COMMON}, "
        f"output_uri='file://{tmp_path}/ids-{{{{ task.dataset_ids[0] }}}}/').expand(dataset_ids=[[1, 2], [3]])\n"
        f"EcoinventDatasetsOperator.partial(task_id='crossed', {COMMON}).expand(dataset_ids=[[4], [5]], "
        f"output_uri=['file://{tmp_path}/x{{{{ ti.map_index }}}}/', "
        f"'file://{tmp_path}/{{% if ti.map_index < 2 %}}y{{% if ti.map_index %}}1{{% else %}}0{{% endif %}}"
        "{% elif ti.map_index == 2 %}y2{% else %}y3{% endif %}/'])\n"
        f"EcoinventDatasetsOperator.partial(task_id='by_params', {COMMON}, "
        f"output_uri='file://{tmp_path}/{{{{ params.name }}}}/').expand(dataset_ids=[[6], [7]])\n"
    )
    result = dag_runner(body, params={"name": "shared"}).run()
    assert result.states["by_ids"] == result.states["crossed"] == "success", result.errors
    assert (records_in(tmp_path / "ids-1"), records_in(tmp_path / "ids-3")) == ([1, 2], [3])
    crossed = {path.name: records_in(path) for path in sorted(tmp_path.glob("[xy]*"))}
    assert len(crossed) == 4  # one directory per instance: x0 ... y3, the ids crossed with both names
    assert sorted(ids for found in crossed.values() for ids in found) == [4, 4, 5, 5]
    message = result.errors["by_params"]["message"]
    assert message.startswith("2 mapped task instances of 'by_params' write one output_uri")
    assert "{{ ti.map_index }}" in message
    assert not (tmp_path / "shared").exists()


def test_the_generic_operator_refuses_mapped_instances_writing_one_file(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """``EcoinventOperator.partial(output_uri=F).expand(...)``: the last instance replaced the others' file."""
    shared = tmp_path / "shared.jsonl"
    body = (
        f"EcoinventOperator.partial(task_id='one', endpoint='indicators', output_uri='file://{shared}')"
        ".expand(query=[{'version': '3.11'}, {'version': '3.10'}])\n"
        "EcoinventOperator.partial(task_id='own', endpoint='indicators').expand_kwargs(["
        f"{{'query': {{'version': '3.11'}}, 'output_uri': 'file://{tmp_path}/a.jsonl'}}, "
        f"{{'query': {{'version': '3.10'}}, 'output_uri': 'file://{tmp_path}/b.jsonl'}}])\n"
    )
    result = dag_runner(body).run()
    assert result.states["own"] == "success", result.errors
    assert (tmp_path / "a.jsonl").exists()
    assert (tmp_path / "b.jsonl").exists()
    error = result.errors["one"]
    assert error["type"] == "EcoinventConfigError"
    assert error["message"].startswith(
        f"2 mapped task instances of 'one' write one output_uri (this one 'file://{shared}')"
    )
    assert "{{ ti.map_index }}" in error["message"]
    assert not shared.exists()


# -- item 2: ObjectStoragePath names a dataset directory ---------------------------------------------


def test_directory_mode_is_chosen_by_the_argument_or_a_trailing_slash_or_a_shard() -> None:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_ecoinvent.operators._partitions import writes_directory

    path = ObjectStoragePath("file:///data/out/")
    assert str(path) == "file:///data/out"  # the reason: a path object drops the trailing "/"
    assert writes_directory("file:///data/out/", None)
    assert not writes_directory("file:///data/out", None)
    assert writes_directory("file:///data/out", True)
    assert not writes_directory(path, None)
    assert writes_directory(path, True)
    assert writes_directory(path, None, (0, 2))
    assert not writes_directory(path, False, (0, 2))


def test_a_path_object_with_directory_true_writes_the_same_directory_as_a_string_ending_with_a_slash(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    by_text, by_path, by_flag = tmp_path / "text", tmp_path / "path", tmp_path / "flag"
    ids = list(range(1, 51))
    body = (
        IMPORTS
        + f"EcoinventDatasetsOperator(task_id='text', {COMMON}, dataset_ids={ids!r}, output_uri='file://{by_text}/')\n"
        + f"EcoinventDatasetsOperator(task_id='path', {COMMON}, dataset_ids={ids!r}, "
        + f"output_uri=ObjectStoragePath('file://{by_path}/'), directory=True)\n"
        + f"EcoinventDatasetsOperator(task_id='flag', {COMMON}, dataset_ids={ids!r}, "
        + f"output_uri='file://{by_flag}', directory=True)\n"
    )
    result = dag_runner(body).run()
    assert result.state == "success", result.errors
    assert part_files(by_text)
    assert part_files(by_path) == part_files(by_flag) == part_files(by_text)
    for name, folder in (("path", by_path), ("flag", by_flag)):
        assert (folder / "_SUCCESS").exists()
        assert result.xcom[name]["output_uri"] == f"file://{folder}/"
        assert result.xcom[name]["fingerprint"] == result.xcom["text"]["fingerprint"]


def test_shards_and_the_commit_step_take_path_objects_and_the_dag_file_parses(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """A path object with ``shard`` writes a directory; the commit step takes a path object (it used to
    refuse it while the DAG file was parsed, breaking every DAG in the file)."""
    whole, fanned = tmp_path / "whole", tmp_path / "fanned"
    ids = list(range(1, 81))
    body = (
        IMPORTS
        + f"EcoinventDatasetsOperator(task_id='whole', {COMMON}, dataset_ids={ids!r}, output_uri='file://{whole}/')\n"
        + f"ingest = EcoinventDatasetsOperator.partial(task_id='ingest', {COMMON}, dataset_ids={ids!r}, "
        + f"output_uri=ObjectStoragePath('file://{fanned}')).expand(shard=shards(3))\n"
        + "ingest >> EcoinventDatasetsCommitOperator(task_id='commit', "
        + f"output_uri=ObjectStoragePath('file://{fanned}/'))\n"
    )
    result = dag_runner(body).run()
    assert result.state == "success", result.errors
    assert part_files(fanned) == part_files(whole)
    assert (fanned / "_SUCCESS").exists()
    assert result.xcom["commit"]["parts"] == result.xcom["whole"]["parts"]
    assert result.xcom["commit"]["output_uri"] == f"file://{fanned}/"


def test_a_path_object_naming_a_new_file_still_writes_one_file(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    target = tmp_path / "single.jsonl"
    body = (
        IMPORTS
        + f"EcoinventDatasetsOperator(task_id='one', {COMMON}, dataset_ids=[1, 2, 3], "
        + f"output_uri=ObjectStoragePath('file://{target}'))\n"
    )
    result = dag_runner(body).run()
    assert result.state == "success", result.errors
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == [1, 2, 3]


def test_the_commit_step_takes_a_path_object_at_construction() -> None:
    from airflow.sdk import ObjectStoragePath

    task = EcoinventDatasetsCommitOperator(task_id="commit", output_uri=ObjectStoragePath("file:///data/fanned/"))
    assert str(task.output_uri) == "file:///data/fanned"


# -- item 3: a file URI naming an existing folder ---------------------------------------------------


@pytest.mark.parametrize("given", ["text", "path"])
def test_a_file_output_naming_an_existing_folder_fails_before_any_call(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path, given: str
) -> None:
    folder = tmp_path / "existing"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    uri = f"'file://{folder}'" if given == "text" else f"ObjectStoragePath('file://{folder}')"
    body = IMPORTS + f"EcoinventDatasetsOperator(task_id='one', {COMMON}, dataset_ids=[1, 2], output_uri={uri})\n"
    result = dag_runner(body).run()
    assert result.errors["one"] == {
        "type": "EcoinventConfigError",
        "message": f"output_uri 'file://{folder}' names an existing folder, not a file: name a file in it instead "
        f"(e.g. 'file://{folder}/datasets.jsonl'). To write a dataset directory there, end output_uri with '/' or "
        "pass directory=True. No call was made to the ecoinvent API.",
    }
    assert ecoinvent_conn.stats()["api_calls"] == 0
    assert everything(folder) == ["keep.txt"]


def test_the_generic_operator_refuses_a_file_output_naming_an_existing_folder(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    body = f"EcoinventOperator(task_id='get', endpoint='versions', output_uri='file://{tmp_path}')\n"
    result = dag_runner(body).run()
    assert result.errors["get"]["message"].startswith(f"output_uri 'file://{tmp_path}' names an existing folder")
    assert "directory=True" not in result.errors["get"]["message"]
    assert ecoinvent_conn.stats()["api_calls"] == 0


# -- item 4: abort on object storage never uploads ---------------------------------------------------


class UploadCountingFile(AbstractBufferedFile):
    """A write-only buffered file, as S3, GCS and Azure files are: bytes are published on the final upload."""

    def _initiate_upload(self) -> None:
        self.fs.initiated += 1
        self.parts: list[bytes] = []

    def _upload_chunk(self, final: bool = False) -> bool:
        self.buffer.seek(0)
        if not hasattr(self, "parts"):
            self._initiate_upload()
        self.parts.append(self.buffer.read())
        self.fs.uploads += 1
        if final:  # the object appears only now, complete
            self.fs.published.append(self.path)
            self.fs.store[self.path] = MemoryFile(self.fs, self.path, b"".join(self.parts))
        return True

    def discard(self) -> None:
        self.fs.discarded += 1


class UploadCountingFileSystem(MemoryFileSystem):
    """An object store in memory that counts uploads; its files are :class:`UploadCountingFile`."""

    protocol = ("countingmem",)
    root_marker = "/"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, global_store=False, **kwargs)
        self.uploads = self.initiated = self.discarded = 0
        self.published: list[str] = []

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return str(MemoryFileSystem._strip_protocol(str(path).removeprefix("countingmem://")))

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "w" not in mode:
            return super()._open(path, mode, **kwargs)
        return UploadCountingFile(self, self._strip_protocol(path), mode, block_size=5 * 2**20)


@pytest.fixture
def object_store() -> UploadCountingFileSystem:
    """``countingmem://`` attached for ``ObjectStoragePath``: a fresh store per test."""
    from airflow.sdk.io.store import _STORE_CACHE, attach

    fsspec.register_implementation("countingmem", UploadCountingFileSystem, clobber=True)
    fs = UploadCountingFileSystem(skip_instance_cache=True)
    _STORE_CACHE.pop("countingmem", None)
    attach(protocol="countingmem", fs=fs)
    yield fs
    _STORE_CACHE.pop("countingmem", None)


@pytest.mark.filterwarnings("ignore:UPath 'countingmem' filesystem")
@pytest.mark.parametrize("size", [10, WRITE_BUFFER_BYTES + 10], ids=["buffered-here", "handed-to-the-store"])
def test_abort_on_object_storage_discards_the_partial_without_uploading_it(
    object_store: UploadCountingFileSystem, size: int
) -> None:
    from airflow.sdk import ObjectStoragePath

    destination = ObjectStoragePath("countingmem://bucket/out/datasets.jsonl")
    output = AtomicOutput(destination)
    output.open()
    output.write(b"x" * size)
    output.flush()  # as the lease refresh does: the store's file buffers it (below its block size)
    output.abort()  # what on_kill calls, from the signal handler
    assert object_store.published == []  # never uploaded, not even to be deleted right after
    assert object_store.uploads == 0
    assert object_store.discarded == 1
    assert object_store.find("bucket") == []
    assert output.aborted
    with pytest.raises(OSError, match="was aborted"):
        output.write(b"more")

    committed = AtomicOutput(destination)  # the same store, a normal commit: one upload, then the move
    with committed:
        committed.write(b"line\n")
        committed.commit()
    assert object_store.cat_file("bucket/out/datasets.jsonl") == b"line\n"
    assert [path.rsplit("/", 1)[-1].endswith(".partial") for path in object_store.published] == [True]


def test_a_local_abort_still_removes_the_partial(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    output = AtomicOutput(ObjectStoragePath(f"file://{tmp_path}/out.jsonl"))
    output.open()
    output.write(b"x" * 100)
    output.flush()
    output.abort()
    assert everything(tmp_path) == []
