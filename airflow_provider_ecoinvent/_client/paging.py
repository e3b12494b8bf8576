"""The one rule for walking ``from``/``limit`` pages, shared by the hook and :class:`EcoinventOperator`.

The contract (section 4.3) says an answer carries ``total``, but that part is [seen], not documented: an
answer without it must not end the walk after one page, or a selection of 250 datasets silently becomes
100. So the walk ends on the first of:

* an empty page;
* ``total`` given and reached;
* ``total`` absent and a page shorter than the largest page seen before it: a page shorter than the
  ``limit`` asked for is not enough, since a server may cap ``limit`` (at 50, say) without saying so. Such
  a server is walked 50 by 50, at the cost of at most one extra, empty call;
* ``expected`` given and reached: a batch call can never return more datasets than ids posted, so a
  full last page needs no extra call to learn it was the last.

A server that ignores ``from`` would make a walk without ``total`` endless, and one that alternates
between pages would defeat a comparison of consecutive pages only. So a page that brings nothing new fails
the walk with :class:`EcoinventApiError`: items with an ``id`` are new when their id was not seen before;
pages of items without ids are compared (by digest) with every page seen. A hard cap on the number of pages
(enough for :data:`MAX_WALK_ITEMS` items at the page size asked) bounds whatever else could go wrong.
This module imports nothing heavy: operators import it when a DAG file is parsed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent.exceptions import EcoinventApiError

#: The most items one walk may return before it fails: a bound on a server that pages for ever.
MAX_WALK_ITEMS = 1_000_000

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

#: The API's page size limit (``limit`` <= 100 on every paged endpoint, contract section 4).
PAGE_LIMIT: Final = 100
#: Where the list of a paged answer may sit, and of a batch answer (the probe checks answers against these).
PAGE_LIST_KEYS: Final = ("results", "indicators", "datasets", "data")
BATCH_LIST_KEYS: Final = ("datasets", "results")


@dataclasses.dataclass(frozen=True)
class Page:
    """One answer of a paged endpoint: its items (``None`` when it holds no list) and its ``total``."""

    items: list[Any] | None
    total: int | None


def read_page(payload: Any, keys: Sequence[str]) -> Page:
    """The items of a page (a bare list, or the first of ``keys`` holding a list) and its ``total``.

    Tolerant: unknown keys are ignored; a ``total`` that is not a non-negative integer counts as absent.
    """
    if isinstance(payload, list):
        return Page(payload, None)
    if not isinstance(payload, dict):
        return Page(None, None)
    items = next((payload[key] for key in keys if isinstance(payload.get(key), list)), None)
    total = payload.get("total")
    valid_total = isinstance(total, int) and not isinstance(total, bool) and total >= 0
    return Page(items, total if valid_total else None)


def items_and_total(payload: Any, keys: Sequence[str]) -> tuple[list[dict[str, Any]], int | None]:
    """The dict items and ``total`` of one answer (:func:`read_page`), for a caller that reads a single page
    (the hook's geography look-up, the probe)."""
    page = read_page(payload, keys)
    return [item for item in page.items or () if isinstance(item, dict)], page.total


def walk_pages(
    fetch: Callable[[int, int], Page],
    *,
    limit: int,
    start: int = 0,
    expected: int | None = None,
    what: str = "GET endpoint",
    max_items: int = MAX_WALK_ITEMS,
) -> Iterator[list[Any]]:
    """Yield the items of every page, calling ``fetch(offset, limit)`` until the walk ends (see module doc).

    :param fetch: one call of the endpoint at ``offset``, read with :func:`read_page`. A page without a
        list of items counts as empty; a caller that must fail on it raises inside ``fetch``.
    :param limit: page size asked for.
    :param start: the first offset.
    :param expected: the most items the walk can return, when the caller knows it.
    :param what: the call as ``"METHOD path"`` (``"GET datasets"``), for the error message.
    :param max_items: the walk fails once it needed more pages than this many items fill at ``limit``.
    :raises EcoinventApiError: a page brought nothing new (the server ignores ``from``: without ``total``
        the walk would never end), or the walk passed its page cap.
    """
    progress = _Progress(what)
    max_pages = max(1, math.ceil(max_items / max(1, limit)))
    offset = start
    received = 0
    largest = 0
    for _ in range(max_pages):
        page = fetch(offset, limit)
        items = page.items or []
        progress.check(items, offset)
        yield items
        offset += len(items)
        received += len(items)
        ends = is_last_page(
            len(items), largest=largest, offset=offset, total=page.total, received=received, expected=expected
        )
        if ends:
            return
        largest = max(largest, len(items))
    raise _walk_error(
        what,
        f"{what} was still returning pages after {max_pages} pages of up to {limit} items ({received} items): "
        f"stopped at the cap of {max_items} items rather than page for ever.",
    )


def is_last_page(
    count: int, *, largest: int, offset: int, total: int | None, received: int, expected: int | None
) -> bool:
    """Whether a page of ``count`` items ends the walk (the rule in the module docstring).

    :param largest: the largest page seen before this one (0 for the first page).
    """
    if count == 0:
        return True
    if expected is not None and received >= expected:
        return True
    if total is not None:
        return offset >= total
    return count < largest


class _Progress:
    """What a walk has seen so far, to fail on a page that brings nothing new."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.ids: set[Any] = set()
        self.digests: set[str] = set()

    def check(self, items: list[Any], offset: int) -> None:
        """Remember ``items``; raise when they were all seen before (a walk making no progress)."""
        if not items:
            return
        ids = _ids_of(items)
        if ids is not None:
            seen_before = ids <= self.ids
            self.ids |= ids
        else:
            digest = hashlib.sha256(json.dumps(items, sort_keys=True, default=repr).encode()).hexdigest()
            seen_before = digest in self.digests
            self.digests.add(digest)
        if seen_before:
            raise _walk_error(
                self.what,
                f"{self.what} answered from={offset} with {len(items)} items all returned before: the server "
                "ignores 'from', so paging cannot go on. Stopped rather than read the same pages for ever.",
            )


def _ids_of(items: list[Any]) -> set[Any] | None:
    """The ``id`` of every item, or ``None`` when some item has none (or one that cannot be compared)."""
    ids = set()
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            return None
        try:
            ids.add(item["id"])
        except TypeError:  # an unhashable id: fall back to comparing whole pages
            return None
    return ids


def _walk_error(what: str, message: str) -> EcoinventApiError:
    method, _, path = what.partition(" ")
    return EcoinventApiError(message, status_code=None, method=method, path=path or what)
