"""EcoinventVersionTrigger and EcoinventNewVersionTrigger against the emulator (real HTTP, real event loop)."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.triggers.ecoinvent import (
    EcoinventNewVersionTrigger,
    EcoinventVersionTrigger,
    find_wanted_version,
)
from airflow_provider_ecoinvent.versions import EcoinventVersion

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_ecoinvent.emulator import EmulatorServer

VERSION_TRIGGER = "airflow_provider_ecoinvent.triggers.ecoinvent.EcoinventVersionTrigger"
WATCHER = "airflow_provider_ecoinvent.triggers.ecoinvent.EcoinventNewVersionTrigger"
ALL_MODELS = ["cutoff", "apos", "consequential", "EN15804"]


@pytest.fixture
def wrong_secret(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer) -> EmulatorServer:
    conn = emulator.connection_dict()
    conn["password"] = "wrong-secret"
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(conn))
    return emulator


@pytest.fixture
def publish_later(ecoinvent_conn: EmulatorServer) -> Iterator[Any]:
    """``publish_later(name, delay)``: publish a release from another thread while the trigger polls.

    ``delay`` counts from the trigger's first poll, not from now: the start-up before it (the first token,
    registered with Airflow's secrets masker, whose cost grows with the secrets a test session holds) takes
    a varying time, and a release published before the first poll would not be "published while polling".
    """
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def publish(name: str, delay: float, models: list[str]) -> None:
        while not stop.is_set() and not ecoinvent_conn.stats()["requests"].get("GET /versions", 0):
            stop.wait(0.005)
        if not stop.wait(delay):
            ecoinvent_conn.publish_version(name, models)

    def schedule(name: str, delay: float, models: list[str] | None = None) -> None:
        thread = threading.Thread(target=publish, args=(name, delay, models or ALL_MODELS), daemon=True)
        threads.append(thread)
        thread.start()

    yield schedule
    stop.set()
    for thread in threads:
        thread.join()


async def collect(trigger: Any) -> list[dict[str, Any]]:
    events = [event async for event in trigger.run()]
    assert all(isinstance(event, TriggerEvent) for event in events)
    return [event.payload for event in events]


# -- matching --------------------------------------------------------------------------------------

V39 = EcoinventVersion("3.9", ("cutoff", "apos"))
V310 = EcoinventVersion("3.10", ("cutoff",))
V311_APOS = EcoinventVersion("3.11", ("apos",))
V312_SANDBOX = EcoinventVersion("3.12-sandbox", ("cutoff",))
V312 = EcoinventVersion("3.12", ("cutoff", "apos"))
BARE = EcoinventVersion("3.13")  # no system models listed: offers any


@pytest.mark.parametrize(
    ("versions", "wanted", "expected"),
    [
        ([V39, V310], {"version": "3.10"}, "3.10"),
        ([V39, V310], {"version": "3.1"}, None),
        ([V39, V310], {"version": "3.10.0"}, "3.10"),
        ([V39, V311_APOS], {"version": "3.11"}, None),
        ([V39, V311_APOS], {"version": "3.11", "system_model": "apos"}, "3.11"),
        ([V39, V311_APOS], {"version": "3.11", "system_model": None}, "3.11"),
        ([V39, V312_SANDBOX], {"version": "3.12"}, None),
        ([V39, V312_SANDBOX], {"version": "3.12-sandbox"}, "3.12-sandbox"),
        ([V39, V310], {"newer_than": "3.9"}, "3.10"),
        ([V39, V310], {"newer_than": "3.10"}, None),
        ([V39, V310, V312_SANDBOX, V312], {"newer_than": "3.10"}, "3.12"),
        ([V39, V312_SANDBOX], {"newer_than": "3.11"}, "3.12-sandbox"),
        ([V39, V312_SANDBOX], {"newer_than": "3.12"}, None),
        ([V39, V311_APOS], {"newer_than": "3.9"}, None),
        ([V39, BARE], {"newer_than": "3.12", "system_model": "EN15804"}, "3.13"),
        ([], {"newer_than": "3.9"}, None),
    ],
    ids=[
        "named",
        "3.1-is-not-3.10",
        "trailing-zero",
        "named-without-model",
        "named-other-model",
        "named-any-model",
        "sandbox-is-not-release",
        "named-sandbox",
        "newer-3.10-than-3.9",
        "not-newer-than-itself",
        "newest-of-several",
        "sandbox-newer-than-3.11",
        "sandbox-older-than-release",
        "newer-without-model",
        "no-models-listed",
        "empty",
    ],
)
def test_find_wanted_version(versions: list[EcoinventVersion], wanted: dict[str, Any], expected: str | None) -> None:
    found = find_wanted_version(versions, **wanted)
    assert (found.name if found else None) == expected


@pytest.mark.parametrize(
    "wanted", [{}, {"version": "3.12", "newer_than": "3.11"}, {"version": "", "newer_than": ""}], ids=str
)
def test_exactly_one_of_version_and_newer_than(wanted: dict[str, Any]) -> None:
    with pytest.raises(EcoinventConfigError, match="exactly one"):
        find_wanted_version([V39], **wanted)
    with pytest.raises(EcoinventConfigError, match="exactly one"):
        EcoinventVersionTrigger(**wanted)


# -- EcoinventVersionTrigger: serialization ------------------------------------------------------


def test_version_trigger_serializes_exactly() -> None:
    trigger = EcoinventVersionTrigger(
        ecoinvent_conn_id="my_conn", version="3.12", system_model="apos", poke_interval=30, deadline=1_900_000_000.5
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == VERSION_TRIGGER
    assert kwargs == {
        "ecoinvent_conn_id": "my_conn",
        "version": "3.12",
        "newer_than": None,
        "system_model": "apos",
        "poke_interval": 30.0,
        "deadline": 1_900_000_000.5,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert EcoinventVersionTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_version_trigger_turns_timeout_into_a_deadline() -> None:
    before = time.time()
    trigger = EcoinventVersionTrigger(newer_than="3.11", timeout=60)
    classpath, kwargs = trigger.serialize()

    assert before + 60 <= kwargs["deadline"] <= time.time() + 60
    assert "timeout" not in kwargs
    assert kwargs["ecoinvent_conn_id"] == "ecoinvent_default"
    assert kwargs["system_model"] == "cutoff"
    assert EcoinventVersionTrigger(**kwargs).serialize() == (classpath, kwargs)
    with pytest.raises(EcoinventConfigError, match="not both"):
        EcoinventVersionTrigger(newer_than="3.11", timeout=60, deadline=time.time())


def test_serialized_kwargs_hold_no_secret(ecoinvent_conn: EmulatorServer) -> None:
    _, kwargs = EcoinventVersionTrigger(version="3.12", timeout=5).serialize()
    _, watcher_kwargs = EcoinventNewVersionTrigger().serialize()
    text = json.dumps([kwargs, watcher_kwargs])
    assert ecoinvent_conn.client_secret not in text
    assert ecoinvent_conn.client_id not in text


# -- EcoinventVersionTrigger: run ------------------------------------------------------------------


async def test_success_when_the_version_is_published_while_polling(
    ecoinvent_conn: EmulatorServer, publish_later: Any
) -> None:
    publish_later("3.12", 0.5)
    trigger = EcoinventVersionTrigger(version="3.12", poke_interval=0.05, timeout=20)

    events = await collect(trigger)

    assert len(events) == 1
    assert events[0]["status"] == "success"
    assert events[0]["version"]["version"] == "3.12"
    assert events[0]["version"]["system_models"] == ALL_MODELS
    assert set(events[0]["version"]) == {"version", "system_models", "release_date"}
    stats = ecoinvent_conn.stats()
    assert stats["requests"]["GET /versions"] > 2
    assert stats["token_requests"] == 1  # one token for the whole wait


async def test_success_at_once_when_already_available(ecoinvent_conn: EmulatorServer) -> None:
    events = await collect(EcoinventVersionTrigger(newer_than="3.9", poke_interval=60, timeout=20))

    assert events == [
        {"status": "success", "version": {"version": "3.11", "system_models": ALL_MODELS, "release_date": "2024-12-10"}}
    ]


async def test_newer_than_with_a_system_model(ecoinvent_conn: EmulatorServer, publish_later: Any) -> None:
    # 3.12 without EN15804 does not count; 3.13 with it does.
    publish_later("3.12", 0.2, ["cutoff"])
    publish_later("3.13", 0.6, ["cutoff", "EN15804"])
    trigger = EcoinventVersionTrigger(newer_than="3.11", system_model="EN15804", poke_interval=0.05, timeout=20)

    events = await collect(trigger)

    assert [e["status"] for e in events] == ["success"]
    assert events[0]["version"]["version"] == "3.13"


async def test_wrong_secret_is_an_error_event_at_once(wrong_secret: EmulatorServer) -> None:
    started = time.monotonic()

    events = await collect(EcoinventVersionTrigger(version="3.12", poke_interval=0.01, timeout=30))

    assert time.monotonic() - started < 2
    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert events[0]["error_type"] == "EcoinventAuthError"
    assert "client id or secret" in events[0]["message"]
    assert "wrong-secret" not in events[0]["message"]
    assert wrong_secret.stats()["token_requests"] == 1


async def test_permanent_api_error_is_an_error_event(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=403, path="/versions", count=-1, detail="licence expired")

    events = await collect(EcoinventVersionTrigger(version="3.12", poke_interval=0.01, timeout=30))

    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert events[0]["error_type"] == "EcoinventApiError"
    assert "403" in events[0]["message"]
    assert "licence expired" in events[0]["message"]
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] == 1


async def test_missing_connection_is_an_error_event() -> None:
    events = await collect(EcoinventVersionTrigger(ecoinvent_conn_id="nowhere", version="3.12", timeout=30))

    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert events[0]["error_type"] == "EcoinventConfigError"
    assert "nowhere" in events[0]["message"]


async def test_timeout_event_when_the_deadline_passes(ecoinvent_conn: EmulatorServer) -> None:
    started = time.monotonic()

    events = await collect(EcoinventVersionTrigger(version="3.12", poke_interval=0.05, timeout=0.4))

    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 3
    assert len(events) == 1
    assert events[0]["status"] == "timeout"
    assert "3.12" in events[0]["message"]
    assert events[0]["version"] is None


async def test_deadline_in_the_past_still_polls_once(ecoinvent_conn: EmulatorServer) -> None:
    events = await collect(EcoinventVersionTrigger(version="3.11", deadline=time.time() - 10))
    assert [e["status"] for e in events] == ["success"]

    events = await collect(EcoinventVersionTrigger(version="3.12", deadline=time.time() - 10))
    assert [e["status"] for e in events] == ["timeout"]


async def test_a_hanging_call_does_not_outlive_the_deadline(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("hang", path="/versions", seconds=10, count=-1, after=1)
    started = time.monotonic()

    events = await collect(EcoinventVersionTrigger(version="3.12", poke_interval=0.05, timeout=0.5))

    assert time.monotonic() - started < 3
    assert [e["status"] for e in events] == ["timeout"]


@pytest.mark.parametrize("retries", [0, 5], ids=["exhausted-then-next-poll", "retried-within-poll"])
async def test_transient_503_during_polling_is_not_fatal(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, retries: int
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=retries))
    emulator.add_fault("status", status=503, path="/versions", count=2, retry_after="0")

    events = await collect(EcoinventVersionTrigger(version="3.11", poke_interval=0.01, timeout=30))

    assert [e["status"] for e in events] == ["success"]
    assert events[0]["version"]["version"] == "3.11"
    assert emulator.stats()["requests"]["GET /versions"] == 3


async def test_rate_limited_polls_are_not_fatal(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0))
    emulator.add_fault("status", status=429, path="/versions", count=3)

    events = await collect(EcoinventVersionTrigger(version="3.11", poke_interval=0.01, timeout=30))

    assert [e["status"] for e in events] == ["success"]
    assert emulator.stats()["requests"]["GET /versions"] == 4


# -- EcoinventNewVersionTrigger -------------------------------------------------------------------


class StopPolling(Exception):
    """Raised by the test's sleep to end a watcher (which otherwise polls forever)."""


