"""The probe's calls: through the hook of the user's connection, so they go exactly as the provider's do.

Free calls only (token, versions, indicators, one search page), plus one scored call of one dataset and
one indicator when asked for. The hook brings the connection (env var, secrets backend or database), the
retries, the 401 renewal, the masking and the error messages; the probe adds a look at each raw answer.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent._client.ids import check_cost_guard
from airflow_provider_ecoinvent._client.retry import RetryPolicy
from airflow_provider_ecoinvent._client.safety import CHUNK_BYTES, CappedBody, redact_url
from airflow_provider_ecoinvent._client.tokens import MalformedTokenResponse, TokenCache, parse_token_response
from airflow_provider_ecoinvent.exceptions import EcoinventCostGuardError, EcoinventError
from airflow_provider_ecoinvent.probe.compare import Difference, ListFindings, compare_items, compare_list_answer
from airflow_provider_ecoinvent.probe.expected import ENDPOINTS, TOKEN, ListAnswer
from airflow_provider_ecoinvent.probe.report import EndpointReport, ProbeReport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests

    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

#: A probe answers in seconds: a blip is retried, an outage is reported rather than waited out.
PROBE_RETRY_POLICY: Final = RetryPolicy(
    max_retries=2, backoff_base=0.5, backoff_max=2.0, retry_after_max=10.0, rate_limit_budget=30.0
)
#: Items asked for on the search and indicators pages (the API's maximum, as the provider asks).
PAGE_SIZE: Final = 100
#: Printed before the scored call, the only call that costs anything.
BILLED: Final = "1 dataset, 1 indicator"
#: The environment variable by which Airflow 3 tells a process which secrets backends to read connections
#: from: "server" adds the metadata database to the environment variables and any configured backend.
PROCESS_CONTEXT: Final = "_AIRFLOW_PROCESS_CONTEXT"


def run_probe(
    conn_id: str = DEFAULT_CONN_ID,
    *,
    scored: bool = False,
    version: str | None = None,
    system_model: str = "cutoff",
    query: str | None = None,
    hook: EcoinventHook | None = None,
    notify: Callable[[str], None] | None = None,
) -> ProbeReport:
    """Call the API with the connection ``conn_id`` and compare every answer with what the provider expects.

    :param scored: also make one scored call (one dataset, one indicator): billed by the licence.
    :param version: the database version to ask for; default: the newest that ``/versions`` lists.
    :param system_model: the system model to ask for.
    :param query: the search text of the one search page (default: none, every dataset).
    :param hook: the hook to call with (default: one for ``conn_id`` with its own token cache, so the token
        exchange really happens and its answer is seen, and a short retry budget).
    :param notify: called with a line of text before the billed call is made.
    :returns: the findings; ``report.exit_code`` says whether the API agrees.
    """
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    if hook is None:
        hook = EcoinventHook(conn_id, retry_policy=PROBE_RETRY_POLICY, token_cache=TokenCache())
    report = ProbeReport(conn_id=hook.ecoinvent_conn_id, system_model=system_model, version=version)
    try:
        with read_as_outside_a_task():
            settings = hook.settings
    except Exception as err:  # an unknown connection id raises Airflow's own exception
        fallback = settings_from_metadata_database(hook)
        if fallback is None:
            report.error = f"Could not read connection {hook.ecoinvent_conn_id!r}: {_describe_connection_error(err)}"
            return report
        settings = fallback
    report.add_secret(settings.client_secret)
    # Shown without user-info or query string, as every other message shows a URL (it may carry a key).
    report.api_url, report.token_url = redact_url(settings.base_api_url), redact_url(settings.token_url)
    _Probe(hook, report, query, notify or (lambda line: None)).run(scored)
    return report


@contextmanager
def read_as_outside_a_task() -> Iterator[None]:
    """Connections read as Airflow 3 reads them outside a task, ``airflow connections get`` included.

    Outside a task, the Task SDK reads a connection only from ``AIRFLOW_CONN_<ID>`` and the configured
    secrets backend, unless the process says it is a server (scheduler, API server, DAG processor and the
    ``airflow connections`` commands do): then the metadata database too, where ``airflow connections add``
    and the UI store connections. The probe says so while it reads its connection, and only then: inside a
    task (or a process that already says what it is) nothing changes, so the probe never reads more there.
    """
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if os.environ.get(PROCESS_CONTEXT) is not None or getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        yield
        return
    os.environ[PROCESS_CONTEXT] = "server"
    try:
        yield
    finally:
        os.environ.pop(PROCESS_CONTEXT, None)


def settings_from_metadata_database(hook: EcoinventHook) -> Any:
    """The connection read by Airflow's core model, for Airflow 3.1, where the Task SDK outside a task reads
    only the environment and the secrets backend even in a server process; ``None`` when it cannot be read.

    The core model searches the metadata database too (as ``airflow connections get`` does on 3.1). Its value
    is handed to the hook as ``AIRFLOW_CONN_<ID>`` of this process only while the hook reads it, then removed.
    """
    name = f"AIRFLOW_CONN_{hook.ecoinvent_conn_id.upper()}"
    if name in os.environ:
        return None
    try:
        from airflow.models.connection import Connection

        value = Connection.get_connection_from_secrets(hook.ecoinvent_conn_id).as_json()
    except Exception:
        return None
    os.environ[name] = value
    try:
        return hook.settings
    except Exception:
        return None
    finally:
        os.environ.pop(name, None)


class _Probe:
    """One probe run: the calls in order, each filling in its part of the report."""

    def __init__(
        self, hook: EcoinventHook, report: ProbeReport, query: str | None, notify: Callable[[str], None]
    ) -> None:
        self.hook = hook
        self.report = report
        self.query = query
        self.notify = notify
        self.dataset_id: int | None = None
        self.indicator_id: int | None = None

    def run(self, scored: bool) -> None:
        if not self.token() or not self.versions():
            return
        self.indicators()
        self.search()
        self.scored(scored)

    # -- calls ---------------------------------------------------------------------------------------

    def token(self) -> bool:
        token_url = self.hook.settings.token_url
        entry = self.report.add(EndpointReport("token", "POST", urlsplit(token_url).path or "/"))
        recorder = _TokenAnswerRecorder(token_url, self.hook.settings.max_response_bytes, self.hook.ecoinvent_conn_id)
        hooks = self.hook.session.hooks["response"]
        hooks.append(recorder)
        try:
            self.report.add_secret(self.hook.get_access_token())
        except Exception as err:
            entry.error = _describe(err)
            self.report.error = f"Could not get an access token: {entry.error}"
        finally:
            hooks.remove(recorder)
        if recorder.body is not None:
            self._compare_token(entry, recorder.body)
        return self.report.error is None

    def _compare_token(self, entry: EndpointReport, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            entry.differences.append(Difference("not_json", "(answer)", "the token answer is not JSON"))
            return
        entry.differences.extend(compare_items(TOKEN, [payload]))
        try:
            lifetime = parse_token_response(body, 0.0).lifetime
        except MalformedTokenResponse as err:
            entry.differences.append(Difference("not_read", "(answer)", f"the provider cannot read it: {err}"))
            return
        entry.summary = f"the provider reads a token valid for {lifetime:g} s"

    def versions(self) -> bool:
        from airflow_provider_ecoinvent.versions import newest, parse_versions

        entry, payload = self._call("versions")
        if entry.error is not None:
            self.report.error = f"Got a token, but {entry.method} {entry.path} failed: {entry.error}"
            return False
        self._compare_list(entry, payload)
        versions = parse_versions(payload)
        latest = newest(versions)
        entry.summary = f"{len(versions)} versions read" + (f", newest {latest.name}" if latest else "")
        if self.report.version is None:
            model = self.report.system_model
            # As EcoinventHook.resolve_version picks "latest", from the answer already at hand.
            offering = newest(v for v in versions if not v.system_models or model in v.system_models)
            self.report.version = offering.name if offering else "latest"
        return True

    def indicators(self) -> None:
        entry, payload = self._call("indicators", query=self._page_query())
        if entry.error is None:
            findings = self._compare_list(entry, payload)
            self.indicator_id = _first_id(findings.items)
            entry.summary = f"{findings.provider_reads} indicators read{_of_total(payload)}"

    def search(self) -> None:
        entry, payload = self._call("search", query={"query": self.query, **self._page_query()})
        if entry.error is None:
            findings = self._compare_list(entry, payload)
            self.dataset_id = _first_id(findings.items)
            entry.summary = f"{findings.provider_reads} datasets read from the first page{_of_total(payload)}"

    def scored(self, wanted: bool) -> None:
        endpoint = ENDPOINTS["scored"]
        path = self.hook.settings.api_prefix + "/" + endpoint.path
        if not wanted:
            self.report.add(EndpointReport(endpoint.name, endpoint.method, path, skipped=_SCORED_HINT))
            return
        refusal = _cost_guard_refusal(self.hook)
        if refusal is not None:
            self.report.add(EndpointReport(endpoint.name, endpoint.method, path, error=refusal))
            return
        if self.dataset_id is None or self.indicator_id is None:
            missing = "dataset id on the search page" if self.dataset_id is None else "indicator id"
            self.report.add(EndpointReport(endpoint.name, endpoint.method, path, skipped=f"no {missing} to ask for"))
            return
        dataset_id, indicator_id = self.dataset_id, self.indicator_id
        self.notify(
            f"Scored call: {endpoint.method} {path} for dataset {dataset_id} and indicator {indicator_id}; "
            f"the licence bills it as {BILLED}."
        )
        body = {"dataset_ids": [dataset_id], "indicator_ids": [indicator_id]}
        query = {"from": 0, "limit": 1, "version": self.report.version, "system_model": self.report.system_model}
        entry, payload = self._call("scored", query=query, json=body)
        self.report.billed = f"{BILLED} (one scored call made)"
        if entry.error is None:
            findings = self._compare_list(entry, payload)
            entry.differences.extend(_missing_items(findings, dataset_id, indicator_id))
            entry.summary = f"{findings.provider_reads} scored dataset read; billed: {BILLED}"

    # -- helpers -------------------------------------------------------------------------------------

    def _page_query(self) -> dict[str, Any]:
        return {
            "version": self.report.version,
            "system_model": self.report.system_model,
            "from": 0,
            "limit": PAGE_SIZE,
        }

    def _call(self, name: str, **kwargs: Any) -> tuple[EndpointReport, Any]:
        """Make the endpoint's call through the hook; a failure is recorded, not raised."""
        endpoint = ENDPOINTS[name]
        path = self.hook.settings.api_prefix + "/" + endpoint.path
        entry = self.report.add(EndpointReport(name, endpoint.method, path))
        try:
            return entry, self.hook.request(endpoint.method, endpoint.path, **kwargs)
        except Exception as err:
            entry.error = _describe(err)
            return entry, None

    def _compare_list(self, entry: EndpointReport, payload: Any) -> ListFindings:
        answer = ENDPOINTS[entry.name].answer
        assert isinstance(answer, ListAnswer)
        findings = compare_list_answer(answer, payload)
        entry.differences.extend(findings.differences)
        return findings


