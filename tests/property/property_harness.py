"""Running drawn requests in-process against the emulator, and reading back what they left on storage.

Speed is the point: one emulator per test process (loopback), operators built and executed directly with a
minimal context (the task instance identity the directory writer names its temporary files after), no DAG
run. What Airflow would do around them is reproduced where it matters to the promises under test:

* a mapped task instance per shard or chunk (``map_index``), the commit operator after the shards;
* a kill as by SIGKILL (no ``on_kill``, no clean-up: the part being written stays as a ``.partial``), between
  two parts, followed by the task's next try (same task instance, ``try_number + 1``);
* the emulator's ledger is reset before every try (its fault rules carried over), so each try's scored
  calls, datasets and indicators are known exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final

from property_strategies import MAX_RETRIES, Request, Schedule

from airflow_provider_ecoinvent.emulator import EmulatorServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CONN_ID: Final = "ecoinvent_property"
CONN_ENV: Final = "AIRFLOW_CONN_ECOINVENT_PROPERTY"
PARTIAL_SUFFIX: Final = ".partial"


class SimulatedKill(BaseException):
    """The task process dies here (a BaseException: the code under test's ``except Exception`` never sees it)."""


# -- one try, one task instance, one step ----------------------------------------------------------------


@dataclass
class Try:
    """One try of one task instance: what it scored (from the ledger) and how it ended."""

    task: str
    map_index: int
    try_number: int
    scored_calls: int = 0
    datasets: set[int] = field(default_factory=set)
    indicators: set[int] = field(default_factory=set)
    error: BaseException | None = None
    killed: bool = False
    #: Dataset ids of the parts this try had committed when it was killed (part file and record in place).
    committed_ids: set[int] = field(default_factory=set)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.killed


@dataclass
class Step:
    """One run of a request (all its task instances and their tries): did it succeed, what did it score."""

    request: Request
    #: What the output location held before the step: "absent", "file" or "directory".
    found: str = "absent"
    tries: list[Try] = field(default_factory=list)
    ok: bool = True
    error: BaseException | None = None
    manifest: dict[str, Any] | None = None

    @property
    def scored_calls(self) -> int:
        return sum(attempt.scored_calls for attempt in self.tries)

    def describe(self) -> str:
        lines = [f"step ok={self.ok} error={self.error!r}"]
        lines += [
            f"  {t.task}[{t.map_index}] try {t.try_number}: scored_calls={t.scored_calls} "
            f"datasets={len(t.datasets)} killed={t.killed} error={t.error!r}"
            for t in self.tries
        ]
        return "\n".join(lines)


def found_at(location: Path) -> str:
    """What is at ``location``: ``"absent"``, ``"file"`` or ``"directory"``."""
    return "directory" if location.is_dir() else "file" if location.exists() else "absent"


class Lab:
    """The emulator, a scratch folder and the cache of clean reference runs, for one test process."""

    def __init__(self) -> None:
        self.emulator = EmulatorServer().start()
        self.root = Path(tempfile.mkdtemp(prefix="ecoinvent-property-"))
        self.references: dict[tuple[Any, ...], View] = {}
        self._counter = 0

    def close(self) -> None:
        self.emulator.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        os.environ.pop(CONN_ENV, None)

    def new_location(self, name: str = "out") -> Path:
        """A fresh output location (not created: the first run creates it, as a file or a directory)."""
        self._counter += 1
        folder = self.root / f"loc{self._counter:05d}"
        folder.mkdir()
        return folder / name

    def new_run_id(self) -> str:
        self._counter += 1
        return f"property__{self._counter:06d}"

    def connect(self, request: Request) -> None:
        """The connection the operators use: this emulator, the request's batch size, the retries assumed."""
        os.environ[CONN_ENV] = self.emulator.connection_json(batch_size=request.batch_size, max_retries=MAX_RETRIES)

    def fresh_ledger(self) -> None:
        """Reset the ledger for the next try, keeping the fault rules where they were (reset clears them)."""
        rules = self.emulator.control.faults()
        self.emulator.reset()
        for rule in rules:
            if rule["count"] is not None and rule["hits"] >= rule["count"]:
                continue
            options = {k: v for k, v in rule.items() if k not in ("seen", "hits", "count", "after") and v is not None}
            count = None if rule["count"] is None else rule["count"] - rule["hits"]
            after = max(0, rule["after"] - rule["seen"])
            self.emulator.add_fault(options.pop("kind"), count=count, after=after, **options)

    def ledger(self) -> tuple[int, set[int], set[int]]:
        """Scored calls, datasets and indicators billed since the last reset."""
        stats = self.emulator.stats(include_ids=True)
        usage = stats["usage"].get(self.emulator.client_id, {})
        return stats["scored_calls"], set(usage.get("dataset_ids", ())), set(usage.get("indicator_ids", ()))


def output_uri(request: Request, location: Path) -> Any:
    """``output_uri`` as the request spells it: string or path object, file or directory, maybe via ``..``."""
    from airflow.sdk import ObjectStoragePath

    if request.directory:
        text = f"file://{location}/"
    elif request.dotdot:
        text = f"file://{location.parent}/sub/../{location.name}"
    else:
        text = f"file://{location}"
    return ObjectStoragePath(text) if request.path_object else text


def operator_arguments(request: Request, location: Path) -> dict[str, Any]:
    arguments = {
        "ecoinvent_conn_id": CONN_ID,
        "output_uri": output_uri(request, location),
        "indicator_ids": list(request.indicator_ids),
        "version": request.version,
        "system_model": "cutoff",
        "layout": request.layout,
        "format": request.file_format,
        "partition_size": request.partition_size,
        "overwrite": request.overwrite,
        "max_in_flight": request.max_in_flight,
        "max_unique_datasets": request.max_unique_datasets,
        "max_unique_indicators": request.max_unique_indicators,
        "progress_interval": 3600.0,
    }
    if request.explicit_directory:  # a path object names a directory only so (or with a shard)
        arguments["directory"] = request.directory
    return arguments


def task_instances(request: Request, location: Path) -> list[tuple[int, Callable[[], Any]]]:
    """``(map_index, build)`` of each task instance: one task, or the mapped instances of a DAG's
    ``.partial(...).expand(shard=shards(n))`` or ``.expand(dataset_ids=chunks)``, built as Airflow builds them
    (``MappedOperator.unmap``), so the operator sees its mapping as in a real DAG run."""
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator, shards

    base = operator_arguments(request, location)
    if not request.shards and not request.chunks:
        whole = {**base, "dataset_ids": list(request.dataset_ids)}
        return [(-1, lambda: EcoinventDatasetsOperator(task_id="ingest", **whole))]
    import pendulum
    from airflow.sdk import DAG

    dag = DAG("property", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
    if request.shards:
        values: list[dict[str, Any]] = [{"shard": shard} for shard in shards(request.shards)]
        partial = EcoinventDatasetsOperator.partial(
            task_id="ingest", dag=dag, dataset_ids=list(request.dataset_ids), **base
        )
        mapped = partial.expand(shard=shards(request.shards))
    else:
        assert request.chunks is not None
        values = [{"dataset_ids": list(chunk)} for chunk in request.chunks]
        partial = EcoinventDatasetsOperator.partial(task_id="ingest", dag=dag, **base)
        mapped = partial.expand(dataset_ids=[list(chunk) for chunk in request.chunks])
    return [(index, lambda value=value: mapped.unmap(value)) for index, value in enumerate(values)]


def context_for(task_id: str, map_index: int, try_number: int, run_id: str) -> dict[str, Any]:
    """The minimal context an operator reads: the running task instance's identity and try, and its DAG run
    (part records carry a hash of dag id and run id: the tries of one run share it, a new run has its own)."""
    ti = SimpleNamespace(dag_id="property", run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number)
    dag_run = SimpleNamespace(dag_id="property", run_id=run_id)
    return {"ti": ti, "task_instance": ti, "dag_run": dag_run, "run_id": run_id, "map_index": map_index}


@contextlib.contextmanager
def killing_after(parts: int | None) -> Iterator[None]:
    """Raise :class:`SimulatedKill` when the try starts writing its ``parts + 1``-th part (``None``: never)."""
    if parts is None:
        yield
        return
    import pytest

    from airflow_provider_ecoinvent.operators import _partitioned

    original = _partitioned.write_dataset
    opened: list[Any] = []

    def write(lines: Any, *args: Any) -> int:
        if not opened or opened[-1] is not lines:
            opened.append(lines)
            if len(opened) > parts:
                raise SimulatedKill
        return int(original(lines, *args))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_partitioned, "write_dataset", write)
        yield


def leave_like_sigkill(operator: Any) -> None:
    """What SIGKILL leaves: the part being written stays a ``.partial``; only this process's threads stop."""
    writer = getattr(operator, "_writer", None)
    current = getattr(writer, "_current", None)
    if current is None:
        return
    output = current.output
    if current.parquet is not None:  # else it writes its footer into a closed output when collected
        with contextlib.suppress(Exception):
            current.parquet.close()
    output._lease_stop.set()
    with contextlib.suppress(Exception):
        output._file.close()


def wait_for_calls_to_end(timeout: float = 20.0) -> None:
    """Calls a stopped stream still had in flight finish (and are billed) before the next try's ledger."""
    deadline = time.monotonic() + timeout
    while any(t.name.startswith("ecoinvent-batch") and t.is_alive() for t in threading.enumerate()):
        if time.monotonic() > deadline:
            raise AssertionError("batch threads of a finished try are still running")
        time.sleep(0.005)


def committed_part_ids(location: Path, planned: list[int], since_ns: int) -> set[int]:
    """Ids of the parts committed since ``since_ns`` in a dataset directory (part file and record in place)."""
    found: set[int] = set()
    records = location / "_parts"
    if not records.is_dir():
        return found
    for record in records.glob("*.json"):
        part = location / record.stem
        if not part.is_file() or part.stat().st_mtime_ns < since_ns:
            continue
        data = json.loads(record.read_text())
        first, last = int(data["first_dataset_id"]), int(data["last_dataset_id"])
        found.update(ident for ident in planned if first <= ident <= last)
    return found


def run_try(
    lab: Lab, make: Callable[[], Any], attempt: Try, run_id: str, kill: int | None, location: Path, planned: list[int]
) -> None:
    """One try: a fresh ledger, the operator built (as a task instance is) and executed, its bill read."""
    lab.fresh_ledger()
    started = time.time_ns()
    operator = None
    try:
        operator = make()
        with killing_after(kill):
            attempt.manifest = operator.execute(
                context_for(attempt.task, attempt.map_index, attempt.try_number, run_id)
            )
    except SimulatedKill:
        attempt.killed = True
        leave_like_sigkill(operator)
    except Exception as error:
        attempt.error = error
    wait_for_calls_to_end()
    attempt.scored_calls, attempt.datasets, attempt.indicators = lab.ledger()
    if attempt.killed:
        attempt.committed_ids = committed_part_ids(location, planned, started)


def run_step(lab: Lab, request: Request, schedule: Schedule, location: Path, run_id: str | None = None) -> Step:
    """One run of ``request`` into ``location`` with ``schedule``'s faults; a killed try is followed by the next."""
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsCommitOperator

    run_id = run_id or lab.new_run_id()
    lab.connect(request)
    lab.emulator.reset()
    for rule in schedule.faults:
        lab.emulator.add_fault(**rule)
    step = Step(request, found=found_at(location))
    for number, (map_index, make) in enumerate(task_instances(request, location)):
        kill = schedule.kill[1] if schedule.kill is not None and schedule.kill[0] == number else None
        for try_number in (1, 2):
            attempt = Try("ingest", map_index, try_number)
            run_try(lab, make, attempt, run_id, kill if try_number == 1 else None, location, request.planned_ids)
            step.tries.append(attempt)
            if not attempt.killed:
                break
        if not step.tries[-1].ok:
            step.ok, step.error = False, step.tries[-1].error
    if request.shards and step.ok:

        def commit() -> Any:
            return EcoinventDatasetsCommitOperator(task_id="commit", output_uri=output_uri(request, location))

        attempt = Try("commit", -1, 1)
        run_try(lab, commit, attempt, run_id, None, location, request.planned_ids)
        step.tries.append(attempt)
        if not attempt.ok:
            step.ok, step.error = False, attempt.error
    if step.ok:
        step.manifest = step.tries[-1].manifest
    lab.emulator.clear_faults()
    return step


def dry_run(lab: Lab, request: Request, location: Path) -> dict[str, Any]:
    """The dry run of ``request`` (single task, no shard): what it says a real run would score."""
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

    lab.connect(request)
    arguments = {**operator_arguments(request, location), "dataset_ids": list(request.dataset_ids), "dry_run": True}
    operator = EcoinventDatasetsOperator(task_id="ingest", **arguments)
    manifest: dict[str, Any] = operator.execute(context_for("ingest", -1, 1, lab.new_run_id()))
    return manifest


#: The running :class:`Lab` (set by the ``lab`` fixture): Hypothesis' state machines take no fixtures.
LAB: Lab | None = None


# -- what is on storage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """The content of an output, comparable across runs: bytes for JSON Lines, values for Parquet."""

    kind: str  # "file", "directory", or what else is at the location ("absent", "file-at-directory", ...)
    data: dict[str, Any]
    records: tuple[str, ...] = ()
    manifest: tuple[tuple[str, Any], ...] = ()
    complete: bool = False


MANIFEST_KEYS: Final = (
    "fingerprint",
    "part_count",
    "record_count",
    "datasets_written",
    "missing_datasets",
    "missing_dataset_ids",
)


def _content(path: Path, file_format: str) -> Any:
    if file_format == "jsonl":
        return path.read_bytes()
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as error:  # not Parquet (e.g. a JSON Lines part of an earlier request)
        return f"unreadable as Parquet: {error}"


def read_view(request: Request, location: Path) -> View:
    """What a reader of the request's output finds at ``location``."""
    if not request.directory:
        if not location.is_file():
            return View("absent" if not location.exists() else "folder-at-file", {})
        return View("file", {"": _content(location, request.file_format)})
    if not location.is_dir():
        return View("absent" if not location.exists() else "file-at-directory", {})
    data = {path.name: _content(path, request.file_format) for path in sorted(location.glob("part-*"))}
    records = tuple(sorted(path.name for path in (location / "_parts").glob("*.json")))
    manifest_path = location / "_manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    parts = [
        {k: v for k, v in entry.items() if request.file_format == "jsonl" or k not in ("bytes", "sha256")}
        for entry in manifest.get("parts", [])
    ]
    summary = (*((key, manifest.get(key)) for key in MANIFEST_KEYS), ("parts", parts))
    names = tuple(sorted(name for name in os.listdir(location) if name != "_shards"))
    complete = (location / "_SUCCESS").is_file()
    return View("directory", data, (*records, "|", *names), tuple((k, json.dumps(v)) for k, v in summary), complete)


