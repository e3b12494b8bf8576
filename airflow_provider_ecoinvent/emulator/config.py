"""Configuration of the ecoinvent API emulator.

One frozen dataclass carries every knob, so the in-process server, the subprocess form and the command
line all start from the same values: ``EmulatorConfig.to_argv()`` turns a config into the command line that
``python -m airflow_provider_ecoinvent.emulator`` parses back into an equal config.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Literal

from airflow_provider_ecoinvent.emulator.shapes import SHAPES, Shapes

VersionsShape = Literal["object", "list"]

#: Keycloak's token path; the emulator serves it on the same host as the API (the real service uses
#: ``sso.ecoinvent.org``), which is why the token URL is always configured separately by clients.
TOKEN_PATH = "/realms/ecoinvent/protocol/openid-connect/token"
#: Admin endpoints live here: no auth, never matched by fault rules, cannot collide with the API prefix.
ADMIN_PREFIX = "/_emulator"

DEFAULT_CLIENT_ID = "emulator-client"
# Short and obviously fake on purpose: secret scanners flag long random-looking strings.
DEFAULT_CLIENT_SECRET = "emulator-secret"
#: The API's standard path prefix (the real API serves ``/v0``; some accounts get another one).
STANDARD_API_PREFIX = "/v0"


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulator instance.

    ``faults`` holds fault rules installed at start (dicts in the ``POST /_emulator/faults`` shape);
    ``extra_clients`` adds more (client id, secret) pairs, so per-client usage ledgers can be tested.
    ``versions_shape`` chooses the ``GET /versions`` body: ``"object"`` (``{"results": [...]}`` with
    ``version`` and system models as objects) or ``"list"`` (a bare list with ``name`` and system models
    as strings); the contract allows both, and clients must accept both. ``shapes`` chooses every
    answer's shape: ``"contract"``, or ``"variant"``, which differs from the contract field by field
    (see ``emulator/shapes.py``), to test what a client or the probe makes of an API that disagrees.
    ``omit_total`` leaves ``total`` out of every paged answer (search, batch, indicators): the key is
    [seen], not documented, so clients must page on without it. ``max_concurrency`` (0: none) answers
    429 with ``Retry-After: concurrency_retry_after`` to any API call that arrives while that many are
    being served, as a rate-limited gateway does (a ``concurrency`` fault rule does the same at run time).
    ``page_cap`` silently lowers every ``limit`` asked for to at most this many items (a server capping
    page size without saying so).
    """

    host: str = "127.0.0.1"
    port: int = 0
    token_ttl: float = 3600.0
    latency_ms: float = 0.0
    datasets: int = 1000
    seed: int = 0
    api_prefix: str = STANDARD_API_PREFIX
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    faults: tuple[Mapping[str, Any], ...] = ()
    extra_clients: tuple[tuple[str, str], ...] = ()
    versions_shape: VersionsShape = "object"
    shapes: Shapes = "contract"
    omit_total: bool = False
    max_concurrency: int = 0
    #: "0": a concurrency slot frees when any call ends, sooner than the 1 s an integer header can say.
    concurrency_retry_after: str = "0"
    page_cap: int | None = None
    log_requests: bool = False

    def __post_init__(self) -> None:
        prefix = self.api_prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
        object.__setattr__(self, "api_prefix", prefix)
        object.__setattr__(self, "faults", tuple(dict(rule) for rule in self.faults))
        object.__setattr__(self, "extra_clients", tuple((str(c), str(s)) for c, s in self.extra_clients))
        if prefix.startswith((ADMIN_PREFIX, "/realms")):
            raise ValueError(f"api_prefix {prefix!r} collides with the admin or token paths")
        if self.token_ttl <= 0:
            raise ValueError("token_ttl must be positive")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if self.datasets < 1:
            raise ValueError("datasets must be at least 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be in 0..65535")
        if self.versions_shape not in ("object", "list"):
            raise ValueError("versions_shape must be 'object' or 'list'")
        if self.shapes not in SHAPES:
            raise ValueError("shapes must be 'contract' or 'variant'")
        if not self.client_id:
            raise ValueError("client_id must not be empty")
        if self.max_concurrency < 0:
            raise ValueError("max_concurrency must be a positive number of API calls, or 0 for no limit")
        if not self.concurrency_retry_after.strip():
            raise ValueError("concurrency_retry_after must be a Retry-After value, e.g. '0' or '1'")
        if self.page_cap is not None and self.page_cap < 1:
            raise ValueError("page_cap must be at least 1")

    def replace(self, **overrides: Any) -> EmulatorConfig:
        """A copy with some fields changed (``dataclasses.replace`` with validation)."""
        return dataclasses.replace(self, **overrides)

    @property
    def clients(self) -> dict[str, str]:
        """All known clients, id to secret."""
        return {self.client_id: self.client_secret, **dict(self.extra_clients)}

    def to_argv(self) -> list[str]:
        """Command-line flags that reproduce this config in ``python -m airflow_provider_ecoinvent.emulator``."""
        argv = [
            f"--host={self.host}",
            f"--port={self.port}",
            f"--token-ttl={self.token_ttl!r}",
            f"--latency-ms={self.latency_ms!r}",
            f"--datasets={self.datasets}",
            f"--seed={self.seed}",
            f"--api-prefix={self.api_prefix}",
            f"--client-id={self.client_id}",
            f"--client-secret={self.client_secret}",
            f"--versions-shape={self.versions_shape}",
            f"--shapes={self.shapes}",
            f"--max-concurrency={self.max_concurrency}",
            f"--concurrency-retry-after={self.concurrency_retry_after}",
        ]
        for client_id, secret in self.extra_clients:
            argv.append(f"--extra-client={client_id}:{secret}")
        # JSON form: lossless for any option value (an HTTP date in retry_after contains commas).
        argv.extend(f"--fault={json.dumps(dict(rule), separators=(',', ':'))}" for rule in self.faults)
        if self.omit_total:
            argv.append("--omit-total")
        if self.page_cap is not None:
            argv.append(f"--page-cap={self.page_cap}")
        if self.log_requests:
            argv.append("--log-requests")
        return argv


def make_config(config: EmulatorConfig | None = None, **overrides: Any) -> EmulatorConfig:
    """The constructor convention shared by ``EmulatorServer`` and ``EmulatorProcess``."""
    base = config if config is not None else EmulatorConfig()
    if "faults" in overrides:
        overrides["faults"] = tuple(overrides["faults"])
    if "extra_clients" in overrides:
        extra = overrides["extra_clients"]
        overrides["extra_clients"] = tuple(extra.items() if isinstance(extra, Mapping) else extra)
    return base.replace(**overrides) if overrides else base
