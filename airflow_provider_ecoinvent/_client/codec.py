"""JSON in and out at C speed, with exactly the results of the standard library's ``json``.

Decoding API answers and encoding output lines were most of the client's CPU time (``json.loads`` takes
~8 us and ``json.dumps(..., sort_keys=True)`` ~12 us per dataset scored for 3 indicators). msgspec (a
dependency of Airflow's Task SDK) does both in ~2 us, and is used wherever it gives the same result:

* :func:`decode`: msgspec parses standard JSON to the same values as ``json.loads`` (floats correctly
  rounded, integers of any size up to the standard library's limit, the last of duplicate keys). What it
  refuses, ``json.loads`` then reads as before: ``NaN`` and ``Infinity``, numbers beyond a float's range,
  a byte-order mark or UTF-16, lone surrogates, answers nested too deeply, and anything not JSON (whose
  error, ``ValueError`` or ``RecursionError``, is the standard library's, as callers expect).
* :func:`json_line`: the canonical output line, byte for byte ``json.dumps(record, sort_keys=True,
  separators=(",", ":"), ensure_ascii=False)`` plus ``"\\n"``, UTF-8 (``tests/data/golden`` pins it).
  msgspec sorts keys and escapes strings the same way; it writes some floats differently (``1e16`` for
  ``1e+16``, ``0.00001`` for ``1e-05``, ``null`` for ``NaN``), so a record holding such a float is encoded
  with those floats spelled by Python's ``repr``, as ``json`` spells them. Anything else ``json`` would
  treat in its own way (subclasses, non-string keys, tuples, lone surrogates...) is handed to ``json``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import msgspec

#: Floats that msgspec and ``repr`` spell alike: zero, and magnitudes where ``repr`` uses no exponent.
_PLAIN_FLOAT_MIN: Final = 1e-4
_PLAIN_FLOAT_MAX: Final = 1e16


class _Codec:
    """msgspec's encoder and decoder, made once per process on first use (not at import: DAG parsing)."""

    loaded = False
    #: ``None`` when the installed msgspec writes a probe differently from ``json``: lines then come from ``json``.
    encoder: msgspec.json.Encoder | None = None
    decoder: msgspec.json.Decoder[Any] | None = None
    raw: type[msgspec.Raw] | None = None
    decode_errors: tuple[type[Exception], ...] = ()

    @classmethod
    def load(cls) -> None:
        import msgspec

        cls.raw = msgspec.Raw
        cls.decode_errors = (msgspec.DecodeError, RecursionError)
        cls.decoder = msgspec.json.Decoder()
        encoder = msgspec.json.Encoder(order="sorted")
        # The promise rests on msgspec's float and string spelling, which another release could change.
        if all(encoder.encode(probe) + b"\n" == stdlib_json_line(probe) for probe in _PROBES):
            cls.encoder = encoder
        cls.loaded = True


#: Values whose spelling the fast path relies on; checked once per process against ``json``.
_PROBES: Final = (
    {"b": [0.1 + 0.2, 1e-4, -0.0, 0.0, 2.0, 123456.789, 9.999999999999998e15, -5e-4], "a": None, "A": True},
    {"é": 'quote " backslash \\ \n\t\r\b\f \x00\x1f\x7f \u2028 ü 北 \U0001f600', "i": [2**70, -(2**64), 0]},
)


def decode(body: bytes) -> Any:
    """``json.loads(body)``, faster: the same value, or the same exception.

    :raises ValueError: ``body`` is not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``...).
    :raises RecursionError: nested too deeply to read.
    """
    if not _Codec.loaded:
        _Codec.load()
    decoder = _Codec.decoder
    assert decoder is not None
    try:
        return decoder.decode(body)
    except _Codec.decode_errors:
        return json.loads(body)


def json_line(record: Any) -> bytes:
    """One JSON Lines record: sorted keys, no spaces, UTF-8 (not ASCII-escaped), newline-terminated.

    The same bytes as ``json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    followed by a newline, UTF-8 encoded; the same exception for what that cannot encode.
    """
    if not _Codec.loaded:
        _Codec.load()
    encoder = _Codec.encoder
    if encoder is None:
        return stdlib_json_line(record)
    try:
        return encoder.encode(_spelled_as_json_does(record)) + b"\n"
    # UnicodeEncodeError (a lone surrogate) is a ValueError; RecursionError: a circular structure.
    except (_NotPlainJson, TypeError, ValueError, RecursionError):
        return stdlib_json_line(record)


def stdlib_json_line(record: Any) -> bytes:
    """:func:`json_line` by the standard library: the reference it must equal, and its fallback."""
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


class _NotPlainJson(Exception):
    """A value ``json`` treats in a way of its own: left to ``json`` itself."""


def _spelled_as_json_does(value: Any) -> Any:
    """``value`` with every float msgspec would spell differently from ``json.dumps`` replaced by raw JSON text
    spelled as ``json`` spells it; ``value`` itself (no copy) when there is none, the common case, and
    otherwise copies of only the containers on the way to such a float. One pass, scalars checked inline (a
    function call per field was most of the nested layout's CPU when scores are tiny or huge floats).

    :raises _NotPlainJson: a key that is not a string, or a type other than dict, list, str, int, float,
        bool and None (or a subclass of one: ``json`` has its own rules for those).
    """
    kind = type(value)
    if kind is dict:
        if not _STRING_TYPE.issuperset(map(type, value)):
            raise _NotPlainJson
        return _respelled(value, value.items(), dict)
    if kind is list:
        return _respelled(value, enumerate(value), list)
    return _spelled_item(value)


_STRING_TYPE: Final = frozenset({str})


def _respelled(container: Any, items: Iterable[tuple[Any, Any]], copy: Callable[[Any], Any]) -> Any:
    """``container`` (a dict or list, walked as its ``items``), or a ``copy`` of it with the values that
    :func:`_spelled_item` changes; plain scalars are checked inline, without a call."""
    changed = None
    for key, item in items:
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float and (item == 0.0 or _PLAIN_FLOAT_MIN <= abs(item) < _PLAIN_FLOAT_MAX):
            continue
        spelled = _spelled_item(item)
        if spelled is not item:
            if changed is None:
                changed = copy(container)
            changed[key] = spelled
    return container if changed is None else changed


def _spelled_item(item: Any) -> Any:
    """One value of a container: scalars at once, containers by :func:`_spelled_as_json_does`."""
    kind = type(item)
    if kind is str or kind is int or kind is bool or item is None:
        return item
    if kind is float:
        if item == 0.0 or _PLAIN_FLOAT_MIN <= abs(item) < _PLAIN_FLOAT_MAX:  # False for NaN
            return item
        raw = _Codec.raw
        assert raw is not None
        return raw(_float_text(item).encode())
    if kind is dict or kind is list:
        return _spelled_as_json_does(item)
    raise _NotPlainJson


def _float_text(value: float) -> str:
    """A float as ``json.dumps`` writes it (``allow_nan=True``): ``repr``, or NaN, Infinity, -Infinity."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)
