"""The one rule for walking ``from``/``limit`` pages, shared by the hook and :class:`EcoinventOperator`.

The contract (section 4.3) says an answer carries ``total``, but that part is [seen], not documented: an
answer without it must not end the walk after one page, or a selection of 250 datasets silently becomes
100. So the walk ends on the first of:

* an empty page;
* ``total`` given and reached;
* ``total`` absent and a page shorter than the ``limit`` asked for (the server had no more);
* ``expected`` given and reached: a batch call can never return more datasets than ids posted, so a
  full last page needs no extra call to learn it was the last.

A server that ignores ``from`` would make a walk without ``total`` endless: two identical pages in a row
stop it with an error. This module imports nothing heavy: operators import it when a DAG file is parsed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent.exceptions import EcoinventError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence


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


def walk_pages(
    fetch: Callable[[int, int], Page],
    *,
    limit: int,
    start: int = 0,
    expected: int | None = None,
    what: str = "the endpoint",
) -> Iterator[list[Any]]:
    """Yield the items of every page, calling ``fetch(offset, limit)`` until the walk ends (see module doc).

    :param fetch: one call of the endpoint at ``offset``, read with :func:`read_page`. A page without a
        list of items counts as empty; a caller that must fail on it raises inside ``fetch``.
    :param limit: page size asked for.
    :param start: the first offset.
    :param expected: the most items the walk can return, when the caller knows it.
    :param what: the call, for the error message (``"GET datasets"``).
    :raises EcoinventError: two pages in a row came back identical: the server ignores ``from``, and
        without ``total`` the walk would never end.
    """
    offset = start
    received = 0
    previous: list[Any] = []
    while True:
        page = fetch(offset, limit)
        items = page.items or []
        if items and items == previous:
            raise EcoinventError(
                f"{what} answered from={offset} with the same {len(items)} items as the page before: the server "
                "ignores 'from', so paging cannot go on. Stopped rather than read the same page for ever."
            )
        previous = items
        yield items
        offset += len(items)
        received += len(items)
        if is_last_page(len(items), limit=limit, offset=offset, total=page.total, received=received, expected=expected):
            return


def is_last_page(
    count: int, *, limit: int, offset: int, total: int | None, received: int, expected: int | None
) -> bool:
    """Whether a page of ``count`` items ends the walk (the rule in the module docstring)."""
    if count == 0:
        return True
    if expected is not None and received >= expected:
        return True
    if total is not None:
        return offset >= total
    return count < limit
