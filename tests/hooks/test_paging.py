"""Paging: answers without ``total`` must not end a walk after one page (issue 11).

The rule lives in ``_client.paging.walk_pages``; the hook's search, batch calls and indicators, and
``EcoinventOperator(paginate=True)`` all use it. Against the emulator with and without ``total``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent._client.paging import Page, read_page, walk_pages
from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.exceptions import EcoinventApiError
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(params=[False, True], ids=["with-total", "without-total"])
def omit_total(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def serve(monkeypatch: pytest.MonkeyPatch, **config: Any) -> EmulatorServer:
    """Start an emulator (stopped by the caller's ``with``) and point ``ecoinvent_default`` at it."""
    emulator = EmulatorServer(**{k: v for k, v in config.items() if k != "batch_size"})
    extra = {"batch_size": config["batch_size"]} if "batch_size" in config else {}
    emulator.start()
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(**extra))
    return emulator


@pytest.fixture
def emulator_250(monkeypatch: pytest.MonkeyPatch, omit_total: bool) -> Iterator[EmulatorServer]:
    emulator = serve(monkeypatch, datasets=250, omit_total=omit_total)
    try:
        yield emulator
    finally:
        emulator.stop()


def test_search_returns_every_page_with_or_without_total(emulator_250: EmulatorServer) -> None:
    found = [d["id"] for d in EcoinventHook().search_datasets()]
    assert found == list(range(1, 251))
    assert emulator_250.stats()["requests"]["GET /datasets"] == 3  # 100 + 100 + 50: the short page ends it


def test_indicators_complete_with_or_without_total(emulator_250: EmulatorServer) -> None:
    from airflow_provider_ecoinvent.emulator.catalogue import INDICATORS

    assert [i["id"] for i in EcoinventHook().get_indicators()] == [i.id for i in INDICATORS]


@pytest.mark.parametrize(
    ("version", "returned", "calls"),
    [
        ("3.11", 1000, 10),  # ten full pages: the 1000 ids posted bound the walk, no eleventh call
        ("3.9", 1000 - 1000 // 7, 9),  # 3.9 lacks multiples of 7: 858 datasets, the ninth page is short
    ],
    ids=["all-present", "some-missing"],
)
def test_large_batches_page_to_the_end_without_false_missing_ids(
    monkeypatch: pytest.MonkeyPatch, omit_total: bool, version: str, returned: int, calls: int
) -> None:
    emulator = serve(monkeypatch, datasets=1000, omit_total=omit_total, batch_size=1000)
    try:
        # indicator 23 exists in every version (EF v3.1, ids 1 to 22, is not in 3.9)
        stream = EcoinventHook().get_datasets(range(1, 1001), indicator_ids=[23], version=version)
        datasets = list(stream)
        stats = emulator.stats()
    finally:
        emulator.stop()
    absent = [i for i in range(1, 1001) if version == "3.9" and i % 7 == 0]
    assert len(datasets) == returned
    assert stream.missing_ids == absent
    assert stats["requests"]["POST /datasets/batch"] == calls
    assert stats["usage"][emulator.client_id]["datasets"] == returned


class Pages:
    """A real paged source over a list, answering like the API with or without ``total``."""

    def __init__(self, size: int, *, total: bool, cap: int | None = None) -> None:
        self.items = list(range(size))
        self.total = total
        self.cap = cap  # a server that returns fewer than asked while ``total`` says there is more
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, limit: int) -> Page:
        self.calls.append((offset, limit))
        page = self.items[offset : offset + min(limit, self.cap or limit)]
        body: dict[str, Any] = {"results": page}
        if self.total:
            body["total"] = len(self.items)
        return read_page(body, ("results",))


@pytest.mark.parametrize(
    ("size", "total", "cap", "expected", "calls"),
    [
        (250, True, None, None, [(0, 100), (100, 100), (200, 100)]),
        (250, False, None, None, [(0, 100), (100, 100), (200, 100)]),
        (200, False, None, None, [(0, 100), (100, 100), (200, 100)]),  # a full last page: one empty call
        (200, False, None, 200, [(0, 100), (100, 100)]),  # ...unless the caller knows the most there can be
        (0, False, None, None, [(0, 100)]),
        (250, True, 60, None, [(0, 100), (60, 100), (120, 100), (180, 100), (240, 100)]),  # total beats short
        # no total and a server capping limit at 50: walked 50 by 50, one empty call ends it
        (250, False, 50, None, [(0, 100), (50, 100), (100, 100), (150, 100), (200, 100), (250, 100)]),
        (30, False, None, None, [(0, 100), (30, 100)]),  # a first short page may be a cap: one more call
    ],
    ids=[
        "total",
        "no-total",
        "no-total-full-last-page",
        "bounded",
        "empty",
        "server-caps-limit",
        "no-total-server-caps-limit",
        "no-total-short-first-page",
    ],
)
def test_walk_rule(size: int, total: bool, cap: int | None, expected: int | None, calls: list[tuple[int, int]]) -> None:
    source = Pages(size, total=total, cap=cap)
    walked = [item for page in walk_pages(source, limit=100, expected=expected) for item in page]
    assert walked == source.items
    assert source.calls == calls