def scripted_sleep(polls: int, actions: dict[int, Any] | None = None) -> Any:
    """A watcher sleep: after poll ``n`` runs ``actions[n]`` (in a thread), after ``polls`` polls stops."""
    done = {"polls": 0}

    async def sleep(seconds: float) -> None:
        done["polls"] += 1
        action = (actions or {}).get(done["polls"])
        if action is not None:
            await asyncio.to_thread(action)
        if done["polls"] >= polls:
            raise StopPolling
        await asyncio.sleep(0)

    return sleep


async def watch(trigger: EcoinventNewVersionTrigger) -> list[dict[str, Any]]:
    payloads: list[dict[str, Any]] = []

    async def consume() -> None:
        async for event in trigger.run():
            payloads.append(event.payload)

    with pytest.raises(StopPolling):
        await consume()
    return payloads


def test_watcher_is_an_event_trigger_and_serializes_exactly() -> None:
    trigger = EcoinventNewVersionTrigger(
        ecoinvent_conn_id="my_conn", poll_interval=600, system_model="cutoff", fire_on_start=True
    )

    classpath, kwargs = trigger.serialize()

    assert isinstance(trigger, BaseEventTrigger)
    assert classpath == WATCHER
    assert kwargs == {
        "ecoinvent_conn_id": "my_conn",
        "poll_interval": 600.0,
        "system_model": "cutoff",
        "fire_on_start": True,
    }
    assert EcoinventNewVersionTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert EcoinventNewVersionTrigger().serialize() == (
        WATCHER,
        {
            "ecoinvent_conn_id": "ecoinvent_default",
            "poll_interval": 3600.0,
            "system_model": None,
            "fire_on_start": False,
        },
    )
    # The identity Airflow uses to match a watcher across DAG parses is stable.
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(
        *EcoinventNewVersionTrigger(**kwargs).serialize()
    )


