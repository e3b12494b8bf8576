"""One API call or token exchange as a state machine without I/O, driven by either transport.

The sync hook (requests) and the async client (httpx) must behave alike, so the loop around the shared
decisions of ``errors`` and ``tokens`` exists once, here: a transport sends a request, reports
what came back (:class:`Answer`, or :class:`Broken` for a network failure it classified), and does what
the returned step says: :class:`Done` (return its value), :data:`RENEW` (drop the rejected token, send
again) or :class:`Wait` (sleep that long, send again). Errors that end the call are raised from here,
with the same words for both transports; the retry and renewal log lines are written here too.

What stays with a transport is only its I/O: sending, reading the size-capped body, telling a TLS or
network failure apart, sleeping (interruptibly or on the event loop) and registering tokens with the
secret masker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypedDict
from urllib.parse import urlsplit

from airflow_provider_ecoinvent._client.errors import (
    RENEW_TOKEN,
    RETRY_LOG_FORMAT,
    SUCCESS,
    Failure,
    decode_json_body,
    next_delay_or_raise,
    read_api_status,
    repeated_401_error,
    retry_log_args,
)
from airflow_provider_ecoinvent._client.retry import RetryPolicy
from airflow_provider_ecoinvent._client.safety import api_path
from airflow_provider_ecoinvent._client.tokens import AccessToken, build_token_request, read_token_response

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_ecoinvent._client.network import Unreachable
    from airflow_provider_ecoinvent._client.retry import RetryBudget
    from airflow_provider_ecoinvent.connection import EcoinventSettings


class CallOptions(TypedDict, total=False):
    """What a call sends besides its method and path (the keyword arguments of both ``request`` methods).

    ``query``: query parameters; ``None`` values are dropped so that the API's defaults apply, and a list
    becomes a repeated parameter. ``json``: the request body, sent as JSON. ``headers``: extra headers
    (``X-User-Id`` and ``X-Organization-Id`` come from the connection unless given here).
    """

    query: Mapping[str, Any] | None
    json: Any
    headers: Mapping[str, str] | None


class Answer(NamedTuple):
    """What the server answered: status, headers and the body (read up to the size limit)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Broken(NamedTuple):
    """A network failure as the transport classified it: a secret-free reason, and whether the host is
    unreachable for good (``network.unreachable_reason``)."""

    reason: str
    unreachable: Unreachable | None = None


class Done(NamedTuple):
    """The call is over: return ``value`` (the decoded JSON, or the new :class:`AccessToken`)."""

    value: Any


class Wait(NamedTuple):
    """Sleep ``seconds``, then send again."""

    seconds: float


#: The step after a 401: drop the token the request carried and send again with a new one.
RENEW: Final = "renew"
#: Renewals one call may make after 401s to tokens that were not issued for it (taken from the cache, then
#: expired or revoked before the server read them); a 401 to a token issued for the call ends it at once.
MAX_RENEWALS: Final = 3

Step = Done | Wait | str


def connection_retry_policy(settings: EcoinventSettings) -> RetryPolicy:
    """The back-off policy a connection asks for (its ``max_retries`` and ``rate_limit_budget`` extras), the
    default of both transports when no policy is given."""
    return RetryPolicy(max_retries=settings.max_retries, rate_limit_budget=settings.rate_limit_budget)


class _Attempts:
    """The retry half shared by API calls and token exchanges: a budget, and what to do after a failure."""

    def __init__(self, failure: Failure, budget: RetryBudget, log: Any) -> None:
        #: Describes the call; each failed attempt fills in its reason, status and ``Retry-After``.
        self._failure = failure
        self._budget = budget
        self._log = log

    def after(self, outcome: Answer | Broken) -> Step:
        """The next step, given what the last attempt produced.

        :raises EcoinventError: the subclass of it that ends the call (see ``next_delay_or_raise`` and
            the answer readers).
        """
        if isinstance(outcome, Broken):
            return self._retry(self._failure._replace(reason=outcome.reason, unreachable=outcome.unreachable))
        return self._read(outcome)

    def _read(self, answer: Answer) -> Step:
        raise NotImplementedError

    def _retry(self, failure: Failure) -> Wait:
        """Wait before the next attempt, or raise the error that ends the call (``next_delay_or_raise``)."""
        delay = next_delay_or_raise(self._budget, failure)
        self._log.warning(RETRY_LOG_FORMAT, *retry_log_args(failure, self._budget, delay))
        return Wait(delay)

    def _retry_answer(self, answer: Answer, reason: str, retry_after: str | None) -> Wait:
        return self._retry(self._failure._replace(reason=reason, status=answer.status, retry_after=retry_after))


