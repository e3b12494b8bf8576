"""EcoinventVersionSensor: wait until an ecoinvent database version (and system model) is available.

``poke`` and ``reschedule`` poll with the sync hook on a worker; deferrable, it checks once there and hands
the wait to the triggerer (:class:`~airflow_provider_ecoinvent.triggers.ecoinvent.EcoinventVersionTrigger`),
so that a wait of days holds no worker slot.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

# airflow.sdk.conf and airflow.sdk.exceptions.AirflowSensorTimeout arrived in Airflow 3.2.
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, conf
from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent.exceptions import (
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
    EcoinventRetriesExhaustedError,
)
from airflow_provider_ecoinvent.triggers.ecoinvent import (
    DEFAULT_SYSTEM_MODEL,
    EVENT_ERROR,
    EVENT_STATUSES,
    EVENT_SUCCESS,
    EcoinventVersionTrigger,
    describe_wanted,
    find_wanted_version,
    validate_poll_interval,
    validate_version_wanted,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

#: Extra time the deferral's own timeout gives the trigger to report its deadline itself.
DEFERRAL_GRACE: Final = timedelta(seconds=60)

_ERROR_TYPES: Final[dict[str, type[EcoinventError]]] = {
    "EcoinventAuthError": EcoinventAuthError,
    "EcoinventConfigError": EcoinventConfigError,
}


class EcoinventVersionSensor(BaseSensorOperator):
    """Wait until an ecoinvent database version is available to the licence, with a system model.

    Give exactly one of ``version`` (a named release, e.g. ``"3.12"``) and ``newer_than`` (any release
    after it in release-number order: ``"3.10"`` is newer than ``"3.9"``; ``"3.12-sandbox"`` sorts just
    below ``"3.12"``). The version found is the task's return value (XCom ``return_value``)::

        {"version": "3.12", "system_models": ["cutoff", ...], "release_date": "2025-..."}

    Modes: ``poke`` and ``reschedule`` poll from the worker; ``deferrable=True`` (default from
    ``[operators] default_deferrable``) checks once on the worker, then hands the wait to
    :class:`~airflow_provider_ecoinvent.triggers.ecoinvent.EcoinventVersionTrigger` on the triggerer,
    which honours the sensor's ``timeout`` as a deadline.

    Errors: transient API failures (retries exhausted on 429, 5xx or network errors) count as "not yet"
    and the sensor keeps waiting; wrong credentials (:class:`EcoinventAuthError`), an invalid connection
    (:class:`EcoinventConfigError`) and errors retrying cannot fix (403, 404) fail the task at once.

    ``soft_fail=True`` turns only the sensor's timeout into a skip; an error above fails the task all the
    same, in every mode (``poke``, ``reschedule`` and deferrable): a wrong secret is not "not there yet".

    :param version: the release to wait for (templated).
    :param newer_than: wait for any release newer than this one (templated).
    :param system_model: the system model the release must offer (templated; default ``cutoff``).
    :param ecoinvent_conn_id: the Airflow connection (templated).
    :param deferrable: wait on the triggerer instead of a worker slot.
    :param poke_interval: seconds between two looks, at least
        :data:`~airflow_provider_ecoinvent.triggers.ecoinvent.MIN_POLL_INTERVAL` (default 60).
    """

    template_fields: Sequence[str] = ("version", "newer_than", "system_model", "ecoinvent_conn_id")
    ui_color = "#d8f0d2"

    def __init__(
        self,
        *,
        version: str | None = None,
        newer_than: str | None = None,
        system_model: str = DEFAULT_SYSTEM_MODEL,
        ecoinvent_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate_version_wanted(version, newer_than)
        validate_poll_interval("poke_interval", self.poke_interval)  # seconds by now, even from a timedelta
        self.version = version
        self.newer_than = newer_than
        self.system_model = system_model
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> EcoinventHook:
        """One hook (one pooled session, one token) for every poke of this try."""
        from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook  # at run time, not at DAG parse

        return EcoinventHook(self.ecoinvent_conn_id)

    @property
    def _wanted(self) -> str:
        return describe_wanted(self.version, self.newer_than, self.system_model)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Look once; ``PokeReturnValue(is_done=True, xcom_value=<version dict>)`` when it is there."""
        validate_version_wanted(self.version, self.newer_than)  # templates may have rendered empty
        try:
            versions = self.hook.get_versions()
        except EcoinventRetriesExhaustedError as err:
            self.log.warning("Could not list ecoinvent versions this time, will try again: %s", err)
            return False
        found = find_wanted_version(
            versions, version=self.version, newer_than=self.newer_than, system_model=self.system_model
        )
        if found is None:
            self.log.info(
                "Waiting for ecoinvent %s; available: %s.",
                self._wanted,
                ", ".join(v.name for v in versions) or "none",
            )
            return False
        self.log.info("ecoinvent %s is available: %s.", self._wanted, found.name)
        return PokeReturnValue(is_done=True, xcom_value=found.to_dict())

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSkipException as skip:
                error = self._error_behind(skip)
                if error is None:
                    raise
            raise error
        # Check once on the worker: no deferral (and no triggerer round trip) when it is already there.
        started = time.time()
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        self.log.info("Deferring: the triggerer waits for ecoinvent %s (timeout %g s).", self._wanted, self.timeout)
        self.defer(
            trigger=EcoinventVersionTrigger(
                ecoinvent_conn_id=self.ecoinvent_conn_id,
                version=self.version,
                newer_than=self.newer_than,
                system_model=self.system_model,
                poke_interval=self.poke_interval,
                deadline=started + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_GRACE,
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the trigger, with ``soft_fail`` meaning what it means in poke mode.

        Airflow's sensor turns *any* ``AirflowException`` of the resumed method into a skip when
        ``soft_fail`` is set, while in poke and reschedule mode only a timeout becomes one. An error the
        trigger reported (wrong credentials, an invalid connection, 403/404) must fail the task in every
        mode, so it is raised again instead of the skip that wraps it.
        """
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as skip:
            error = self._error_behind(skip)
            if error is None:
                raise
        raise error

    def _error_behind(self, skip: AirflowSkipException) -> BaseException | None:
        """The provider error behind a ``soft_fail`` skip, to raise instead of it (``None``: a real skip).

        Airflow's sensor skips on an ``AirflowFailException`` with ``soft_fail``; the errors no retry can fix
        (:class:`EcoinventConfigError`, an unknown version) are such exceptions, and must fail the task.
        """
        error = skip.__cause__
        return error if self.soft_fail and isinstance(error, EcoinventError) else None

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: return the version found, or fail with the trigger's reason.

        :raises AirflowSensorTimeout: the deadline passed (``soft_fail`` turns it into a skip).
        :raises EcoinventAuthError, EcoinventConfigError, EcoinventError: the trigger reported an error
            (the task fails, even with ``soft_fail``: see :meth:`resume_execution`).
        :raises EcoinventError: the event is missing, unknown or malformed.
        """
        status = event.get("status") if isinstance(event, dict) else None
        if status not in EVENT_STATUSES:
            raise EcoinventError(
                f"EcoinventVersionSensor got an unexpected trigger event {event!r}: expected a dict whose "
                f"'status' is one of {sorted(EVENT_STATUSES)}."
            )
        assert isinstance(event, dict)
        message = str(event.get("message") or "no message")
        if status == EVENT_SUCCESS:
            version = event.get("version")
            if not isinstance(version, dict) or not isinstance(version.get("version"), str):
                raise EcoinventError(f"EcoinventVersionSensor got a success event without a version: {event!r}.")
            self.log.info("ecoinvent %s is available: %s.", self._wanted, version["version"])
            return {
                "version": version["version"],
                "system_models": list(version.get("system_models") or []),
                "release_date": version.get("release_date"),
            }
        if status == EVENT_ERROR:
            error_type = _ERROR_TYPES.get(str(event.get("error_type")), EcoinventError)
            raise error_type(f"Waiting for ecoinvent {self._wanted} failed: {message}")
        raise AirflowSensorTimeout(f"Waiting for ecoinvent {self._wanted} timed out: {message}")


__all__ = ["EcoinventVersionSensor"]