def test_watcher_in_an_asset_definition() -> None:
    from airflow.sdk import Asset, AssetWatcher

    asset = Asset(
        "ecoinvent_versions",
        watchers=[AssetWatcher(name="ecoinvent_new_version", trigger=EcoinventNewVersionTrigger(poll_interval=60))],
    )
    assert asset.watchers[0].trigger.serialize()[0] == WATCHER


async def test_watcher_fires_exactly_once_per_new_version(ecoinvent_conn: EmulatorServer) -> None:
    trigger = EcoinventNewVersionTrigger(poll_interval=0)
    trigger._sleep = scripted_sleep(
        20,
        {
            4: lambda: ecoinvent_conn.publish_version("3.12", ALL_MODELS),
            11: lambda: ecoinvent_conn.publish_version("3.13", ["cutoff"]),
        },
    )

    payloads = await watch(trigger)

    assert [p["version"] for p in payloads] == ["3.12", "3.13"]
    assert payloads[0] == {"version": "3.12", "system_models": ALL_MODELS, "release_date": payloads[0]["release_date"]}
    assert payloads[1]["system_models"] == ["cutoff"]
    stats = ecoinvent_conn.stats()
    assert stats["requests"]["GET /versions"] == 20
    assert stats["token_requests"] == 1


async def test_watcher_fires_for_each_of_several_versions_seen_in_one_poll(ecoinvent_conn: EmulatorServer) -> None:
    def publish_two() -> None:
        ecoinvent_conn.publish_version("3.13", ALL_MODELS)
        ecoinvent_conn.publish_version("3.12", ALL_MODELS)

    trigger = EcoinventNewVersionTrigger(poll_interval=0)
    trigger._sleep = scripted_sleep(5, {1: publish_two})

    assert [p["version"] for p in await watch(trigger)] == ["3.12", "3.13"]