class ApiCall(_Attempts):
    """One call to the API: 2xx is decoded, a 401 renews the token, 429/5xx wait and retry, anything else
    raises (``errors.read_api_status``).

    A transport takes the token for an attempt when it sends it (after any wait for a place in flight), and
    tells :meth:`headers` whether a token request made for this call issued it. A 401 after a renewal is
    "the API refuses freshly issued tokens" only when that is so; a token that came from the cache (another
    thread's, or one that aged while the call waited) is renewed again, at most :data:`MAX_RENEWALS` times.

    The path is checked (``safety.api_path`` refuses one leaving the prefix) before any token is fetched.

    :param secrets: the secrets to scrub from error text as they are when an answer is read (the token
        may have changed since the call started).
    :raises TypeError: an option that :class:`CallOptions` does not name.
    """

    def __init__(
        self,
        settings: EcoinventSettings,
        method: str,
        path: str,
        options: CallOptions,
        *,
        budget: RetryBudget,
        log: Any,
        secrets: Callable[[], list[str]],
    ) -> None:
        unknown = sorted(set(options) - set(CallOptions.__annotations__))
        if unknown:
            raise TypeError(f"request() got unexpected keyword arguments: {', '.join(unknown)}")
        method = method.upper()
        full_path = api_path(settings.api_prefix, path)
        self.url = settings.api_url + full_path
        super().__init__(Failure(method, self.url, full_path, "", settings.conn_id), budget, log)
        query = options.get("query") or {}
        #: The query without ``None`` values (``None`` when nothing is left).
        self.params = {key: value for key, value in query.items() if value is not None} or None
        self.json = options.get("json")
        self._headers = {**settings.usage_headers, **(options.get("headers") or {})}
        self._secrets = secrets
        self._renewals = 0
        #: Whether the token of the latest attempt was issued by a token request made for this call.
        self._token_issued_for_call = False

    @property
    def method(self) -> str:
        """The HTTP method, upper case."""
        return self._failure.method

    @property
    def path(self) -> str:
        """The full path, API prefix included."""
        return self._failure.path

    def headers(self, token: AccessToken, *, issued_for_call: bool = False) -> dict[str, str]:
        """The headers of an attempt made with ``token``; ``issued_for_call``: a token request made for this
        call (not the cache) issued it, so that a 401 to it means the API refuses new tokens."""
        self._token_issued_for_call = issued_for_call
        return {**self._headers, "Authorization": f"Bearer {token.value}"}

    def _read(self, answer: Answer) -> Step:
        method, path, conn_id = self._failure.method, self._failure.path, self._failure.conn_id
        status = answer.status
        verdict = read_api_status(
            status,
            answer.body,
            answer.headers.get("Retry-After"),
            method=method,
            path=path,
            conn_id=conn_id,
            secrets=self._secrets(),
            renewed_after_401=self._renewals > 0 and self._token_issued_for_call,
            location=answer.headers.get("Location"),
        )
        if verdict == SUCCESS:
            body = decode_json_body(
                status, answer.body, method=method, path=path, conn_id=conn_id, secrets=self._secrets()
            )
            return Done(body)
        if verdict == RENEW_TOKEN:
            if self._renewals >= MAX_RENEWALS:
                raise repeated_401_error(method, path, conn_id=conn_id, answers=self._renewals + 1)
            self._renewals += 1
            self._log.info("The API answered 401 to %s %s; renewing the token.", method, path)
            return RENEW
        assert not isinstance(verdict, str)
        return self._retry_answer(answer, verdict.reason, verdict.retry_after)


class TokenCall(_Attempts):
    """One client-credentials exchange: a token is :class:`Done`, 429/5xx/network failures wait and retry,
    a refusal raises (``tokens.read_token_response``).

    :param clock: the monotonic clock a token's lifetime starts from.
    """

    def __init__(
        self, settings: EcoinventSettings, *, budget: RetryBudget, log: Any, clock: Callable[[], float]
    ) -> None:
        request = build_token_request(settings)
        #: Where the form goes, and the transport's keyword arguments that send it (``data``, ``headers``).
        self.url = request.url
        self.send_kwargs: dict[str, Any] = {"data": request.form, "headers": request.headers}
        path = urlsplit(settings.token_url).path or "/"
        failure = Failure("POST", settings.token_url, path, "", settings.conn_id, service="token endpoint")
        super().__init__(failure, budget, log)
        self._settings = settings
        self._clock = clock

    @property
    def path(self) -> str:
        """The token endpoint's path (for messages: never the full URL)."""
        return self._failure.path

    def _read(self, answer: Answer) -> Step:
        outcome = read_token_response(
            answer.status,
            answer.body,
            answer.headers.get("Retry-After"),
            settings=self._settings,
            now=self._clock(),
            location=answer.headers.get("Location"),
        )
        if isinstance(outcome, AccessToken):
            self._log.info("Obtained an ecoinvent access token valid for %g s.", outcome.lifetime)
            return Done(outcome)
        return self._retry_answer(answer, outcome.reason, outcome.retry_after)


__all__ = [
    "MAX_RENEWALS",
    "RENEW",
    "Answer",
    "ApiCall",
    "Broken",
    "CallOptions",
    "Done",
    "Step",
    "TokenCall",
    "Wait",
    "connection_retry_policy",
]
