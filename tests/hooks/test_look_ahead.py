"""The stream's look-ahead: while the head batch is slow, threads whose calls finished start the next ones.

Batches are handed over in id order. Against the real emulator over loopback, whose batch endpoint is
wrapped to hold back, slow down or refuse some answers: the calls after a held head batch go out and come
back meanwhile, up to ``look_ahead`` calls (a quarter more than ``max_in_flight`` while the answers are
light), never more than ``max_in_flight`` on the wire at once (read from the emulator's ledger), and the
datasets still come out complete and in id order. A failed call abandons the stream at once: no queued
call is sent after it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.emulator.messages import HTTPError, detail
from airflow_provider_ecoinvent.exceptions import EcoinventError
from airflow_provider_ecoinvent.hooks._stream import look_ahead
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator.messages import Request, Response

BATCH = 10
IDS = list(range(1, 201))  # 20 batches
HEAD_ID = IDS[0]


def wrap_batches(server: EmulatorServer, before: Callable[[dict[str, Any]], None]) -> None:
    """Call ``before(body)`` in the emulator before it answers each batch call (``body``: the call's JSON)."""
    assert server._server is not None
    routes = server._server.app.api.routes["/datasets/batch"]
    plain = routes["POST"]

    def batch(req: Request, client_id: str) -> Response:
        before(json.loads(req.body))
        return plain(req, client_id)

    routes["POST"] = batch


def is_head(body: dict[str, Any]) -> bool:
    return bool(body["dataset_ids"][0] == HEAD_ID)


def hold_back_the_head_batch(server: EmulatorServer) -> threading.Event:
    """The emulator answers the calls of the batch holding ``HEAD_ID`` only once the returned event is set."""
    release = threading.Event()
    wrap_batches(server, lambda body: is_head(body) and release.wait(30))
    return release


def batch_calls(server: EmulatorServer) -> int:
    return int(server.stats()["requests"].get("POST /datasets/batch", 0))


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def connect(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch, batch: int = BATCH) -> EcoinventHook:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", server.connection_json(batch_size=batch))
    return EcoinventHook()


@pytest.mark.parametrize(
    ("max_in_flight", "indicators", "batch", "expected"),
    [
        (1, 1, 10, 1),
        (4, 1, 10, 5),
        (8, 1, 10, 10),
        # K > 100: a batch is ceil(K / 100) calls and the window takes whole batches.
        (8, 250, 10, 9),
        (8, 500, 10, 10),
        (8, 650, 10, 7),
        # Heavy answers (datasets x indicators a call): the extra calls stay within 5,000 scores.
        (8, 25, 100, 10),
        (8, 50, 100, 9),
        (8, 100, 100, 8),
    ],
)
def test_calls_after_a_slow_head_batch_go_out_up_to_the_look_ahead(
    monkeypatch: pytest.MonkeyPatch, max_in_flight: int, indicators: int, batch: int, expected: int
) -> None:
    ids = list(range(1, 20 * batch + 1))  # 20 batches
    with EmulatorServer(datasets=len(ids)) as emulator:
        started_while_head_held, got = run_with_the_head_held(
            emulator, monkeypatch, max_in_flight, indicators, batch, expected
        )
        assert started_while_head_held == expected
        assert got == ids
        assert emulator.stats()["max_in_flight"] <= max_in_flight
        assert batch_calls(emulator) == 20 * -(-indicators // 100)


def run_with_the_head_held(
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    max_in_flight: int,
    indicators: int,
    batch: int,
    expected: int,
) -> tuple[int, list[int]]:
    """The calls started while the head batch is held back (waiting for ``expected`` of them, then 0.5 s
    more), and the ids streamed once it is released."""
    hook = connect(emulator, monkeypatch, batch)
    release = hold_back_the_head_batch(emulator)
    ids = list(range(1, 20 * batch + 1))
    indicator_ids = list(range(1, indicators + 1))
    stream = hook.get_datasets(ids, indicator_ids=indicator_ids, max_in_flight=max_in_flight)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(int(d["id"]) for d in stream))
    reader.start()
    try:
        wait_for(lambda: batch_calls(emulator) >= expected)
        time.sleep(0.5)  # time for more calls to go out, were the window not bounded
        started_while_head_held = batch_calls(emulator)
    finally:
        release.set()
        reader.join(30)
    return started_while_head_held, got


@pytest.mark.parametrize("max_in_flight", [4, 8])
def test_calls_on_the_wire_never_exceed_max_in_flight_when_every_call_is_slow(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, max_in_flight: int
) -> None:
    hook = connect(emulator, monkeypatch)
    wrap_batches(emulator, lambda body: time.sleep(0.2))
    assert [int(d["id"]) for d in hook.get_datasets(IDS, indicator_ids=[1], max_in_flight=max_in_flight)] == IDS
    assert emulator.stats()["max_in_flight"] == max_in_flight


def test_a_failed_call_abandons_the_stream_and_no_queued_call_is_sent_after_it(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once all 8 calls are on the wire, the head batch is refused while the other 7 take 2 s: the thread
    the refusal frees must not send one of the 2 queued calls (it would be billed for nothing). The 2 s give
    a loaded machine time to read the refusal before the other 7 threads are freed too."""
    hook = connect(emulator, monkeypatch)
    arrived = threading.Semaphore(0)

    def refuse_the_head_and_slow_the_rest(body: dict[str, Any]) -> None:
        if is_head(body):
            for _ in range(7):
                assert arrived.acquire(timeout=10), "the other calls never came"
            raise HTTPError(detail(403, "Your licence does not cover these datasets"))
        arrived.release()
        time.sleep(2.0)

    wrap_batches(emulator, refuse_the_head_and_slow_the_rest)
    with pytest.raises(EcoinventError, match="403"):
        list(hook.get_datasets(IDS, indicator_ids=[1], max_in_flight=8))
    time.sleep(2.3)  # the 7 calls on the wire end; a queued one would have been sent by now
    assert batch_calls(emulator) == 8
    assert emulator.stats()["scored_calls"] == 7


def test_the_caller_is_told_the_failure_not_that_the_head_batch_was_abandoned_because_of_it(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head batch is answered 503 and waits to retry; meanwhile another call is refused (403) and
    abandons the stream, which stops the head's retry. The error raised is the 403, which says why."""
    hook = connect(emulator, monkeypatch)
    head_refused = threading.Event()

    def busy_head_then_a_refusal(body: dict[str, Any]) -> None:
        if is_head(body):
            head_refused.set()
            raise HTTPError(detail(503, "Busy"))
        if body["dataset_ids"][0] == IDS[BATCH]:
            assert head_refused.wait(10)
            raise HTTPError(detail(403, "Your licence does not cover these datasets"))
        time.sleep(0.5)

    wrap_batches(emulator, busy_head_then_a_refusal)
    with pytest.raises(EcoinventError, match="403") as failed:
        list(hook.get_datasets(IDS, indicator_ids=[1], max_in_flight=4))
    assert "abandoned" not in str(failed.value)


def test_a_failed_slice_fails_the_stream_without_waiting_for_the_batchs_other_calls(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch of K = 250 (3 calls, the last and only batch: nothing else in the window). Its first slice
    is refused while the other two take 3 s: the failure surfaces before they are answered."""
    hook = connect(emulator, monkeypatch)
    others_answered = threading.Event()
    arrived = threading.Semaphore(0)

    def refuse_the_first_slice(body: dict[str, Any]) -> None:
        if body["indicator_ids"][0] == 1:
            for _ in range(2):
                assert arrived.acquire(timeout=10), "the other slices never came"
            raise HTTPError(detail(403, "Your licence does not cover these indicators"))
        arrived.release()
        time.sleep(3)
        others_answered.set()

    wrap_batches(emulator, refuse_the_first_slice)
    with pytest.raises(EcoinventError, match="403"):
        list(hook.get_datasets(IDS[:BATCH], indicator_ids=list(range(1, 251)), max_in_flight=8))
    assert not others_answered.is_set()


def test_the_look_ahead_is_a_quarter_more_than_max_in_flight_within_a_score_budget() -> None:
    assert [look_ahead(m, 300) for m in (1, 2, 3, 4, 8, 32)] == [1, 2, 3, 5, 10, 40]
    # 100 datasets a call, K indicators a call: the extra calls hold at most 5,000 scores.
    assert [look_ahead(8, 100 * k) for k in (0, 3, 25, 26, 50, 51, 100)] == [10, 10, 10, 9, 9, 8, 8]