_SCORED_HINT: Final = f"add --scored to check one scored dataset (billed: {BILLED})"


def _cost_guard_refusal(hook: EcoinventHook) -> str | None:
    """Why the connection's cost guard refuses the probe's scored call (1 dataset, 1 indicator), if it does.

    The probe obeys the guard as every scored path of the provider does: an admin who set
    ``max_unique_datasets`` or ``max_unique_indicators`` to 0 allows no scored call with this connection.
    """
    settings = hook.settings
    try:
        check_cost_guard(1, 1, settings.max_unique_datasets, settings.max_unique_indicators)
    except EcoinventCostGuardError as err:
        return f"not made: the connection's cost guard refuses it. {err}"
    return None


class _TokenAnswerRecorder:
    """A ``requests`` response hook that keeps the body of the token endpoint's last 200 answer.

    The body is read with the hook's own size cap (:class:`CappedBody`), never whole: the hook runs before
    the hook's capped reader sees the answer, so reading ``response.content`` here would bypass the cap.
    """

    def __init__(self, token_url: str, limit: int, conn_id: str) -> None:
        self._path = urlsplit(token_url).path
        self._limit = limit
        self._conn_id = conn_id
        self.body: bytes | None = None

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        is_token_answer = response.request.method == "POST" and urlsplit(response.url).path == self._path
        if is_token_answer and response.status_code == 200:
            body = CappedBody(self._limit, "POST", self._path or "/", conn_id=self._conn_id)
            body.check_length(response.headers.get("Content-Length"))
            for chunk in response.iter_content(CHUNK_BYTES):
                body.add(chunk)
            self.body = body.content
            # Hand the bytes read on to the hook's reader, as requests itself caches a consumed body.
            response._content = self.body
        return response


