"""Answer shapes: the contract's, or a variant that differs from it the way a real API might.

Much of the contract is assumed (``ecoinvent-api.md`` tags it ``[assume]``), so the real API may well
answer in other shapes. ``shapes="variant"`` (``--shapes variant``) rewrites every successful answer so
that clients and the probe (``python -m airflow_provider_ecoinvent.probe``) can be tested against a server
that disagrees with the contract. Each change is one kind of difference a probe must name:

============================  ======================================================================
answer                        variant
============================  ======================================================================
token                         ``expires_in`` is a string (``"3600"``), not an integer
``GET /versions``             the list is under ``items`` (a key the contract does not name)
``GET /indicators``           a bare list (allowed), whose items carry ``name`` instead of ``indicator``
``GET /datasets`` (search)    no ``total``
every dataset                 ``activity`` renamed ``activity_name``; ``sectors`` a ``"; "``-joined string
``POST /datasets/batch``      the list is under ``results`` instead of ``datasets``
every impact score            ``score`` is a string
============================  ======================================================================

Only the answer is rewritten: validation, paging, usage accounting and faults work as in the contract form.
"""

from __future__ import annotations

from typing import Any, Final, Literal

Shapes = Literal["contract", "variant"]
SHAPES: Final[tuple[str, ...]] = ("contract", "variant")


def reshape(shapes: Shapes, endpoint: str, payload: Any) -> Any:
    """The answer of ``endpoint`` (``"token"`` or a route template such as ``"/datasets/{id}"``) in ``shapes``."""
    if shapes == "contract":
        return payload
    variant = _VARIANTS.get(endpoint)
    return variant(payload) if variant is not None else payload


def _token(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "expires_in": str(payload["expires_in"])}


def _versions(payload: dict[str, Any]) -> dict[str, Any]:
    return {"items": payload["results"]}


def _indicators(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [_rename(item, "indicator", "name") for item in payload["results"]]


def _search(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: _datasets(value) if key == "results" else value for key, value in payload.items() if key != "total"}


def _batch(payload: dict[str, Any]) -> dict[str, Any]:
    return {"total": payload["total"], "results": _datasets(payload["datasets"])}


def _datasets(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_dataset(dataset) for dataset in datasets]


def _dataset(dataset: dict[str, Any]) -> dict[str, Any]:
    changed = _rename(dataset, "activity", "activity_name")
    if isinstance(changed.get("sectors"), list):
        changed["sectors"] = "; ".join(changed["sectors"])
    if "impact_scores" in changed:
        changed["impact_scores"] = [{**score, "score": str(score["score"])} for score in changed["impact_scores"]]
    return changed


def _rename(item: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {(new if key == old else key): value for key, value in item.items()}


_VARIANTS: Final[dict[str, Any]] = {
    "token": _token,
    "/versions": _versions,
    "/indicators": _indicators,
    "/datasets": _search,
    "/datasets/batch": _batch,
    "/datasets/{id}": _dataset,
}
