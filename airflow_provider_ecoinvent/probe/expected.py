"""What the provider expects of each answer, as data: one table of keys and JSON types per endpoint.

Written from the contract (``ecoinvent-api.md``): its [doc] facts and the [assume] ones the provider is built
on. The probe compares real answers with these tables and, for the lists, also asks the provider's own
readers (``parse_versions``, and ``items_and_total`` as the hook reads a page) how much of the answer they
take in, so that a difference is reported together with what it does to the provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

#: JSON type names, as the report prints them.
STRING: Final = "string"
INTEGER: Final = "integer"
NUMBER: Final = "number"
BOOLEAN: Final = "boolean"
NULL: Final = "null"
ARRAY: Final = "array"
OBJECT: Final = "object"

#: ``required``: in every answer or item; ``documented``: the contract lists it, so a key absent from every
#: item is reported; ``optional``: may be absent, never reported.
Presence = Literal["required", "documented", "optional"]


@dataclass(frozen=True)
class Key:
    """One expected key: its JSON types, how often it must appear, and the shape of its elements."""

    name: str
    types: frozenset[str]
    presence: Presence = "documented"
    #: Other names the contract allows for the same key (``name`` for a version's ``version``).
    aliases: tuple[str, ...] = ()
    #: For arrays: the JSON types of the elements, and the shape of the elements that are objects.
    element_types: frozenset[str] = frozenset()
    element_shape: Shape | None = None
    #: The difference kind reported when the key is absent (``total`` is a paging field), and what that does.
    missing_kind: str = "missing_key"
    missing_effect: str = ""


@dataclass(frozen=True)
class Shape:
    """The keys of an object; keys not listed are reported as extra."""

    keys: tuple[Key, ...]

    @property
    def names(self) -> frozenset[str]:
        """Every key name and alias this shape knows."""
        return frozenset(name for key in self.keys for name in (key.name, *key.aliases))


@dataclass(frozen=True)
class ListAnswer:
    """An answer that carries a list of items: where the list sits, what wraps it, and what each item is."""

    item: Shape
    #: Keys of the wrapping object under which the contract puts the list (the first is the documented one).
    list_keys: tuple[str, ...]
    #: Whether the contract allows the list itself as the answer.
    bare_list: bool
    #: The other keys of the wrapping object (``total``, ``facets``).
    wrapper: Shape = field(default_factory=lambda: Shape(()))
    #: How many items the provider reads from the answer (its own parser, not a re-implementation).
    provider_reads: Callable[[Any], int] = len


@dataclass(frozen=True)
class Endpoint:
    """One call of the probe and the answer it expects."""

    name: str
    method: str
    path: str
    answer: Shape | ListAnswer
    billed: bool = False


def _types(*names: str) -> frozenset[str]:
    return frozenset(names)


def _text(name: str, presence: Presence = "documented") -> Key:
    return Key(name, _types(STRING, NULL), presence)


def _count_versions(payload: Any) -> int:
    from airflow_provider_ecoinvent.versions import parse_versions

    return len(parse_versions(payload))


def _page_reader(batch: bool) -> Callable[[Any], int]:
    """How many items the hook reads from one page of a paged (or, ``batch``, a batch) answer."""

    def count(payload: Any) -> int:
        from airflow_provider_ecoinvent._client.paging import BATCH_LIST_KEYS, PAGE_LIST_KEYS, items_and_total

        return len(items_and_total(payload, BATCH_LIST_KEYS if batch else PAGE_LIST_KEYS)[0])

    return count


#: Contract section 2: the token endpoint's answer (Keycloak's keys; only the first two are read).
TOKEN: Final = Shape(
    (
        Key("access_token", _types(STRING), "required"),
        Key("expires_in", _types(INTEGER), "required"),
        Key("token_type", _types(STRING), "required"),
        Key("not-before-policy", _types(INTEGER), "optional"),
        Key("session_state", _types(STRING), "optional"),
        Key("scope", _types(STRING), "optional"),
        Key("refresh_expires_in", _types(INTEGER), "optional"),
    )
)

_SYSTEM_MODEL: Final = Shape((Key("name", _types(STRING), "required"),))

#: Contract section 4.4: a bare list, or a list under ``results`` or ``versions``.
VERSIONS: Final = ListAnswer(
    item=Shape(
        (
            Key("version", _types(STRING), "required", aliases=("name",)),
            Key("system_models", _types(ARRAY), element_types=_types(STRING, OBJECT), element_shape=_SYSTEM_MODEL),
            Key("release_date", _types(STRING, NULL), "optional"),
        )
    ),
    list_keys=("results", "versions"),
    bare_list=True,
    provider_reads=_count_versions,
)

#: Contract section 4.5: a bare list or a list under ``results``, maybe paged.
INDICATORS: Final = ListAnswer(
    item=Shape(
        (
            Key("id", _types(INTEGER), "required"),
            Key("method", _types(STRING)),
            Key("category", _types(STRING)),
            Key("indicator", _types(STRING)),
            Key("unit", _types(STRING)),
        )
    ),
    list_keys=("results",),
    bare_list=True,
    wrapper=Shape((Key("total", _types(INTEGER), "optional"),)),
    provider_reads=_page_reader(batch=False),
)

#: Contract section 4.1: the Dataset fields (all but ``id`` may be absent or null).
DATASET_KEYS: Final = (
    Key("id", _types(INTEGER), "required"),
    _text("activity"),
    _text("product"),
    _text("description"),
    _text("geography"),
    _text("unit"),
    _text("time_period"),
    _text("activity_type"),
    _text("isic_section"),
    _text("isic_class"),
    _text("activity_spold_uuid"),
    _text("geography_spold_uuid"),
    _text("product_spold_uuid"),
    Key("sectors", _types(ARRAY, NULL), element_types=_types(STRING)),
    _text("url"),
    _text("url_history"),
)

#: Contract section 4.1: ImpactScore fields.
IMPACT_SCORE: Final = Shape(
    (
        Key("id", _types(INTEGER), "required"),
        Key("score", _types(NUMBER), "required"),
        Key("unit", _types(STRING)),
        Key("method", _types(STRING)),
        Key("category", _types(STRING)),
        Key("indicator", _types(STRING)),
    )
)

_TOTAL: Final = Key(
    "total",
    _types(INTEGER),
    "required",
    missing_kind="paging_field_absent",
    missing_effect="the provider pages on until a page comes back empty (one more call per listing)",
)

#: Contract section 4.3: ``{"total", "results"}``, maybe with ``facets``.
SEARCH: Final = ListAnswer(
    item=Shape(DATASET_KEYS),
    list_keys=("results",),
    bare_list=False,
    wrapper=Shape((_TOTAL, Key("facets", _types(OBJECT, ARRAY), "optional"))),
    provider_reads=_page_reader(batch=False),
)

#: Contract section 4.1: ``{"total", "datasets"}``, each dataset with its ``impact_scores``.
BATCH: Final = ListAnswer(
    item=Shape(
        (
            *DATASET_KEYS,
            Key("impact_scores", _types(ARRAY), "required", element_types=_types(OBJECT), element_shape=IMPACT_SCORE),
        )
    ),
    list_keys=("datasets",),
    bare_list=False,
    wrapper=Shape((_TOTAL,)),
    provider_reads=_page_reader(batch=True),
)

#: The probe's calls, in the order it makes them.
ENDPOINTS: Final = {
    "token": Endpoint("token", "POST", "", TOKEN),
    "versions": Endpoint("versions", "GET", "versions", VERSIONS),
    "indicators": Endpoint("indicators", "GET", "indicators", INDICATORS),
    "search": Endpoint("search", "GET", "datasets", SEARCH),
    "scored": Endpoint("scored", "POST", "datasets/batch", BATCH, billed=True),
}
