"""EcoinventVersionTrigger and EcoinventNewVersionTrigger against the emulator (real HTTP, real event loop)."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class VirtualTime:
    """The clock and sleep of an :class:`EcoinventVersionTrigger`: time moves only when the trigger sleeps.

    Tests count polls and sleeps instead of timing them; ``actions[n]`` runs (in a thread, as a publisher
    would) during the trigger's ``n``-th sleep, i.e. between its poll ``n`` and poll ``n + 1``.
    """

    START = 1_900_000_000.0

    def __init__(self, trigger: EcoinventVersionTrigger, actions: dict[int, Any] | None = None) -> None:
        self.now = self.START
        self.sleeps: list[float] = []
        self.actions = actions or {}
        trigger._clock = lambda: self.now
        trigger._sleep = self.sleep

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        action = self.actions.get(len(self.sleeps))
        if action is not None:
            await asyncio.to_thread(action)
        self.now += seconds


def version_trigger(*, within: float = 3600, **kwargs: Any) -> EcoinventVersionTrigger:
    """A version trigger whose deadline is ``within`` virtual seconds after :attr:`VirtualTime.START`."""
    return EcoinventVersionTrigger(deadline=VirtualTime.START + within, **kwargs)


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


@pytest.mark.parametrize("interval", [0, 0.5, -1, float("nan"), "60", True], ids=repr)
def test_poll_intervals_below_the_minimum_are_refused(interval: Any) -> None:
    # 0 used to poll the API (and, on wrong credentials, the token endpoint) in a tight loop.
    with pytest.raises(EcoinventConfigError, match=r"^poke_interval must be a number of seconds of at least 1 "):
        EcoinventVersionTrigger(version="3.12", poke_interval=interval)
    with pytest.raises(EcoinventConfigError, match=r"^poll_interval must be a number of seconds of at least 1 "):
        EcoinventNewVersionTrigger(poll_interval=interval)
    assert EcoinventVersionTrigger(version="3.12", poke_interval=1).poke_interval == 1.0
    assert EcoinventNewVersionTrigger(poll_interval=1).poll_interval == 1.0


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


async def test_success_when_the_version_is_published_while_polling(ecoinvent_conn: EmulatorServer) -> None:
    trigger = version_trigger(version="3.12", poke_interval=60)
    clock = VirtualTime(trigger, {3: lambda: ecoinvent_conn.publish_version("3.12", ALL_MODELS)})

    events = await collect(trigger)

    assert len(events) == 1
    assert events[0]["status"] == "success"
    assert events[0]["version"]["version"] == "3.12"
    assert events[0]["version"]["system_models"] == ALL_MODELS
    assert set(events[0]["version"]) == {"version", "system_models", "release_date"}
    stats = ecoinvent_conn.stats()
    assert stats["requests"]["GET /versions"] == 4  # three misses, published, found on the next poll
    assert clock.sleeps == [60, 60, 60]
    assert stats["token_requests"] == 1  # one token for the whole wait


async def test_success_at_once_when_already_available(ecoinvent_conn: EmulatorServer) -> None:
    events = await collect(EcoinventVersionTrigger(newer_than="3.9", poke_interval=60, timeout=20))

    assert events == [
        {"status": "success", "version": {"version": "3.11", "system_models": ALL_MODELS, "release_date": "2024-12-10"}}
    ]


async def test_newer_than_with_a_system_model(ecoinvent_conn: EmulatorServer) -> None:
    # 3.12 without EN15804 does not count; 3.13 with it does.
    trigger = version_trigger(newer_than="3.11", system_model="EN15804", poke_interval=60)
    clock = VirtualTime(
        trigger,
        {
            1: lambda: ecoinvent_conn.publish_version("3.12", ["cutoff"]),
            3: lambda: ecoinvent_conn.publish_version("3.13", ["cutoff", "EN15804"]),
        },
    )

    events = await collect(trigger)

    assert [e["status"] for e in events] == ["success"]
    assert events[0]["version"]["version"] == "3.13"
    assert len(clock.sleeps) == 3  # 3.12 (cutoff only) was seen on polls 2 and 3 and passed over


async def test_wrong_secret_is_an_error_event_at_once(wrong_secret: EmulatorServer) -> None:
    trigger = version_trigger(version="3.12", poke_interval=60)
    clock = VirtualTime(trigger)

    events = await collect(trigger)

    assert clock.sleeps == []  # no wait at all: at once
    assert "GET /versions" not in wrong_secret.stats()["requests"]
    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert events[0]["error_type"] == "EcoinventAuthError"
    assert "client id or secret" in events[0]["message"]
    assert "wrong-secret" not in events[0]["message"]
    assert wrong_secret.stats()["token_requests"] == 1


async def test_permanent_api_error_is_an_error_event(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=403, path="/versions", count=-1, detail="licence expired")

    events = await collect(EcoinventVersionTrigger(version="3.12", poke_interval=60, timeout=30))

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
    trigger = version_trigger(version="3.12", poke_interval=60, within=150)
    clock = VirtualTime(trigger)

    events = await collect(trigger)

    # Polls at 0, 60 and 120; the last wait is cut to the deadline, and at 150 no time is left for a call.
    assert clock.sleeps == [60, 60, 30]
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] == 3
    assert len(events) == 1
    assert events[0]["status"] == "timeout"
    assert "3.12" in events[0]["message"]
    assert events[0]["version"] is None


async def test_deadline_in_the_past_still_polls_once(ecoinvent_conn: EmulatorServer) -> None:
    events = await collect(EcoinventVersionTrigger(version="3.11", deadline=time.time() - 10))
    assert [e["status"] for e in events] == ["success"]

    events = await collect(EcoinventVersionTrigger(version="3.12", deadline=time.time() - 10))
    assert [e["status"] for e in events] == ["timeout"]


@pytest.mark.timeout(120)  # the hung call lasts an hour: waiting for it fails the test here
async def test_a_hanging_call_does_not_outlive_the_deadline(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("hang", path="/versions", seconds=3600, count=-1, after=1)
    # The second poll starts 0.5 s before the deadline and hangs: it is abandoned when the deadline passes.
    trigger = version_trigger(version="3.12", poke_interval=60, within=60.5)
    clock = VirtualTime(trigger)

    events = await collect(trigger)

    assert [e["status"] for e in events] == ["timeout"]
    assert clock.sleeps == [60, 0.5]


@pytest.mark.parametrize("retries", [0, 5], ids=["exhausted-then-next-poll", "retried-within-poll"])
async def test_transient_503_during_polling_is_not_fatal(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, retries: int
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=retries))
    emulator.add_fault("status", status=503, path="/versions", count=2, retry_after="0")

    trigger = version_trigger(version="3.11", poke_interval=60)
    clock = VirtualTime(trigger)

    events = await collect(trigger)

    assert [e["status"] for e in events] == ["success"]
    assert events[0]["version"]["version"] == "3.11"
    assert emulator.stats()["requests"]["GET /versions"] == 3
    assert clock.sleeps == ([60, 60] if retries == 0 else [])  # a poll's retries are not polls


async def test_rate_limited_polls_are_not_fatal(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    # No retry within a poll (429s have a time budget of their own): each 429 ends its poll.
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0, rate_limit_budget=0))
    emulator.add_fault("status", status=429, path="/versions", count=3)

    trigger = version_trigger(version="3.11", poke_interval=60)
    clock = VirtualTime(trigger)

    events = await collect(trigger)

    assert [e["status"] for e in events] == ["success"]
    assert emulator.stats()["requests"]["GET /versions"] == 4
    assert clock.sleeps == [60, 60, 60]


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
    trigger = EcoinventNewVersionTrigger(poll_interval=60)
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

    trigger = EcoinventNewVersionTrigger(poll_interval=60)
    trigger._sleep = scripted_sleep(5, {1: publish_two})

    assert [p["version"] for p in await watch(trigger)] == ["3.12", "3.13"]


async def test_watcher_fire_on_start(ecoinvent_conn: EmulatorServer) -> None:
    trigger = EcoinventNewVersionTrigger(poll_interval=60, fire_on_start=True)
    trigger._sleep = scripted_sleep(6, {3: lambda: ecoinvent_conn.publish_version("3.12", ALL_MODELS)})

    assert [p["version"] for p in await watch(trigger)] == ["3.11", "3.12"]


async def test_watcher_counts_only_versions_with_its_system_model(ecoinvent_conn: EmulatorServer) -> None:
    trigger = EcoinventNewVersionTrigger(poll_interval=60, system_model="EN15804")
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
    trigger = EcoinventNewVersionTrigger(poll_interval=60)
    trigger._sleep = scripted_sleep(3)
    assert await watch(trigger) == []
    assert wrong_secret.stats()["token_requests"] == 3


async def test_watcher_transient_errors_keep_the_baseline(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(max_retries=0))
    emulator.add_fault("status", status=503, path="/versions", count=2, after=1)
    trigger = EcoinventNewVersionTrigger(poll_interval=60)
    trigger._sleep = scripted_sleep(8, {2: lambda: emulator.publish_version("3.12", ALL_MODELS)})

    assert [p["version"] for p in await watch(trigger)] == ["3.12"]
    assert emulator.stats()["requests"]["GET /versions"] == 8


async def test_watcher_survives_an_answer_it_cannot_decode(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer
) -> None:
    # A /versions answer marked gzip that is not gzip (a proxy mangling bodies) must not end the watcher.
    answers: list[int] = []

    class NotGzip(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answers.append(1)
            data = b"this is not gzip at all"
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotGzip)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        connection = emulator.connection_dict()
        connection["host"] = f"http://127.0.0.1:{server.server_address[1]}"  # the token still comes from the emulator
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(connection))
        trigger = EcoinventNewVersionTrigger(poll_interval=60)
        trigger._sleep = scripted_sleep(3)
        assert await watch(trigger) == []
    finally:
        server.shutdown()
        server.server_close()
    assert len(answers) == 3  # polled again after each failure


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
        trigger = EcoinventNewVersionTrigger(**EcoinventNewVersionTrigger(poll_interval=60).serialize()[1])
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
    trigger = EcoinventNewVersionTrigger(poll_interval=60)
    trigger.__dict__.pop("asset_state_store", None)  # the Airflow 3.1/3.2 trigger, on every version

    trigger._sleep = scripted_sleep(2)
    assert await watch(trigger) == []  # the baseline, kept in memory
    ecoinvent_conn.publish_version("3.12", ALL_MODELS)
    trigger._sleep = scripted_sleep(2)
    assert [p["version"] for p in await watch(trigger)] == ["3.12"]
    trigger._sleep = scripted_sleep(2)
    assert await watch(trigger) == []  # fired once, remembered

    # Memory lasts for the life of the instance only: a new one takes a new baseline.
    fresh = EcoinventNewVersionTrigger(poll_interval=60)
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

    trigger = EcoinventNewVersionTrigger(poll_interval=60)
    trigger.asset_state_store = BrokenStore()  # type: ignore[assignment]
    trigger._sleep = scripted_sleep(5, {2: lambda: ecoinvent_conn.publish_version("3.12", ALL_MODELS)})

    assert [p["version"] for p in await watch(trigger)] == ["3.12"]


# -- the event loop is never blocked ---------------------------------------------------------------


class BlockingCallsOnTheLoop:
    """Records the blocking calls made on the event loop's thread, from Python's audit events.

    A blocking call there stalls every trigger of a triggerer. Counting them (instead of timing callbacks)
    tells the same story on a loaded machine: a blocking ``connect`` (the sync ``requests`` stack) or a
    DNS lookup done in-line (asyncio resolves in a worker thread). Audit hooks cannot be removed, so one
    hook is installed per process and records only while a test has set :attr:`loop_thread`.
    """

    _installed: BlockingCallsOnTheLoop | None = None

    def __init__(self) -> None:
        self.loop_thread: int | None = None
        self.calls: list[str] = []

    @classmethod
    def instance(cls) -> BlockingCallsOnTheLoop:
        if cls._installed is None:
            cls._installed = cls()
            sys.addaudithook(cls._installed.audit)
        return cls._installed

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if self.loop_thread is None or threading.get_ident() != self.loop_thread:
            return
        if event == "socket.connect" and args[0].getblocking():
            self.calls.append(f"blocking connect to {args[1]!r}")
        elif event in {"socket.getaddrinfo", "socket.gethostbyname"}:
            self.calls.append(f"{event}{args[:2]!r}")

    def run(self, coro_factory: Any) -> Any:
        """Run a coroutine on a fresh event loop in this thread, recording blocking calls meanwhile."""
        loop = asyncio.new_event_loop()
        self.loop_thread = threading.get_ident()
        try:
            return loop.run_until_complete(coro_factory())
        finally:
            self.loop_thread = None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def test_triggers_never_block_the_event_loop(ecoinvent_conn: EmulatorServer) -> None:
    blocking = BlockingCallsOnTheLoop.instance()
    blocking.calls.clear()
    trigger = version_trigger(version="3.12", poke_interval=60)
    VirtualTime(trigger, {3: lambda: ecoinvent_conn.publish_version("3.12", ALL_MODELS)})

    events = blocking.run(lambda: collect(trigger))

    assert [e["status"] for e in events] == ["success"]

    async def watch_a_while() -> list[dict[str, Any]]:
        watcher = EcoinventNewVersionTrigger(poll_interval=60)
        watcher._sleep = scripted_sleep(15, {5: lambda: ecoinvent_conn.publish_version("3.13", ALL_MODELS)})
        return await watch(watcher)

    payloads = blocking.run(watch_a_while)

    assert [p["version"] for p in payloads] == ["3.13"]
    assert ecoinvent_conn.stats()["requests"]["GET /versions"] == 4 + 15  # every poll went over the network
    assert blocking.calls == []
