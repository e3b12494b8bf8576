"""Triggers that wait for ecoinvent database versions, on the triggerer's event loop.

* :class:`EcoinventVersionTrigger` backs the deferrable :class:`~airflow_provider_ecoinvent.sensors.ecoinvent.
  EcoinventVersionSensor`: it polls ``/versions`` until the wanted version is available, then emits exactly
  one event and returns.
* :class:`EcoinventNewVersionTrigger` is a ``BaseEventTrigger`` for event-driven scheduling
  (``Asset(..., watchers=[AssetWatcher(name=..., trigger=...)])``): it fires once per newly published version.

Both use async I/O only (:class:`~airflow_provider_ecoinvent.hooks.async_client.EcoinventAsyncClient`), and
their kwargs hold a connection id, never a secret.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent.exceptions import (
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
    EcoinventRetriesExhaustedError,
)
from airflow_provider_ecoinvent.versions import newest, release_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

    from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient
    from airflow_provider_ecoinvent.versions import EcoinventVersion

DEFAULT_SYSTEM_MODEL: Final = "cutoff"

#: The only ``status`` values an :class:`EcoinventVersionTrigger` event can carry.
EVENT_SUCCESS: Final = "success"
EVENT_ERROR: Final = "error"
EVENT_TIMEOUT: Final = "timeout"
EVENT_STATUSES: Final = frozenset({EVENT_SUCCESS, EVENT_ERROR, EVENT_TIMEOUT})
#: Seconds the first poll may take even when the trigger starts after its deadline.
FIRST_POLL_WINDOW: Final = 10.0
#: The shortest wait between two polls of ``/versions`` (sensor, trigger and watcher alike): below it a
#: waiting task would hammer the API and the token endpoint in a tight loop for no earlier answer.
MIN_POLL_INTERVAL: Final = 1.0


def _client(conn_id: str, logger: Any) -> EcoinventAsyncClient:
    """The async client, imported on the triggerer only: DAG files import this module to build watchers."""
    from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient

    return EcoinventAsyncClient(conn_id, logger=logger)


def validate_version_wanted(version: str | None, newer_than: str | None) -> None:
    """Exactly one of ``version`` and ``newer_than`` must be given (non-empty).

    :raises EcoinventConfigError: both or neither.
    """
    if bool(version) == bool(newer_than):
        raise EcoinventConfigError(
            "Give exactly one of 'version' (wait for that release, e.g. '3.12') and 'newer_than' "
            f"(wait for any release after it, e.g. '3.11'); got version={version!r}, newer_than={newer_than!r}."
        )


def validate_poll_interval(name: str, seconds: float) -> float:
    """``seconds`` as a float, or :class:`EcoinventConfigError` naming the argument ``name``.

    :raises EcoinventConfigError: not a number, or below :data:`MIN_POLL_INTERVAL` (0 would poll in a
        tight loop).
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= MIN_POLL_INTERVAL:
        raise EcoinventConfigError(
            f"{name} must be a number of seconds of at least {MIN_POLL_INTERVAL:g} (the wait between two "
            f"polls of the ecoinvent API), got {seconds!r}."
        )
    return float(seconds)


def offers(version: EcoinventVersion, system_model: str | None) -> bool:
    """Whether ``version`` offers ``system_model`` (an API that lists no system models offers them all)."""
    return not system_model or not version.system_models or system_model in version.system_models


def find_wanted_version(
    versions: Iterable[EcoinventVersion],
    *,
    version: str | None = None,
    newer_than: str | None = None,
    system_model: str | None = DEFAULT_SYSTEM_MODEL,
) -> EcoinventVersion | None:
    """The version a sensor or trigger waits for, if ``versions`` has it; the one matching logic of both.

    :param version: a named release (``"3.12"``); matched in release-number order, so ``"3.12.0"`` counts,
        ``"3.12-sandbox"`` does not.
    :param newer_than: any release after this one (``"3.10"`` is newer than ``"3.9"``); the newest
        such release is returned.
    :param system_model: the system model the release must offer (``None``: any).
    :raises EcoinventConfigError: not exactly one of ``version`` / ``newer_than``.
    """
    validate_version_wanted(version, newer_than)
    candidates = [v for v in versions if offers(v, system_model)]
    if version:
        exact = next((v for v in candidates if v.name == version), None)
        if exact is not None:
            return exact
        wanted = release_key(version)
        return next((v for v in candidates if release_key(v.name) == wanted), None)
    assert newer_than is not None
    threshold = release_key(newer_than)
    return newest(v for v in candidates if release_key(v.name) > threshold)


