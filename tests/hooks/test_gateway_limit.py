"""A fan-out of shards under one gateway limit, and tokens that age while calls queue for a place in flight.

Against the real emulator over loopback. Each shard is a thread with its own hook, as separate mapped tasks
have their own (they share only the process's token cache, as tasks on one worker do): nothing coordinates
them but the server's answers. The gateway allows 3 API calls in flight and answers the rest
``429, Retry-After: 0``, the case where a retry budget counted in attempts is gone in milliseconds.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent._client.concurrency import CallGate
from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

SHARDS = 4
PER_SHARD = 100
BATCH = 20  # five batch calls a shard, twenty in all
GATEWAY_LIMIT = 3


def run_shards(count: int, shard: Callable[[int], Any]) -> list[Any]:
    """Run ``shard(0..count-1)`` at once, each in its own thread; every shard's result or its exception."""
    start = threading.Barrier(count)

    def together(index: int) -> Any:
        start.wait()
        try:
            return shard(index)
        except Exception as err:  # reported, not raised: the assertion shows every shard's fate
            return err

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(together, range(count)))


def test_four_shards_under_a_gateway_limit_of_three_with_retry_after_0_all_complete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with EmulatorServer(
        datasets=SHARDS * PER_SHARD, latency_ms=30, max_concurrency=GATEWAY_LIMIT, concurrency_retry_after="0"
    ) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", server.connection_json(batch_size=BATCH))

        def shard(index: int) -> list[int]:
            hook = EcoinventHook()  # one hook a shard, as one task each
            hook.get_indicators("3.11")  # a free call, under the same limit
            ids = range(index * PER_SHARD + 1, (index + 1) * PER_SHARD + 1)
            return [dataset["id"] for dataset in hook.get_datasets(ids, indicator_ids=[1, 2], max_in_flight=4)]

        outcomes = run_shards(SHARDS, shard)
        stats = server.stats(include_ids=True)

    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert failures == [], failures
    assert outcomes == [list(range(i * PER_SHARD + 1, (i + 1) * PER_SHARD + 1)) for i in range(SHARDS)]
    usage = stats["usage"]["emulator-client"]
    batch_calls = SHARDS * PER_SHARD // BATCH
    # Every dataset scored, and scored once: one successful batch call per batch, whatever was refused.
    assert usage["dataset_ids"] == list(range(1, SHARDS * PER_SHARD + 1))
    assert stats["scored_calls"] == batch_calls
    refused = stats["concurrency_rejections"]
    assert refused >= 1, "four shards at four calls each against a limit of three: the gateway must refuse some"
    assert stats["statuses"]["429"] == refused  # absorbed: every 429 was retried, none failed a shard
    assert batch_calls <= stats["requests"]["POST /datasets/batch"] <= batch_calls + refused
    assert stats["max_in_flight"] <= GATEWAY_LIMIT


def test_a_token_is_taken_when_the_call_is_sent_not_before_it_queues_for_a_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """3.6 s tokens, 1.2 s calls, one call in flight at a time, four threads: a call queues up to 3.6 s.

    A token taken before the queue is expired when the call goes out, twice in a row for a busy thread, and
    the second 401 was reported as "refused a freshly issued token ... the client may not be enabled".
    Taken once the call has its place, a token is at most its refresh margin plus one call's latency old. A
    fresh token outlives one call by 2.4 s (tokens three calls long: the widest slack while a queue of three
    calls plus one still outlasts a token), so a loaded machine (two suites on two cores) does not expire it.
    """
    with EmulatorServer(datasets=20, latency_ms=1200, token_ttl=3.6) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", server.connection_json())
        hook = EcoinventHook()
        gate = CallGate(1)

        def caller(index: int) -> list[int]:
            found = []
            for call in range(3):
                ident = 1 + index * 3 + call
                body = {"dataset_ids": [ident], "indicator_ids": [1]}
                answer = hook.request("POST", "datasets/batch", query={"version": "3.11"}, json=body, gate=gate)
                found.extend(dataset["id"] for dataset in answer["datasets"])
            return found

        outcomes = run_shards(4, caller)
        stats = server.stats()

    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert failures == [], failures
    assert outcomes == [[1 + i * 3, 2 + i * 3, 3 + i * 3] for i in range(4)]
    assert stats["scored_calls"] == 12
    assert stats["tokens_issued"] >= 3  # the ~15 s run outlived several tokens: they were renewed as they aged


def test_free_calls_pass_the_hooks_gate_with_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Version checks from several threads wait within the hook's width like batches, and their 429s count."""
    with EmulatorServer(datasets=10, latency_ms=150) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", server.connection_json())
        hook = EcoinventHook()
        server.add_fault("status", status=429, retry_after="0", path="/versions", count=1)
        hook.get_versions()
        assert hook.gate.figures.rate_limited_calls == 1
        hook.gate.restart(1)  # as a stream with max_in_flight=1 sets it
        outcomes = run_shards(3, lambda _: len(hook.get_versions()))
        stats = server.stats()
    assert outcomes == [3, 3, 3]
    assert stats["max_in_flight"] == 1, "three free calls at once went past a width of one"
