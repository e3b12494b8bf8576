"""EcoinventHook: authenticated, resilient, typed access to the ecoinvent API from Airflow workers."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Final

from airflow.sdk import BaseHook

from airflow_provider_ecoinvent import __version__
from airflow_provider_ecoinvent._concurrency import CallGate
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
from airflow_provider_ecoinvent._ids import (
    MAX_INDICATORS,
    check_cost_guard,
    validate_dataset_ids,
    validate_indicator_ids,
)
from airflow_provider_ecoinvent._paging import Page, read_page, walk_pages
from airflow_provider_ecoinvent._retry import RetryBudget, RetryPolicy
from airflow_provider_ecoinvent._tokens import (
    TOKEN_CACHE,
    AccessToken,
    TokenCache,
    build_token_request,
    read_token_response,
    token_key,
)
from airflow_provider_ecoinvent._transport import (
    POOL_SIZE,
    CappedBody,
    api_path,
    redact_url,
    tls_error,
    trusted_cas,
    undecodable_body_error,
    unreachable_reason,
)
from airflow_provider_ecoinvent.connection import header_value, settings_from_connection
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
    EcoinventRetriesExhaustedError,
    EcoinventUnreachableError,
)
from airflow_provider_ecoinvent.indicators import compact_scores, expand, indicator_slices, merge_compact
from airflow_provider_ecoinvent.versions import EcoinventVersion, newest, parse_versions, system_model_hint

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from airflow_provider_ecoinvent._concurrency import WidthChange
    from airflow_provider_ecoinvent._tokens import TokenKey
    from airflow_provider_ecoinvent.connection import EcoinventSettings

#: The API's page size limit (``limit`` <= 100 on every paged endpoint, contract section 4).
PAGE_LIMIT: Final = 100
#: Where the list of a paged answer may sit, and of a batch answer (the probe checks answers against these).
PAGE_LIST_KEYS: Final = ("results", "indicators", "datasets", "data")
BATCH_LIST_KEYS: Final = ("datasets", "results")
#: ecoinvent's display form of a geography, "Name (CODE)": the only form the search filter matches.
_GEOGRAPHY_DISPLAY_FORM: Final = re.compile(r"^(?P<name>.*?)\s*\((?P<code>[^()]+)\)\s*$")
#: How many known geographies an error message lists before "... and N more".
_GEOGRAPHIES_SHOWN: Final = 40
#: Per-attempt read timeout and retries of ``test_connection``: Airflow's connection test gives up after ~10 s.
CONNECTION_TEST_TIMEOUT: Final = 3.0
CONNECTION_TEST_POLICY: Final = RetryPolicy(max_retries=1, backoff_max=1.0, retry_after_max=1.0, total_max=2.0)
#: Bytes read from an answer at a time (the size limit is checked after each).
_CHUNK_BYTES: Final = 64 * 1024
#: How soon a retry wait notices stop() while it waits on a run's own cancel event (both can stop it).
_STOP_TICK: Final = 0.05


class EcoinventHook(BaseHook):
    """Talk to the ecoinvent API with the credentials of an Airflow connection.

    The connection is read lazily, on the first call, never in the constructor: DAG files build hooks
    at parse time. One pooled HTTP session serves every call of the hook; the OAuth2 token comes from a
    process-wide cache (one token request per process and client while it is fresh) and is replaced
    shortly before it expires or once after the API answers 401. 429, 5xx, dropped connections and
    timeouts are retried with exponential back-off and jitter, honouring ``Retry-After``; a refused
    connection or an unknown host is retried once. Redirects are never followed, answers are read up to
    the connection's ``max_response_bytes``, and the CA bundle is the async client's (``_transport``).

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
        #: HTTP calls this hook made to the API (every attempt, retries included).
        self.api_calls = 0
        #: HTTP calls this hook made to the token endpoint.
        self.token_requests = 0
        # Time sources; tests replace them to shift time instead of sleeping. Without a replacement, the wait
        # between retries is on the call's cancel event, so that stopping a run wakes it at once.
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
        return self._retry_policy or RetryPolicy(max_retries=self.settings.max_retries)

    @cached_property
    def session(self) -> requests.Session:
        """The pooled HTTP session shared by every call of this hook (and its worker threads)."""
        import requests
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=POOL_SIZE)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = _user_agent()
        session.headers["Accept"] = "application/json"
        session.verify = self._verify
        # Proxies from the environment still apply, but a ~/.netrc entry for the host must not replace the
        # bearer token: requests consults .netrc only when no session auth is set (and on redirects, which
        # are never followed: see _exchange).
        session.auth = _keep_authorization_header
        return session

    @cached_property
    def _verify(self) -> bool | str:
        """The CA bundle every call trusts, the same as the async client's (``_transport.trusted_cas``).
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

    def _fetch_token(self, cancel: threading.Event | None = None) -> AccessToken:
        """A new token; ``cancel`` (the calling run's stop event) wakes a retry wait and stops retrying."""
        import requests

        settings = self.settings
        token_request = build_token_request(settings)
        path = _path_of(settings.token_url)
        budget = self.retry_policy.start(self._clock)
        while True:
            if self._stop_requested(cancel):
                raise EcoinventError(f"POST {path} abandoned: the run it belonged to was stopped.")
            failure = Failure("POST", settings.token_url, path, "", settings.conn_id, service="token endpoint")
            try:
                self._count("token_requests")
                status, answer_headers, body = self._exchange(
                    "POST", token_request.url, path, data=token_request.form, headers=token_request.headers
                )
            except requests.exceptions.SSLError as err:
                raise tls_error(settings.token_url, err, conn_id=settings.conn_id) from None
            except _transient_network_errors() as err:
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
                    _mask(outcome.value)
                    self.log.info("Obtained an ecoinvent access token valid for %g s.", outcome.lifetime)
                    return outcome
                failure = failure._replace(reason=outcome.reason, status=status, retry_after=outcome.retry_after)
            self._wait_or_give_up(budget, failure, cancel)

    # -- transport -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
        gate: CallGate | None = None,
    ) -> Any:
        """Call any endpoint under the API prefix and return its parsed JSON.

        :param method: HTTP method, e.g. ``"GET"``.
        :param path: path under the prefix, e.g. ``"versions"`` or ``"/datasets/batch"``.
        :param query: query parameters; a list value becomes a repeated parameter.
        :param json: request body, sent as JSON.
        :param headers: extra headers (``X-User-Id`` and ``X-Organization-Id`` are added from the
            connection unless given here).
        :param cancel: once set, no further attempt is made (a stopped run must not retry billed calls).
        :param gate: the calls in flight of a dataset stream: each attempt waits for a place in it and
            reports its status, so a 429 lowers the width before the retry (:mod:`.._concurrency`).
        :raises EcoinventAuthError: the credentials are wrong, or a fresh token is refused.
        :raises EcoinventApiError: a non-retryable error status, or a 2xx answer that is not JSON.
        :raises EcoinventRetriesExhaustedError: a transient failure outlived the retry budget.
        """
        import requests

        method = method.upper()
        settings = self.settings
        full_path = api_path(settings.api_prefix, path)  # refuses a path leaving the prefix, before any token
        url = settings.api_url + full_path
        call_headers = {**settings.usage_headers, **(headers or {})}
        budget = self.retry_policy.start(self._clock)
        renewed_after_401 = False
        while True:
            if self._stop_requested(cancel):
                raise EcoinventError(f"{method} {full_path} abandoned: the run it belonged to was stopped.")
            token = self._token(cancel)
            failure = Failure(method, url, full_path, "", settings.conn_id)
            try:
                status, answer_headers, body = self._gated_exchange(
                    gate,
                    cancel,
                    method,
                    url,
                    full_path,
                    params=_query_items(query),
                    json=json,
                    headers={**call_headers, "Authorization": f"Bearer {token.value}"},
                )
            except requests.exceptions.SSLError as err:
                raise tls_error(settings.api_url, err, conn_id=settings.conn_id) from None
            except _transient_network_errors() as err:
                failure = _network_failure(failure, err)
            else:
                answer = read_api_status(
                    status,
                    body,
                    answer_headers.get("Retry-After"),
                    method=method,
                    path=full_path,
                    conn_id=settings.conn_id,
                    secrets=self._secrets,
                    renewed_after_401=renewed_after_401,
                    location=answer_headers.get("Location"),
                )
                if answer == SUCCESS:
                    return decode_json_body(
                        status, body, method=method, path=full_path, conn_id=settings.conn_id, secrets=self._secrets
                    )
                if answer == RENEW_TOKEN:
                    self.log.info("The API answered 401 to %s %s; renewing the token once.", method, full_path)
                    self._token_cache.invalidate(self._token_key, token)
                    renewed_after_401 = True
                    continue
                assert isinstance(answer, Retryable)
                failure = failure._replace(reason=answer.reason, status=status, retry_after=answer.retry_after)
            self._wait_or_give_up(budget, failure, cancel)

    def _gated_exchange(
        self, gate: CallGate | None, cancel: threading.Event | None, method: str, url: str, path: str, **kwargs: Any
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One counted exchange, within the stream's calls in flight when there is a ``gate``."""
        if gate is None:
            self._count("api_calls")
            return self._exchange(method, url, path, **kwargs)
        ticket = gate.enter(lambda: self._stop_requested(cancel))
        if ticket is None:
            raise EcoinventError(f"{method} {path} abandoned: the run it belonged to was stopped.")
        status: int | None = None
        try:
            self._count("api_calls")
            status, headers, body = self._exchange(method, url, path, **kwargs)
        finally:
            gate.leave(ticket, status)
        return status, headers, body

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
            allow_redirects=False,
            stream=True,
            **kwargs,
        ) as response:
            body.check_length(response.headers.get("Content-Length"))
            try:
                for chunk in response.iter_content(_CHUNK_BYTES):
                    body.add(chunk)
            except requests.exceptions.ContentDecodingError:
                encoding = response.headers.get("Content-Encoding")
                raise undecodable_body_error(method, path, encoding, conn_id=settings.conn_id) from None
        return response.status_code, response.headers, body.content

    def _wait_or_give_up(self, budget: RetryBudget, failure: Failure, cancel: threading.Event | None = None) -> None:
        """Wait before the next attempt, or raise the error that ends the call (``next_delay_or_raise``)."""
        delay = next_delay_or_raise(budget, failure)
        self.log.warning(RETRY_LOG_FORMAT, *retry_log_args(failure, budget, delay))
        if self._sleep is not None:
            self._sleep(delay)
        else:
            self._wait_unless_stopped(delay, cancel)

    def _wait_unless_stopped(self, delay: float, cancel: threading.Event | None) -> None:
        """Sleep ``delay`` seconds, waking at once when :meth:`stop` is called or ``cancel`` is set.

        on_kill (through :meth:`stop`) or a failed sibling batch (through ``cancel``): no waiting out a long
        Retry-After. With both events, the wait is sliced so that either wakes it within a tick.
        """
        if cancel is None:
            self._stop.wait(delay)
            return
        deadline = time.monotonic() + delay
        while not self._stop_requested(cancel):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            cancel.wait(min(remaining, _STOP_TICK))

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
        versions = self.get_versions()
        where = f"connection {self.settings.conn_id!r}"
        available = ", ".join(v.name for v in versions) or "none"
        if not version or version == "latest":
            found = newest(v for v in versions if not v.system_models or system_model in v.system_models)
            if found is None:
                offered = (model for v in versions for model in v.system_models)
                raise EcoinventConfigError(
                    f"No version available to {where} offers system model {system_model!r} "
                    f"(versions: {available}); {system_model_hint(system_model, offered)}"
                )
            return found.name
        match = next((v for v in versions if v.name == version), None)
        if match is None:
            raise EcoinventConfigError(f"Version {version!r} is not available to {where}; available: {available}.")
        if match.system_models and system_model not in match.system_models:
            raise EcoinventConfigError(
                f"Version {version!r} has no system model {system_model!r} for {where}; "
                f"{system_model_hint(system_model, match.system_models)}"
            )
        return match.name

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
        payload = self.request("GET", "datasets", query=query)
        items, _ = _items_and_total(payload, ("results", "datasets", "data"))
        facets = _facet_values(payload, "geography")
        found = set(facets)
        found.update(item["geography"] for item in items if isinstance(item.get("geography"), str))
        return sorted(found, key=str.casefold), bool(facets)

    def _display_geography(self, given: str, version: str, system_model: str) -> str:
        """The catalogue's spelling of a geography given as code, name or display form (any case).

        Unknown to the catalogue: a clear error before any search, except for a value in display form when
        the API sent no ``facets`` (only the first page's geographies are known): passed through, with a
        warning, since the catalogue may well hold it.
        """
        known, complete = self._known_geographies(version, system_model)
        display = match_geography(given, known)
        if display is None and not complete and _GEOGRAPHY_DISPLAY_FORM.match(given):
            self.log.warning(
                "Search filter geography %r is not among the %d geographies known: the API sent no facets, so "
                "only the first page's are known. Passing it through as given; check its spelling if the "
                "search finds nothing.",
                given,
                len(known),
            )
            return given.strip()
        if display is None:
            shown = ", ".join(repr(name) for name in known[:_GEOGRAPHIES_SHOWN]) or "none"
            more = f" and {len(known) - _GEOGRAPHIES_SHOWN} more" if len(known) > _GEOGRAPHIES_SHOWN else ""
            raise EcoinventConfigError(
                f"search filter geography {given!r} is not a geography of ecoinvent {version}/{system_model}. "
                "The API matches the display form 'Name (CODE)', e.g. 'Switzerland (CH)'; a bare code or name "
                f"is mapped to it when the catalogue lists it. Known: {shown}{more}. "
                "List them with EcoinventHook().get_geographies(version, system_model)."
            )
        self.log.info("Search filter geography %r means %r.", given, display)
        return display

    def get_dataset(
        self,
        dataset_id: int,
        *,
        indicator_ids: Iterable[int] = (),
        version: str = "latest",
        system_model: str = "cutoff",
    ) -> dict[str, Any]:
        """One dataset, with ``impact_scores`` for ``indicator_ids`` when given (a billed call then)."""
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
        ``max_in_flight`` calls run at once over the pooled session and the one token; fewer while the
        API answers 429 (the stream halves them, then grows them back: its ``concurrency``).

        Validation (non-integer ids) and the connection's cost guard (``max_unique_datasets``,
        ``max_unique_indicators``, counted per call of this method) happen before any call.

        :returns: a :class:`DatasetStream`; iterate it for the datasets. After iteration its
            ``missing_ids`` lists the ids the API did not return.
        :raises EcoinventCostGuardError: more distinct datasets or indicators than the connection allows.
        """
        ids = validate_dataset_ids(dataset_ids, allow_empty=True)
        indicators = validate_indicator_ids(indicator_ids)
        check_cost_guard(
            len(ids), len(indicators), self.settings.max_unique_datasets, self.settings.max_unique_indicators
        )
        if not 1 <= max_in_flight <= POOL_SIZE:
            raise EcoinventConfigError(
                f"max_in_flight must be from 1 to {POOL_SIZE} (the connections the hook keeps open), "
                f"got {max_in_flight!r}."
            )
        if ids and (not version or version == "latest"):
            version = self.resolve_version("latest", system_model)
        return DatasetStream(self, ids, indicators, version, system_model, max_in_flight)

    def _fetch_batch(
        self,
        ids: Sequence[int],
        indicators: Sequence[int],
        version: str,
        system_model: str,
        cancel: threading.Event | None = None,
        gate: CallGate | None = None,
    ) -> list[dict[str, Any]]:
        """All datasets of one batch call (paging within it), in the order of ``ids``."""
        body = {"dataset_ids": list(ids), "indicator_ids": list(indicators)}
        scope = {"version": version, "system_model": system_model}

        def fetch(offset: int, limit: int) -> Page:
            query = {"from": offset, "limit": limit, **scope}
            return read_page(
                self.request("POST", "datasets/batch", query=query, json=body, cancel=cancel, gate=gate),
                BATCH_LIST_KEYS,
            )

        by_id: dict[int, dict[str, Any]] = {}
        # At most len(ids) datasets can come back (ids are de-duplicated): a full last page ends the walk.
        pages = walk_pages(fetch, limit=min(PAGE_LIMIT, len(ids)), expected=len(ids), what="POST datasets/batch")
        for page in pages:
            for dataset in page:
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    by_id[int(dataset["id"])] = dataset
        return [by_id[ident] for ident in ids if ident in by_id]

    def _paginate(self, path: str, query: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paged GET endpoint, page after page (the walk rule of :mod:`._paging`)."""

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
        except EcoinventConfigError as err:
            return False, str(err)
        except Exception as err:
            return False, f"Could not read connection {self.ecoinvent_conn_id!r}: {type(err).__name__}: {err}"
        limited = self._with_connection_test_limits(settings)
        try:
            return limited._test_token_and_call(settings)
        finally:
            with self._counter_lock:  # the calls were made on this hook's behalf
                self.api_calls += limited.api_calls
                self.token_requests += limited.token_requests

    def _with_connection_test_limits(self, settings: EcoinventSettings) -> EcoinventHook:
        """A private copy of this hook with short timeouts and at most one retry, for ``test_connection``.

        A copy, not a temporary change of this hook's settings: the hook may be shared with other threads,
        which must keep its own timeouts and retries meanwhile. The copy shares the session, the token
        cache and the time sources (``_sleep``, ``_clock``); it counts its calls from zero, and
        ``test_connection`` adds them to this hook's counters.
        """
        limited = copy.copy(self)
        limited.__dict__["settings"] = dataclasses.replace(
            settings, timeout=min(settings.timeout, CONNECTION_TEST_TIMEOUT)
        )
        limited.__dict__["retry_policy"] = dataclasses.replace(
            CONNECTION_TEST_POLICY, max_retries=min(CONNECTION_TEST_POLICY.max_retries, self.retry_policy.max_retries)
        )
        limited._counter_lock = threading.Lock()
        limited.api_calls = limited.token_requests = 0
        return limited

    def _test_token_and_call(self, settings: EcoinventSettings) -> tuple[bool, str]:
        import requests

        token_url = redact_url(settings.token_url)
        try:
            self._token_cache.get(self._token_key, self._fetch_token)
        except EcoinventAuthError as err:
            return False, str(err)
        except EcoinventUnreachableError as err:
            return False, f"Token URL {token_url} unreachable: {err}"
        except EcoinventRetriesExhaustedError as err:
            return False, f"Token URL {token_url} unreachable or failing: {err}"
        except EcoinventError as err:
            return False, f"Could not get a token from {token_url}: {err}"
        except requests.RequestException as err:
            return False, f"Token URL {token_url} unreachable: {type(err).__name__}."
        try:
            versions = self.get_versions()
        except EcoinventApiError as err:
            if err.status_code == 404:
                return False, (
                    f"Token obtained, but GET {settings.api_prefix}/versions on {redact_url(settings.api_url)} "
                    "answered 404: check the connection's host and 'api_prefix'."
                )
            return False, f"Token obtained, but the API call failed: {err}"
        except EcoinventError as err:
            return False, f"Token obtained, but the API call failed: {err}"
        except requests.RequestException as err:
            return (
                False,
                f"Token obtained, but API host {redact_url(settings.api_url)} unreachable: {type(err).__name__}.",
            )
        latest = newest(versions)
        return True, (
            f"Connected to {settings.base_api_url} as client {settings.client_id!r}: "
            f"{len(versions)} versions licensed" + (f", latest {latest.name}." if latest else ".")
        )

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


