"""The stream's look-ahead: while the head batch is slow, threads whose calls finished start the next ones.

Batches are handed over in id order. Against the real emulator over loopback, whose answer for the head
batch is held back until the test releases it: the calls after it go out and come back meanwhile, up to
``look_ahead(max_in_flight)`` calls started but not consumed and never more than ``max_in_flight`` on the wire
at once (read from the emulator's ledger), and the datasets still come out complete and in id order.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.hooks._stream import look_ahead
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.emulator import EmulatorServer
    from airflow_provider_ecoinvent.emulator.messages import Request, Response

BATCH = 10
IDS = list(range(1, 201))  # 20 batches
HEAD_ID = IDS[0]


def hold_back_the_head_batch(server: EmulatorServer) -> threading.Event:
    """The emulator answers the batch holding ``HEAD_ID`` only once the returned event is set."""
    assert server._server is not None
    api = server._server.app.api
    routes = api.routes["/datasets/batch"]
    plain = routes["POST"]
    release = threading.Event()

    def batch(req: Request, client_id: str) -> Response:
        if f"[{HEAD_ID}," in req.body.decode().replace(" ", ""):
            release.wait(30)
        return plain(req, client_id)

    routes["POST"] = batch
    return release


def batch_calls(server: EmulatorServer) -> int:
    return int(server.stats()["requests"].get("POST /datasets/batch", 0))


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(("max_in_flight", "expected"), [(1, 1), (4, 5), (8, 10)])
def test_calls_after_a_slow_head_batch_go_out_up_to_the_look_ahead(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, max_in_flight: int, expected: int
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(batch_size=BATCH))
    release = hold_back_the_head_batch(emulator)
    stream = EcoinventHook().get_datasets(IDS, indicator_ids=[1], max_in_flight=max_in_flight)
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
    assert started_while_head_held == expected
    assert got == IDS
    assert emulator.stats()["max_in_flight"] <= max_in_flight
    assert batch_calls(emulator) == len(IDS) // BATCH


def test_the_look_ahead_is_a_quarter_more_than_max_in_flight() -> None:
    assert [look_ahead(m) for m in (1, 2, 3, 4, 8, 32)] == [1, 2, 3, 5, 10, 40]
