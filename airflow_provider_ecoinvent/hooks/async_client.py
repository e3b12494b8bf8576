"""EcoinventAsyncClient: the ecoinvent API from an event loop (triggers, async tasks).

The async twin of :class:`~airflow_provider_ecoinvent.hooks.ecoinvent.EcoinventHook`, with the same
behaviour and the same words in its errors, built on the same shared pieces: the retry policy and budget
(``_retry``), the token request and answer (``_tokens``), the exception builders (``_errors``) and the
transport decisions: redirects, answer size, trusted CAs, unreachable hosts, API paths (``_transport``).

Rules for the event loop, all kept here:

* the connection and its extra are read with the async helpers of ``common.compat`` (the sync
  ``get_connection`` / ``extra_dejson`` can raise ``DeadlockImminentError`` inside the triggerer);
* every token is registered with ``amask_secret`` (awaited), never the sync ``mask_secret``;
* the ``httpx.AsyncClient`` is built in a worker thread, because building it loads the CA bundle
  (tens of milliseconds of file I/O that would otherwise block the loop), and the same thread imports
  what httpcore would otherwise import lazily on the loop at the first request;
* waits between retries are ``asyncio.sleep`` (replaceable in tests: ``client._sleep``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import platform
import time
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import httpx
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

from airflow_provider_ecoinvent import __version__
from airflow_provider_ecoinvent._constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent._errors import (
    RENEW_TOKEN,
    RETRY_LOG_FORMAT,
    SUCCESS,
    Failure,
    Retryable,
    decode_json_body,
    next_delay_or_raise,
    read_api_status,
    retry_log_args,
)
from airflow_provider_ecoinvent._retry import RetryBudget, RetryPolicy
from airflow_provider_ecoinvent._tokens import (
    AccessToken,
    build_token_request,
    read_token_response,
)
from airflow_provider_ecoinvent._transport import (
    POOL_SIZE,
    CappedBody,
    api_path,
    find_tls_error,
    tls_context,
    tls_error,
    trusted_cas,
    undecodable_body_error,
    unreachable_reason,
)
from airflow_provider_ecoinvent.connection import settings_from_connection
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.versions import EcoinventVersion, parse_versions

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable, Mapping
    from types import TracebackType

    from airflow_provider_ecoinvent.connection import EcoinventSettings

_log = logging.getLogger(__name__)
#: Bytes read from an answer at a time (the size limit is checked after each).
_CHUNK_BYTES = 64 * 1024


class EcoinventAsyncClient:
    """Authenticated, retrying access to the ecoinvent API for coroutines.

    Nothing happens in the constructor: the connection is read on the first call. One HTTP connection
    pool and one access token serve every call of the client; the token is renewed shortly before it
    expires (``AccessToken.is_fresh``) and once after a 401, and an ``asyncio.Lock`` makes concurrent
    coroutines share one token exchange. 429, 5xx, dropped connections and timeouts are retried with the
    sync hook's :class:`~airflow_provider_ecoinvent._retry.RetryPolicy` (exponential back-off with
    jitter, ``Retry-After`` honoured); a refused connection or an unknown host is retried once. Wrong
    credentials raise :class:`EcoinventAuthError` at once. Redirects, answer sizes and trusted CAs are
    decided as in the sync hook, by ``_transport``.

    Use it as an async context manager, or call :meth:`aclose` when done::

        async with EcoinventAsyncClient("ecoinvent_default") as client:
            versions = await client.get_versions()

    :param ecoinvent_conn_id: the Airflow connection (type ``ecoinvent``).
    :param retry_policy: override the back-off policy (default: the connection's ``max_retries``).
    :param logger: where to log retries (a trigger passes its own ``self.log``).
    """

    def __init__(
        self,
        ecoinvent_conn_id: str = DEFAULT_CONN_ID,
        *,
        retry_policy: RetryPolicy | None = None,
        logger: logging.Logger | Any | None = None,
    ) -> None:
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self.log: Any = logger or _log
        self._retry_policy = retry_policy
        self._settings: EcoinventSettings | None = None
        self._http: httpx.AsyncClient | None = None
        self._token: AccessToken | None = None
        self._setup_lock = asyncio.Lock()
        self._token_lock = asyncio.Lock()
        self._closed = False
        #: HTTP calls this client made to the API (every attempt, retries included).
        self.api_calls = 0
        #: HTTP calls this client made to the token endpoint.
        self.token_requests = 0
        # Time sources; tests replace them to shift time instead of sleeping.
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self._clock: Callable[[], float] = time.monotonic

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ecoinvent_conn_id={self.ecoinvent_conn_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (idempotent). The client cannot be used afterwards."""
        self._closed = True
        http, self._http = self._http, None
        self._token = None
        if http is not None:
            await http.aclose()

    # -- set-up ----------------------------------------------------------------------------------

    async def get_settings(self) -> EcoinventSettings:
        """The connection's validated settings, read asynchronously on first use.

        :raises EcoinventConfigError: the connection is missing or invalid.
        """
        if self._settings is None:
            async with self._setup_lock:
                if self._settings is None:
                    self._settings = await self._read_settings()
        return self._settings

    async def _read_settings(self) -> EcoinventSettings:
        try:
            conn = await get_async_connection(self.ecoinvent_conn_id)
        except EcoinventConfigError:
            raise
        except Exception as err:
            # The SDK raises AirflowNotFoundException (or a runtime error) for an unknown id.
            raise EcoinventConfigError(
                f"Could not read connection {self.ecoinvent_conn_id!r}: {type(err).__name__}: {err}"
            ) from None
        settings = settings_from_connection(conn, extra=await get_async_extra_dejson(conn))
        if self._retry_policy is None:
            self._retry_policy = RetryPolicy(max_retries=settings.max_retries)
        return settings

    async def _client(self) -> tuple[EcoinventSettings, httpx.AsyncClient]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        settings = await self.get_settings()
        if self._http is None:
            async with self._setup_lock:
                if self._http is None:
                    # Building the client loads CA certificates from disk: keep that off the event loop.
                    self._http = await asyncio.to_thread(_build_http_client, settings)
        return settings, self._http

    @property
    def retry_policy(self) -> RetryPolicy:
        """The back-off policy (the connection's ``max_retries`` once the connection has been read)."""
        return self._retry_policy or RetryPolicy()

    # -- tokens ----------------------------------------------------------------------------------

    async def get_access_token(self) -> str:
        """A valid access token (cached for the client's life, renewed before it expires), masked in logs."""
        return (await self._get_token()).value

    async def _get_token(self) -> AccessToken:
        token = self._token
        if token is not None and token.is_fresh(self._clock()):
            return token
        async with self._token_lock:
            # Coroutines that waited here reuse the token the first one fetched.
            token = self._token
            if token is not None and token.is_fresh(self._clock()):
                return token
            token = await self._fetch_token()
            self._token = token
            return token

    def _invalidate(self, rejected: AccessToken) -> None:
        if self._token is rejected:
            self._token = None

    async def _fetch_token(self) -> AccessToken:
        settings, http = await self._client()
        token_request = build_token_request(settings)
        path = urlsplit(settings.token_url).path or "/"
        budget = self.retry_policy.start(self._clock)
        while True:
            failure = Failure("POST", settings.token_url, path, "", settings.conn_id, service="token endpoint")
            try:
                self.token_requests += 1
                status, answer_headers, body = await self._exchange(
                    http, "POST", token_request.url, path, data=token_request.form, headers=token_request.headers
                )
            except httpx.TransportError as err:
                if find_tls_error(err) is not None:
                    raise tls_error(settings.token_url, err, conn_id=settings.conn_id) from None
                failure = _network_failure(failure, err)
            else:
                outcome = read_token_response(
                    status,
                    body,
                    answer_headers.get("Retry-After"),
                    settings=settings,
                    now=self._clock(),
                    location=answer_headers.get("Location"),
                )
                if isinstance(outcome, AccessToken):
                    await _amask(outcome.value)
                    self.log.info("Obtained an ecoinvent access token valid for %g s.", outcome.lifetime)
                    return outcome
                failure = failure._replace(reason=outcome.reason, status=status, retry_after=outcome.retry_after)
            await self._wait_or_give_up(budget, failure)

    # -- transport -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call any endpoint under the API prefix and return its parsed JSON (``None`` for an empty body).

        :param method: HTTP method, e.g. ``"GET"``.
        :param path: path under the prefix, e.g. ``"versions"`` or ``"/datasets/batch"``.
        :param query: query parameters; ``None`` values are dropped, a list becomes a repeated parameter.
        :param json: request body, sent as JSON.
        :param headers: extra headers (``X-User-Id`` / ``X-Organization-Id`` come from the connection).
        :raises EcoinventAuthError: the credentials are wrong, or a fresh token is refused.
        :raises EcoinventApiError: a non-retryable error status, or a 2xx answer that is not JSON.
        :raises EcoinventRetriesExhaustedError: a transient failure outlived the retry budget.
        :raises EcoinventConfigError: the connection is missing or invalid.
        """
        settings, http = await self._client()
        method = method.upper()
        full_path = api_path(settings.api_prefix, path)  # refuses a path leaving the prefix, before any token
        url = settings.api_url + full_path
        call_headers = {**settings.usage_headers, **(headers or {})}
        params = {key: value for key, value in (query or {}).items() if value is not None} or None
        budget = self.retry_policy.start(self._clock)
        renewed_after_401 = False
        while True:
            token = await self._get_token()
            failure = Failure(method, url, full_path, "", settings.conn_id)
            try:
                self.api_calls += 1
                status, answer_headers, body = await self._exchange(
                    http,
                    method,
                    url,
                    full_path,
                    params=params,
                    json=json,
                    headers={**call_headers, "Authorization": f"Bearer {token.value}"},
                )
            except httpx.TransportError as err:
                if find_tls_error(err) is not None:
                    raise tls_error(settings.api_url, err, conn_id=settings.conn_id) from None
                failure = _network_failure(failure, err)
            else:
                answer = read_api_status(
                    status,
                    body,
                    answer_headers.get("Retry-After"),
                    method=method,
                    path=full_path,
                    conn_id=settings.conn_id,
                    secrets=self._secrets(),
                    renewed_after_401=renewed_after_401,
                    location=answer_headers.get("Location"),
                )
                if answer == SUCCESS:
                    return decode_json_body(
                        status, body, method=method, path=full_path, conn_id=settings.conn_id, secrets=self._secrets()
                    )
                if answer == RENEW_TOKEN:
                    self.log.info("The API answered 401 to %s %s; renewing the token once.", method, full_path)
                    self._invalidate(token)
                    renewed_after_401 = True
                    continue
                assert isinstance(answer, Retryable)
                failure = failure._replace(reason=answer.reason, status=status, retry_after=answer.retry_after)
            await self._wait_or_give_up(budget, failure)

    async def _exchange(
        self, http: httpx.AsyncClient, method: str, url: str, path: str, **kwargs: Any
    ) -> tuple[int, httpx.Headers, bytes]:
        """One HTTP exchange (the client never follows redirects), the body read up to ``max_response_bytes``.

        :raises EcoinventApiError: the answer is larger than the limit (the rest is not read), or its body
            cannot be decoded as its ``Content-Encoding`` says.
        """
        settings = await self.get_settings()
        body = CappedBody(settings.max_response_bytes, method, path, conn_id=settings.conn_id)
        async with http.stream(method, url, **kwargs) as response:
            body.check_length(response.headers.get("Content-Length"))
            try:
                async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                    body.add(chunk)
            except httpx.DecodingError:
                encoding = response.headers.get("Content-Encoding")
                raise undecodable_body_error(method, path, encoding, conn_id=settings.conn_id) from None
        return response.status_code, response.headers, body.content

    def _secrets(self) -> list[str]:
        secrets = [self._settings.client_secret] if self._settings else []
        return secrets + ([self._token.value] if self._token else [])

    async def _wait_or_give_up(self, budget: RetryBudget, failure: Failure) -> None:
        """Wait before the next attempt, or raise the error that ends the call (``next_delay_or_raise``)."""
        delay = next_delay_or_raise(budget, failure)
        self.log.warning(RETRY_LOG_FORMAT, *retry_log_args(failure, budget, delay))
        await self._sleep(delay)

    # -- typed API -------------------------------------------------------------------------------

    async def get_versions(self) -> list[EcoinventVersion]:
        """The database versions the licence covers, oldest to newest, with their system models."""
        return parse_versions(await self.request("GET", "versions"))


def _build_http_client(settings: EcoinventSettings) -> httpx.AsyncClient:
    """The pooled async HTTP client (run in a worker thread: it reads CA files)."""
    # httpcore imports anyio's asyncio back-end on its first request; import it here, off the event loop.
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")
    cas = trusted_cas(settings)  # the hook trusts the same CAs; False for plain http:// or verify=false
    verify: bool | ssl.SSLContext = tls_context(cas, conn_id=settings.conn_id) if cas else False
    return httpx.AsyncClient(
        verify=verify,
        timeout=httpx.Timeout(settings.timeout, connect=settings.timeouts[0]),
        limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=8),
        headers={
            "User-Agent": (
                f"airflow-provider-ecoinvent/{__version__} python-httpx/{httpx.__version__} "
                f"Python/{platform.python_version()}"
            ),
            "Accept": "application/json",
        },
        # Proxies from the environment apply (CA bundles were resolved above, as the hook does); httpx
        # (>= 0.24) never reads .netrc by itself.
        trust_env=True,
        follow_redirects=False,
    )


def _network_failure(failure: Failure, err: httpx.TransportError) -> Failure:
    """``failure`` completed with why the network failed, and whether the host is unreachable for good."""
    return failure._replace(reason=_describe_network_error(err), unreachable=unreachable_reason(err))


def _describe_network_error(err: httpx.TransportError) -> str:
    """A short, secret-free reason for a network failure (no URL, no headers)."""
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    if isinstance(err, httpx.RemoteProtocolError):
        return "connection dropped mid-response"
    return f"connection error ({type(err).__name__})"


__all__ = ["EcoinventAsyncClient"]


async def _amask(value: str) -> None:
    """Register a token with the secret masker without blocking the event loop.

    ``amask_secret`` arrived in Airflow 3.2; on 3.1 the synchronous ``mask_secret`` (which may talk to the
    supervisor) runs in a worker thread, where blocking is safe, as common-compat does for connections.
    """
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow 3.1
        from airflow.sdk.log import mask_secret

        await asyncio.to_thread(mask_secret, value)
    else:
        await amask_secret(value)
