"""The probe's findings, per endpoint, as an aligned text report or as JSON.

Everything printed goes through :meth:`ProbeReport.safe`: the client secret and the access token are
replaced by ``***`` and credentials embedded in URLs are cut out, as defence in depth (the findings hold
key names, types, counts and ids only, never an answer's values).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_ecoinvent import __version__
from airflow_provider_ecoinvent._client.errors import scrub

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.probe.compare import Difference

#: Exit codes of ``python -m airflow_provider_ecoinvent.probe``.
EXIT_AGREES: Final = 0
EXIT_DIFFERENCES: Final = 1
EXIT_UNREACHABLE: Final = 2

_USERINFO: Final = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_DOCS_HINT: Final = (
    "What each difference means, which connection extras to set and how to report the rest: docs/probe.md."
)


@dataclass
class EndpointReport:
    """One call of the probe: what it found, or why it failed or was not made."""

    name: str
    method: str
    path: str
    summary: str = ""
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    @property
    def status(self) -> str:
        """``ok``, ``differences``, ``failed`` or ``skipped``."""
        if self.skipped is not None:
            return "skipped"
        if self.error is not None:
            return "failed"
        return "differences" if self.differences else "ok"

    @property
    def status_label(self) -> str:
        """The status as the text report prints it."""
        if self.status == "differences":
            count = len(self.differences)
            return f"{count} difference" + ("" if count == 1 else "s")
        return {"ok": "OK", "failed": "FAILED", "skipped": "not run"}[self.status]

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json``."""
        return {
            "name": self.name,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "summary": self.summary,
            "differences": [difference.to_dict() for difference in self.differences],
            "error": self.error,
            "skipped": self.skipped,
        }


@dataclass
class ProbeReport:
    """Everything the probe found, and the exit code it means."""

    conn_id: str
    system_model: str
    api_url: str | None = None
    token_url: str | None = None
    version: str | None = None
    endpoints: list[EndpointReport] = field(default_factory=list)
    #: Why the probe could not talk to the API at all (exit code 2).
    error: str | None = None
    #: What the scored call bills, when it was made.
    billed: str | None = None
    _secrets: list[str] = field(default_factory=list, repr=False)

    def add(self, endpoint: EndpointReport) -> EndpointReport:
        """Record one endpoint's findings (in call order) and return them for filling in."""
        self.endpoints.append(endpoint)
        return endpoint

    def add_secret(self, secret: str) -> None:
        """A value that must never be printed (the client secret, the access token)."""
        self._secrets.append(secret)

    def endpoint(self, name: str) -> EndpointReport:
        """The findings of the endpoint called ``name``."""
        return next(endpoint for endpoint in self.endpoints if endpoint.name == name)

    @property
    def differences(self) -> list[Difference]:
        """Every difference found, in call order."""
        return [difference for endpoint in self.endpoints for difference in endpoint.differences]

    @property
    def exit_code(self) -> int:
        """0: the API agrees; 1: differences or a failed call; 2: could not connect or authenticate."""
        if self.error is not None:
            return EXIT_UNREACHABLE
        if any(endpoint.status in ("differences", "failed") for endpoint in self.endpoints):
            return EXIT_DIFFERENCES
        return EXIT_AGREES

    def safe(self, text: str) -> str:
        """``text`` without the secret, the token, or credentials embedded in a URL."""
        return _USERINFO.sub(r"\1***@", scrub(text, self._secrets))

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json`` (not yet scrubbed: :meth:`render_json` does that)."""
        return {
            "probe": f"airflow-provider-ecoinvent {__version__}",
            "connection": self.conn_id,
            "api_url": self.api_url,
            "token_url": self.token_url,
            "version": self.version,
            "system_model": self.system_model,
            "endpoints": [endpoint.to_dict() for endpoint in self.endpoints],
            "billed": self.billed,
            "error": self.error,
            "exit_code": self.exit_code,
        }

    def render_json(self) -> str:
        """The report as indented JSON, safe to paste."""
        return self.safe(json.dumps(self.to_dict(), indent=2))

    def render_text(self) -> str:
        """The report as aligned text, safe to paste."""
        lines = [f"ecoinvent API probe (airflow-provider-ecoinvent {__version__})"]
        facts = [
            ("connection", self.conn_id),
            ("API", self.api_url),
            ("token URL", self.token_url),
            ("data", f"version {self.version}, system model {self.system_model}" if self.version else None),
            ("billed", self.billed),
        ]
        lines.extend(f"{label:<12}{value}" for label, value in facts if value)
        if self.endpoints:
            lines.append("")
            lines.extend(self._endpoint_lines())
        lines.append("")
        lines.append(self._result_line())
        return self.safe("\n".join(lines)) + "\n"

    def _endpoint_lines(self) -> list[str]:
        rows = [
            (endpoint.name, endpoint.method, endpoint.path, endpoint.status_label, _detail(endpoint))
            for endpoint in self.endpoints
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines: list[str] = []
        for endpoint, row in zip(self.endpoints, rows, strict=True):
            cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
            lines.append("  ".join([*cells, row[4]]).rstrip())
            lines.extend(f"    {difference.line()}" for difference in endpoint.differences)
        return lines

    def _result_line(self) -> str:
        code = self.exit_code
        if code == EXIT_UNREACHABLE:
            return f"Result: could not connect or authenticate (exit {code}): {self.error}"
        if code == EXIT_DIFFERENCES:
            answers = sum(1 for endpoint in self.endpoints if endpoint.status in ("differences", "failed"))
            count = len(self.differences)
            return (
                f"Result: {count} difference{'' if count == 1 else 's'} in {answers} "
                f"answer{'' if answers == 1 else 's'} (exit {code}). {_DOCS_HINT}"
            )
        return f"Result: no difference; the API answers as the provider expects (exit {code})."


def _detail(endpoint: EndpointReport) -> str:
    return endpoint.skipped or endpoint.error or endpoint.summary
