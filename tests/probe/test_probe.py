"""The probe against the emulator (it must agree) and against the emulator's variant shapes (it must name
every difference), over real HTTP on loopback, in-process and as the command users run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent._client.tokens import TokenCache
from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.emulator.config import TOKEN_PATH
from airflow_provider_ecoinvent.emulator.lcia import indicators_for
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook
from airflow_provider_ecoinvent.probe import ProbeReport, run_probe
from airflow_provider_ecoinvent.probe.run import PROBE_RETRY_POLICY

if TYPE_CHECKING:
    from collections.abc import Iterator


CONN = "ecoinvent_default"
NOT_DEFINED = (
    "it is not defined where the probe can read it (AIRFLOW_CONN_<ID>, the secrets backend, or the metadata "
    "database of this AIRFLOW_HOME): export AIRFLOW_CONN_<ID> in this shell, or run the probe with the Airflow "
    "configuration (AIRFLOW_HOME) where the connection is defined"
)
#: The emulator's tokens look like JWTs: three dot-separated base64url parts.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")

#: Every difference the probe must name against ``shapes="variant"`` (emulator/shapes.py), per endpoint.
VARIANT_DIFFERENCES = {
    "token": ["wrong type      expires_in: expected integer, got string"],
    "versions": [
        "list elsewhere  items: the list is under 'items', expected under 'results' or 'versions' or a bare list; "
        "the provider does not look there and reads 0 of 3 items"
    ],
    "indicators": [
        "missing key     [].indicator: documented, absent from all 100 items",  # one page of the catalogue
        "extra key       [].name: not in the contract (string)",
    ],
    "search": [
        "paging field    total: required, absent; the provider pages on until a page comes back empty "
        "(one more call per listing)",
        "missing key     results[].activity: documented, absent from all 100 items",
        "wrong type      results[].sectors: expected array or null, got string",
        "extra key       results[].activity_name: not in the contract (string)",
    ],
    "scored": [
        "list elsewhere  results: the list is under 'results', expected under 'datasets'; the provider reads it",
        "missing key     results[].activity: documented, absent",
        "wrong type      results[].sectors: expected array or null, got string",
        "wrong type      results[].impact_scores[].score: expected number, got string",
        "extra key       results[].activity_name: not in the contract (string)",
    ],
}


def probe_hook(conn_id: str = CONN) -> EcoinventHook:
    """The hook the probe builds, with back-off waits recorded instead of slept."""
    hook = EcoinventHook(conn_id, retry_policy=PROBE_RETRY_POLICY, token_cache=TokenCache())
    hook._sleep = lambda seconds: None
    return hook


def lines(report: ProbeReport, endpoint: str) -> list[str]:
    return [difference.line() for difference in report.endpoint(endpoint).differences]


def requests_made(emulator: EmulatorServer) -> dict[str, int]:
    return dict(emulator.stats()["requests"])


@pytest.fixture
def variant(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    with EmulatorServer(shapes="variant") as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json())
        yield emulator


# -- agreement ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("versions_shape", ["object", "list"])
def test_no_difference_against_the_emulator(versions_shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorServer(versions_shape=versions_shape) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json())
        notices: list[str] = []
        report = run_probe(CONN, scored=True, hook=probe_hook(), notify=notices.append)
        stats = emulator.stats(include_ids=True)

    assert report.differences == []
    assert [(e.name, e.status) for e in report.endpoints] == [
        ("token", "ok"),
        ("versions", "ok"),
        ("indicators", "ok"),
        ("search", "ok"),
        ("scored", "ok"),
    ]
    assert report.exit_code == 0
    assert report.version == "3.11"
    assert report.endpoint("versions").summary == "3 versions read, newest 3.11"
    assert report.endpoint("search").summary == "100 datasets read from the first page (total 1000)"
    # One call each, and the scored call billed exactly one dataset and one indicator, as announced.
    assert stats["token_requests"] == 1
    assert stats["requests"] == {
        "POST /token": 1,
        "GET /versions": 1,
        "GET /indicators": 1,
        "GET /datasets": 1,
        "POST /datasets/batch": 1,
    }
    usage = stats["usage"][emulator.client_id]
    assert (usage["dataset_ids"], usage["indicator_ids"]) == ([1], [1])
    assert notices == [
        "Scored call: POST /v0/datasets/batch for dataset 1 and indicator 1; "
        "the licence bills it as 1 dataset, 1 indicator."
    ]
    assert report.render_text().endswith("Result: no difference; the API answers as the provider expects (exit 0).\n")


def test_without_scored_only_free_calls_are_made(ecoinvent_conn: EmulatorServer) -> None:
    report = run_probe(CONN, hook=probe_hook())

    assert report.exit_code == 0
    scored = report.endpoint("scored")
    assert scored.status == "skipped"
    assert scored.skipped == "add --scored to check one scored dataset (billed: 1 dataset, 1 indicator)"
    stats = ecoinvent_conn.stats()
    assert stats["usage"] == {}
    assert "POST /datasets/batch" not in stats["requests"]
    assert report.billed is None


# -- differences -------------------------------------------------------------------------------------


def test_names_each_difference_against_the_variant_shapes(variant: EmulatorServer) -> None:
    report = run_probe(CONN, scored=True, hook=probe_hook())

    assert {endpoint.name: lines(report, endpoint.name) for endpoint in report.endpoints} == VARIANT_DIFFERENCES
    assert report.exit_code == 1
    # No version could be read, so the data calls ask for the API's default.
    assert report.version == "latest"
    text = report.render_text()
    for endpoint_lines in VARIANT_DIFFERENCES.values():
        for line in endpoint_lines:
            assert f"    {line}\n" in text
    assert "Result: 13 differences in 5 answers (exit 1)." in text


def test_the_probe_says_what_the_provider_really_reads(variant: EmulatorServer) -> None:
    """The probe's verdicts on the variant ("reads 0 of 3", "reads it") are what the hook itself does."""
    report = run_probe(CONN, scored=True, hook=probe_hook())
    hook = probe_hook()

    assert report.endpoint("versions").summary == "0 versions read"
    assert hook.get_versions() == []
    # The probe reads one page; the hook reads the same shape page after page, to the whole catalogue.
    assert report.endpoint("indicators").summary == "100 indicators read"
    assert len(hook.get_indicators()) == len(indicators_for("3.11"))
    assert report.endpoint("scored").summary == "1 scored dataset read; billed: 1 dataset, 1 indicator"
    assert [d["id"] for d in hook.get_datasets([1], indicator_ids=[1], version="3.11")] == [1]


