"""EcoinventAsyncClient: the ecoinvent API from an event loop (triggers, async tasks).

The async twin of :class:`~airflow_provider_ecoinvent.hooks.ecoinvent.EcoinventHook`, with the same
behaviour and the same words in its errors, built on the same client core (``_client``): the request state
machine (``call``), the retry policy and budget (``retry``), the token request and answer (``tokens``), the
exception builders (``errors``), request safety (``safety``: API paths, redirects, answer size), network
failures (``network``) and trusted CAs (``trust``).

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
import time
from typing import TYPE_CHECKING, Any, Self, Unpack

import httpx
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

from airflow_provider_ecoinvent._client.call import (
    RENEW,
    Answer,
    ApiCall,
    Broken,
    CallOptions,
    Done,
    Step,
    TokenCall,
    Wait,
    connection_retry_policy,
)
from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent._client.ids import ScoredTally
from airflow_provider_ecoinvent._client.network import (
    POOL_SIZE,
    default_headers,
    describe_network_error,
    find_tls_error,
    tls_error,
    unreachable_reason,
)
from airflow_provider_ecoinvent._client.retry import RetryPolicy
from airflow_provider_ecoinvent._client.safety import CHUNK_BYTES, CappedBody, check_endpoint
from airflow_provider_ecoinvent._client.trust import tls_context, trusted_cas
from airflow_provider_ecoinvent.connection import settings_from_connection
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.versions import EcoinventVersion, parse_versions

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from airflow_provider_ecoinvent._client.tokens import AccessToken
    from airflow_provider_ecoinvent.connection import EcoinventSettings

_log = logging.getLogger(__name__)


class EcoinventAsyncClient:
    """Authenticated, retrying access to the ecoinvent API for coroutines.

    Nothing happens in the constructor: the connection is read on the first call. One HTTP connection
    pool and one access token serve every call of the client; the token is renewed shortly before it
    expires (``AccessToken.is_fresh``) and once after a 401, and an ``asyncio.Lock`` makes concurrent
    coroutines share one token exchange. 429, 5xx, dropped connections and timeouts are retried with the
    sync hook's :class:`~airflow_provider_ecoinvent._client.retry.RetryPolicy` (exponential back-off with
    jitter, ``Retry-After`` honoured; 429s for the connection's ``rate_limit_budget`` seconds); a refused
    connection or an unknown host is retried once. Wrong
    credentials raise :class:`EcoinventAuthError` at once. Redirects, answer sizes and trusted CAs are
    decided as in the sync hook, by the client core (``_client``).

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
        #: The distinct dataset and indicator ids this client has scored, capped by the connection's guards.
        self.scored = ScoredTally()
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
            self._retry_policy = connection_retry_policy(settings)
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
        return (await self._token_for_call())[0]

    async def _token_for_call(self) -> tuple[AccessToken, bool]:
        """A valid token, and whether this coroutine's own token request issued it (not the cache): only
        then does a 401 to it after a renewal mean the API refuses new tokens (as the hook's)."""
        token = self._token
        if token is not None and token.is_fresh(self._clock()):
            return token, False
        async with self._token_lock:
            # Coroutines that waited here reuse the token the first one fetched.
            token = self._token
            if token is not None and token.is_fresh(self._clock()):
                return token, False
            token = await self._fetch_token()
            self._token = token
            return token, True

    def _invalidate(self, rejected: AccessToken) -> None:
        if self._token is rejected:
            self._token = None

    async def _fetch_token(self) -> AccessToken:
        settings, http = await self._client()
        exchange = TokenCall(settings, budget=self.retry_policy.start(self._clock), log=self.log, clock=self._clock)
        step: Step = Wait(0.0)
        while not isinstance(step, Done):
            self.token_requests += 1
            send = self._attempt(http, settings.token_url, "POST", exchange.url, exchange.path, **exchange.send_kwargs)
            step = exchange.after(await send)
            if isinstance(step, Wait):
                await self._sleep(step.seconds)
        await _amask(step.value.value)
        return step.value  # type: ignore[no-any-return]

    # -- transport -------------------------------------------------------------------------------

    async def request(self, method: str, path: str, **options: Unpack[CallOptions]) -> Any:
        """Call any endpoint under the API prefix and return its parsed JSON (``None`` for an empty body).

        The same call as :meth:`~airflow_provider_ecoinvent.hooks.ecoinvent.EcoinventHook.request`
        (the decisions are :class:`~airflow_provider_ecoinvent._client.call.ApiCall`'s); this coroutine only sends,
        sleeps and swaps tokens.

        :param options: ``query``, ``json`` and ``headers`` (:class:`.CallOptions`).
        :raises EcoinventAuthError: the credentials are wrong, or a fresh token is refused.
        :raises EcoinventApiError: a non-retryable error status, or a 2xx answer that is not JSON.
        :raises EcoinventRetriesExhaustedError: a transient failure outlived the retry budget.
        :raises EcoinventConfigError: the connection is missing or invalid, or ``path`` leaves the API prefix
            or holds ``?``, ``#`` or ``;`` (pass query parameters as ``query=``).
        :raises EcoinventCostGuardError: a scored ``datasets`` call that would take the distinct ids this
            client has scored (:attr:`scored`) past the connection's ``max_unique_*`` extras; before the call.
        """
        check_endpoint(path)
        settings, http = await self._client()
        self.scored.admit_call(settings, path, options.get("query"), options.get("json"))
        budget = self.retry_policy.start(self._clock)
        call = ApiCall(settings, method, path, options, budget=budget, log=self.log, secrets=self._secrets)
        step: Step = RENEW
        while not isinstance(step, Done):
            token, issued = await self._token_for_call()  # taken as the attempt is sent, as the hook does
            self.api_calls += 1
            send = self._attempt(
                http,
                settings.api_url,
                call.method,
                call.url,
                call.path,
                params=call.params,
                json=call.json,
                headers=call.headers(token, issued_for_call=issued),
            )
            step = call.after(await send)
            if step == RENEW:
                self._invalidate(token)
            elif isinstance(step, Wait):
                await self._sleep(step.seconds)
        return step.value

    async def _attempt(
        self, http: httpx.AsyncClient, server: str, method: str, url: str, path: str, **kwargs: Any
    ) -> Answer | Broken:
        """One exchange (:meth:`_exchange`), a network failure reported as :class:`Broken`.

        :raises EcoinventApiError: TLS failed with ``server`` (retrying cannot fix it), or the answer is too large.
        """
        try:
            return Answer(*await self._exchange(http, method, url, path, **kwargs))
        except httpx.TransportError as err:
            if find_tls_error(err) is not None:
                raise tls_error(server, err, conn_id=(await self.get_settings()).conn_id) from None
            return _network_failure(err)

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
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    body.add(chunk)
            except httpx.DecodingError:
                raise body.undecodable(response.headers.get("Content-Encoding")) from None
        return response.status_code, response.headers, body.content

    def _secrets(self) -> list[str]:
        secrets = [self._settings.client_secret] if self._settings else []
        return secrets + ([self._token.value] if self._token else [])

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
        headers=default_headers(f"python-httpx/{httpx.__version__}"),
        # Proxies from the environment apply (CA bundles were resolved above, as the hook does); httpx
        # (>= 0.24) never reads .netrc by itself.
        trust_env=True,
        follow_redirects=False,
    )


def _network_failure(err: httpx.TransportError) -> Broken:
    """A network failure (not TLS) as the call reads it, in the words both transports use
    (``_client.network.describe_network_error``)."""
    reason = describe_network_error(err, timeouts=(httpx.TimeoutException,), cut_short=(httpx.RemoteProtocolError,))
    return Broken(reason, unreachable_reason(err))


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


__all__ = ["EcoinventAsyncClient"]
