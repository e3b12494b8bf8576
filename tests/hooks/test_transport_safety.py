"""Both transports (the hook's requests, the async client's httpx) against hostile or mistaken servers.

Each test runs the same scenario through ``EcoinventHook`` and ``EcoinventAsyncClient`` over loopback and
asserts the same outcome: redirects are not followed (no token, no ~/.netrc credentials sent elsewhere),
answers are bounded in size and depth, header values and tokens with control characters are refused
before they reach the wire, endpoints cannot leave the API prefix, unreachable hosts fail fast with a
message naming ``scheme://host:port``, and a stopped run wakes a retry wait at once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE
from airflow_provider_ecoinvent.emulator.config import TOKEN_PATH
from airflow_provider_ecoinvent.exceptions import (
    EcoinventApiError,
    EcoinventAuthError,
    EcoinventConfigError,
    EcoinventError,
    EcoinventRetriesExhaustedError,
    EcoinventUnreachableError,
)
from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer


def set_connection(monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(connection))


class Counted:
    """Runs ``request(method, path)`` through one transport and keeps its attempt counters and waits."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.api_calls = 0
        self.token_requests = 0
        self.waits: list[float] = []

    def __call__(self, method: str, path: str) -> Any:
        if self.transport == "hook":
            hook = EcoinventHook()
            hook._sleep = self.waits.append
            try:
                return hook.request(method, path)
            finally:
                self.api_calls, self.token_requests = hook.api_calls, hook.token_requests
        return asyncio.run(self._async(method, path))

    async def _async(self, method: str, path: str) -> Any:
        async def record(seconds: float) -> None:
            self.waits.append(seconds)

        async with EcoinventAsyncClient() as client:
            client._sleep = record
            try:
                return await client.request(method, path)
            finally:
                self.api_calls, self.token_requests = client.api_calls, client.token_requests


@pytest.fixture(params=["hook", "async-client"])
def transport(request: pytest.FixtureRequest) -> Counted:
    return Counted(request.param)


# -- small loopback servers ---------------------------------------------------------------------------


class _Scripted(BaseHTTPRequestHandler):
    """Records what it receives and answers as its ``answer`` callable says."""

    protocol_version = "HTTP/1.0"
    received: list[dict[str, Any]]
    answer: Callable[[BaseHTTPRequestHandler], None]

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self.received.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        type(self).answer(self)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(answer: Callable[[BaseHTTPRequestHandler], None]) -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Scripted,), {"received": received, "answer": staticmethod(answer)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, received


@pytest.fixture
def servers() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], tuple[str, list[dict[str, Any]]]]]:
    started: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[BaseHTTPRequestHandler], None]) -> tuple[str, list[dict[str, Any]]]:
        server, received = _serve(answer)
        started.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", received

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _json(handler: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- redirects and ~/.netrc -------------------------------------------------------------------------


def test_redirects_are_errors_and_send_nothing_elsewhere(
    transport: Counted,
    ecoinvent_conn: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    servers: Any,
) -> None:
    # A ~/.netrc for the loopback host: requests applies it after a redirect unless redirects are refused.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password netrc-password\n")
    netrc.chmod(0o600)
    other_url, other_received = servers(lambda handler: _json(handler, {"results": []}))

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(307)
        handler.send_header("Location", f"{other_url}{handler.path}?sig=query-secret")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    redirecting_url, first_received = servers(redirect)
    connection = ecoinvent_conn.connection_dict()
    connection["host"] = redirecting_url  # the token still comes from the emulator
    set_connection(monkeypatch, connection)

    with pytest.raises(EcoinventApiError) as raised:
        transport("GET", "versions")

    message = str(raised.value)
    assert "307" in message
    assert "GET /v0/versions" in message
    assert "'127.0.0.1'" in message  # the Location's host ...
    assert "query-secret" not in message  # ... never its query
    assert "host and 'api_prefix'" in message
    assert raised.value.status_code == 307
    assert len(first_received) == 1
    assert other_received == []  # neither the bearer token nor the netrc credentials went anywhere else


# -- answers too large or too deep --------------------------------------------------------------------


def test_deeply_nested_answer_is_an_api_error(transport: Counted, ecoinvent_conn: EmulatorServer) -> None:
    depth = 100_000
    ecoinvent_conn.add_fault("malformed", path="/versions", body="[" * depth + "]" * depth)
    with pytest.raises(EcoinventApiError, match=r"answered 200 to GET /v0/versions with JSON nested too deeply"):
        transport("GET", "versions")


def test_answer_over_the_declared_limit_is_refused(
    transport: Counted, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, emulator.connection_dict(max_response_bytes=4096))
    emulator.add_fault("malformed", path="/versions", body="x" * 10_000)
    with pytest.raises(EcoinventApiError) as raised:
        transport("GET", "versions")
    assert str(raised.value).startswith(
        "The answer to GET /v0/versions (connection 'ecoinvent_default') is 10000 bytes, over the limit of 4096 bytes"
    )
    assert "'max_response_bytes'" in str(raised.value)
    assert transport.api_calls == 1  # not retried


def test_answer_without_length_stops_being_read_at_the_limit(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, servers: Any
) -> None:
    total = 64 * 1024 * 1024
    sent: list[int] = []

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()  # HTTP/1.0 without Content-Length: the body ends when the connection does
        chunk = b"[" + b"0," * 32 * 1024
        written = 0
        try:
            while written < total:
                handler.wfile.write(chunk)
                written += len(chunk)
        except OSError:
            pass  # the client hung up
        sent.append(written)

    url, _ = servers(endless)
    connection = ecoinvent_conn.connection_dict(max_response_bytes=1024 * 1024)
    connection["host"] = url
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventApiError, match="is more than 1048576 bytes, over the limit of 1048576 bytes"):
        transport("GET", "versions")
    for _ in range(200):  # the server thread notices the hang-up after the client closed the socket
        if sent:
            break
        time.sleep(0.05)
    assert sent
    assert sent[0] < total  # the client stopped reading: the server could not send it all


