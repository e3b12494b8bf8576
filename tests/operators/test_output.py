"""AtomicOutput on real files: concurrent writers, the lease on temporary files, abort from a signal handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from airflow_provider_ecoinvent.operators._output import WRITE_BUFFER_BYTES, AtomicOutput
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import ObjectStoragePath

HOUR = 3600.0


def storage_path(path: Path) -> ObjectStoragePath:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"file://{path}")


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look unmodified for ``seconds`` (time shifted on the file, not slept)."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_two_attempts_interleaved_both_commit_and_the_last_move_wins(tmp_path: Path) -> None:
    """Issue 11: the second attempt's clean-up removed the first's live temporary file, and the first then
    failed at commit with FileNotFoundError after all its (billed) calls."""
    destination = tmp_path / "out.jsonl"
    first, second = AtomicOutput(storage_path(destination)), AtomicOutput(storage_path(destination))
    first.open()
    first.write(b'{"attempt":1}\n')
    second.open()  # a retry starts while the first attempt still runs
    assert len(partials(tmp_path)) == 2
    second.write(b'{"attempt":2}\n')
    first.commit()
    assert destination.read_bytes() == b'{"attempt":1}\n'
    second.commit()
    assert destination.read_bytes() == b'{"attempt":2}\n'
    assert partials(tmp_path) == []


def test_two_writer_threads_each_commit_one_complete_file(tmp_path: Path) -> None:
    destination = tmp_path / "out.jsonl"
    contents = {n: b"".join(b'{"attempt":%d,"line":%d}\n' % (n, i) for i in range(50_000)) for n in (1, 2)}
    opened = [threading.Event(), threading.Event()]
    errors: list[BaseException] = []

    def attempt(n: int) -> None:
        try:
            if n == 2:
                assert opened[0].wait(30)  # the second attempt starts once the first is writing
            with AtomicOutput(storage_path(destination)) as output:
                opened[n - 1].set()
                assert opened[2 - n].wait(30)
                for start in range(0, len(contents[n]), 4096):
                    output.write(contents[n][start : start + 4096])
                output.commit()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert destination.read_bytes() in (contents[1], contents[2])
    assert partials(tmp_path) == []


def test_only_partials_older_than_the_lease_are_removed(tmp_path: Path) -> None:
    destination = tmp_path / "out.jsonl"
    dead = tmp_path / ".out.jsonl.dead.partial"
    live = tmp_path / ".out.jsonl.live.partial"
    other = tmp_path / ".other.jsonl.dead.partial"
    for path in (dead, live, other):
        path.write_bytes(b"x")
    age(dead, 2 * HOUR)
    age(other, 2 * HOUR)
    age(live, 60)  # refreshed a minute ago by a writer that is still running
    output = AtomicOutput(storage_path(destination), lease_seconds=HOUR)
    with output:
        output.write(b"1\n")
        output.commit()
    assert not dead.exists()
    assert live.exists()
    assert other.exists()  # another destination's file is not ours to judge


def test_a_live_writer_keeps_its_temporary_file_fresh(tmp_path: Path) -> None:
    destination = tmp_path / "out.jsonl"
    writer = AtomicOutput(storage_path(destination), lease_seconds=0.2)  # refreshed every 0.05 s
    writer.open()
    temporary = tmp_path / writer.temporary.name
    age(temporary, HOUR)
    deadline = time.monotonic() + 30  # a bound on the wait, not an assertion on elapsed time
    while os.stat(temporary).st_mtime < time.time() - HOUR / 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    # A second attempt with a long lease finds the file fresh and leaves it.
    AtomicOutput(storage_path(destination), lease_seconds=HOUR)._remove_stale_partials()
    assert temporary.exists()
    writer.write(b"1\n")
    writer.commit()
    assert destination.read_bytes() == b"1\n"
    assert partials(tmp_path) == []


def test_abort_after_commit_keeps_the_file_and_failed_writes_leave_nothing(tmp_path: Path) -> None:
    destination = tmp_path / "out.jsonl"
    with AtomicOutput(storage_path(destination)) as output:
        output.write(b"kept\n")
        output.commit()
    output.abort()
    assert destination.read_bytes() == b"kept\n"
    failing = AtomicOutput(storage_path(destination))

    def failed_run() -> None:
        with failing:
            failing.write(b"lost\n")
            raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError):
        failed_run()
    with pytest.raises(OSError, match="aborted"):
        failing.write(b"more\n")
    assert destination.read_bytes() == b"kept\n"
    assert partials(tmp_path) == []


def test_a_sigkilled_attempts_file_is_left_while_fresh_and_removed_once_its_lease_ran_out(tmp_path: Path) -> None:
    """SIGKILL runs no clean-up: the next attempt removes the file, but not while it could be a zombie's."""
    destination = tmp_path / "out.jsonl"
    code = (
        "import time\n"
        "from airflow.sdk import ObjectStoragePath\n"
        "from airflow_provider_ecoinvent.operators._output import AtomicOutput\n"
        f"output = AtomicOutput(ObjectStoragePath('file://{destination}'))\n"
        "output.open()\n"
        "output.write(b'half a file')\n"
        "output.flush()\n"
        "print('writing', flush=True)\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "writing"
    finally:
        process.kill()
        process.wait(30)
    [left] = partials(tmp_path)
    assert (tmp_path / left).read_bytes() == b"half a file"

    AtomicOutput(storage_path(destination), lease_seconds=HOUR)._remove_stale_partials()  # a retry at once
    assert partials(tmp_path) == [left]
    age(tmp_path / left, HOUR + 60)  # a retry an hour later
    with AtomicOutput(storage_path(destination), lease_seconds=HOUR) as retry:
        retry.write(b"whole\n")
        retry.commit()
    assert partials(tmp_path) == []
    assert destination.read_bytes() == b"whole\n"


@pytest.mark.parametrize(
    ("setting", "lease"),
    [(None, 900.0), ("60", 60.0)],
    ids=["default", "configured"],
)
def test_the_lease_comes_from_the_airflow_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str | None, lease: float
) -> None:
    if setting is not None:
        monkeypatch.setenv("AIRFLOW__ECOINVENT__PARTIAL_FILE_LEASE_SECONDS", setting)
    assert AtomicOutput(storage_path(tmp_path / "out.jsonl")).lease_seconds == lease


