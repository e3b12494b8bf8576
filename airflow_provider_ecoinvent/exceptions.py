"""The few exceptions this provider raises, each telling the user what to fix.

All derive from :class:`EcoinventError`, itself an ``AirflowException``, so that Airflow treats them
as task failures and users can catch every provider error with one ``except``. None of them ever
carries the client secret or an access token in its text.

The errors that no retry can fix (:class:`EcoinventConfigError` and its :class:`EcoinventIndicatorError`,
:class:`EcoinventCostGuardError`) are also ``AirflowFailException``: the task fails at once, without
spending its Airflow ``retries`` (each a ``retry_delay`` of waiting for the same refusal). A transient error
(:class:`EcoinventRetriesExhaustedError`, ...) stays a plain ``AirflowException`` and is retried.
"""

from __future__ import annotations

try:  # Airflow 3.2+: the Task SDK's own classes, which its task runner catches
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 3.1: the SDK has no AirflowFailException; its task runner catches this one
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[attr-defined,no-redef]

__all__ = [
    "EcoinventApiError",
    "EcoinventAuthError",
    "EcoinventConfigError",
    "EcoinventCostGuardError",
    "EcoinventError",
    "EcoinventIndicatorError",
    "EcoinventOutputError",
    "EcoinventRateLimitError",
    "EcoinventRetriesExhaustedError",
    "EcoinventUnreachableError",
]


class EcoinventError(AirflowException):
    """Base class of every error raised by this provider."""


class EcoinventConfigError(EcoinventError, AirflowFailException, ValueError):
    """A connection field or operator argument is missing or invalid (raised before any network call), or the
    pinned version or system model is not one the licence offers.

    Final: an ``AirflowFailException``, so the task fails without retrying (the same arguments would be
    refused again).
    """


class EcoinventIndicatorError(EcoinventConfigError):
    """An indicator selector matched nothing in the pinned version, or a name matched several indicators.

    Raised after the free ``/indicators`` listing and before any scored call; the message names the
    closest existing names (or the candidates) so the selector can be fixed.
    """


class EcoinventAuthError(EcoinventError):
    """The token endpoint refused the client id or secret, or the API refused a fresh token.

    Never retried: polling or retrying with wrong credentials only delays the failure.
    """


class EcoinventApiError(EcoinventError):
    """The API answered with an error status that retrying cannot fix (400, 403, 404, 422, ...).

    :param status_code: the HTTP status, ``None`` when the answer could not be read at all.
    :param method: HTTP method of the failed call.
    :param path: path of the failed call, without query string or host.
    :param detail: the server's explanation, already shortened and free of secrets.
    """

    def __init__(self, message: str, *, status_code: int | None, method: str, path: str, detail: str = ""):
        super().__init__(message)
        # AirflowException declares a class-level HTTPStatus ``status_code`` for the API server; here it is
        # the ecoinvent API's answer instead.
        self.status_code = status_code  # type: ignore[assignment]
        self.method = method
        self.path = path
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments would otherwise be lost when the error is pickled (e.g. between
        # processes); reconstruct from the same fields.
        return (
            _rebuild_api_error,
            (type(self), str(self), self.status_code, self.method, self.path, self.detail),
        )


class EcoinventRetriesExhaustedError(EcoinventApiError):
    """A transient failure (5xx, connection error, timeout) persisted past the retry budget."""


class EcoinventRateLimitError(EcoinventRetriesExhaustedError):
    """The API kept answering 429 Too Many Requests until the retry budget ran out."""


class EcoinventUnreachableError(EcoinventApiError):
    """The host refused the connection or its name does not resolve, again after one retry.

    Not a transient failure for a configured host: the message names ``scheme://host:port`` and what to check.
    """


class EcoinventCostGuardError(EcoinventError, AirflowFailException):
    """The run would score more distinct datasets or indicators than the configured licence cost guard allows.

    Final: an ``AirflowFailException``, so the task fails without retrying (the guard would refuse again).
    """


class EcoinventOutputError(EcoinventError):
    """A partitioned output directory cannot be committed: a shard is missing or stale, or a part is
    missing, truncated or altered.

    The message names the shard or part and the mapped task to clear (re-run) so that it is written again.
    """


def _rebuild_api_error(
    cls: type[EcoinventApiError], message: str, status_code: int | None, method: str, path: str, detail: str
) -> EcoinventApiError:
    return cls(message, status_code=status_code, method=method, path=path, detail=detail)