def _not_gzip(handler: BaseHTTPRequestHandler) -> None:
    """A 200 marked ``Content-Encoding: gzip`` whose body is not gzip (a proxy mangling answers)."""
    data = b"this is not gzip at all"
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def test_answer_marked_gzip_that_is_not_gzip_is_an_api_error(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, servers: Any
) -> None:
    url, received = servers(_not_gzip)
    connection = ecoinvent_conn.connection_dict()
    connection["host"] = url  # the token still comes from the emulator
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventApiError) as raised:
        transport("GET", "versions")
    assert str(raised.value) == (
        "The answer to GET /v0/versions (connection 'ecoinvent_default') is marked 'gzip' but its body cannot be "
        "decoded; not retried: a proxy or gateway between Airflow and the API is probably altering answers. "
        "Check your proxy settings (HTTPS_PROXY, NO_PROXY) and the connection's host and 'api_prefix'."
    )
    assert len(received) == 1  # not retried
    assert transport.waits == []


def test_default_limit_is_32_mib(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, servers: Any
) -> None:
    # Decoded JSON takes up to ~25x its bytes: the default must keep a triggerer's memory bounded.
    def declares_33_mib(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(33 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.write(b"[{},{}")  # the client must stop at the declared length, not read on

    url, received = servers(declares_33_mib)
    connection = ecoinvent_conn.connection_dict()  # no max_response_bytes: the default applies
    connection["host"] = url
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventApiError) as raised:
        transport("GET", "versions")
    assert "is 34603008 bytes, over the limit of 33554432 bytes" in str(raised.value)
    assert len(received) == 1  # not retried


def test_max_response_bytes_must_be_a_sane_number(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, emulator.connection_dict(max_response_bytes="lots"))
    with pytest.raises(EcoinventConfigError, match="extra 'max_response_bytes' must be a whole number from 1024"):
        EcoinventHook().get_versions()


# -- control characters ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["user_id", "organization_id"])
def test_control_characters_in_usage_headers_refused_before_any_call(
    transport: Counted, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    set_connection(monkeypatch, emulator.connection_dict(**{field: "alice\r\nX-Injected: 1"}))
    with pytest.raises(EcoinventConfigError, match=f"extra '{field}' holds control characters"):
        transport("GET", "versions")
    assert emulator.stats()["token_requests"] == 0
    assert transport.token_requests == 0


def test_control_characters_in_a_hook_argument_refused(ecoinvent_conn: EmulatorServer) -> None:
    with pytest.raises(EcoinventConfigError, match="EcoinventHook argument: user_id holds control characters"):
        EcoinventHook(user_id="bob\nX-Injected: 1").get_versions()
    assert ecoinvent_conn.stats()["token_requests"] == 0


def test_token_with_control_characters_is_refused_and_never_echoed(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, servers: Any
) -> None:
    bad_token = "eyJhbGciOi-token-part\r\nX-Injected: yes"
    token_url, token_received = servers(
        lambda handler: _json(handler, {"access_token": bad_token, "expires_in": 300, "token_type": "Bearer"})
    )
    connection = ecoinvent_conn.connection_dict()
    connection["extra"]["token_url"] = token_url + "/token"
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventAuthError, match="holds characters a bearer token cannot have") as raised:
        transport("GET", "versions")
    assert "token-part" not in str(raised.value)
    assert len(token_received) == 1  # not retried
    assert transport.api_calls == 0
    assert ecoinvent_conn.stats()["requests"].get("GET /versions", 0) == 0


# -- paths that leave the API prefix ------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "../_emulator/stats",
        "versions/../../_emulator/stats",
        "%2e%2e/_emulator/stats",
        "%2E%2E%2f_emulator",
        "%252e%252e/_emulator",
        "..\\_emulator",
        "https://elsewhere.example/v0/versions",
        "versions\r\nX-Injected: 1",
    ],
)
def test_endpoints_leaving_the_prefix_are_refused_before_any_call(
    transport: Counted, ecoinvent_conn: EmulatorServer, endpoint: str
) -> None:
    with pytest.raises(EcoinventConfigError, match="it must be a path under the API prefix"):
        transport("GET", endpoint)
    assert transport.token_requests == 0
    assert ecoinvent_conn.stats()["token_requests"] == 0