async def test_watcher_fire_on_start(ecoinvent_conn: EmulatorServer) -> None:
    trigger = EcoinventNewVersionTrigger(poll_interval=0, fire_on_start=True)
    trigger._sleep = scripted_sleep(6, {3: lambda: ecoinvent_conn.publish_version("3.12", ALL_MODELS)})

    assert [p["version"] for p in await watch(trigger)] == ["3.11", "3.12"]


async def test_watcher_counts_only_versions_with_its_system_model(ecoinvent_conn: EmulatorServer) -> None:
    trigger = EcoinventNewVersionTrigger(poll_interval=0, system_model="EN15804")
    trigger._sleep = scripted_sleep(
        8,
        {
            2: lambda: ecoinvent_conn.publish_version("3.12", ["cutoff"]),
            4: lambda: ecoinvent_conn.publish_version("3.13", ["cutoff", "EN15804"]),
        },
    )

    assert [p["version"] for p in await watch(trigger)] == ["3.13"]


async def test_watcher_survives_wrong_credentials(wrong_secret: EmulatorServer) -> None:
    # Wrong secret: every poll fails; the watcher logs and keeps polling instead of ending.
    trigger = EcoinventNewVersionTrigger(poll_interval=0)
    trigger._sleep = scripted_sleep(3)
    assert await watch(trigger) == []
    assert wrong_secret.stats()["token_requests"] == 3