def test_a_failed_call_is_reported_and_nothing_is_billed(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("status", status=403, path="/indicators", count="inf", detail="Indicator not licensed")
    report = run_probe(CONN, scored=True, hook=probe_hook())

    indicators = report.endpoint("indicators")
    assert indicators.status == "failed"
    assert indicators.error == (
        "ecoinvent API answered 403 to GET /v0/indicators (connection 'ecoinvent_default'): the licence does not "
        "cover this version, system model, dataset or indicator. Server said: Indicator not licensed"
    )
    assert report.endpoint("search").status == "ok"
    assert report.endpoint("scored").skipped == "no indicator id to ask for"
    assert report.exit_code == 1
    assert ecoinvent_conn.stats()["usage"] == {}


# -- could not connect or authenticate ---------------------------------------------------------------


def test_wrong_secret_exits_2_before_any_api_call(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = {**emulator.connection_dict(), "password": "not-the-secret"}
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(wrong))
    report = run_probe(CONN, scored=True, hook=probe_hook())

    assert report.exit_code == 2
    assert report.error == (
        "Could not get an access token: The token endpoint rejected the client id or secret of connection "
        "'ecoinvent_default' (401 unauthorized_client): check the connection's login (client id) and password "
        "(client secret)."
    )
    assert [endpoint.name for endpoint in report.endpoints] == ["token"]
    assert emulator.stats()["api_calls"] == 0
    assert report.render_text().endswith(f"Result: could not connect or authenticate (exit 2): {report.error}\n")


def test_wrong_api_prefix_exits_2(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", emulator.connection_json(api_prefix="/v3/api1"))
    report = run_probe(CONN, hook=probe_hook())

    assert report.exit_code == 2
    assert report.error is not None
    assert report.error.startswith(
        "Got a token, but GET /v3/api1/versions failed: ecoinvent API answered 404 to GET /v3/api1/versions"
    )
    assert [endpoint.name for endpoint in report.endpoints] == ["token", "versions"]


def test_unknown_connection_exits_2() -> None:
    report = run_probe("no_such_connection")

    assert report.exit_code == 2
    assert report.error == "Could not read connection 'no_such_connection': " + NOT_DEFINED
    assert report.endpoints == []


def test_invalid_connection_exits_2_with_the_field_to_fix(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps({**emulator.connection_dict(), "login": ""}))
    report = run_probe(CONN)

    assert report.error == (
        "Could not read connection 'ecoinvent_default': Connection 'ecoinvent_default': the client id "
        "(field 'login') is empty; set it to your client id."
    )
    assert emulator.stats()["token_requests"] == 0


def test_a_token_answer_that_is_not_json_is_named_and_exits_2(ecoinvent_conn: EmulatorServer) -> None:
    ecoinvent_conn.add_fault("malformed", path=TOKEN_PATH, count="inf", body="<html>proxy login</html>")
    report = run_probe(CONN, hook=probe_hook())

    assert lines(report, "token") == ["not JSON        (answer): the token answer is not JSON"]
    assert report.exit_code == 2
    assert report.error is not None
    assert report.error.startswith("Could not get an access token: token endpoint kept failing")
    # The probe's short retry budget: three attempts, then the report.
    assert ecoinvent_conn.stats()["token_requests"] == 3


# -- safe to paste -----------------------------------------------------------------------------------


def test_neither_secret_nor_token_is_ever_printed(ecoinvent_conn: EmulatorServer) -> None:
    secret = ecoinvent_conn.client_secret
    # A server that echoes the secret back in an error.
    ecoinvent_conn.add_fault("status", status=422, path="/datasets", count="inf", detail=f"bad client {secret}")
    hook = probe_hook()
    report = run_probe(CONN, scored=True, hook=hook)
    token = hook.get_access_token()  # the probe's token, from the probe hook's cache

    assert report.endpoint("search").status == "failed"
    for output in (report.render_text(), report.render_json(), repr(report)):
        assert secret not in output
        assert token not in output
        assert not TOKEN_SHAPE.search(output)
    assert "Server said: bad client ***" in report.render_text()


def test_urls_are_shown_without_their_query(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = emulator.connection_dict()
    connection["extra"]["token_url"] += "?subscription-key=TOPSECRET-KEY-123"
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(connection))
    report = run_probe(CONN, hook=probe_hook())

    assert report.token_url == f"{emulator.base_url}{TOKEN_PATH}"
    for output in (report.render_text(), report.render_json(), repr(report)):
        assert "TOPSECRET" not in output


def test_the_token_answer_is_read_within_the_size_limit(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe looks at the token answer itself: it must read it with the hook's cap, not whole.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    total = 64 * 1024 * 1024
    sent: list[int] = []

    class Endless(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # no Content-Length: the body ends when the connection does
            chunk = b" " * 64 * 1024
            written = 0
            try:
                while written < total:
                    self.wfile.write(chunk)
                    written += len(chunk)
            except OSError:
                pass  # the client hung up
            sent.append(written)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        connection = emulator.connection_dict(max_response_bytes=1024 * 1024)
        connection["extra"]["token_url"] = f"http://127.0.0.1:{server.server_address[1]}{TOKEN_PATH}"
        monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(connection))
        report = run_probe(CONN, hook=probe_hook())
        for _ in range(200):  # the server thread notices the hang-up after the client closed the socket
            if sent:
                break
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert report.error is not None
    assert "over the limit of 1048576 bytes" in report.error
    assert sent
    assert sent[0] < total  # the probe stopped reading at the limit


def test_rendering_scrubs_what_a_finding_might_carry() -> None:
    """Defence in depth: even a finding that carried the secret, the token or URL credentials prints none."""
    report = ProbeReport(conn_id=CONN, system_model="cutoff", api_url="https://user:pa55word@api.example/v0")
    report.add_secret("s3cret-value")
    report.add_secret("tok.en.value")
    report.error = "echoed s3cret-value and tok.en.value via https://user:pa55word@sso.example/token"

    text, as_json = report.render_text(), report.render_json()
    for output in (text, as_json):
        assert "s3cret-value" not in output
        assert "tok.en.value" not in output
        assert "pa55word" not in output
    assert "echoed *** and *** via https://***@sso.example/token" in text
    assert json.loads(as_json)["api_url"] == "https://***@api.example/v0"


# -- the command -------------------------------------------------------------------------------------


def run_command(emulator: EmulatorServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **emulator.connection_env("probe_conn")}
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_ecoinvent.probe", "--conn-id", "probe_conn", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def assert_safe(result: subprocess.CompletedProcess[str], emulator: EmulatorServer) -> None:
    for output in (result.stdout, result.stderr):
        assert emulator.client_secret not in output
        assert not TOKEN_SHAPE.search(output)


def test_command_names_the_differences_of_the_variant(variant: EmulatorServer) -> None:
    result = run_command(variant, "--scored")

    assert result.returncode == 1, result.stderr
    for endpoint_lines in VARIANT_DIFFERENCES.values():
        for line in endpoint_lines:
            assert f"    {line}\n" in result.stdout
    assert "Scored call: POST /v0/datasets/batch for dataset 1 and indicator 1" in result.stderr
    assert "connection  probe_conn\n" in result.stdout
    assert_safe(result, variant)


def test_command_json_against_the_emulator(emulator: EmulatorServer) -> None:
    result = run_command(emulator, "--json")

    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)  # stdout holds the JSON only; logs go to stderr
    assert report["exit_code"] == 0
    assert report["connection"] == "probe_conn"
    assert [(e["name"], e["status"]) for e in report["endpoints"]] == [
        ("token", "ok"),
        ("versions", "ok"),
        ("indicators", "ok"),
        ("search", "ok"),
        ("scored", "skipped"),
    ]
    assert all(e["differences"] == [] for e in report["endpoints"])
    assert emulator.stats()["usage"] == {}
    assert_safe(result, emulator)


def test_command_reads_a_connection_added_to_the_metadata_database(airflow_db: Path, emulator: EmulatorServer) -> None:
    """``airflow connections add`` stores the connection in the metadata database of AIRFLOW_HOME (here the
    session's SQLite one, migrated by ``airflow db migrate``): the probe reads it from there, as the
    ``airflow connections`` commands do, with no AIRFLOW_CONN_* variable."""
    conn_id = "probe_in_metadata_db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW_CONN_")}
    airflow = Path(sys.executable).with_name("airflow")
    added = subprocess.run(
        [str(airflow), "connections", "add", conn_id, "--conn-json", emulator.connection_json()],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_ecoinvent.probe", "--conn-id", conn_id, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["connection"] == conn_id
    assert report["api_url"] == emulator.api_url
    assert [(e["name"], e["status"]) for e in report["endpoints"]][:4] == [
        ("token", "ok"),
        ("versions", "ok"),
        ("indicators", "ok"),
        ("search", "ok"),
    ]
    assert emulator.stats()["token_requests"] == 1
    assert_safe(result, emulator)


@pytest.mark.parametrize("context", [None, "client"])
def test_the_probe_leaves_the_process_context_as_it_found_it(
    ecoinvent_conn: EmulatorServer, monkeypatch: pytest.MonkeyPatch, context: str | None
) -> None:
    """Marked a server only while it reads its connection; a context set by Airflow is never changed."""
    if context is None:
        monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)
    else:
        monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", context)
    assert run_probe(CONN, hook=probe_hook()).exit_code == 0
    assert os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == context


def test_command_exit_code_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_provider_ecoinvent.probe.__main__ import main

    assert main(["--conn-id", "no_such_connection"]) == 2
    assert capsys.readouterr().out.endswith(
        "Result: could not connect or authenticate (exit 2): Could not read connection 'no_such_connection': "
        f"{NOT_DEFINED}\n"
    )


# -- docs --------------------------------------------------------------------------------------------


def test_docs_show_the_report_the_probe_prints() -> None:
    from airflow_provider_ecoinvent.probe.compare import KIND_LABELS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "probe.md").read_text(encoding="utf-8")
    for endpoint_lines in VARIANT_DIFFERENCES.values():
        for line in endpoint_lines:
            assert f"    {line}\n" in docs
    for kind, label in KIND_LABELS.items():
        assert f"| {label} | `{kind}` |" in docs