def _describe_connection_error(err: Exception) -> str:
    """Why a connection could not be read. Outside a task, Airflow 3.1 answers an unknown id with an
    ImportError about the task supervisor (it asks the supervisor after the environment and secrets
    backends); 3.2 and later raise ``AirflowNotFoundException``. Both mean the id is not defined here."""
    if type(err).__name__ == "AirflowNotFoundException" or (
        isinstance(err, ImportError) and "SUPERVISOR_COMMS" in str(err)
    ):
        return (
            "it is not defined where the probe can read it (AIRFLOW_CONN_<ID>, the secrets backend, or the "
            "metadata database of this AIRFLOW_HOME): export AIRFLOW_CONN_<ID> in this shell, or run the probe "
            "with the Airflow configuration (AIRFLOW_HOME) where the connection is defined"
        )
    return _describe(err)


def _describe(err: Exception) -> str:
    """The provider's own message for its errors; the exception type too for anything else."""
    if isinstance(err, EcoinventError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _first_id(items: list[Any]) -> int | None:
    for item in items:
        ident = item.get("id") if isinstance(item, dict) else None
        if isinstance(ident, int) and not isinstance(ident, bool):
            return ident
    return None


def _of_total(payload: Any) -> str:
    from airflow_provider_ecoinvent._client.paging import items_and_total

    total = items_and_total(payload, ())[1]
    return f" (total {total})" if total is not None else ""


def _missing_items(findings: ListFindings, dataset_id: int, indicator_id: int) -> list[Difference]:
    """The scored answer must hold the dataset asked for, with a score for the indicator asked for."""
    dataset = next((item for item in findings.items if isinstance(item, dict) and item.get("id") == dataset_id), None)
    if dataset is None:
        return [Difference("missing_item", "(answer)", f"the dataset asked for ({dataset_id}) is not in the answer")]
    scores = dataset.get("impact_scores")
    if isinstance(scores, list) and any(isinstance(s, dict) and s.get("id") == indicator_id for s in scores):
        return []
    return [Difference("missing_item", "impact_scores", f"no score for the indicator asked for ({indicator_id})")]