@pytest.mark.parametrize("setting", ["abc", "0", "-5"])
def test_a_bad_lease_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str) -> None:
    from airflow_provider_ecoinvent.exceptions import EcoinventConfigError

    monkeypatch.setenv("AIRFLOW__ECOINVENT__PARTIAL_FILE_LEASE_SECONDS", setting)
    with pytest.raises(EcoinventConfigError, match=r"\[ecoinvent\] partial_file_lease_seconds must be"):
        AtomicOutput(storage_path(tmp_path / "out.jsonl"))


@pytest.mark.timeout(60)  # the old abort() deadlocked here: pytest-timeout's SIGALRM ends the test
def test_abort_from_a_signal_handler_during_a_slow_write_returns_and_leaves_no_partial(tmp_path: Path) -> None:
    """Issue 11: the Task SDK calls on_kill from the SIGTERM handler on the main thread; abort() waited for the
    lock that the interrupted write held, for ever. The "slow store" is a FIFO nobody reads until released."""
    destination = tmp_path / "out.jsonl"
    output = AtomicOutput(storage_path(destination))
    fifo = tmp_path / ".out.jsonl.slow.partial"
    os.mkfifo(fifo)
    output.temporary = storage_path(fifo)
    handled = threading.Event()
    received: list[int] = []
    lock_held: list[bool] = []

    def reader() -> None:
        with open(fifo, "rb") as pipe:  # opening lets the writer's open() through
            deadline = time.monotonic() + 30
            while not output._lock.locked() and time.monotonic() < deadline:
                time.sleep(0.001)  # the main thread is now inside write(), holding the lock, in the store
            # Repeated until handled: a signal landing between two partial writes of the pipe runs its handler
            # only at the next check, and the next write blocks again; a new signal interrupts it.
            while not handled.wait(0.05) and time.monotonic() < deadline:
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
            while chunk := pipe.read(1 << 16):  # the store answers at last: the write unwinds
                received.append(len(chunk))

    operator = EcoinventDatasetsOperator(task_id="t", dataset_ids=[1], output_uri=f"file://{destination}")
    operator._output = output  # the state execute() leaves while it writes

    def on_kill(signum: int, frame: object) -> None:  # the Task SDK's SIGTERM handler, in short
        lock_held.append(output._lock.locked())
        operator.on_kill()
        handled.set()

    previous = signal.signal(signal.SIGUSR1, on_kill)
    thread = threading.Thread(target=reader, daemon=True)
    try:
        thread.start()
        output.open()
        with pytest.raises(OSError, match="aborted"):
            output.write(b"x" * WRITE_BUFFER_BYTES)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        thread.join(30)
    assert handled.is_set()
    assert lock_held[0] is True  # the handler interrupted the write inside its lock, as on_kill does
    assert output.aborted
    assert not fifo.exists()
    assert not destination.exists()
    assert partials(tmp_path) == []
    with pytest.raises(OSError, match="aborted"):
        output.commit()