def written_datasets(request: Request, view: View) -> dict[int, set[int | None]]:
    """Dataset id -> the indicator ids scored for it, from the output's records (either layout)."""
    found: dict[int, set[int | None]] = {}
    for content in view.data.values():
        rows = (
            [json.loads(line) for line in content.decode("utf-8").splitlines() if line.strip()]
            if isinstance(content, bytes)
            else content
        )
        for row in rows:
            if request.layout == "nested":
                scores = found.setdefault(int(row["id"]), set())
                scores.update(int(score["id"]) for score in row.get("impact_scores") or ())
            else:
                scores = found.setdefault(int(row["dataset_id"]), set())
                scores.add(None if row.get("indicator_id") is None else int(row["indicator_id"]))
    return found


def snapshot(location: Path) -> dict[str, tuple[str, int]]:
    """Every file at or under ``location`` (temporary ones too): SHA-256 and modification time."""
    paths = [location] if location.is_file() else sorted(p for p in location.rglob("*") if p.is_file())
    if location.parent.is_dir():  # a single file's temporary siblings
        paths += sorted(p for p in location.parent.iterdir() if p.is_file() and p.name.endswith(PARTIAL_SUFFIX))
    return {
        str(path.relative_to(location.parent)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in paths
    }


def temporaries(location: Path) -> list[str]:
    """``.partial`` files at or under ``location`` and next to it (a single file's temporary siblings)."""
    found = [p for p in location.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)] if location.is_dir() else []
    if location.parent.is_dir():
        found += [p for p in location.parent.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]
    return sorted(str(path.relative_to(location.parent)) for path in found)


def reference(lab: Lab, request: Request) -> View:
    """The output of a clean single-task run of the same request (no faults, no fan-out, string URI); cached."""
    key = request.reference_key()
    if key not in lab.references:
        clean = Request(
            dataset_ids=tuple(request.planned_ids),
            indicator_ids=tuple(sorted(set(request.indicator_ids))),
            version=request.version,
            layout=request.layout,
            file_format=request.file_format,
            directory=request.directory,
            partition_size=request.partition_size,
            batch_size=100,
            max_in_flight=4,
        )
        location = lab.new_location()
        step = run_step(lab, clean, Schedule(), location)
        assert step.ok, f"the clean reference run failed: {step.describe()}"
        lab.references[key] = read_view(clean, location)
    return lab.references[key]


def minimum_calls(request: Request, ids: list[int]) -> int:
    """Scored calls a clean fetch of ``ids`` takes at most: one per batch and indicator slice."""
    return math.ceil(len(ids) / request.batch_size) * request.slices