class DatasetStream(Iterator[dict[str, Any]]):
    """The datasets of :meth:`EcoinventHook.get_datasets`, streamed in the order of the requested ids.

    At most ``max_in_flight`` batch calls run at once and at most that many batches are held in memory,
    so memory stays flat whatever the number of ids. The calls actually in flight adapt within that
    ceiling: a 429 halves them, a run of successes adds one back (:mod:`.._concurrency`), and
    ``concurrency`` tells the peak, the final width and the number of 429s. ``close()`` (or ``on_kill``)
    cancels what has not started. After iteration, ``missing_ids`` lists the requested ids the API did not
    return (unknown in that version, or not licensed).
    """

    def __init__(
        self,
        hook: EcoinventHook,
        ids: list[int],
        indicator_ids: list[int],
        version: str,
        system_model: str,
        max_in_flight: int,
    ) -> None:
        self.hook = hook
        self.version = version
        self.system_model = system_model
        self.indicator_ids = indicator_ids
        self.requested = len(ids)
        self.returned = 0
        self.missing_ids: list[int] = []
        self.max_in_flight = max_in_flight
        self._gate = CallGate(max_in_flight, on_change=self._log_width_change)
        self._ids = ids
        self._cancelled = threading.Event()
        # Set when the stream stops early for any reason (close, or a failed batch): calls in flight stop retrying.
        self._abandoned = threading.Event()
        self._complete = False
        self._slices = indicator_slices(indicator_ids)
        #: The fields of a score other than id and value, interned per indicator id (see ``compact_scores``).
        self._score_fields: dict[int, dict[str, Any]] = {}
        self._iterator = self._generate()

    def __repr__(self) -> str:
        return (
            f"DatasetStream(requested={self.requested}, returned={self.returned}, "
            f"version={self.version!r}, system_model={self.system_model!r})"
        )

    def __iter__(self) -> DatasetStream:
        return self

    def __next__(self) -> dict[str, Any]:
        try:
            return next(self._iterator)
        except StopIteration:
            self._stop_if_cancelled()  # closed early: fail loudly rather than end as if complete
            raise

    @property
    def concurrency(self) -> dict[str, int]:
        """``max_in_flight``, ``peak_in_flight``, ``final_in_flight`` and ``rate_limited_calls`` (429s) so far."""
        return self._gate.figures.as_dict()

    def _log_width_change(self, change: WidthChange) -> None:
        if change.reason == "429":
            self.hook.log.info("The API answered 429: calls in flight lowered from %d to %d.", change.old, change.new)
        else:
            self.hook.log.info(
                "Calls in flight raised from %d to %d after a run of successes (at most %d).",
                change.old,
                change.new,
                self.max_in_flight,
            )

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`close` stopped the stream before it was complete."""
        return self._cancelled.is_set()

    def close(self) -> None:
        """Stop: batches not yet started are cancelled; the ones in flight finish and are discarded.

        Safe to call from another thread or a signal handler (``on_kill``) while the stream is being
        iterated: the iterating thread then gets :class:`EcoinventError` instead of a silent early end,
        so a cancelled run can never pass for a complete one.
        """
        if not self._complete:
            self._cancelled.set()
            self._abandoned.set()
        with contextlib.suppress(ValueError):  # "generator already executing" in the iterating thread
            self._iterator.close()

    def _stop_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise EcoinventError(
                f"Dataset stream cancelled after {self.returned} of {self.requested} datasets: "
                "the result is incomplete."
            )

    def _chunks(self) -> Iterator[list[int]]:
        size = self.hook.settings.batch_size
        for start in range(0, len(self._ids), size):
            yield self._ids[start : start + size]

    def _generate(self) -> Generator[dict[str, Any], None, None]:
        yield from self._batches()
        self._complete = True

    def _batches(self) -> Generator[dict[str, Any], None, None]:
        if not self._ids:
            return
        hook = self.hook
        hook.session  # noqa: B018 - create the session before worker threads race to do it
        if self.max_in_flight == 1:
            for chunk in self._chunks():
                self._stop_if_cancelled()
                yield from self._fetch(chunk)
            return
        pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="ecoinvent-batch")
        # One future per call: a batch scored for K > 100 indicators is ceil(K / 100) calls, and they count
        # against max_in_flight like any other, so what is held in memory does not grow with K.
        window: deque[tuple[list[int], list[Future[list[Any]]]]] = deque()
        in_flight = 0
        try:
            for chunk in self._chunks():
                self._stop_if_cancelled()
                calls = [pool.submit(self._fetch_slice, chunk, part) for part in self._slices]
                window.append((chunk, calls))
                in_flight += len(calls)
                while in_flight >= self.max_in_flight:
                    in_flight -= len(window[0][1])
                    yield from self._settle(window.popleft())
            while window:
                self._stop_if_cancelled()
                yield from self._settle(window.popleft())
        finally:
            # Stopped early (on_kill, a failed batch): calls in flight are discarded and must not retry, since a
            # retried scored call is billed for nothing; do not wait for them.
            if window:
                self._abandoned.set()
            pool.shutdown(wait=not window, cancel_futures=True)

    def _fetch(self, chunk: list[int]) -> Iterable[dict[str, Any]]:
        """One batch, its indicator slices one after the other, scores merged per dataset."""
        return self._merge(chunk, [self._fetch_slice(chunk, part) for part in self._slices])

    def _fetch_slice(self, chunk: list[int], indicators: list[int]) -> list[Any]:
        """One call; with several slices its answer is compacted while it waits for the others."""
        datasets = self.hook._fetch_batch(
            chunk, indicators, self.version, self.system_model, self._abandoned, self._gate
        )
        return compact_scores(datasets, self._score_fields) if len(self._slices) > 1 else datasets

    def _settle(self, pending: tuple[list[int], list[Future[list[Any]]]]) -> Iterable[dict[str, Any]]:
        chunk, calls = pending
        return self._merge(chunk, [call.result() for call in calls])

    def _merge(self, chunk: list[int], answers: list[list[Any]]) -> Iterable[dict[str, Any]]:
        """The batch's datasets, counted; with several slices each is expanded only when it is consumed."""
        if len(answers) == 1:
            return self._account(chunk, answers[0])
        merged = merge_compact(chunk, answers)
        self._account(chunk, [dataset for dataset, _ in merged])
        return (expand(dataset, parts) for dataset, parts in merged)

    def _account(self, chunk: list[int], datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        returned = {int(dataset["id"]) for dataset in datasets}
        self.missing_ids.extend(ident for ident in chunk if ident not in returned)
        self.returned += len(datasets)
        return datasets


def _items_and_total(payload: Any, keys: Sequence[str]) -> tuple[list[dict[str, Any]], int | None]:
    """The dict items and ``total`` of one answer (:func:`read_page`), for a caller that reads a single page."""
    page = read_page(payload, keys)
    return [item for item in page.items or () if isinstance(item, dict)], page.total


def match_geography(given: str, known: Iterable[str]) -> str | None:
    """The display form among ``known`` that ``given`` names: the display form itself, its code or its name,
    case-insensitively and whitespace-normalised ("DE", "de", "Germany", "germany  (de)" -> "Germany (DE)").
    The exact display form or code wins over a loose match. ``None`` when nothing matches."""
    wanted = given.strip()
    loose_wanted = _loose(wanted)
    loose: str | None = None
    for display in known:
        if display == wanted:
            return display
        match = _GEOGRAPHY_DISPLAY_FORM.match(display)
        if match is None:
            if loose is None and _loose(display) == loose_wanted:
                loose = display
            continue
        if match["code"] == wanted:
            return display
        if loose is None and loose_wanted in (_loose(display), _loose(match["code"]), _loose(match["name"])):
            loose = display
    return loose


def _loose(text: str) -> str:
    """``text`` compared loosely: case folded, runs of whitespace as one space, none inside parentheses."""
    return " ".join(text.split()).replace("( ", "(").replace(" )", ")").casefold()


def _facet_values(payload: Any, facet: str) -> list[str]:
    """The values of one search facet, in any shape: ``{"geography": {"Germany (DE)": 12}}``, a list of
    names, or a list of objects with ``name``/``value``. Absent or unreadable facets give ``[]``."""
    facets = payload.get("facets") if isinstance(payload, dict) else None
    values = facets.get(facet) if isinstance(facets, dict) else None
    if isinstance(values, dict):
        return [str(name) for name in values]
    if not isinstance(values, list):
        return []
    names = [item.get("name") or item.get("value") if isinstance(item, dict) else item for item in values]
    return [name for name in names if isinstance(name, str)]


def _query_items(query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop ``None`` values so that omitted parameters take the API's defaults."""
    if not query:
        return None
    return {key: value for key, value in query.items() if value is not None}


def _keep_authorization_header(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Session auth that changes nothing; its presence stops requests from applying ``.netrc`` credentials."""
    return request


def _transient_network_errors() -> tuple[type[Exception], ...]:
    """Network failures worth retrying: refused or reset connections, timeouts, bodies cut short."""
    import requests

    return (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def _network_failure(failure: Failure, err: Exception) -> Failure:
    """``failure`` completed with why the network failed, and whether the host is unreachable for good."""
    return failure._replace(reason=_describe_network_error(err), unreachable=unreachable_reason(err))


def _describe_network_error(err: Exception) -> str:
    """A short, secret-free reason for a network failure (no URL, no headers)."""
    import requests

    if isinstance(err, requests.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "connection dropped mid-response"
    return f"connection error ({type(err).__name__})"


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path or "/"


def _mask(value: str) -> None:
    """Register a token with Airflow's secret masker (a no-op where no masker is configured)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Task SDK always present on supported Airflow
        return
    mask_secret(value)


def _user_agent() -> str:
    import platform

    import requests

    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover
        airflow_version = "unknown"
    return (
        f"airflow-provider-ecoinvent/{__version__} apache-airflow/{airflow_version} "
        f"python-requests/{requests.__version__} Python/{platform.python_version()}"
    )


__all__ = ["MAX_INDICATORS", "DatasetStream", "EcoinventHook", "validate_dataset_ids", "validate_indicator_ids"]
