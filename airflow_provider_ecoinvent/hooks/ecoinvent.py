"""EcoinventHook: authenticated, resilient, typed access to the ecoinvent API from Airflow workers.

The worker's transport (``requests``, threads): it sends, sleeps and swaps tokens, while every decision
(retry, renewal, errors, request safety) comes from the client core in ``_client``, which the triggerer's
async client drives too. Its dataset stream, answer readers and connection test sit beside it in this
package, each taking only what it needs of the hook.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar, Self, Unpack

from airflow.sdk import BaseHook

from airflow_provider_ecoinvent._client.call import (
    Answer,
    ApiCall,
    Broken,
    CallOptions,
    Done,
    TokenCall,
    Wait,
    connection_retry_policy,
)
from airflow_provider_ecoinvent._client.concurrency import CallGate
from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent._client.ids import (
    MAX_INDICATORS,
    ScoredTally,
    validate_dataset_ids,
    validate_indicator_ids,
)
from airflow_provider_ecoinvent._client.network import POOL_SIZE, tls_error
from airflow_provider_ecoinvent._client.paging import PAGE_LIMIT, PAGE_LIST_KEYS, Page, read_page, walk_pages
from airflow_provider_ecoinvent._client.safety import CHUNK_BYTES, CappedBody, check_endpoint
from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE, AccessToken, TokenCache, token_key
from airflow_provider_ecoinvent._client.trust import trusted_cas
from airflow_provider_ecoinvent.connection import header_value, settings_from_connection
from airflow_provider_ecoinvent.exceptions import EcoinventApiError, EcoinventConfigError
from airflow_provider_ecoinvent.hooks._answers import choose_version, display_geography, geographies_of
from airflow_provider_ecoinvent.hooks._connection_test import (
    CONNECTION_TEST_POLICY,
    CONNECTION_TEST_TIMEOUT,
    check_token_and_call,
    unreadable_connection,
)
from airflow_provider_ecoinvent.hooks._requests import (
    EnvironmentProxies,
    attempt_within,
    mask,
    network_failure,
    new_session,
    stop_if_requested,
    transient_network_errors,
    wait_unless_stopped,
)
from airflow_provider_ecoinvent.hooks._stream import DatasetStream, checked_selection
from airflow_provider_ecoinvent.versions import EcoinventVersion, parse_versions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import requests

    from airflow_provider_ecoinvent._client.concurrency import WidthChange
    from airflow_provider_ecoinvent._client.retry import RetryPolicy
    from airflow_provider_ecoinvent._client.tokens import TokenKey
    from airflow_provider_ecoinvent.connection import EcoinventSettings


class EcoinventHook(BaseHook):
    """Talk to the ecoinvent API with the credentials of an Airflow connection.

    The connection is read lazily, on the first call, never in the constructor: DAG files build hooks
    at parse time. One pooled HTTP session serves every call of the hook; the OAuth2 token comes from a
    process-wide cache (one token request per process and client while it is fresh) and is replaced
    shortly before it expires or after the API answers 401. 5xx, dropped connections and timeouts are
    retried ``max_retries`` times with exponential back-off and jitter, honouring ``Retry-After``; 429s
    for the connection's ``rate_limit_budget`` seconds (:class:`~airflow_provider_ecoinvent._client.retry.RetryPolicy`);
    a refused connection or an unknown host is retried once. Every call waits for a place within the
    hook's calls in flight (:attr:`gate`), then takes its token. Redirects are never followed, answers are read up to
    the connection's ``max_response_bytes``, and the CA bundle is the async client's (``_client.trust``).

    :param ecoinvent_conn_id: the Airflow connection (type ``ecoinvent``).
    :param retry_policy: override the back-off policy (default: the connection's ``max_retries``).
    :param user_id: ``X-User-Id`` for licence accounting; overrides the connection's extra.
    :param organization_id: ``X-Organization-Id``; overrides the connection's extra.
    :param timeout: read timeout in seconds; overrides the connection's extra.
    :param batch_size: dataset ids per batch call; overrides the connection's extra.
    """

    conn_name_attr: ClassVar[str] = "ecoinvent_conn_id"
    default_conn_name: ClassVar[str] = DEFAULT_CONN_ID
    conn_type: ClassVar[str] = "ecoinvent"
    hook_name: ClassVar[str] = "ecoinvent"

    def __init__(
        self,
        ecoinvent_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        user_id: str | None = None,
        organization_id: str | None = None,
        timeout: float | None = None,
        batch_size: int | None = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        super().__init__()
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self._retry_policy = retry_policy
        self._overrides: dict[str, Any] = {
            key: value
            for key, value in {
                "user_id": user_id,
                "organization_id": organization_id,
                "timeout": timeout,
                "batch_size": batch_size,
            }.items()
            if value is not None
        }
        self._token_cache = token_cache or TOKEN_CACHE
        self._counter_lock = threading.Lock()
        self._proxies = EnvironmentProxies()
        #: HTTP calls this hook made to the API (every attempt, retries included).
        self.api_calls = 0
        #: HTTP calls this hook made to the token endpoint.
        self.token_requests = 0
        # Time sources, replaced by tests to shift time; without one a retry waits on the call's cancel event.
        self._sleep: Callable[[float], object] | None = None
        self._clock: Callable[[], float] = time.monotonic
        # Set by stop() (an operator's on_kill): every call of this hook honours it, see _stop_requested.
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop every call of this hook: a retry wait wakes at once and no further attempt is made.

        For ``on_kill``, from any thread or a signal handler: never blocks, never raises. The calls then
        fail with :class:`EcoinventError` saying the run was stopped; a stopped hook stays stopped.
        """
        self._stop.set()

    def _stop_requested(self, cancel: threading.Event | None) -> bool:
        """Whether the hook was stopped, or the calling run's own ``cancel`` event is set."""
        return self._stop.is_set() or (cancel is not None and cancel.is_set())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ecoinvent_conn_id={self.ecoinvent_conn_id!r})"

    # -- connection ------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> EcoinventSettings:
        """The connection's validated settings (read on first use)."""
        settings = settings_from_connection(self.get_connection(self.ecoinvent_conn_id))
        if "batch_size" in self._overrides and not 1 <= int(self._overrides["batch_size"]) <= 10_000:
            raise EcoinventConfigError(f"batch_size must be from 1 to 10000, got {self._overrides['batch_size']!r}.")
        for key in ("user_id", "organization_id"):
            header_value(f"{type(self).__name__} argument", key, self._overrides.get(key))
        return dataclasses.replace(settings, **self._overrides)

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """Back-off policy: the one given to the constructor, else the connection's ``max_retries``."""
        return self._retry_policy or connection_retry_policy(self.settings)

    @cached_property
    def session(self) -> requests.Session:
        """The pooled HTTP session shared by every call of this hook (and its worker threads)."""
        return new_session(self._verify)

    @cached_property
    def _verify(self) -> bool | str:
        """The CA bundle every call trusts, the same as the async client's (``_client.trust.trusted_cas``).
        Passed per request too: requests lets ``REQUESTS_CA_BUNDLE`` override ``session.verify``."""
        return trusted_cas(self.settings)

    def get_conn(self) -> requests.Session:
        """The pooled session (Airflow's generic hook interface)."""
        return self.session

    @property
    def _token_key(self) -> TokenKey:
        return token_key(self.settings)

    @property
    def _secrets(self) -> list[str]:
        token = self._token_cache.peek(self._token_key)
        return [self.settings.client_secret] + ([token.value] if token else [])

    def _count(self, field: str) -> None:
        with self._counter_lock:
            setattr(self, field, getattr(self, field) + 1)

    # -- tokens ----------------------------------------------------------------------------------

    def get_access_token(self) -> str:
        """A valid access token, from the process cache or a new client-credentials exchange.

        The token is registered with Airflow's secret masker, so it shows as ``***`` in task logs.
        """
        return self._token().value

    def _token(self, cancel: threading.Event | None = None) -> AccessToken:
        return self._token_cache.get(self._token_key, lambda: self._fetch_token(cancel))

    def _token_for_call(self, cancel: threading.Event | None) -> tuple[AccessToken, bool]:
        """A valid token, and whether a token request made here (for the calling call) issued it, rather
        than the cache: only then does a 401 to it after a renewal mean the API refuses new tokens."""
        issued: list[AccessToken] = []

        def fetch() -> AccessToken:
            issued.append(self._fetch_token(cancel))
            return issued[-1]

        token = self._token_cache.get(self._token_key, fetch)
        return token, any(token is new for new in issued)

    def _fetch_token(self, cancel: threading.Event | None = None) -> AccessToken:
        """A new token; ``cancel`` (the calling run's stop event) wakes a retry wait and stops retrying."""
        settings = self.settings
        exchange = TokenCall(settings, budget=self.retry_policy.start(self._clock), log=self.log, clock=self._clock)
        while True:
            stop_if_requested(self._stop_requested(cancel), "POST", exchange.path)
            self._count("token_requests")
            outcome = self._attempt(settings.token_url, "POST", exchange.url, exchange.path, **exchange.send_kwargs)
            step = exchange.after(outcome)
            if isinstance(step, Done):
                mask(step.value.value)
                return step.value  # type: ignore[no-any-return]
            assert isinstance(step, Wait)  # a token exchange never asks for a renewal
            self._pause(step.seconds, cancel)

    # -- transport -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        cancel: threading.Event | None = None,
        gate: CallGate | None = None,
        **options: Unpack[CallOptions],
    ) -> Any:
        """Call any endpoint under the API prefix and return its parsed JSON.

        The retry / renew-once / give-up decisions are :class:`~airflow_provider_ecoinvent._client.call.ApiCall`'s,
        shared with the async client; this method only sends, sleeps and swaps tokens.

        :param method: HTTP method, e.g. ``"GET"``.
        :param path: path under the prefix, e.g. ``"versions"`` or ``"/datasets/batch"``.
        :param cancel: once set, no further attempt is made (a stopped run must not retry billed calls).
        :param gate: the calls in flight each attempt waits within (lowered on 429); default: the hook's
            :attr:`gate`, which every call of the hook shares.
        :param options: ``query``, ``json`` and ``headers``
            (:class:`~airflow_provider_ecoinvent._client.call.CallOptions`).
        :raises EcoinventConfigError: ``path`` leaves the API prefix or holds ``?``, ``#`` or ``;`` (pass
            query parameters as ``query=``); before the call.
        :raises EcoinventCostGuardError: a scored ``datasets`` call (``indicator_ids`` in its body or query)
            that would take the distinct ids this hook has scored (:attr:`scored`) past the connection's
            ``max_unique_*`` extras; before the call.
        :raises EcoinventAuthError: the credentials are wrong, or a fresh token is refused.
        :raises EcoinventApiError: a non-retryable error status, or a 2xx answer that is not JSON.
        :raises EcoinventRetriesExhaustedError: a transient failure outlived the retry budget.
        """
        settings = self.settings
        check_endpoint(path)  # first: a query string in the path would hide ids from the count below
        self.scored.admit_call(settings, path, options.get("query"), options.get("json"))
        budget = self.retry_policy.start(self._clock)
        call = ApiCall(settings, method, path, options, budget=budget, log=self.log, secrets=lambda: self._secrets)
        stopped = partial(self._stop_requested, cancel)
        while True:
            stop_if_requested(stopped(), call.method, call.path)
            take_token = partial(self._token_for_call, cancel)  # called by the attempt, once it has its place
            token, outcome = attempt_within(gate or self.gate, partial(self._send, call, take_token), stopped, call)
            step = call.after(outcome)
            if isinstance(step, Done):
                return step.value
            if isinstance(step, Wait):
                self._pause(step.seconds, cancel)
            else:  # RENEW: the API refused this token
                self._token_cache.invalidate(self._token_key, token)

    def _send(
        self, call: ApiCall, take_token: Callable[[], tuple[AccessToken, bool]]
    ) -> tuple[AccessToken, Answer | Broken]:
        """One attempt of ``call``, once it has its place in flight: the token is taken now (``take_token``:
        :meth:`_token_for_call`), not before the wait for that place, so that it cannot expire in the queue."""
        token, issued = take_token()
        self._count("api_calls")
        headers = call.headers(token, issued_for_call=issued)
        url = self.settings.api_url
        return token, self._attempt(
            url, call.method, call.url, call.path, params=call.params, json=call.json, headers=headers
        )

    @cached_property
    def scored(self) -> ScoredTally:
        """The distinct dataset and indicator ids this hook has scored: the connection's guards cap them
        across all its calls, so a loop of ``get_dataset`` calls is capped as one ``get_datasets`` is."""
        return ScoredTally()

    @cached_property
    def gate(self) -> CallGate:
        """The calls in flight of this hook, shared by all its calls, free and scored (:mod:`.._client.concurrency`).

        A gateway's limit counts every call, so a 429 to a search lowers the width the dataset stream starts
        at, and a version check waits its turn like a batch. :meth:`get_datasets` sets its ceiling.
        """
        return CallGate(POOL_SIZE, on_change=self._log_width_change)

    def _log_width_change(self, change: WidthChange) -> None:
        if change.reason == "429":
            self.log.info("The API answered 429: calls in flight lowered from %d to %d.", change.old, change.new)
        else:
            self.log.info(
                "Calls in flight raised from %d to %d after a run of successes (at most %d).",
                change.old,
                change.new,
                self.gate.ceiling,
            )

    def _attempt(self, server: str, method: str, url: str, path: str, **kwargs: Any) -> Answer | Broken:
        """One exchange (:meth:`_exchange`), a retryable network failure reported as :class:`Broken`.

        :raises EcoinventApiError: TLS failed with ``server`` (retrying cannot fix it), or the answer is too large.
        """
        import requests

        try:
            return Answer(*self._exchange(method, url, path, **kwargs))
        except requests.exceptions.SSLError as err:
            raise tls_error(server, err, conn_id=self.settings.conn_id) from None
        except transient_network_errors() as err:
            return network_failure(err)

    def _exchange(self, method: str, url: str, path: str, **kwargs: Any) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP exchange: redirects never followed, the body read only up to ``max_response_bytes``.
        Not following redirects keeps the token, the client secret and ``~/.netrc`` credentials (which
        requests applies after a redirect) from going anywhere but the configured hosts.

        :raises EcoinventApiError: the answer is larger than the limit (the rest is not read), or its body
            cannot be decoded as its ``Content-Encoding`` says.
        """
        import requests

        settings = self.settings
        body = CappedBody(settings.max_response_bytes, method, path, conn_id=settings.conn_id)
        with self.session.request(
            method,
            url,
            timeout=settings.timeouts,
            verify=self._verify,
            proxies=self._proxies(url),
            allow_redirects=False,
            stream=True,
            **kwargs,
        ) as response:
            body.check_length(response.headers.get("Content-Length"))
            try:
                for chunk in response.iter_content(CHUNK_BYTES):
                    body.add(chunk)
            except requests.exceptions.ContentDecodingError:
                raise body.undecodable(response.headers.get("Content-Encoding")) from None
        return response.status_code, response.headers, body.content

    def _pause(self, seconds: float, cancel: threading.Event | None) -> None:
        """The wait between attempts (a test's ``_sleep`` when set): :meth:`stop` or ``cancel`` ends it at once."""
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            wait_unless_stopped(seconds, self._stop, cancel)

    # -- typed API -------------------------------------------------------------------------------

    def get_versions(self) -> list[EcoinventVersion]:
        """The database versions the licence covers, oldest to newest, with their system models."""
        return parse_versions(self.request("GET", "versions"))

    def resolve_version(self, version: str | None = "latest", system_model: str = "cutoff") -> str:
        """The concrete version name to pin for a run.

        ``"latest"`` (or empty) resolves to the newest version, in release-number order, that offers
        ``system_model``; a named version is checked to exist and to offer it.

        :raises EcoinventConfigError: the version or system model is not available to the licence.
        """
        return choose_version(self.get_versions(), version, system_model, where=f"connection {self.settings.conn_id!r}")

    def get_indicators(self, version: str = "latest", system_model: str = "cutoff") -> list[dict[str, Any]]:
        """The LCIA indicators of a version and system model (all pages)."""
        return list(self._paginate("indicators", {"version": version, "system_model": system_model}))

    def resolve_indicators(
        self, selectors: Any, *, version: str = "latest", system_model: str = "cutoff"
    ) -> list[dict[str, Any]]:
        """The indicators selected by id or by name, from one listing of ``/indicators`` (free, not billed).

        :param selectors: ids, ``"method | category | indicator"`` names, or dicts such as
            ``{"method": "EF v3.1"}`` (see :mod:`airflow_provider_ecoinvent.indicators`).
        :returns: ``{id, method, category, indicator, unit}`` per indicator, unique, sorted by id.
        :raises EcoinventIndicatorError: a selector matches nothing (the message names the closest names)
            or a name is ambiguous (it lists the candidates). Bad selector forms fail before any call.
        """
        from airflow_provider_ecoinvent.indicators import parse_selectors, resolve_selectors

        chosen = parse_selectors(selectors)
        catalogue = self.get_indicators(version, system_model)
        return resolve_selectors(chosen, catalogue, where=f"version {version} ({system_model})")

    def search_datasets(
        self, query: str | None = None, *, version: str = "latest", system_model: str = "cutoff", **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every dataset matching a search, page after page (searches are free: not billed).

        :param query: free text; ``None`` matches everything the filters allow.
        :param filters: API filters such as ``geography`` or ``activity_type``. The API matches only the
            display form of a geography (``"Mexico (MX)"``); every value, a bare code (``"MX"``), a name
            (``"Mexico"``) or a display form in any case (``"mexico (mx)"``), is looked up with one free call
            (:meth:`get_geographies`) and sent in the catalogue's spelling.
        :raises EcoinventConfigError: the geography is not one the catalogue lists (before any search).
        """
        geography = filters.get("geography")
        if isinstance(geography, str):
            filters = {**filters, "geography": self._display_geography(geography, version, system_model)}
        search = {"query": query, "version": version, "system_model": system_model, **filters}
        return self._paginate("datasets", search)

    def get_geographies(self, version: str = "latest", system_model: str = "cutoff") -> list[str]:
        """The geographies of a version's catalogue in their display form (``"Germany (DE)"``), sorted.

        One free search call: the API's ``facets`` count datasets per geography over the whole catalogue;
        when it sends none, the geographies of the first page of results are all that is known.
        """
        return self._known_geographies(version, system_model)[0]

    def _known_geographies(self, version: str, system_model: str) -> tuple[list[str], bool]:
        """:meth:`get_geographies`, and whether the list is complete (the API sent ``facets``)."""
        query = {"version": version, "system_model": system_model, "from": 0, "limit": PAGE_LIMIT}
        return geographies_of(self.request("GET", "datasets", query=query))

    def _display_geography(self, given: str, version: str, system_model: str) -> str:
        """The catalogue's spelling of a geography given as code, name or display form (any case).

        Unknown to the catalogue: a clear error before any search, except for a value in display form when
        the API sent no ``facets`` (only the first page's geographies are known): passed through, with a
        warning, since the catalogue may well hold it.
        """
        known, complete = self._known_geographies(version, system_model)
        return display_geography(given, known, complete=complete, scope=(version, system_model), log=self.log)

    def get_dataset(
        self,
        dataset_id: int,
        *,
        indicator_ids: Iterable[int] = (),
        version: str = "latest",
        system_model: str = "cutoff",
    ) -> dict[str, Any]:
        """One dataset, with ``impact_scores`` for ``indicator_ids`` when given (a billed call then).

        :raises EcoinventCostGuardError: scored, it would pass the connection's ``max_unique_datasets`` or
            ``max_unique_indicators``, counted with every earlier scored call of this hook (:attr:`scored`);
            refused before any call.
        """
        ident = validate_dataset_ids([dataset_id])[0]
        indicators = validate_indicator_ids(indicator_ids, max_count=MAX_INDICATORS)
        query: dict[str, Any] = {"version": version, "system_model": system_model}
        if indicators:
            query["indicator_ids"] = indicators
        result = self.request("GET", f"datasets/{ident}", query=query)
        if not isinstance(result, dict):
            raise EcoinventApiError(
                f"GET datasets/{ident} returned {type(result).__name__}, not a dataset object.",
                status_code=200,
                method="GET",
                path=f"datasets/{ident}",
            )
        return result

    def get_datasets(
        self,
        dataset_ids: Iterable[int],
        *,
        indicator_ids: Iterable[int] = (),
        version: str = "latest",
        system_model: str = "cutoff",
        max_in_flight: int = 1,
    ) -> DatasetStream:
        """Datasets (scored for ``indicator_ids``) for any number of ids, in the order of the ids.

        Ids are de-duplicated and sent in batch calls of the connection's ``batch_size`` (default 100),
        each paged with the API's ``limit`` of 100, so N datasets take ceil(N / 100) calls. Any number
        of indicators: the API scores at most 100 per call, so K indicators take ceil(K / 100) calls per
        batch, whose scores are merged into one record per dataset before it is yielded. ``"latest"``
        is resolved once first, so every batch of the run reads the same version. Up to
        ``max_in_flight`` calls run at once over the pooled session and the one token (fewer after a 429).

        Validation (non-integer ids) and the connection's cost guard (``max_unique_datasets``,
        ``max_unique_indicators``, counted with every earlier scored call of this hook) happen before any call.

        :returns: a :class:`DatasetStream`; iterate it for the datasets. After iteration its
            ``missing_ids`` lists the ids the API did not return.
        :raises EcoinventCostGuardError: more distinct datasets or indicators than the connection allows.
        """
        ids, indicators = checked_selection(self.settings, dataset_ids, indicator_ids, max_in_flight)
        self.scored.admit(self.settings, ids, indicators, record=False)  # each batch records its own ids
        if ids and (not version or version == "latest"):
            version = self.resolve_version("latest", system_model)
        return DatasetStream(
            self, ids, indicators, version, system_model, max_in_flight, batch_size=self.settings.batch_size
        )

    def _paginate(self, path: str, query: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paged GET endpoint, page after page (the walk rule of :mod:`.._client.paging`)."""

        def fetch(offset: int, limit: int) -> Page:
            return read_page(self.request("GET", path, query={**query, "from": offset, "limit": limit}), PAGE_LIST_KEYS)

        for page in walk_pages(fetch, limit=PAGE_LIMIT, what=f"GET {path}"):
            yield from (item for item in page if isinstance(item, dict))

    # -- connection test and UI ----------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Prove the connection works: get a token, then make one cheap authenticated call (``/versions``).

        Never raises; the message says what failed. It answers within about ten seconds, before Airflow's
        own connection-test timeout: a read timeout of at most :data:`CONNECTION_TEST_TIMEOUT` and one
        retry at most (:data:`CONNECTION_TEST_POLICY`), whatever the connection's ``max_retries``. The UI's
        Test button needs ``[core] test_connection = Enabled`` in the Airflow configuration.
        """
        try:
            settings = self.settings
        except Exception as err:
            return False, unreadable_connection(self.ecoinvent_conn_id, err)
        limited = self._with_connection_test_limits(settings)
        try:
            return check_token_and_call(limited, settings)
        finally:
            with self._counter_lock:  # the calls were made on this hook's behalf
                self.api_calls += limited.api_calls
                self.token_requests += limited.token_requests
            session = limited.__dict__.get("session")
            if session is not None and session is not self.__dict__.get("session"):
                session.close()  # the copy opened it for this test alone

    def _with_connection_test_limits(self, settings: EcoinventSettings) -> Self:
        """A private copy of this hook with short timeouts and at most one retry, for :meth:`test_connection`.

        A copy, not a temporary change of the hook's settings: the hook may be shared with other threads,
        which must keep its own timeouts and retries meanwhile. The copy shares the token cache, the stop
        event and the time sources (``_sleep``, ``_clock``), and the session and calls-in-flight gate if
        the hook has opened them (else it opens its own, and ``test_connection`` closes that session); it
        counts its calls from zero, and ``test_connection`` adds them to the hook's counters.
        """
        limited = copy.copy(self)
        timeout = min(settings.timeout, CONNECTION_TEST_TIMEOUT)
        limited.__dict__["settings"] = dataclasses.replace(settings, timeout=timeout)
        policy = self.retry_policy
        limited.__dict__["retry_policy"] = dataclasses.replace(
            CONNECTION_TEST_POLICY,
            max_retries=min(CONNECTION_TEST_POLICY.max_retries, policy.max_retries),
            rate_limit_budget=min(CONNECTION_TEST_POLICY.rate_limit_budget, policy.rate_limit_budget),
        )
        limited._counter_lock = threading.Lock()
        limited.api_calls = limited.token_requests = 0
        return limited

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form customisation for the UI of Airflow 3.1, which asks the hook (3.2+ reads
        the provider info and never calls this)."""
        from airflow_provider_ecoinvent.get_provider_info import legacy_ui_field_behaviour

        return legacy_ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """A form field per extra for the UI of Airflow 3.1 (3.2+ reads ``conn-fields`` instead)."""
        from airflow_provider_ecoinvent.get_provider_info import legacy_connection_form_widgets

        return legacy_connection_form_widgets()


#: What users import from here: the hook, and the stream its ``get_datasets`` returns (for annotations).
__all__ = ["DatasetStream", "EcoinventHook"]