def test_plain_nested_paths_still_work(transport: Counted, ecoinvent_conn: EmulatorServer) -> None:
    assert transport("GET", "/versions")
    assert transport("GET", "indicators")


def test_generic_operator_refuses_an_escaping_endpoint_at_construction() -> None:
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventOperator

    with pytest.raises(EcoinventConfigError, match="it must be a path under the API prefix"):
        EcoinventOperator(task_id="escape", endpoint="../_emulator/stats")
    with pytest.raises(EcoinventConfigError, match="it must be a path under the API prefix"):
        EcoinventOperator(task_id="escape", endpoint="%2e%2e/_emulator/stats")


def test_url_errors_never_echo_embedded_credentials(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = []
    for host in ("https://user:pa55w0rd-in-url@api.example.com:notaport", "ftp://user:pa55w0rd-in-url@api.example"):
        connection = emulator.connection_dict()
        connection["host"] = host
        set_connection(monkeypatch, connection)
        with pytest.raises(EcoinventConfigError, match=r"host is not a valid http:// or https:// URL") as raised:
            EcoinventHook().get_versions()
        messages.append(str(raised.value))
    connection = emulator.connection_dict()
    connection["extra"]["allow_insecure_http"] = False
    connection["extra"]["token_url"] = "http://sso.example.org/token?client_secret=pa55w0rd-in-url"
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventConfigError, match="plain http://") as raised:
        EcoinventHook().get_versions()
    messages.append(str(raised.value))
    for message in messages:
        assert "pa55w0rd-in-url" not in message, message
    assert "the value is not shown" in messages[0]


# -- unreachable hosts ---------------------------------------------------------------------------------


