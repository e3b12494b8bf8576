"""The emulator's API endpoints: versions, indicators, search, one dataset, the batch.

Each endpoint gets a ``Request`` whose token the app has already checked, and the client id it belongs
to (for the usage ledger); it answers with a ``Response`` or raises ``HTTPError``. Validation runs first
(422), then version and system model (404), then unknown indicators (422) and datasets (404), as the
real API's FastAPI app does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent.emulator.catalogue import INDICATORS_BY_ID, Catalogue, Version
from airflow_provider_ecoinvent.emulator.encoded import EncodedAnswers
from airflow_provider_ecoinvent.emulator.lcia import in_version, indicators_for
from airflow_provider_ecoinvent.emulator.messages import JSON_TYPE, HTTPError, Request, Response, detail, json_response
from airflow_provider_ecoinvent.emulator.validation import (
    ValidationErrors,
    is_missing,
    parse_json_body,
    query_value,
)

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.emulator.config import EmulatorConfig
    from airflow_provider_ecoinvent.emulator.ledger import Ledger

MAX_LIMIT = 100
MAX_BATCH_IDS = 10_000
MAX_INDICATORS = 100
DEFAULT_LIMIT = 10

Endpoint = Callable[[Request, str], Response]
#: The ``Catalogue`` methods whose answers the fragments of ``encoded.py`` write without calling them.
REPRODUCED_BY_FRAGMENTS = ("dataset", "impact_scores")


def _unprocessable(errors: ValidationErrors) -> HTTPError:
    return HTTPError(detail(422, errors.detail))


class ApiEndpoints:
    """The data endpoints over one catalogue; ``routes`` maps path templates to methods and handlers."""

    def __init__(self, config: EmulatorConfig, catalogue: Catalogue, ledger: Ledger) -> None:
        self.config = config
        self.catalogue = catalogue
        self.ledger = ledger
        self.encoded = EncodedAnswers(catalogue)
        #: Batch pages from cached byte fragments (``encoded.py``); ``False``: built as dicts, as before
        #: (the reference the tests compare with).
        self.encode_from_cache = True
        self.routes: dict[str, dict[str, Endpoint]] = {
            "/versions": {"GET": self._versions},
            "/indicators": {"GET": self._indicators},
            "/datasets": {"GET": self._search},
            "/datasets/batch": {"POST": self._batch},
            "/datasets/{id}": {"GET": self._dataset},
        }

    def _resolve(self, req: Request) -> tuple[Version, str]:
        """Version and system model of a data call: defaults ``latest`` and ``cutoff``; unknown: 404."""
        name = query_value(req.query, "version")
        version = self.catalogue.find_version(name)
        if version is None:
            known = ", ".join(v.name for v in self.catalogue.versions_for_display())
            raise HTTPError(detail(404, f"Version {name!r} not found (available: {known})"))
        system_model = query_value(req.query, "system_model") or "cutoff"
        if system_model not in version.system_models:
            raise HTTPError(
                detail(
                    404,
                    f"System model {system_model!r} not available in version {version.name} "
                    f"(available: {', '.join(version.system_models)})",
                )
            )
        return version, system_model

    def _paging(self, req: Request, errors: ValidationErrors, default_limit: int | None) -> tuple[int, int | None]:
        raw_from = query_value(req.query, "from")
        raw_limit = query_value(req.query, "limit")
        offset = 0 if raw_from is None else errors.bounded_int(raw_from, ("query", "from"), ge=0)
        limit = (
            default_limit
            if raw_limit is None
            else errors.bounded_int(raw_limit, ("query", "limit"), ge=1, le=MAX_LIMIT)
        )
        if limit is not None and self.config.page_cap is not None:
            limit = min(limit, self.config.page_cap)  # a server capping page size without saying so
        return offset or 0, limit

    def _paged(self, total: int, **body: Any) -> dict[str, Any]:
        """A paged answer: ``total`` first, unless the emulator runs with ``omit_total``."""
        return body if self.config.omit_total else {"total": total, **body}

    def _versions(self, req: Request, client_id: str) -> Response:
        versions = self.catalogue.versions_for_display()
        if self.config.versions_shape == "list":
            return json_response(
                200,
                [
                    {"name": v.name, "system_models": list(v.system_models), "release_date": v.release_date}
                    for v in versions
                ],
            )
        items = [
            {
                "version": v.name,
                "system_models": [{"name": sm} for sm in v.system_models],
                "release_date": v.release_date,
            }
            for v in versions
        ]
        return json_response(200, {"results": items})

    def _indicators(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        offset, limit = self._paging(req, errors, default_limit=None)
        if errors:
            raise _unprocessable(errors)
        version, _ = self._resolve(req)
        catalogue = indicators_for(version.name)  # older versions lack the newer methods
        items = catalogue[offset:] if limit is None else catalogue[offset : offset + limit]
        return json_response(200, self._paged(len(catalogue), results=[i.as_json() for i in items]))

    def _search(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        offset, limit = self._paging(req, errors, default_limit=DEFAULT_LIMIT)
        if errors or limit is None:
            raise _unprocessable(errors)
        version, system_model = self._resolve(req)
        ids, facets = self.catalogue.search(
            version,
            query_value(req.query, "query"),
            query_value(req.query, "geography"),
            query_value(req.query, "activity_type"),
        )
        page = ids[offset : offset + limit]
        results = [self.catalogue.dataset(version, system_model, i) for i in page]
        return json_response(200, self._paged(len(ids), results=results, facets=facets))

    def _indicator_objects(
        self, ids: list[int], loc: tuple[str, ...], version: Version, system_model: str
    ) -> list[Any]:
        errors = ValidationErrors()
        unique = list(dict.fromkeys(ids))
        for position, indicator_id in enumerate(ids):
            known = INDICATORS_BY_ID.get(indicator_id)
            if known is None or not in_version(known, version.name):
                errors.add(
                    "value_error",
                    (*loc, position),
                    f"Value error, unknown indicator id {indicator_id} for version {version.name}, "
                    f"system model {system_model} (see GET /indicators)",
                    indicator_id,
                )
        if errors:
            raise _unprocessable(errors)
        return [INDICATORS_BY_ID[i] for i in unique]

    def _scored(self, version: Version, system_model: str, dataset_id: int, indicators: list[Any]) -> dict[str, Any]:
        dataset = self.catalogue.dataset(version, system_model, dataset_id)
        if indicators:
            dataset["impact_scores"] = self.catalogue.impact_scores(version, system_model, dataset_id, indicators)
        return dataset

    def _record_usage(self, req: Request, client_id: str, dataset_ids: list[int], indicators: list[Any]) -> None:
        if dataset_ids and indicators:
            self.ledger.record_scored(
                client_id,
                dataset_ids,
                [i.id for i in indicators],
                req.headers.get("x-user-id"),
                req.headers.get("x-organization-id"),
            )

    def _dataset(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        raw_id = req.path.rsplit("/", 1)[1]
        dataset_id = errors.coerce_int(raw_id, ("path", "dataset_id"))
        indicator_ids = errors.int_list(
            req.query.get("indicator_ids", []), ("query", "indicator_ids"), max_length=MAX_INDICATORS
        )
        if errors or dataset_id is None or indicator_ids is None:
            raise _unprocessable(errors)
        version, system_model = self._resolve(req)
        indicators = self._indicator_objects(indicator_ids, ("query", "indicator_ids"), version, system_model)
        if not self.catalogue.has_dataset(version, dataset_id):
            raise HTTPError(detail(404, f"Dataset {dataset_id} not found in version {version.name} ({system_model})"))
        dataset = self._scored(version, system_model, dataset_id, indicators)
        self._record_usage(req, client_id, [dataset_id], indicators)
        return json_response(200, dataset)

    def _batch(self, req: Request, client_id: str) -> Response:
        errors = ValidationErrors()
        offset, limit = self._paging(req, errors, default_limit=DEFAULT_LIMIT)
        body = parse_json_body(req.body, req.headers.get("content-type"), errors)
        dataset_ids: list[int] | None = None
        indicator_ids: list[int] | None = []
        if not is_missing(body):
            if not isinstance(body, dict):
                errors.add(
                    "model_attributes_type",
                    ("body",),
                    "Input should be a valid dictionary or object to extract fields from",
                    body,
                )
            else:
                if "dataset_ids" not in body:
                    errors.add("missing", ("body", "dataset_ids"), "Field required", body)
                else:
                    dataset_ids = errors.int_list(
                        body["dataset_ids"], ("body", "dataset_ids"), min_length=1, max_length=MAX_BATCH_IDS
                    )
                if "indicator_ids" in body:
                    indicator_ids = errors.int_list(
                        body["indicator_ids"], ("body", "indicator_ids"), max_length=MAX_INDICATORS
                    )
        if errors or limit is None or dataset_ids is None or indicator_ids is None:
            raise _unprocessable(errors)
        version, system_model = self._resolve(req)
        indicators = self._indicator_objects(indicator_ids, ("body", "indicator_ids"), version, system_model)
        # Unknown ids dropped, duplicates collapsed, ascending id order (not the input order).
        known = sorted({i for i in dataset_ids if self.catalogue.has_dataset(version, i)})
        page = known[offset : offset + limit]
        self._record_usage(req, client_id, page, indicators)
        total = None if self.config.omit_total else len(known)
        body = None
        if self._fragments_apply():
            body = self.encoded.batch_body(version, system_model, page, indicators, total)
        if body is None:
            return self._batch_plain(version, system_model, page, indicators, len(known))
        return Response(200, body, [("Content-Type", JSON_TYPE)])

    def _fragments_apply(self) -> bool:
        """Whether ``encoded.py`` may write the page: it reproduces ``Catalogue.dataset``,
        ``Catalogue.impact_scores`` and ``_scored``, so where one is replaced on an instance (tests that serve
        awkward records do), the plain path answers and the replacement is what is served."""
        replaced = "_scored" in vars(self) or any(name in vars(self.catalogue) for name in REPRODUCED_BY_FRAGMENTS)
        return self.encode_from_cache and not replaced

    def _batch_plain(
        self, version: Version, system_model: str, page: list[int], indicators: list[Any], total: int
    ) -> Response:
        """A batch page built as dicts and encoded: the reference the fragments of ``encoded.py`` match byte
        for byte, and what answers when they cannot (a body holding ``null``)."""
        datasets = [self._scored(version, system_model, i, indicators) for i in page]
        return json_response(200, self._paged(total, datasets=datasets))
