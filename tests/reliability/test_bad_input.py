"""Bad input end to end: each mistake gets its own message, before any network call where possible.

Every case runs the datasets operator the way a worker does (construct, then ``execute``) against a live
emulator named by the connection, and then reads the emulator's ledger: zero token requests and zero API
calls for everything that can be known without the API; for what only the API knows (the version is not
in the licence, the cost guard needs the pinned version), no scored call.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator.config import TOKEN_PATH
from airflow_provider_ecoinvent.exceptions import EcoinventConfigError, EcoinventCostGuardError
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer
    from tests.reliability.conftest import LeakScan


def use_connection(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """Point ``ecoinvent_default`` at the emulator with some fields changed (``extra`` merged)."""
    connection = emulator.connection_dict()
    extra = {**connection["extra"], **changes.pop("extra", {})}
    connection.update(changes, extra=extra)
    for key in [key for key, value in connection.items() if value is None]:
        del connection[key]
    monkeypatch.setenv("AIRFLOW_CONN_ECOINVENT_DEFAULT", json.dumps(connection))


def no_calls(emulator: EmulatorServer) -> None:
    stats = emulator.stats()
    assert (stats["token_requests"], stats["api_calls"]) == (0, 0), stats["requests"]


def run(out: Path, **kwargs: Any) -> dict[str, Any]:
    operator = EcoinventDatasetsOperator(task_id="ingest", **{"output_uri": f"file://{out}", **kwargs})
    return operator.execute({})  # type: ignore[arg-type]


GOOD = {"dataset_ids": [1, 2, 3], "indicator_ids": [1]}

# (id, connection changes, message). "TOKEN" in a URL is replaced with the emulator's token URL, so a
# refused value would otherwise have reached a live token endpoint.
BAD_CONNECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("no-secret", {"password": None}, "the client secret (field 'password') is empty"),
    ("empty-secret", {"password": ""}, "the client secret (field 'password') is empty"),
    ("no-client-id", {"login": None}, "the client id (field 'login') is empty"),
    ("blank-client-id", {"login": "   "}, "the client id (field 'login') is empty"),
    ("http-non-loopback-host", {"host": "http://api.ecoinvent.example"}, "uses plain http:// to a host"),
    ("http-non-loopback-token-url", {"extra": {"token_url": "http://sso.example/token"}}, "extra 'token_url'"),
    ("host-with-credentials", {"host": "https://id:pw@api.example"}, "must not embed credentials"),
    ("host-bad-port", {"host": "https://api.example:99999"}, "host is not a valid http:// or https:// URL"),
    ("schema-not-http", {"host": "api.example", "schema": "ftp"}, "field 'schema' must be 'http' or 'https'"),
    ("timeout-text", {"extra": {"timeout": "soon"}}, "extra 'timeout' must be a positive number of seconds"),
    ("timeout-zero", {"extra": {"timeout": 0}}, "extra 'timeout' must be a positive number of seconds"),
    ("timeout-negative", {"extra": {"timeout": -5}}, "extra 'timeout' must be a positive number of seconds"),
    ("timeout-nan", {"extra": {"timeout": "nan"}}, "extra 'timeout' must be a positive number of seconds"),
    ("api-prefix-url", {"extra": {"api_prefix": "https://api.ecoinvent.org/v0"}}, "extra 'api_prefix' must be"),
    ("api-prefix-query", {"extra": {"api_prefix": "/v0?x=1"}}, "extra 'api_prefix' must be a URL path"),
    ("api-prefix-double-slash", {"extra": {"api_prefix": "//evil.example/v0"}}, "extra 'api_prefix' must be"),
    ("max-retries-negative", {"extra": {"max_retries": -1}}, "extra 'max_retries' must be a whole number from 0"),
    ("batch-size-too-big", {"extra": {"batch_size": 10001}}, "extra 'batch_size' must be a whole number from 1"),
    ("client-auth-unknown", {"extra": {"client_auth": "digest"}}, "extra 'client_auth' must be 'body' or 'basic'"),
    ("insecure-flag-unreadable", {"extra": {"allow_insecure_http": "maybe"}}, "must be true or false"),
    ("guard-negative", {"extra": {"max_unique_datasets": -1}}, "extra 'max_unique_datasets' must be"),
]


@pytest.mark.parametrize(("changes", "message"), [pytest.param(c, m, id=i) for i, c, m in BAD_CONNECTIONS])
def test_bad_connection_fails_before_any_call(
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    leak_scan: LeakScan,
    changes: dict[str, Any],
    message: str,
) -> None:
    use_connection(emulator, monkeypatch, **changes)
    with pytest.raises(EcoinventConfigError) as raised:
        run(tmp_path / "out.jsonl", **GOOD)
    leak_scan.add("error", raised.value)
    assert message in str(raised.value)
    assert "'ecoinvent_default'" in str(raised.value)  # names the connection
    no_calls(emulator)
    assert not any(tmp_path.iterdir())


def test_unknown_extra_is_a_warning_naming_it(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    use_connection(emulator, monkeypatch, extra={"tiemout": 5, "X-Api-Key": "k"})
    manifest = run(tmp_path / "out.jsonl", **GOOD)
    assert manifest["record_count"] == 3  # a warning, not an error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("tiemout" in w and "X-Api-Key" in w and "ignores" in w for w in warnings), warnings


# Operator arguments: (id, kwargs, error type, message).
BAD_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("ids-and-names", {"indicators": [{"method": "EF v3.1"}]}, "Give either indicator_ids or indicators, not both"),
    ("text-id", {"dataset_ids": [1, "2"]}, "dataset ids must be positive integers; got '2'"),
    ("float-id", {"dataset_ids": [1, 2.5]}, "got 2.5"),
    ("zero-id", {"dataset_ids": [0]}, "got 0"),
    ("unreadable-id-text", {"dataset_ids": "1; DROP TABLE"}, "could not read"),
    ("ids-and-query", {"query": "steel"}, "Give either dataset_ids or a search"),
    ("unknown-format", {"format": "xlsx"}, "format must be one of jsonl, parquet, got 'xlsx'"),
    ("uri-without-scheme", {"output_uri": "/data/out.jsonl"}, "output_uri must be a URI with a scheme"),
    # A folder URI is a dataset directory (issue 14); only a root, which clean-up would sweep, is refused.
    (
        "uri-root-folder",
        {"output_uri": "file:///"},
        "names no folder: a dataset directory needs its own folder, such as 'file:///data/",
    ),
    ("max-in-flight-negative", {"max_in_flight": -4}, "max_in_flight must be a whole number >= 1, got -4"),
    ("max-in-flight-zero", {"max_in_flight": 0}, "max_in_flight must be a whole number >= 1"),
    ("guard-negative", {"max_unique_datasets": -1}, "max_unique_datasets must be a whole number >= 0"),
]


@pytest.mark.parametrize(("kwargs", "message"), [pytest.param(k, m, id=i) for i, k, m in BAD_ARGUMENTS])
def test_bad_operator_argument_fails_at_construction(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(EcoinventConfigError, match=re.escape(message)):
        run(tmp_path / "out.jsonl", **{**GOOD, **kwargs})
    no_calls(ecoinvent_conn)


def test_literal_empty_id_list_fails_at_construction(ecoinvent_conn: EmulatorServer, tmp_path: Path) -> None:
    with pytest.raises(EcoinventConfigError, match="dataset_ids is empty"):
        run(tmp_path / "out.jsonl", dataset_ids=[], indicator_ids=[1])
    no_calls(ecoinvent_conn)


# What only the API knows: "unknown version format" means a version name this licence does not have
# (a typo, a 'v' prefix, a comma): refused after the free GET /versions, before any scored call.
UNKNOWN_VERSIONS = ["3.99", "v3.11", "3,11", "3.11-sandbox", "latest-1"]


@pytest.mark.parametrize("version", UNKNOWN_VERSIONS, ids=[f"version-{v}" for v in UNKNOWN_VERSIONS])
def test_version_not_in_the_licence_fails_before_any_scored_call(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, version: str
) -> None:
    with pytest.raises(EcoinventConfigError) as raised:
        run(tmp_path / "out.jsonl", **GOOD, version=version)
    assert f"Version {version!r} is not available to connection 'ecoinvent_default'" in str(raised.value)
    assert "available: 3.9, 3.10, 3.11" in str(raised.value)
    stats = ecoinvent_conn.stats()
    assert stats["requests"] == {"GET /versions": 1, "POST /token": 1}
    assert stats["scored_calls"] == 0
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["operator", "connection"])
def test_cost_guard_exceeded_fails_before_any_scored_call(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    kwargs: dict[str, Any] = {"dataset_ids": list(range(1, 151)), "indicator_ids": [1, 2]}
    if where == "operator":
        use_connection(emulator, monkeypatch)
        kwargs["max_unique_datasets"] = 100
    else:
        use_connection(emulator, monkeypatch, extra={"max_unique_datasets": 100})
    with pytest.raises(EcoinventCostGuardError, match="would score 150 distinct datasets") as raised:
        run(tmp_path / "out.jsonl", **kwargs)
    assert "max_unique_datasets=100" in str(raised.value)
    stats = emulator.stats()
    assert "POST /datasets/batch" not in stats["requests"]
    assert stats["scored_calls"] == 0
    assert not any(tmp_path.iterdir())


def test_templated_empty_selection_writes_an_empty_file(ecoinvent_conn: EmulatorServer, tmp_path: Path) -> None:
    """An upstream task that selected nothing today is not an error: an empty file, nothing billed."""
    operator = EcoinventDatasetsOperator(
        task_id="ingest", dataset_ids="{{ ti.xcom_pull('pick') }}", indicator_ids=[1], output_uri=f"file://{tmp_path}/o"
    )
    operator.dataset_ids = "[]"  # what the template renders to
    manifest = operator.execute({})  # type: ignore[arg-type]
    assert (manifest["record_count"], manifest["requested_datasets"]) == (0, 0)
    assert (tmp_path / "o").read_bytes() == b""
    assert ecoinvent_conn.stats()["scored_calls"] == 0


def test_token_url_is_only_reached_with_valid_settings(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Control case for the table above: the same connection, valid, does reach the token endpoint."""
    use_connection(emulator, monkeypatch, extra={"token_url": emulator.base_url + TOKEN_PATH})
    run(tmp_path / "out.jsonl", **GOOD)
    assert emulator.stats()["token_requests"] == 1