def test_refused_connection_fails_after_one_retry_naming_the_url(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    connection = ecoinvent_conn.connection_dict()
    connection["host"] = f"http://127.0.0.1:{port}"
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventUnreachableError) as raised:
        transport("GET", "versions")
    assert str(raised.value) == (
        f"Could not connect to the ecoinvent API at http://127.0.0.1:{port} (connection refused) for GET "
        "/v0/versions, connection 'ecoinvent_default', after 2 attempts: check the host and port, that the "
        "service runs there, and your proxy settings (HTTPS_PROXY, NO_PROXY)."
    )
    assert transport.api_calls == 2
    assert len(transport.waits) == 1


def test_refused_token_endpoint_is_named(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    connection = ecoinvent_conn.connection_dict()
    connection["extra"]["token_url"] = f"http://localhost:{port}/realms/x/token?ignored=1"
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventUnreachableError, match=rf"token endpoint at http://localhost:{port} \(") as raised:
        transport("GET", "versions")
    assert "ignored" not in str(raised.value)
    assert transport.token_requests == 2


def test_unresolvable_host_fails_fast(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = ecoinvent_conn.connection_dict()
    connection["host"] = "https://api.ecoinvent.invalid"
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventUnreachableError, match="host name does not resolve") as raised:
        transport("GET", "versions")
    assert "https://api.ecoinvent.invalid:443" in str(raised.value)
    assert "host name's spelling" in str(raised.value)
    assert transport.api_calls <= 2


def test_transient_failures_still_use_the_whole_budget_and_name_the_server(
    transport: Counted, ecoinvent_conn: EmulatorServer
) -> None:
    ecoinvent_conn.add_fault("status", status=503, path="/token", count=None)
    with pytest.raises(EcoinventRetriesExhaustedError) as raised:
        transport("GET", "versions")
    assert (
        f"token endpoint kept failing (HTTP 503) POST {TOKEN_PATH} at http://127.0.0.1:{ecoinvent_conn.port} "
        "(connection 'ecoinvent_default') after 6 attempts"
    ) in str(raised.value)
    assert transport.token_requests == 6  # 503 is transient: max_retries (5) retries


def test_plain_http_server_on_an_https_url_gets_scheme_advice(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = ecoinvent_conn.connection_dict()
    connection["host"] = f"127.0.0.1:{ecoinvent_conn.port}"  # no scheme: https is assumed
    connection.pop("schema", None)
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventApiError) as raised:
        transport("GET", "versions")
    message = str(raised.value)
    assert message.startswith(f"TLS handshake with https://127.0.0.1:{ecoinvent_conn.port} failed")
    assert "write the scheme in the host, e.g. http://host:port" in message
    assert "CA bundle" not in message


# -- test_connection -----------------------------------------------------------------------------------


