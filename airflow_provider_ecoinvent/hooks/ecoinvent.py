"""EcoinventHook: authenticated, resilient, typed access to the ecoinvent API from Airflow workers."""

from __future__ import annotations

import contextlib
import dataclasses
import os
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
from airflow_provider_ecoinvent._constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent._errors import (
    RENEW_TOKEN,
    SUCCESS,
    Retryable,
    decode_json_body,
    read_api_status,
    retries_exhausted,
)
from airflow_provider_ecoinvent._ids import MAX_INDICATORS, validate_dataset_ids, validate_indicator_ids
from airflow_provider_ecoinvent._retry import RetryBudget, RetryPolicy
from airflow_provider_ecoinvent._tokens import (
    TOKEN_CACHE,
    AccessToken,
    TokenCache,
    build_token_request,
    read_token_response,
    token_key,
)
from airflow_provider_ecoinvent.connection import settings_from_connection
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
    EcoinventRetriesExhaustedError,
)
from airflow_provider_ecoinvent.versions import EcoinventVersion, newest, parse_versions

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from airflow_provider_ecoinvent._tokens import TokenKey
    from airflow_provider_ecoinvent.connection import EcoinventSettings

#: The API's page size limit (``limit`` <= 100 on every paged endpoint, contract section 4).
PAGE_LIMIT: Final = 100
_BARE_GEOGRAPHY_CODE: Final = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]+)?$")


