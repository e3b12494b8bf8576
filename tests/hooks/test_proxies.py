"""Proxies from the environment apply to the hook's calls, read once per host rather than on every call.

A real proxy on loopback (a forwarding HTTP proxy in a thread) records the request lines it receives and
passes each call on to the emulator, the way a corporate proxy would.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_ecoinvent.emulator import EmulatorServer


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        server: Any = self.server
        server.lines.append(self.requestline)
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
    server.lines = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_calls_go_through_the_environments_proxy(
    proxy: ThreadingHTTPServer, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    hook = EcoinventHook()
    assert [v.name for v in hook.get_versions()][-1] == ecoinvent_conn.stats()["latest"]
    hook.get_versions()
    base = ecoinvent_conn.base_url
    lines: list[str] = proxy.lines  # type: ignore[attr-defined]
    assert lines == [
        f"POST {base}/realms/ecoinvent/protocol/openid-connect/token HTTP/1.1",
        f"GET {base}/v0/versions HTTP/1.1",
        f"GET {base}/v0/versions HTTP/1.1",
    ]


def test_no_proxy_hosts_are_called_directly(
    proxy: ThreadingHTTPServer, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    hook = EcoinventHook()
    hook.get_versions()
    assert proxy.lines == []  # type: ignore[attr-defined]
    assert ecoinvent_conn.stats()["api_calls"] >= 1
