"""The emulator's request and response as plain data, and the helpers every endpoint answers with.

``server.py`` turns an HTTP request into a ``Request`` and writes a ``Response`` back; the endpoint
modules (``endpoints.py``, ``oauth.py``, ``admin.py``) and ``app.py`` only deal in these, so none of
them knows about sockets, and a fault that breaks the connection is described as data (``transport``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import msgspec

JSON_TYPE = "application/json"


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    #: Lower-cased header names.
    headers: dict[str, str]
    body: bytes = b""


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: ``None``: send normally. ``"drop"`` / ``"truncate"``: send ``partial_bytes`` of the body, then reset /
    #: cleanly close the connection. ``"drop_start"``: reset before sending anything.
    transport: str | None = None
    partial_bytes: int = 0


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, encode_json(payload), [("Content-Type", JSON_TYPE), *(headers or [])])


def encode_json(payload: Any) -> bytes:
    """A compact JSON body: msgspec's, or the standard library's where msgspec would change a value.

    The emulator is one process: every call's encoding runs under one GIL, so its cost queues behind
    concurrent calls and adds to the latency a concurrent client sees (``json.dumps`` took ~1 ms of the
    ~3.3 ms a 100-dataset batch cost; msgspec ~0.13 ms). msgspec writes ``NaN`` and infinities as
    ``null``, so a body holding ``null`` is encoded again by ``json`` (which spells them as Python does,
    as tests that serve them expect); so is anything msgspec refuses. Both spell the same values; some
    floats (``1e16``) and non-ASCII text (not ``\\u``-escaped) are written differently. Unlike ``json``,
    msgspec also encodes sets, bytes, ``Decimal``, ``UUID``, datetimes and dataclasses: endpoints must build
    payloads from JSON types only (a set would be served in hash order), as they do.
    """
    try:
        body = _encoder().encode(payload)
    except (TypeError, ValueError, OverflowError, RecursionError):
        body = b"null"
    if b"null" in body:
        return json.dumps(payload, separators=(",", ":"), check_circular=False).encode()
    return body


@functools.cache
def _encoder() -> msgspec.json.Encoder:
    import msgspec

    return msgspec.json.Encoder()


def detail(status: int, message: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"detail": message}, headers)


class HTTPError(Exception):
    """Raised inside an endpoint to answer with an error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def bearer(req: Request) -> str | None:
    """The bearer token of a request's ``Authorization`` header, if any."""
    authorization = req.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