def test_test_connection_on_a_refused_port_answers_after_one_retry(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    connection = ecoinvent_conn.connection_dict(max_retries=10, timeout=120)
    connection["extra"]["token_url"] = f"http://127.0.0.1:{port}/token"
    set_connection(monkeypatch, connection)
    hook = EcoinventHook()
    waits: list[float] = []
    hook._sleep = waits.append
    ok, message = hook.test_connection()
    assert not ok
    assert f"http://127.0.0.1:{port} (connection refused)" in message
    assert hook.token_requests == 2
    assert len(waits) == 1
    assert waits[0] <= 1.0


def test_test_connection_bounds_retries_and_restores_the_hook(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=503, path="/token", count=None, retry_after="60")
    hook = EcoinventHook()
    waits: list[float] = []
    hook._sleep = waits.append
    ok, message = hook.test_connection()
    assert not ok
    assert "kept failing (HTTP 503)" in message
    assert ecoinvent_conn.stats()["token_requests"] == 2  # not the connection's 6
    assert waits == [1.0]  # Retry-After: 60 capped for the test
    assert hook.retry_policy.max_retries == 5  # the hook's own policy is back afterwards
    assert hook.settings.timeout == 60.0


def test_test_connection_leaves_a_shared_hook_alone_while_it_runs(ecoinvent_conn: EmulatorServer) -> None:
    # Another thread using the same hook during a connection test must keep the hook's own limits.
    ecoinvent_conn.add_fault("status", status=503, path="/token", count=None)
    hook = EcoinventHook()
    seen_meanwhile: list[tuple[float, int]] = []

    def wait(seconds: float) -> None:  # runs in the middle of the test, as another thread would look
        seen_meanwhile.append((hook.settings.timeout, hook.retry_policy.max_retries))

    hook._sleep = wait
    ok, _ = hook.test_connection()
    assert not ok
    assert ecoinvent_conn.stats()["token_requests"] == 2  # the test itself ran with its short limits
    assert seen_meanwhile == [(60.0, 5)]


# -- concurrency and stopping -----------------------------------------------------------------------


def test_max_in_flight_above_the_pool_is_refused(ecoinvent_conn: EmulatorServer) -> None:
    with pytest.raises(EcoinventConfigError, match=r"max_in_flight must be from 1 to 32 \(the connections"):
        EcoinventHook().get_datasets([1, 2, 3], max_in_flight=64)
    assert ecoinvent_conn.stats()["token_requests"] == 0


def test_closing_a_stream_wakes_a_retry_wait_at_once(ecoinvent_conn: EmulatorServer) -> None:
    """A stopped run (on_kill closes the stream) must not sit out a two-minute Retry-After, nor call again."""
    ecoinvent_conn.add_fault("status", status=503, path="/datasets/batch", count=None, retry_after="120")
    hook = EcoinventHook()  # real waits: the wait is what is being interrupted
    stream = hook.get_datasets([1, 2, 3])
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            list(stream)
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    for _ in range(400):  # until the first batch call was answered 503 and the hook waits
        if ecoinvent_conn.stats()["requests"].get("POST /datasets/batch", 0):
            break
        time.sleep(0.025)
    stream.close()
    worker.join(timeout=30)  # far below the 120 s Retry-After; finishes in milliseconds when interrupted
    assert not worker.is_alive(), "the retry wait was not interrupted"
    assert ecoinvent_conn.stats()["requests"]["POST /datasets/batch"] == 1
    assert len(outcome) == 1
    assert isinstance(outcome[0], EcoinventError)


def test_a_redirecting_token_endpoint_is_named_and_not_followed(
    transport: Counted, ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, servers: Any
) -> None:
    other_url, other_received = servers(lambda handler: _json(handler, {"access_token": "x", "expires_in": 300}))

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(308)
        handler.send_header("Location", f"{other_url}/token?sig=query-secret")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    token_url, token_received = servers(redirect)
    connection = ecoinvent_conn.connection_dict()
    connection["extra"]["token_url"] = token_url + "/realms/x/token"
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventAuthError) as raised:
        transport("GET", "versions")
    assert str(raised.value) == (
        f"The token endpoint {token_url}/realms/x/token answered with a redirect (308) to host '127.0.0.1' for "
        "connection 'ecoinvent_default'; redirects are not followed, since the request carries the client "
        "secret: set the extra 'token_url' to the token endpoint itself."
    )
    assert len(token_received) == 1
    assert other_received == []


def test_closing_a_stream_wakes_a_token_retry_wait_too(ecoinvent_conn: EmulatorServer) -> None:
    hook = EcoinventHook()
    hook.get_access_token()  # resolve 'latest' needs a token: get one, then make the next one fail
    stream = hook.get_datasets([1, 2, 3])
    TOKEN_CACHE.clear()
    ecoinvent_conn.add_fault("status", status=503, path="/token", count=None, retry_after="120")
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            list(stream)
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    for _ in range(400):  # until the token request was answered 503 and the hook waits
        if ecoinvent_conn.stats()["token_requests"] >= 2:
            break
        time.sleep(0.025)
    stream.close()
    worker.join(timeout=30)  # far below the 120 s Retry-After
    assert not worker.is_alive(), "the token retry wait was not interrupted"
    assert ecoinvent_conn.stats()["token_requests"] == 2
    assert ecoinvent_conn.stats()["requests"].get("POST /datasets/batch", 0) == 0
    assert len(outcome) == 1
    assert isinstance(outcome[0], EcoinventError)
