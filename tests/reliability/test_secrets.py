"""Secrets: never in logs, errors, XCom, rendered fields, trigger kwargs or reprs; never sent where they
should not go (plain HTTP, another host after a redirect, an unverified TLS peer).

The cross-cutting scan is the autouse ``leak_scan`` fixture of this folder's conftest: every test of the
reliability suite (faults included) is scanned. The tests here add the artefacts the other tests do not
produce, and the transport-level checks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorConfig, EmulatorServer
from airflow_provider_ecoinvent.emulator.config import TOKEN_PATH
from airflow_provider_ecoinvent.emulator.control import connection_dict_for
from airflow_provider_ecoinvent.emulator.server import create_server, shutdown_server
from airflow_provider_ecoinvent.exceptions import EcoinventApiError, EcoinventAuthError, EcoinventConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.reliability.conftest import Ingestion, LeakScan


def set_connection(monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(connection))


# -- everything a user can see, after a run with faults ---------------------------------------------


def test_no_credential_in_anything_a_run_exposes(
    ecoinvent_conn: EmulatorServer, run_ingestion: Callable[..., Ingestion], leak_scan: LeakScan
) -> None:
    from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE, token_key
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook
    from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator
    from airflow_provider_ecoinvent.sensors.ecoinvent import EcoinventVersionSensor
    from airflow_provider_ecoinvent.triggers.ecoinvent import EcoinventNewVersionTrigger, EcoinventVersionTrigger

    for rule in (
        {"kind": "revoke", "after": 1},
        {"kind": "status", "status": 503, "retry_after": "0", "after": 2},
        {"kind": "drop", "after": 3},
    ):
        ecoinvent_conn.add_fault(path="/datasets/batch", **rule)
    ok = run_ingestion("ok", dataset_ids=list(range(1, 301)), indicator_ids=[1, 2], user_id="{{ run_id }}")
    assert ok.state == "success", ok.error
    assert ok.rendered, "the rendered template fields were not stored"
    ecoinvent_conn.add_fault("status", status=403, path="/datasets/batch", count=None)
    failed = run_ingestion("failed", dataset_ids=[1, 2], indicator_ids=[1])
    assert failed.state == "failed"
    ecoinvent_conn.clear_faults()

    hook = EcoinventHook()
    hook.get_versions()
    stream = hook.get_datasets([1, 2])
    list(stream)
    sensor = EcoinventVersionSensor(task_id="wait", version="3.11")
    assert sensor.poke({})  # type: ignore[arg-type]
    operator = EcoinventDatasetsOperator(task_id="ingest", dataset_ids=[1], output_uri="file:///tmp/x.jsonl")
    for name, value in {
        "hook": hook,
        "settings": hook.settings,
        "token key": token_key(hook.settings),
        "cached token": TOKEN_CACHE.peek(token_key(hook.settings)),
        "stream": stream,
        "operator": operator,
        "sensor": sensor,
        "sensor hook": sensor.hook,
        "version trigger kwargs": EcoinventVersionTrigger(version="3.12", timeout=5).serialize(),
        "watcher kwargs": EcoinventNewVersionTrigger().serialize(),
        "session headers": dict(hook.session.headers),
    }.items():
        leak_scan.add(name, value)
    # The scan (at teardown) is only meaningful if tokens were issued and renewed.
    assert len(leak_scan.tokens) >= 2
    assert len(leak_scan.tokens) == ecoinvent_conn.stats()["tokens_issued"]


def test_token_endpoint_echoing_the_secret_is_scrubbed(ecoinvent_conn: EmulatorServer, leak_scan: LeakScan) -> None:
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    secret = ecoinvent_conn.client_secret
    ecoinvent_conn.add_fault(
        "status", status=400, path=TOKEN_PATH, error="invalid_request", detail=f"bad form: client_secret={secret}"
    )
    with pytest.raises(EcoinventAuthError) as raised:
        EcoinventHook().get_versions()
    assert "invalid_request" in str(raised.value)
    assert secret not in str(raised.value)


# -- plain HTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "url"),
    [("host", "http://api.example.test"), ("token_url", "http://sso.example.test/token"), ("host", "http://10.0.0.7")],
    ids=["api-host", "token-url", "private-ip"],
)
def test_credentials_refused_over_plain_http(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, field: str, url: str
) -> None:
    from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    connection = ecoinvent_conn.connection_dict()
    if field == "host":
        connection["host"] = url
    else:
        connection["extra"]["token_url"] = url
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventConfigError, match="plain http://"):
        EcoinventHook().get_versions()

    async def versions() -> Any:
        async with EcoinventAsyncClient() as client:
            return await client.get_versions()

    with pytest.raises(EcoinventConfigError, match="plain http://"):
        asyncio.run(versions())
    assert ecoinvent_conn.stats()["token_requests"] == 0


# -- redirects --------------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request; records the path, headers and body it received."""

    received: list[dict[str, Any]]
    redirect_to: str | None

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
        if self.redirect_to is not None:
            self.send_response(307)
            self.send_header("Location", self.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = b'{"results": [{"version": "9.9", "system_models": ["cutoff"]}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _recording_server(host: str, redirect_to: str | None = None) -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Recorder,), {"received": received, "redirect_to": redirect_to})
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, received


@pytest.fixture
def redirect_pair() -> Iterator[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """A server on 127.0.0.1 that 307-redirects everything to a second one reached as ``localhost``."""
    other, other_received = _recording_server("127.0.0.1")
    other_url = f"http://localhost:{other.server_address[1]}"
    first, first_received = _recording_server("127.0.0.1", redirect_to=other_url)
    yield f"http://127.0.0.1:{first.server_address[1]}", first_received, other_received
    for server in (first, other):
        server.shutdown()
        server.server_close()


def test_authorization_not_forwarded_on_a_redirect_to_another_host(
    ecoinvent_conn: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    redirect_pair: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
    leak_scan: LeakScan,
) -> None:
    from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    redirecting, first_received, other_received = redirect_pair
    connection = ecoinvent_conn.connection_dict()
    connection["host"] = redirecting  # the token still comes from the emulator
    set_connection(monkeypatch, connection)

    hook = EcoinventHook()
    try:
        hook.get_versions()
    except Exception as err:  # following or refusing the redirect are both fine; leaking is not
        leak_scan.add("sync error", err)

    async def versions() -> Any:
        async with EcoinventAsyncClient() as client:
            return await client.get_versions()

    with pytest.raises(EcoinventApiError, match="307"):  # httpx does not follow redirects here
        asyncio.run(versions())

    token = hook.get_access_token()
    assert first_received, "the API call never reached the redirecting server"
    assert all("Bearer" in str(r["headers"].get("Authorization")) for r in first_received)
    for record in other_received:
        assert "Authorization" not in record["headers"], record["headers"]
        assert token not in json.dumps(record)
        assert ecoinvent_conn.client_secret not in json.dumps(record)


def test_token_request_not_forwarded_on_a_redirect(
    ecoinvent_conn: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    redirect_pair: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
    leak_scan: LeakScan,
) -> None:
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    redirecting, first_received, other_received = redirect_pair
    connection = ecoinvent_conn.connection_dict()
    connection["extra"]["token_url"] = redirecting + "/token"
    set_connection(monkeypatch, connection)
    with pytest.raises(EcoinventAuthError, match=r"\(307\)") as raised:
        EcoinventHook().get_versions()
    leak_scan.add("error", raised.value)
    assert len(first_received) == 1
    assert other_received == []  # the form with the secret went nowhere else


# -- TLS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a server certificate for 127.0.0.1 and localhost, made with ``cryptography``."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - cryptography ships with Airflow
        pytest.fail("the 'cryptography' package is missing from the venv: the TLS tests cannot build a CA")
    import ipaddress

    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("reliability test CA"))
        .issuer_name(name("reliability test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    files["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class TlsEmulator:
    """The emulator served over HTTPS on loopback with the test CA's certificate."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.config = EmulatorConfig()
        self.server = create_server(self.config)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files["cert"], files["key"])
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"https://127.0.0.1:{self.server.port}"

    def connection(self, **extra: Any) -> dict[str, Any]:
        return connection_dict_for(self.config, self.base_url, **extra)

    def stats(self) -> dict[str, Any]:
        return self.server.app.ledger.snapshot()

    def stop(self) -> None:
        shutdown_server(self.server)
        self.thread.join(timeout=5)


@pytest.fixture
def tls_emulator(tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsEmulator]:
    # A clean environment: CA bundles named by the environment are BUG-4's subject, tested on their own.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    emulator = TlsEmulator(tls_files)
    yield emulator
    emulator.stop()


def _sync_versions() -> list[str]:
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    return [v.name for v in EcoinventHook().get_versions()]


def _async_versions() -> list[str]:
    from airflow_provider_ecoinvent.hooks.async_client import EcoinventAsyncClient

    async def versions() -> list[str]:
        async with EcoinventAsyncClient() as client:
            return [v.name for v in await client.get_versions()]

    return asyncio.run(versions())


@pytest.mark.parametrize("client", [_sync_versions, _async_versions], ids=["hook", "async-client"])
def test_tls_verified_by_default_and_with_a_ca_bundle(
    tls_emulator: TlsEmulator,
    tls_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    client: Callable[[], list[str]],
) -> None:
    set_connection(monkeypatch, tls_emulator.connection())
    with pytest.raises(EcoinventApiError, match="TLS verification failed") as raised:
        client()
    assert "Set the connection extra 'verify'" in str(raised.value)
    assert tls_emulator.stats()["token_requests"] == 0  # the secret never left over the unverified channel

    set_connection(monkeypatch, tls_emulator.connection(verify=str(tls_files["ca"])))
    assert client()[-1] == "3.11"
    assert tls_emulator.stats()["token_requests"] == 1


def test_connection_ca_bundle_wins_over_the_environment(
    tls_emulator: TlsEmulator, tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # common on corporate workers
    set_connection(monkeypatch, tls_emulator.connection(verify=str(tls_files["ca"])))
    assert _async_versions()[-1] == "3.11"  # the async client honours the connection
    assert _sync_versions()[-1] == "3.11"


_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.mark.parametrize("variable", _CA_VARIABLES)
def test_worker_and_triggerer_trust_the_same_environment_ca_bundle(
    tls_emulator: TlsEmulator, tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A corporate CA named by any of the usual variables is trusted by the hook and the async client alike."""
    for name in _CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls_files["ca"]))
    set_connection(monkeypatch, tls_emulator.connection())
    assert _sync_versions()[-1] == "3.11"
    assert _async_versions()[-1] == "3.11"


def test_environment_ca_bundles_are_honoured_in_the_documented_order(
    tls_emulator: TlsEmulator, tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    # REQUESTS_CA_BUNDLE (certifi: cannot verify the private CA) comes before SSL_CERT_FILE (the private CA).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["ca"]))
    set_connection(monkeypatch, tls_emulator.connection())
    for client in (_sync_versions, _async_versions):
        with pytest.raises(EcoinventApiError, match="TLS verification failed"):
            client()


def _hashed_ca_directory(ca: Path, folder: Path) -> Path:
    """A directory holding ``ca`` under its subject-hash name, as OpenSSL's ``capath`` lookup needs."""
    import shutil
    import subprocess

    folder.mkdir()
    shutil.copy(ca, folder / "test-ca.pem")
    openssl = shutil.which("openssl")
    if openssl is None:  # pragma: no cover - the image ships OpenSSL
        pytest.fail("the 'openssl' command is needed to hash a CA directory")
    subprocess.run([openssl, "rehash", str(folder)], check=True, capture_output=True)
    return folder


@pytest.mark.parametrize("source", ["REQUESTS_CA_BUNDLE", "extra"])
def test_worker_and_triggerer_trust_a_ca_directory_alike(
    tls_emulator: TlsEmulator, tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    """A directory of hashed certificates (``capath``), as requests accepts, works in the triggerer too."""
    directory = str(_hashed_ca_directory(tls_files["ca"], tmp_path / "cas"))
    for name in _CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if source == "extra":
        set_connection(monkeypatch, tls_emulator.connection(verify=directory))
    else:
        monkeypatch.setenv(source, directory)
        set_connection(monkeypatch, tls_emulator.connection())
    assert _sync_versions()[-1] == "3.11"
    assert _async_versions()[-1] == "3.11"


def test_a_ca_directory_without_the_ca_fails_verification_on_both_paths(
    tls_emulator: TlsEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "empty"))
    set_connection(monkeypatch, tls_emulator.connection())
    for client in (_sync_versions, _async_versions):
        with pytest.raises(EcoinventApiError, match="TLS verification failed"):
            client()
    assert tls_emulator.stats()["token_requests"] == 0


def test_plain_http_connections_load_no_ca_bundle(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nothing to verify over http://: an unreadable CA bundle in the environment concerns neither path."""
    not_pem = tmp_path / "not-a-bundle.pem"
    not_pem.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(not_pem))
    set_connection(monkeypatch, emulator.connection_dict())
    assert _sync_versions()[-1] == "3.11"
    assert _async_versions()[-1] == "3.11"


def test_missing_environment_ca_bundle_names_the_variable(
    tls_emulator: TlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "gone.pem"))
    set_connection(monkeypatch, tls_emulator.connection())
    for client in (_sync_versions, _async_versions):
        with pytest.raises(EcoinventConfigError, match="Environment variable CURL_CA_BUNDLE names a CA bundle"):
            client()
    assert tls_emulator.stats()["token_requests"] == 0


def test_missing_ca_bundle_is_a_config_error(
    tls_emulator: TlsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, tls_emulator.connection(verify=str(tmp_path / "missing-ca.pem")))
    with pytest.raises(EcoinventConfigError, match="extra 'verify'"):
        _async_versions()
    with pytest.raises(EcoinventConfigError, match="extra 'verify'"):
        _sync_versions()
    assert tls_emulator.stats()["token_requests"] == 0