async def test_watcher_transient_errors_keep_the_baseline(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0))
    emulator.add_fault("status", status=503, path="/versions", count=2, after=1)
    trigger = EcoinventNewVersionTrigger(poll_interval=0)
    trigger._sleep = scripted_sleep(8, {2: lambda: emulator.publish_version("3.12", ALL_MODELS)})

    assert [p["version"] for p in await watch(trigger)] == ["3.12"]
    assert emulator.stats()["requests"]["GET /versions"] == 8


class FakeSupervisorComms:
    """The triggerer side of the asset state store protocol, keeping values in a dict."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}
        self.messages: list[str] = []

    async def asend(self, msg: Any) -> Any:
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time.comms import AssetStateStoreResult, ErrorResponse, OKResponse

        self.messages.append(type(msg).__name__)
        if msg.type == "GetAssetStateStoreByName":
            if (msg.name, msg.key) in self.values:
                return AssetStateStoreResult(value=self.values[(msg.name, msg.key)])
            return ErrorResponse(error=ErrorType.ASSET_STORE_NOT_FOUND)
        if msg.type == "SetAssetStateStoreByName":
            self.values[(msg.name, msg.key)] = msg.value
            return OKResponse(ok=True)
        raise AssertionError(f"unexpected message {msg!r}")


# The asset state store (BaseEventTrigger.asset_state_store) arrived in Airflow 3.3.
_HAS_ASSET_STATE_STORE = hasattr(
    importlib.import_module("airflow.sdk.execution_time.context"), "AssetStateStoreAccessors"
)


@pytest.mark.skipif(not _HAS_ASSET_STATE_STORE, reason="the asset state store arrived in Airflow 3.3")
async def test_watcher_remembers_through_the_asset_state_store(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import Asset
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    comms = FakeSupervisorComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    asset = Asset(name="ecoinvent_versions", uri="ecoinvent://versions")

    def start_watcher(polls: int, actions: dict[int, Any] | None = None) -> EcoinventNewVersionTrigger:
        # What the triggerer does for a watcher: a new instance, then the state store injected.
        trigger = EcoinventNewVersionTrigger(**EcoinventNewVersionTrigger(poll_interval=0).serialize()[1])
        trigger.asset_state_store = AssetStateStoreAccessors(inlets=[asset])
        trigger._sleep = scripted_sleep(polls, actions)
        return trigger

    # First life: records the baseline in the store, fires nothing.
    assert await watch(start_watcher(2)) == []
    key = ("ecoinvent_versions", "ecoinvent_seen_versions:ecoinvent_default:*")
    assert comms.values[key] == ["3.9", "3.10", "3.11"]

    # Published while no triggerer ran: the next life fires for it on its first poll (not a new baseline).
    ecoinvent_conn.publish_version("3.12", ALL_MODELS)
    assert [p["version"] for p in await watch(start_watcher(3))] == ["3.12"]
    assert comms.values[key] == ["3.9", "3.10", "3.11", "3.12"]

    # A third life re-fires nothing.
    assert await watch(start_watcher(3)) == []
    assert "GetAssetStateStoreByName" in comms.messages


async def test_watcher_without_a_state_store_remembers_in_memory(ecoinvent_conn: EmulatorServer) -> None:
    """No state store (Airflow < 3.3 has no such attribute; 3.3 leaves it None): the instance remembers."""
    trigger = EcoinventNewVersionTrigger(poll_interval=0)
    trigger.__dict__.pop("asset_state_store", None)  # the Airflow 3.1/3.2 trigger, on every version

    trigger._sleep = scripted_sleep(2)
    assert await watch(trigger) == []  # the baseline, kept in memory
    ecoinvent_conn.publish_version("3.12", ALL_MODELS)
    trigger._sleep = scripted_sleep(2)
    assert [p["version"] for p in await watch(trigger)] == ["3.12"]
    trigger._sleep = scripted_sleep(2)
    assert await watch(trigger) == []  # fired once, remembered

    # Memory lasts for the life of the instance only: a new one takes a new baseline.
    fresh = EcoinventNewVersionTrigger(poll_interval=0)
    fresh._sleep = scripted_sleep(2)
    assert await watch(fresh) == []


async def test_watcher_falls_back_to_memory_when_the_store_fails(
    ecoinvent_conn: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenStore:
        async def aget(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("store unavailable")

        async def aset(self, key: str, value: Any) -> None:
            raise RuntimeError("store unavailable")

    trigger = EcoinventNewVersionTrigger(poll_interval=0)
    trigger.asset_state_store = BrokenStore()  # type: ignore[assignment]
    trigger._sleep = scripted_sleep(5, {2: lambda: ecoinvent_conn.publish_version("3.12", ALL_MODELS)})

    assert [p["version"] for p in await watch(trigger)] == ["3.12"]


# -- the event loop is never blocked ---------------------------------------------------------------


class SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "took" in message and "seconds" in message:
            self.records.append(message)


def run_in_debug_loop(coro_factory: Any, threshold: float = 0.05) -> tuple[Any, list[str]]:
    """Run a coroutine on a fresh loop in asyncio debug mode; return its result and slow-callback reports."""
    handler = SlowCallbacks()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    try:
        result = loop.run_until_complete(coro_factory())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio_log.removeHandler(handler)
    return result, handler.records


def test_triggers_never_block_the_event_loop(ecoinvent_conn: EmulatorServer, publish_later: Any) -> None:
    # Airflow's first connection lookup in a process imports its secrets machinery (a triggerer has done
    # that long before a trigger starts); everything after it is measured.
    from airflow.providers.common.compat.connection import get_async_connection

    run_in_debug_loop(lambda: get_async_connection("ecoinvent_default"))
    # Airflow's secrets masker re-compiles one regex of every secret it holds each time one is added
    # (amask_secret included), so its cost grows with the secrets this test session has registered.
    # Start from an empty masker, as a fresh triggerer would, to measure our own code.
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    _secrets_masker().reset_masker()
    publish_later("3.12", 0.4)

    events, slow = run_in_debug_loop(
        lambda: collect(EcoinventVersionTrigger(version="3.12", poke_interval=0.02, timeout=20))
    )
    assert [e["status"] for e in events] == ["success"]

    async def watch_a_while() -> list[dict[str, Any]]:
        trigger = EcoinventNewVersionTrigger(poll_interval=0)
        trigger._sleep = scripted_sleep(15, {5: lambda: ecoinvent_conn.publish_version("3.13", ALL_MODELS)})
        return await watch(trigger)

    payloads, slow_watcher = run_in_debug_loop(watch_a_while)
    assert [p["version"] for p in payloads] == ["3.13"]
    assert slow + slow_watcher == []