def describe_wanted(version: str | None, newer_than: str | None, system_model: str | None) -> str:
    """``version 3.12 (cutoff)`` or ``a version newer than 3.11 (cutoff)``, for logs and messages."""
    what = f"version {version}" if version else f"a version newer than {newer_than}"
    return f"{what} ({system_model})" if system_model else what


class EcoinventVersionTrigger(BaseTrigger):
    """Poll ``/versions`` until a wanted database version is available; emit exactly one event.

    Events (the ``status`` key is one of :data:`EVENT_STATUSES`):

    * ``{"status": "success", "version": {"version", "system_models", "release_date"}}``;
    * ``{"status": "error", "message": str, "error_type": str}``: wrong credentials (at once), an invalid
      connection, or an API error retrying cannot fix (403, 404, a body that is not JSON);
    * ``{"status": "timeout", "message": str, "version": None}``: the deadline passed first.

    Transient failures (retries exhausted on 429, 5xx or network errors) are logged and polling goes on.
    A call still running when the deadline passes is abandoned; the first poll is always made (with up to
    :data:`FIRST_POLL_WINDOW` seconds), so a trigger that starts after its deadline still checks once.

    :param ecoinvent_conn_id: the Airflow connection id (never secrets: kwargs are stored in the database).
    :param version: wait for this release (exactly one of ``version`` / ``newer_than``).
    :param newer_than: wait for any release newer than this one.
    :param system_model: the system model the release must offer (default ``cutoff``).
    :param poke_interval: seconds between polls, at least :data:`MIN_POLL_INTERVAL`.
    :param deadline: absolute time (Unix epoch seconds) after which a ``timeout`` event is emitted.
    :param timeout: seconds from now instead of ``deadline``; turned into ``deadline`` at construction,
        so ``serialize()`` carries the absolute time and a re-created trigger keeps the same deadline.
    """

    def __init__(
        self,
        *,
        ecoinvent_conn_id: str = DEFAULT_CONN_ID,
        version: str | None = None,
        newer_than: str | None = None,
        system_model: str = DEFAULT_SYSTEM_MODEL,
        poke_interval: float = 60.0,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        validate_version_wanted(version, newer_than)
        poke_interval = validate_poll_interval("poke_interval", poke_interval)
        if deadline is not None and timeout is not None:
            raise EcoinventConfigError("Give 'deadline' (an epoch time) or 'timeout' (seconds), not both.")
        if timeout is not None:
            deadline = time.time() + float(timeout)
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self.version = version
        self.newer_than = newer_than
        self.system_model = system_model
        self.poke_interval = poke_interval
        self.deadline = float(deadline) if deadline is not None else None
        # Replaceable in tests (time shifted, not slept); never serialized.
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self._clock: Callable[[], float] = time.time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs; ``EcoinventVersionTrigger(**kwargs).serialize()`` is identical."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ecoinvent_conn_id": self.ecoinvent_conn_id,
                "version": self.version,
                "newer_than": self.newer_than,
                "system_model": self.system_model,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the version is found, a permanent error occurs, or the deadline passes; one event."""
        wanted = describe_wanted(self.version, self.newer_than, self.system_model)
        async with _client(self.ecoinvent_conn_id, self.log) as client:
            polls = 0
            while True:
                polls += 1
                try:
                    found = await self._poll(client, first=polls == 1)
                except TimeoutError:
                    found = None  # the deadline passed during the call; reported below
                except EcoinventRetriesExhaustedError as err:
                    self.log.warning("Polling for %s failed for now, will poll again: %s", wanted, err)
                    found = None
                except EcoinventError as err:
                    # Wrong credentials, an invalid connection, 403/404/non-JSON: polling cannot fix these.
                    yield _error_event(err)
                    return
                except Exception as err:
                    # Not expected; still one event from the fixed set, so the task fails with a clear message.
                    self.log.exception("Unexpected error while polling for %s.", wanted)
                    yield _error_event(err)
                    return
                if found is not None:
                    self.log.info("Found ecoinvent %s after %d poll(s): %s.", wanted, polls, found.name)
                    yield _event({"status": EVENT_SUCCESS, "version": found.to_dict()})
                    return
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    message = f"ecoinvent {wanted} did not appear before the deadline ({polls} polls)."
                    self.log.info("%s", message)
                    yield _event({"status": EVENT_TIMEOUT, "message": message, "version": None})
                    return
                self.log.debug("ecoinvent %s not available yet; polling again in %g s.", wanted, self.poke_interval)
                await self._sleep(self.poke_interval if remaining is None else min(self.poke_interval, remaining))

    async def _poll(self, client: EcoinventAsyncClient, *, first: bool) -> EcoinventVersion | None:
        remaining = self._remaining()
        # A call still running (or retrying) when the deadline passes is abandoned (TimeoutError); the first
        # poll always gets a short window, so a trigger started late (triggerer down) still checks once.
        if remaining is not None:
            remaining = max(remaining, FIRST_POLL_WINDOW if first else 0.0)
        async with asyncio.timeout(remaining):
            versions = await client.get_versions()
        return find_wanted_version(
            versions, version=self.version, newer_than=self.newer_than, system_model=self.system_model
        )

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._clock()


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]


def _error_event(err: BaseException) -> TriggerEvent:
    return _event({"status": EVENT_ERROR, "message": str(err) or repr(err), "error_type": type(err).__name__})


class EcoinventNewVersionTrigger(BaseEventTrigger):
    """Fire once for each ecoinvent database version published after the watcher started watching.

    For event-driven scheduling::

        Asset(
            "ecoinvent://versions",
            watchers=[AssetWatcher(name="ecoinvent_new_version", trigger=EcoinventNewVersionTrigger())],
        )

    Every ``poll_interval`` seconds it reads ``/versions`` and yields one event per version it has not
    seen before, oldest first: ``{"version": "3.12", "system_models": [...], "release_date": ...}`` (the
    asset event's ``extra["payload"]``). It never fires again for a version it has fired for or recorded.

    **Memory.** The names seen are kept in the watched asset's state store (``self.asset_state_store``,
    Airflow 3.3+, key :meth:`state_key`), so a restarted triggerer neither re-fires old versions nor misses
    one published while it was down. Without a state store (older Airflow, tests) they are kept in memory,
    for the life of this trigger instance.

    **First poll.** With nothing remembered, the first successful poll records the versions present as the
    baseline and fires nothing: deploying a DAG does not start a run for a release that is already out.
    ``fire_on_start=True`` fires once on that first poll for the newest version present instead.

    **Delivery.** The version is recorded right after its event is handed to the triggerer
    (at-least-once: a crash in between re-fires it, never loses it).

    **Errors.** A watcher never ends on an error: transient failures and even wrong credentials are logged
    and the next poll comes ``poll_interval`` later (ending would make the triggerer restart it at once,
    hammering the token endpoint).

    :param ecoinvent_conn_id: the Airflow connection id.
    :param poll_interval: seconds between polls, at least :data:`MIN_POLL_INTERVAL`.
    :param system_model: count only versions offering this system model (``None``: every version).
    :param fire_on_start: fire for the newest version on the very first poll with no remembered state.
    """

    def __init__(
        self,
        *,
        ecoinvent_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 3600.0,
        system_model: str | None = None,
        fire_on_start: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self.poll_interval = validate_poll_interval("poll_interval", poll_interval)
        self.system_model = system_model
        self.fire_on_start = bool(fire_on_start)
        # Names of versions already fired for or recorded as the baseline; None until loaded.
        self._seen: set[str] | None = None
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs (they also make the watcher's identity hash)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ecoinvent_conn_id": self.ecoinvent_conn_id,
                "poll_interval": self.poll_interval,
                "system_model": self.system_model,
                "fire_on_start": self.fire_on_start,
            },
        )

    @property
    def state_key(self) -> str:
        """Key of the seen-version list in the asset state store (per connection and system model)."""
        return f"ecoinvent_seen_versions:{self.ecoinvent_conn_id}:{self.system_model or '*'}"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield one event per newly published version."""
        async with _client(self.ecoinvent_conn_id, self.log) as client:
            if self._seen is None:
                self._seen = await self._load_seen()
            while True:
                for event in await self._poll_safely(client):
                    yield event
                    seen = self._seen if self._seen is not None else set()
                    seen.add(event.payload["version"])
                    self._seen = seen
                    await self._save_seen()
                await self._sleep(self.poll_interval)

    async def _poll_safely(self, client: EcoinventAsyncClient) -> list[TriggerEvent]:
        """:meth:`_poll`, never raising: the watcher lives as long as the triggerer, so nothing a poll raises
        may end it. Only cancellation (``asyncio.CancelledError``, not an ``Exception``) stops it."""
        try:
            return await self._poll(client)
        except Exception:
            self.log.exception("ecoinvent version watcher poll failed unexpectedly, will poll again.")
            return []

    async def _poll(self, client: EcoinventAsyncClient) -> list[TriggerEvent]:
        try:
            versions = [v for v in await client.get_versions() if offers(v, self.system_model)]
        except (EcoinventAuthError, EcoinventConfigError) as err:
            self.log.error("ecoinvent version watcher cannot poll, fix the connection: %s", err)
            return []
        except EcoinventError as err:
            self.log.warning("ecoinvent version watcher poll failed, will poll again: %s", err)
            return []
        if self._seen is None:
            self._seen = {v.name for v in versions}
            latest = newest(versions)
            if self.fire_on_start and latest is not None:
                self._seen.discard(latest.name)  # recorded once its event is out
                await self._save_seen()
                self.log.info("No remembered versions; firing for the newest, %s (fire_on_start).", latest.name)
                return [_event(latest.to_dict())]
            await self._save_seen()
            self.log.info(
                "No remembered versions: recorded %s as the baseline; only later releases fire.",
                ", ".join(sorted(self._seen, key=release_key)) or "none",
            )
            return []
        fresh = sorted((v for v in versions if v.name not in self._seen), key=lambda v: release_key(v.name))
        for version in fresh:
            self.log.info("New ecoinvent version published: %s.", version.name)
        return [_event(version.to_dict()) for version in fresh]

    # -- memory ----------------------------------------------------------------------------------

    def _state_store(self) -> Any:
        """The asset state store the triggerer injected, or ``None`` (memory only)."""
        return getattr(self, "asset_state_store", None)  # BaseEventTrigger.asset_state_store: Airflow 3.3+

    async def _load_seen(self) -> set[str] | None:
        """The remembered names, from the asset state store if there is one; ``None`` for nothing yet."""
        for accessor in _state_accessors(self._state_store()):
            try:
                stored = await accessor.aget(self.state_key)
            except Exception as err:
                self.log.warning("Could not read the asset state store (%s); remembering in memory.", err)
                continue
            if isinstance(stored, list) and all(isinstance(name, str) for name in stored):
                self.log.info("Remembered ecoinvent versions: %s.", ", ".join(stored) or "none")
                return set(stored)
            if stored is not None:
                self.log.warning("Ignoring an unreadable %r in the asset state store: %r.", self.state_key, stored)
        return None

    async def _save_seen(self) -> None:
        if self._seen is None:
            return
        names = sorted(self._seen, key=release_key)
        for accessor in _state_accessors(self._state_store()):
            try:
                await accessor.aset(self.state_key, names)
            except Exception as err:
                self.log.warning("Could not write the asset state store (%s); remembering in memory.", err)


def _state_accessors(store: Any) -> list[Any]:
    """Per-asset accessors of the state store the triggerer injected (one per watched asset)."""
    if store is None:
        return []
    # AssetStateStoreAccessors keeps one accessor per asset; its own aget/aset only work for exactly one.
    by_name = getattr(store, "_by_name", None)
    by_uri = getattr(store, "_by_uri", None)
    if isinstance(by_name, dict) and isinstance(by_uri, dict):
        return [*by_name.values(), *by_uri.values()]
    return [store]


#: What users import from here: the two triggers (the sensor also uses the checks and constants above).
__all__ = ["EcoinventNewVersionTrigger", "EcoinventVersionTrigger"]