class EcoinventHook(BaseHook):
    """Talk to the ecoinvent API with the credentials of an Airflow connection.

    The connection is read lazily, on the first call, never in the constructor: DAG files build hooks
    at parse time. One pooled HTTP session serves every call of the hook; the OAuth2 token comes from a
    process-wide cache (one token request per process and client while it is fresh) and is replaced
    shortly before it expires or once after the API answers 401. 429, 5xx, connection errors and
    timeouts are retried with exponential back-off and jitter, honouring ``Retry-After``.

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
        # Time sources; tests replace them to shift time instead of sleeping.
        self._sleep: Callable[[float], None] = time.sleep
        self._clock: Callable[[], float] = time.monotonic

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ecoinvent_conn_id={self.ecoinvent_conn_id!r})"

    # -- connection ------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> EcoinventSettings:
        """The connection's validated settings (read on first use)."""
        settings = settings_from_connection(self.get_connection(self.ecoinvent_conn_id))
        if "batch_size" in self._overrides and not 1 <= int(self._overrides["batch_size"]) <= 10_000:
            raise EcoinventConfigError(f"batch_size must be from 1 to 10000, got {self._overrides['batch_size']!r}.")
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
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=32)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = _user_agent()
        session.headers["Accept"] = "application/json"
        session.verify = self._verify
        # Proxies and CA bundles from the environment still apply, but a ~/.netrc entry for the host must not
        # replace the bearer token: requests consults .netrc only when no session auth is set.
        session.auth = _keep_authorization_header
        return session

    @cached_property
    def _verify(self) -> bool | str:
        """TLS verification for every call. Passed per request too: requests lets ``REQUESTS_CA_BUNDLE`` from the
        environment override ``session.verify``, which would silently ignore the connection's CA bundle."""
        verify = self.settings.verify
        if isinstance(verify, str) and not os.path.exists(verify):
            raise EcoinventConfigError(
                f"Connection {self.settings.conn_id!r}: extra 'verify' names a CA bundle that does not exist: "
                f"{verify!r}."
            )
        return verify

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

    def _token(self) -> AccessToken:
        return self._token_cache.get(self._token_key, self._fetch_token)

    def _fetch_token(self) -> AccessToken:
        import requests

        settings = self.settings
        token_request = build_token_request(settings)
        budget = self.retry_policy.start(self._clock)
        while True:
            retry_after: str | None = None
            status: int | None = None
            try:
                self._count("token_requests")
                response = self.session.post(
                    token_request.url,
                    data=token_request.form,
                    headers=token_request.headers,
                    timeout=settings.timeouts,
                    verify=self._verify,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as err:
                raise self._tls_error(settings.token_url, err) from None
            except _transient_network_errors() as err:
                reason = _describe_network_error(err)
            else:
                status = response.status_code
                outcome = read_token_response(
                    status, response.content, response.headers.get("Retry-After"), settings=settings, now=self._clock()
                )
                if isinstance(outcome, AccessToken):
                    _mask(outcome.value)
                    self.log.info("Obtained an ecoinvent access token valid for %g s.", outcome.lifetime)
                    return outcome
                reason, retry_after = outcome
            self._wait_or_give_up(
                budget, "POST", _path_of(settings.token_url), reason, status, retry_after, service="token endpoint"
            )

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
    ) -> Any:
        """Call any endpoint under the API prefix and return its parsed JSON.

        :param method: HTTP method, e.g. ``"GET"``.
        :param path: path under the prefix, e.g. ``"versions"`` or ``"/datasets/batch"``.
        :param query: query parameters; a list value becomes a repeated parameter.
        :param json: request body, sent as JSON.
        :param headers: extra headers (``X-User-Id`` and ``X-Organization-Id`` are added from the
            connection unless given here).
        :param cancel: once set, no further attempt is made (a stopped run must not retry billed calls).
        :raises EcoinventAuthError: the credentials are wrong, or a fresh token is refused.
        :raises EcoinventApiError: a non-retryable error status, or a 2xx answer that is not JSON.
        :raises EcoinventRetriesExhaustedError: a transient failure outlived the retry budget.
        """
        import requests

        method = method.upper()
        api_path = self.settings.api_prefix + "/" + path.lstrip("/")
        url = self.settings.api_url + api_path
        call_headers = {**self.settings.usage_headers, **(headers or {})}
        budget = self.retry_policy.start(self._clock)
        renewed_after_401 = False
        while True:
            if cancel is not None and cancel.is_set():
                raise EcoinventError(f"{method} {api_path} abandoned: the run it belonged to was stopped.")
            token = self._token()
            retry_after: str | None = None
            status: int | None = None
            try:
                self._count("api_calls")
                response = self.session.request(
                    method,
                    url,
                    params=_query_items(query),
                    json=json,
                    headers={**call_headers, "Authorization": f"Bearer {token.value}"},
                    timeout=self.settings.timeouts,
                    verify=self._verify,
                )
            except requests.exceptions.SSLError as err:
                raise self._tls_error(self.settings.api_url, err) from None
            except _transient_network_errors() as err:
                reason = _describe_network_error(err)
            else:
                status = response.status_code
                answer = read_api_status(
                    status,
                    response.content,
                    response.headers.get("Retry-After"),
                    method=method,
                    path=api_path,
                    conn_id=self.settings.conn_id,
                    secrets=self._secrets,
                    renewed_after_401=renewed_after_401,
                )
                if answer == SUCCESS:
                    return decode_json_body(
                        status,
                        response.content,
                        method=method,
                        path=api_path,
                        conn_id=self.settings.conn_id,
                        secrets=self._secrets,
                    )
                if answer == RENEW_TOKEN:
                    self.log.info("The API answered 401 to %s %s; renewing the token once.", method, api_path)
                    self._token_cache.invalidate(self._token_key, token)
                    renewed_after_401 = True
                    continue
                assert isinstance(answer, Retryable)
                reason, retry_after = answer
            self._wait_or_give_up(budget, method, api_path, reason, status, retry_after)

    def _wait_or_give_up(
        self,
        budget: RetryBudget,
        method: str,
        path: str,
        reason: str,
        status: int | None,
        retry_after: str | None,
        *,
        service: str = "ecoinvent API",
    ) -> None:
        delay = budget.next_delay(retry_after)
        if delay is None:
            raise retries_exhausted(
                method,
                path,
                conn_id=self.settings.conn_id,
                attempts=budget.attempts,
                elapsed=budget.elapsed,
                reason=reason,
                status=status,
                service=service,
            )
        self.log.warning(
            "%s %s failed (%s); retry %d of %d in %.2f s%s.",
            method,
            path,
            reason,
            budget.retries,
            budget.policy.max_retries,
            delay,
            " as Retry-After asks" if retry_after else "",
        )
        self._sleep(delay)

    def _tls_error(self, url: str, err: Exception) -> EcoinventApiError:
        return EcoinventApiError(
            f"TLS verification failed for {url} (connection {self.settings.conn_id!r}): {type(err).__name__}. "
            "Set the connection extra 'verify' to the path of your CA bundle if the server uses a private CA.",
            status_code=None,
            method="CONNECT",
            path=_path_of(url),
        )

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
                raise EcoinventConfigError(
                    f"No version available to {where} offers system model {system_model!r} (versions: {available})."
                )
            return found.name
        match = next((v for v in versions if v.name == version), None)
        if match is None:
            raise EcoinventConfigError(f"Version {version!r} is not available to {where}; available: {available}.")
        if match.system_models and system_model not in match.system_models:
            raise EcoinventConfigError(
                f"Version {version!r} has no system model {system_model!r} for {where}; "
                f"it offers: {', '.join(match.system_models)}."
            )
        return match.name

    def get_indicators(self, version: str = "latest", system_model: str = "cutoff") -> list[dict[str, Any]]:
        """The LCIA indicators of a version and system model (all pages)."""
        return list(self._paginate("indicators", {"version": version, "system_model": system_model}))

    def search_datasets(
        self, query: str | None = None, *, version: str = "latest", system_model: str = "cutoff", **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every dataset matching a search, page after page (searches are free: not billed).

        :param query: free text; ``None`` matches everything the filters allow.
        :param filters: API filters such as ``geography`` (the display form, e.g. ``"Mexico (MX)"``:
            a bare code matches nothing) or ``activity_type``.
        """
        geography = filters.get("geography")
        if isinstance(geography, str) and _BARE_GEOGRAPHY_CODE.match(geography):
            self.log.warning(
                "geography=%r looks like a bare code; the API matches the display form such as 'Mexico (MX)'.",
                geography,
            )
        search = {"query": query, "version": version, "system_model": system_model, **filters}
        return self._paginate("datasets", search)

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
        indicators = validate_indicator_ids(indicator_ids)
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
        each paged with the API's ``limit`` of 100, so N datasets take ceil(N / 100) calls. ``"latest"``
        is resolved once first, so every batch of the run reads the same version. Up to
        ``max_in_flight`` calls run at once over the pooled session and the one token.

        Validation (non-integer ids, more than 100 indicators) happens before any call.

        :returns: a :class:`DatasetStream`; iterate it for the datasets. After iteration its
            ``missing_ids`` lists the ids the API did not return.
        """
        ids = validate_dataset_ids(dataset_ids, allow_empty=True)
        indicators = validate_indicator_ids(indicator_ids)
        if max_in_flight < 1:
            raise EcoinventConfigError(f"max_in_flight must be at least 1, got {max_in_flight!r}.")
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
    ) -> list[dict[str, Any]]:
        """All datasets of one batch call (paging within it), in the order of ``ids``."""
        body = {"dataset_ids": list(ids), "indicator_ids": list(indicators)}
        limit = min(PAGE_LIMIT, len(ids))
        by_id: dict[int, dict[str, Any]] = {}
        offset = 0
        while True:
            query = {"from": offset, "limit": limit, "version": version, "system_model": system_model}
            payload = self.request("POST", "datasets/batch", query=query, json=body, cancel=cancel)
            page, total = _items_and_total(payload, ("datasets", "results"))
            for dataset in page:
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    by_id[int(dataset["id"])] = dataset
            offset += len(page)
            if not page or total is None or offset >= total:
                break
        return [by_id[ident] for ident in ids if ident in by_id]

    def _paginate(self, path: str, query: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Follow ``from``/``limit`` until ``total`` is reached or a page comes back empty."""
        offset = 0
        while True:
            payload = self.request("GET", path, query={**query, "from": offset, "limit": PAGE_LIMIT})
            items, total = _items_and_total(payload, ("results", "indicators", "datasets", "data"))
            yield from items
            offset += len(items)
            if not items or total is None or offset >= total:
                return

    # -- connection test and UI ----------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Prove the connection works: get a token, then make one cheap authenticated call (``/versions``).

        Never raises; the message says what failed. The UI's Test button needs
        ``[core] test_connection = Enabled`` in the Airflow configuration.
        """
        import requests

        try:
            settings = self.settings
        except EcoinventConfigError as err:
            return False, str(err)
        except Exception as err:
            return False, f"Could not read connection {self.ecoinvent_conn_id!r}: {type(err).__name__}: {err}"
        try:
            self._token_cache.get(self._token_key, self._fetch_token)
        except EcoinventAuthError as err:
            return False, str(err)
        except EcoinventRetriesExhaustedError as err:
            return False, f"Token URL {settings.token_url} unreachable or failing: {err}"
        except EcoinventError as err:
            return False, f"Could not get a token from {settings.token_url}: {err}"
        except requests.RequestException as err:
            return False, f"Token URL {settings.token_url} unreachable: {type(err).__name__}."
        try:
            versions = self.get_versions()
        except EcoinventApiError as err:
            if err.status_code == 404:
                return False, (
                    f"Token obtained, but GET {settings.api_prefix}/versions on {settings.api_url} answered 404: "
                    "check the connection's host and 'api_prefix'."
                )
            return False, f"Token obtained, but the API call failed: {err}"
        except EcoinventError as err:
            return False, f"Token obtained, but the API call failed: {err}"
        except requests.RequestException as err:
            return False, f"Token obtained, but API host {settings.api_url} unreachable: {type(err).__name__}."
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
    so memory stays flat whatever the number of ids. ``close()`` (or ``on_kill``) cancels what has not
    started. After iteration, ``missing_ids`` lists the requested ids the API did not return (unknown in
    that version, or not licensed).
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
        self._ids = ids
        self._cancelled = threading.Event()
        # Set when the stream stops early for any reason (close, or a failed batch): calls in flight stop retrying.
        self._abandoned = threading.Event()
        self._complete = False
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
                yield from self._account(chunk, self._fetch(chunk))
            return
        pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="ecoinvent-batch")
        window: deque[tuple[list[int], Future[list[dict[str, Any]]]]] = deque()
        try:
            for chunk in self._chunks():
                self._stop_if_cancelled()
                window.append((chunk, pool.submit(self._fetch, chunk)))
                if len(window) >= self.max_in_flight:
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

    def _fetch(self, chunk: list[int]) -> list[dict[str, Any]]:
        return self.hook._fetch_batch(chunk, self.indicator_ids, self.version, self.system_model, self._abandoned)

    def _settle(self, pending: tuple[list[int], Future[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        chunk, future = pending
        return self._account(chunk, future.result())

    def _account(self, chunk: list[int], datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        returned = {int(dataset["id"]) for dataset in datasets}
        self.missing_ids.extend(ident for ident in chunk if ident not in returned)
        self.returned += len(datasets)
        return datasets


def _items_and_total(payload: Any, keys: Sequence[str]) -> tuple[list[dict[str, Any]], int | None]:
    """Items and ``total`` of a page, tolerant of a bare list or any of ``keys`` holding the list."""
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, dict)], None
    if not isinstance(payload, dict):
        return [], None
    items: list[Any] = next((payload[key] for key in keys if isinstance(payload.get(key), list)), [])
    total = payload.get("total")
    return [item for item in items if isinstance(item, dict)], total if isinstance(total, int) else None


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
