"""EcoinventOperator: call any endpoint; small answers go to XCom, large ones to a JSON Lines file on any
``ObjectStoragePath``. Imported from :mod:`airflow_provider_ecoinvent.operators.ecoinvent`.

Arguments are validated in the constructor (templated ones at the start of ``execute``, once rendered),
always before any network call; no I/O in the constructor."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from airflow.sdk import BaseOperator

from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID
from airflow_provider_ecoinvent._client.paging import Page, read_page, walk_pages
from airflow_provider_ecoinvent._client.safety import check_endpoint
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventError
from airflow_provider_ecoinvent.operators._arguments import (
    is_templated,
    positive_int,
    required_text,
)
from airflow_provider_ecoinvent.operators._mapping import mapped_outputs, shared_output_text
from airflow_provider_ecoinvent.operators._output import AtomicOutput, check_uri
from airflow_provider_ecoinvent.operators._records import json_line
from airflow_provider_ecoinvent.operators._task import (
    elapsed,
    lineage,
    lineage_namespace,
    make_hook,
    output_path,
    publish_to_outlets,
    stop_hook,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook
    from airflow_provider_ecoinvent.operators._manifests import GenericManifest

#: Default cap on what :class:`EcoinventOperator` pushes to XCom (XCom lives in the metadata database).
DEFAULT_MAX_XCOM_BYTES: Final = 1024 * 1024
HTTP_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_ITEM_KEYS: Final = ("results", "datasets", "indicators", "versions", "data")


class EcoinventOperator(BaseOperator):
    """Call any endpoint of the ecoinvent API.

    Without ``output_uri`` the parsed JSON is returned (and pushed to XCom), refused above
    ``max_xcom_bytes``. With ``output_uri`` the records (the items of the answer's list, every page of
    them with ``paginate``) are written to a JSON Lines file, atomically, and a small manifest is returned.

    :param endpoint: path under the API prefix, e.g. ``"versions"``, ``"indicators"``, ``"datasets/batch"``.
        (templated)
    :param method: HTTP method, default ``GET``.
    :param query: query parameters; a list value becomes a repeated parameter. (templated)
    :param body: JSON request body. (templated)
    :param paginate: follow ``from``/``limit`` until ``total`` is reached or a page comes back empty.
    :param page_size: ``limit`` per page when paginating (the API allows at most 100).
    :param output_uri: where to write JSON Lines: any ``ObjectStoragePath`` URI (``file:///...``,
        ``s3://conn_id@bucket/key``...). (templated)
    :param max_xcom_bytes: largest JSON answer returned to XCom without ``output_uri`` (default 1 MiB).
    :param ecoinvent_conn_id: the Airflow connection. (templated)
    """

    template_fields: Sequence[str] = ("endpoint", "query", "body", "output_uri", "ecoinvent_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"query": "json", "body": "json"}
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        paginate: bool = False,
        page_size: int = 100,
        output_uri: str | ObjectStoragePath | None = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        ecoinvent_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.method = method.upper() if isinstance(method, str) else method
        self.query = query
        self.body = body
        self.paginate = paginate
        self.page_size = page_size
        self.output_uri = output_uri
        self.max_xcom_bytes = max_xcom_bytes
        self.ecoinvent_conn_id = ecoinvent_conn_id
        self._output: AtomicOutput | None = None
        self._kill_requested = False
        self._hook: EcoinventHook | None = None
        self._lineage_state: tuple[str, str, ObjectStoragePath | None] | None = None
        self._validate(rendered=False)

    def _validate(self, *, rendered: bool) -> None:
        def ready(value: Any) -> bool:
            return rendered or not is_templated(value)

        if not isinstance(self.method, str) or self.method not in HTTP_METHODS:
            raise EcoinventConfigError(f"method must be one of {', '.join(sorted(HTTP_METHODS))}, got {self.method!r}.")
        if not isinstance(self.paginate, bool):
            raise EcoinventConfigError(f"paginate must be True or False, got {self.paginate!r}.")
        positive_int(self.page_size, "page_size", minimum=1)
        positive_int(self.max_xcom_bytes, "max_xcom_bytes", minimum=1)
        if ready(self.endpoint):
            endpoint = required_text(self.endpoint, "endpoint")
            if "://" in endpoint or endpoint.startswith("//"):
                raise EcoinventConfigError(
                    f"endpoint must be a path under the API prefix such as 'versions', not a URL: {endpoint!r}. "
                    "The host comes from the connection."
                )
            check_endpoint(endpoint)  # the hook's own check: under the API prefix, no '?', '#' or ';'
        if ready(self.query) and self.query is not None and not isinstance(self.query, Mapping):
            raise EcoinventConfigError(f"query must be a dict of query parameters, got {type(self.query).__name__}.")
        if ready(self.output_uri) and self.output_uri is not None:
            check_uri(self.output_uri)
        if ready(self.ecoinvent_conn_id):
            required_text(self.ecoinvent_conn_id, "ecoinvent_conn_id")
        if rendered and self.paginate and self.query:
            for key in ("from", "limit"):
                if key in self.query:
                    positive_int(self.query[key], f"query[{key!r}]", minimum=0 if key == "from" else 1)

    def execute(self, context: Context) -> Any:
        start = time.monotonic()
        self._validate(rendered=True)
        endpoint = str(self.endpoint).strip().lstrip("/")
        query = dict(self.query or {})
        self._refuse_shared_output(context)
        destination = output_path(self.output_uri)
        hook = make_hook(self.ecoinvent_conn_id)
        self._hook = hook  # on_kill stops it
        self._lineage_state = (lineage_namespace(hook), endpoint, destination)
        if destination is None:
            return self._to_xcom(hook, endpoint, query)
        # The hook refuses a scored call over the cost guard anyway; asked here first, before the output
        # (its folders, a temporary file, a listing of the destination) is touched.
        hook.scored.check_call(hook.settings, endpoint, query, self.body)
        manifest = self._to_file(hook, endpoint, query, destination, start)
        publish_to_outlets(self, context, manifest)
        return manifest

    def _refuse_shared_output(self, context: Context) -> None:
        """Mapped instances must each write their own ``output_uri``, checked before any call: the last one to
        finish would replace the others' file, the run green (see :func:`._mapping.mapped_outputs`)."""
        if self.output_uri is None:
            return
        found = mapped_outputs(self, context)
        instances, outputs = found or (0, 0)
        if outputs >= instances:
            return
        raise EcoinventConfigError(
            f"{shared_output_text(self, instances, outputs)}: each would replace the file the others wrote, so only "
            "the last answer would be kept. Give each mapped task its own output_uri: map over output_uri too, or "
            "name the map index in it (e.g. '.../{{ ti.map_index }}.jsonl'). No call was made to the ecoinvent API."
        )

    def _pages(self, hook: EcoinventHook, endpoint: str, query: dict[str, Any]) -> Iterator[list[Any]]:
        """Every page's items; for a call without ``paginate``, its one answer as records."""
        if not self.paginate:
            payload = hook.request(self.method, endpoint, query=query or None, json=self.body)
            items = read_page(payload, _ITEM_KEYS).items
            yield items if items is not None else ([] if payload is None else [payload])
            return
        start = int(query.pop("from", 0))
        limit = int(query.pop("limit", self.page_size))

        def fetch(offset: int, size: int) -> Page:
            payload = hook.request(
                self.method, endpoint, query={**query, "from": offset, "limit": size}, json=self.body
            )
            page = read_page(payload, _ITEM_KEYS)
            if page.items is None:
                raise EcoinventError(
                    f"paginate=True, but {self.method} {endpoint} answered without a list of items "
                    f"(looked for a bare list or {', '.join(_ITEM_KEYS)}): call it without paginate."
                )
            return page

        yield from walk_pages(fetch, limit=limit, start=start, what=f"{self.method} {endpoint}")

    def _to_xcom(self, hook: EcoinventHook, endpoint: str, query: dict[str, Any]) -> Any:
        limit = self.max_xcom_bytes

        def refuse(size: str) -> EcoinventError:
            return EcoinventError(
                f"The answer of {self.method} {endpoint} is {size} bytes of JSON, more than max_xcom_bytes={limit}; "
                "XCom lives in the metadata database. Set output_uri (e.g. 'file:///data/answer.jsonl' or "
                "'s3://aws_default@bucket/answer.jsonl') to stream it to object storage and return a small "
                "manifest, or raise max_xcom_bytes."
            )

        if not self.paginate:
            result = hook.request(self.method, endpoint, query=query or None, json=self.body)
            size = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
            if size > limit:
                raise refuse(str(size))
            return result
        collected: list[Any] = []
        size = 2
        for items in self._pages(hook, endpoint, query):
            for item in items:
                size += len(json_line(item))
                if size > limit:
                    raise refuse(f"more than {size}")
                collected.append(item)
        return collected

    def _to_file(
        self, hook: EcoinventHook, endpoint: str, query: dict[str, Any], destination: ObjectStoragePath, start: float
    ) -> GenericManifest:
        records = pages = 0
        with AtomicOutput(destination) as output:
            self._output = output
            try:
                for items in self._pages(hook, endpoint, query):
                    pages += 1
                    output.write(b"".join(map(json_line, items)))  # one write per page
                    records += len(items)
                    if self._kill_requested:
                        raise EcoinventError("The task was killed; nothing was written.")
                output.commit()
            except OSError as err:
                if self._kill_requested:
                    raise EcoinventError("The task was killed; nothing was written.") from err
                raise
        self.log.info("Wrote %d records (%d bytes) to %s.", records, output.bytes_written, destination)
        manifest: GenericManifest = {
            "output_uri": str(destination),
            "format": "jsonl",
            "endpoint": endpoint,
            "method": self.method,
            "record_count": records,
            "pages": pages,
            "bytes": output.bytes_written,
            "sha256": output.sha256,
            "api_calls": hook.api_calls,
            "token_requests": hook.token_requests,
            "elapsed_seconds": elapsed(start),
        }
        return manifest

    def on_kill(self) -> None:
        """Stop the hook's calls (a retry wait wakes, no further attempt) and remove the partial file."""
        self._kill_requested = True
        stop_hook(self._hook)
        output = self._output
        if output is not None:
            with contextlib.suppress(Exception):
                output.abort()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Lineage of the call: the endpoint as input, the file (if any) as output. ``None`` without
        the openlineage provider or before ``execute`` ran."""
        if self._lineage_state is None:
            return None
        namespace, endpoint, destination = self._lineage_state
        return lineage(namespace, endpoint, destination)


__all__ = ["EcoinventOperator"]