def test_a_server_ignoring_from_stops_the_walk_with_an_error() -> None:
    def same_page(offset: int, limit: int) -> Page:
        return read_page({"results": list(range(limit))}, ("results",))

    with pytest.raises(EcoinventApiError, match=r"GET datasets answered from=100 with 100 items all returned before"):
        list(walk_pages(same_page, limit=100, what="GET datasets"))


class Alternating:
    """A server ignoring ``from`` that alternates between two different pages, without ``total``."""

    def __init__(self, *, with_ids: bool) -> None:
        self.with_ids = with_ids
        self.calls = 0

    def __call__(self, offset: int, limit: int) -> Page:
        self.calls += 1
        if self.calls > 10:  # bounds the test against a walk that does not stop: it then fails, not hangs
            return read_page({"results": []}, ("results",))
        base = 0 if self.calls % 2 else limit
        items = [{"id": base + i} if self.with_ids else {"name": f"d{base + i}"} for i in range(limit)]
        return read_page({"results": items}, ("results",))


@pytest.mark.parametrize("with_ids", [True, False], ids=["ids", "no-ids"])
def test_a_server_alternating_pages_stops_the_walk_on_the_third_call(with_ids: bool) -> None:
    source = Alternating(with_ids=with_ids)
    with pytest.raises(EcoinventApiError, match=r"GET datasets answered from=200 with 100 items all returned before"):
        list(walk_pages(source, limit=100, what="GET datasets"))
    assert source.calls == 3


def test_a_walk_that_never_ends_fails_at_the_page_cap() -> None:
    calls: list[int] = []

    def endless(offset: int, limit: int) -> Page:
        calls.append(offset)
        items = [{"id": offset + i} for i in range(limit)] if offset < 10_000 else []  # bounds the test
        return read_page({"results": items}, ("results",))

    with pytest.raises(EcoinventApiError, match=r"GET datasets was still returning pages after 10 pages of up to 100"):
        list(walk_pages(endless, limit=100, what="GET datasets", max_items=1000))
    assert len(calls) == 10


def test_hook_search_walks_a_server_capping_limit_without_total(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over loopback: an emulator capping ``limit`` at 50 and sending no ``total`` yields all 250 datasets."""
    emulator = serve(monkeypatch, datasets=250, omit_total=True, page_cap=50)
    try:
        found = [d["id"] for d in EcoinventHook().search_datasets()]
        requests = emulator.stats()["requests"]["GET /datasets"]
    finally:
        emulator.stop()
    assert found == list(range(1, 251))
    assert requests == 6  # five pages of 50, then one empty page


@pytest.mark.parametrize(
    ("payload", "items", "total"),
    [
        ([1, 2], [1, 2], None),
        ({"datasets": [1], "total": 5}, [1], 5),
        ({"datasets": [1], "total": True}, [1], None),
        ({"datasets": [1], "total": -1}, [1], None),
        ({"datasets": [1], "total": "5"}, [1], None),
        ({"detail": "x"}, None, None),
        ("text", None, None),
    ],
    ids=["bare-list", "total", "bool-total", "negative-total", "text-total", "no-list", "not-json-object"],
)
def test_read_page_is_tolerant(payload: Any, items: Any, total: int | None) -> None:
    assert read_page(payload, ("results", "datasets")) == Page(items, total)


def test_generic_operator_pages_share_the_rule(monkeypatch: pytest.MonkeyPatch, omit_total: bool) -> None:
    """``EcoinventOperator._pages`` walks with the same rule: every page, with or without ``total``."""
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventOperator

    emulator = serve(monkeypatch, datasets=250, omit_total=omit_total)
    try:
        operator = EcoinventOperator(task_id="t", endpoint="datasets", paginate=True, query={"version": "3.11"})
        pages = list(operator._pages(EcoinventHook(), "datasets", {"version": "3.11"}))
        requests = emulator.stats()["requests"]["GET /datasets"]
    finally:
        emulator.stop()
    assert [len(page) for page in pages] == [100, 100, 50]
    assert requests == math.ceil(250 / 100)
