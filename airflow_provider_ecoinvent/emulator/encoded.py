"""Batch answers written from cached byte fragments, so that the emulator's CPU does not hide the client's.

A 100 x 100 batch page holds 10,000 impact scores. Built as a dict per score and encoded (the plain path,
``ApiEndpoints._batch_plain``), it cost 23 to 27 ms of emulator CPU per call, 2.3 to 2.7 us per scored row:
in the full-release benchmark (25,000 x 250) more CPU than the client under test is allowed. Whole answers
are not cached: a release asks for each (dataset, slice) once, so such a cache would never hit. But most of
an answer's bytes do not depend on the dataset, so they are encoded once and joined (about 0.9 us per row):

* per indicator slice (the ordered, de-duplicated ``indicator_ids`` of a call): the text around each score,
  ``{"id":7,"score":`` and ``,"unit":...,"indicator":"..."}``, glued pairwise (bounded LRU);
* per dataset: its version-independent fields and ``sectors`` (bounded LRU); ``url`` and ``url_history``
  per call, as they name the version and system model;
* per page: every score in one ``msgspec`` call (a list of floats, split at the commas: a float's JSON
  holds none).

The bytes are those of the plain path, byte for byte (``tests/emulator/test_encoded.py`` compares them over
ids, slices, versions, system models, shapes and faults): ``msgspec`` writes a dict as its items' encodings
joined by commas, in insertion order. One exception is handed back: a page whose bytes hold ``null`` is left
to the plain path (``encode_json`` re-encodes such bodies with ``json``, which writes other bytes), and so is
every page while a method the fragments reproduce is replaced on an instance (``ApiEndpoints._fragments_apply``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from airflow_provider_ecoinvent.emulator.lcia import INDICATORS_BY_ID

if TYPE_CHECKING:
    from collections.abc import Sequence

    import msgspec

    from airflow_provider_ecoinvent.emulator.catalogue import Catalogue, Version

#: Indicator slices kept encoded: a release asks a handful (ceil(K / 100) per selection).
SLICES_CACHED = 64
#: Datasets whose fixed fields are kept encoded (about 1 KB each: 4 MB at most).
HEADS_CACHED = 4096


@functools.cache
def _encoder() -> msgspec.json.Encoder:
    import msgspec

    return msgspec.json.Encoder()


@dataclasses.dataclass(frozen=True)
class SliceGlue:
    """The bytes between the scores of one indicator slice: ``glue[0]`` opens the first score object,
    ``glue[i]`` closes object ``i - 1`` and opens object ``i``, ``glue[-1]`` closes the last one."""

    glue: tuple[bytes, ...]
    #: Whether any of it spells ``null`` (then the plain path answers; see the module docstring).
    has_null: bool


@functools.lru_cache(maxsize=SLICES_CACHED)
def slice_glue(indicator_ids: tuple[int, ...]) -> SliceGlue:
    """The glue of a slice: each score object as ``impact_scores`` builds it, split around its score."""
    encode = _encoder().encode
    opening, closing = [], []
    for indicator_id in indicator_ids:
        ind = INDICATORS_BY_ID[indicator_id]
        opening.append(encode({"id": ind.id})[:-1] + b',"score":')
        rest = {"unit": ind.unit, "method": ind.method, "category": ind.category, "indicator": ind.indicator}
        closing.append(b"," + encode(rest)[1:])
    glue = (opening[0], *(close + b"," + open_ for close, open_ in zip(closing, opening[1:], strict=False)))
    glue = (*glue, closing[-1] + b"]}")
    return SliceGlue(glue, any(b"null" in part for part in glue))


class EncodedAnswers:
    """Encodes batch pages of one catalogue from cached fragments; ``None`` when the plain path must answer.

    A JSON token never spans two fragments (each ends at a structural character), so a body spells
    ``null`` only if a fragment does: each is checked, not the whole body (1.7 MB at 100 x 100).
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        # Per instance, not a decorator on the method (which would keep every instance alive).
        self.head = functools.lru_cache(maxsize=HEADS_CACHED)(self._make_head)

    def _make_head(self, dataset_id: int) -> bytes:
        """A dataset object's version-independent part, ``{...,"sectors":[...]``, still open."""
        encode = _encoder().encode
        static = encode(self.catalogue.static(dataset_id))
        return static[:-1] + b',"sectors":' + encode(self.catalogue.sectors(dataset_id))

    def _urls(self, version: Version, system_model: str, dataset_id: int) -> bytes:
        link = self.catalogue.link(version, system_model, dataset_id)
        encode = _encoder().encode
        return b',"url":' + encode(f"{link}/documentation") + b',"url_history":' + encode(f"{link}/history")

    def batch_body(
        self, version: Version, system_model: str, page: Sequence[int], indicators: Sequence[Any], total: int | None
    ) -> bytes | None:
        """The body of a batch answer: ``{"total":...,"datasets":[...]}`` (no ``total`` when ``None``)."""
        indicator_ids = tuple(ind.id for ind in indicators)
        datasets = [self.head(i) + self._urls(version, system_model, i) for i in page]
        if any(b"null" in dataset for dataset in datasets):
            return None
        pieces = [b"{" if total is None else b'{"total":%d,' % total, b'"datasets":[']
        if indicator_ids and page:
            if not self._add_scores(pieces, version, system_model, page, indicator_ids, datasets):
                return None
        else:
            pieces.append(b"},".join(datasets))
            pieces.append(b"}" if datasets else b"")
        pieces.append(b"]}")
        return b"".join(pieces)

    def _add_scores(
        self,
        pieces: list[bytes],
        version: Version,
        system_model: str,
        page: Sequence[int],
        indicator_ids: tuple[int, ...],
        datasets: list[bytes],
    ) -> bool:
        """Append each dataset closed by its ``impact_scores`` (glue and scores interleaved) to ``pieces``;
        ``False`` if the bytes would spell ``null``."""
        glue = slice_glue(indicator_ids)
        encoded = _encoder().encode(self.catalogue.page_scores(version, system_model, page, indicator_ids))
        if glue.has_null or b"null" in encoded:
            return False
        scores = encoded[1:-1].split(b",")
        k = len(indicator_ids)
        parts: list[bytes] = [b""] * (2 * k + 1)
        parts[0::2] = glue.glue
        for position, dataset in enumerate(datasets):
            parts[1::2] = scores[position * k : (position + 1) * k]
            pieces.append(b"," + dataset if position else dataset)
            pieces.append(b',"impact_scores":[')
            pieces += parts
        return True
