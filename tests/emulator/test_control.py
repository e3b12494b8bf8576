"""Running the emulator: in-process, as a subprocess, from the command line, under concurrency."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_ecoinvent.emulator import EmulatorConfig, EmulatorProcess, EmulatorServer
from airflow_provider_ecoinvent.emulator.__main__ import DEFAULT_PORT, build_parser
from airflow_provider_ecoinvent.emulator.control import parse_startup_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator.testing import EmulatorFactory

    from .conftest import Api

ROOT = Path(__file__).resolve().parents[2]
MODULE = "airflow_provider_ecoinvent.emulator"


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_connection_dict_and_urls():
    with EmulatorServer(api_prefix="/v0") as emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
        assert emulator.api_url == emulator.base_url + "/v0"
        assert emulator.token_url == emulator.base_url + "/realms/ecoinvent/protocol/openid-connect/token"
        conn = emulator.connection_dict(max_retries=2)
        assert conn == {
            "conn_type": "ecoinvent",
            "host": emulator.base_url,
            "login": "emulator-client",
            "password": "emulator-secret",
            # no api_prefix: /v0 is the standard one (a short extra would make Airflow's masker warn)
            "extra": {"token_url": emulator.token_url, "max_retries": 2},
        }
        assert json.loads(emulator.connection_json()) == emulator.connection_dict()
        assert emulator.connection_env("my_conn") == {"AIRFLOW_CONN_MY_CONN": emulator.connection_json()}
    assert not emulator.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.base_url


def test_stop_closes_idle_keep_alive_connections(make_api: Callable[..., Api]):
    emulator = EmulatorServer().start()
    client = make_api(emulator)
    assert client.get("/versions").status_code == 200
    url = emulator.api_url + "/versions"
    emulator.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        client.session.get(url, timeout=5)


def test_config_round_trips_through_argv():
    config = EmulatorConfig(
        port=0,
        token_ttl=0.5,
        latency_ms=3.0,
        datasets=77,
        seed=4,
        api_prefix="/v3/api1",
        client_id="c",
        client_secret="s",
        faults=({"kind": "status", "status": 429, "retry_after": "Wed, 21 Oct 2026 07:28:00 GMT"},),
        extra_clients=(("b", "bs"),),
        versions_shape="list",
        omit_total=True,
        max_concurrency=3,
        concurrency_retry_after="1",
        page_cap=40,
    )
    from airflow_provider_ecoinvent.emulator.__main__ import config_from_args

    parser = build_parser()
    assert config_from_args(parser.parse_args(config.to_argv()), parser) == config


def test_help_documents_every_flag():
    result = subprocess.run(
        [sys.executable, "-m", MODULE, "--help"], capture_output=True, text=True, env=_env(), timeout=30, check=True
    )
    for flag in (
        "--host",
        "--port",
        "--token-ttl",
        "--latency-ms",
        "--datasets",
        "--seed",
        "--api-prefix",
        "--client-id",
        "--client-secret",
        "--fault",
        "--extra-client",
        "--versions-shape",
        "--omit-total",
        "--max-concurrency",
        "--concurrency-retry-after",
    ):
        assert flag in result.stdout
    for kind in ("status", "latency", "hang", "drop", "truncate", "malformed", "revoke", "omit", "concurrency"):
        assert kind in result.stdout


def test_bad_fault_flag_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", MODULE, "--fault", "explode"], capture_output=True, text=True, env=_env(), timeout=30
    )
    assert result.returncode == 2
    assert "fault kind" in result.stderr


def test_command_line_prints_the_lines_and_stops_cleanly_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--port", "0", "--datasets", "200000", "--api-prefix", "/v3/api1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n") for _ in range(3)]
        assert lines[0].startswith("export ECOINVENT_EMULATOR_BASE_URL=http://127.0.0.1:")
        base_url = lines[0].split("=", 1)[1]
        assert (
            lines[1] == f"export ECOINVENT_EMULATOR_TOKEN_URL={base_url}/realms/ecoinvent/protocol/openid-connect/token"
        )
        parsed = parse_startup_line(lines[2])
        assert parsed is not None
        key, conn = parsed
        assert key == "AIRFLOW_CONN_ECOINVENT_DEFAULT"
        assert json.loads(conn) == {
            "conn_type": "ecoinvent",
            "host": base_url,
            "login": "emulator-client",
            "password": "emulator-secret",
            "extra": {
                "token_url": base_url + "/realms/ecoinvent/protocol/openid-connect/token",
                "api_prefix": "/v3/api1",
            },
        }
        # That 200,000 datasets cost nothing at start is test_catalogue.py::test_a_large_catalogue_is_lazy.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_busy_port_is_named_with_what_to_do_not_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", MODULE, "--port", str(port)], capture_output=True, text=True, env=_env(), timeout=60
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"python -m airflow_provider_ecoinvent.emulator: port {port} on 127.0.0.1 is already in use (by another "
        "emulator, or a server such as Airflow's). Stop what listens there, or choose another port: --port N, or "
        "--port 0 for any free one.\n"
    )


def test_the_default_port_is_fixed_and_not_airflows():
    """A fixed port keeps a stored connection valid across restarts; 8080 is where Airflow's API server listens."""
    port = build_parser().parse_args([]).port
    assert port == DEFAULT_PORT
    assert port not in (0, 8080, 8793, 8794, 8974)


def test_sigint_also_exits_zero():
    process = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_emulator_process_has_the_same_interface(make_api: Callable[..., Api]):
    with EmulatorProcess(
        token_ttl=30, datasets=500, faults=[{"kind": "status", "status": 503, "path": "/versions"}]
    ) as emulator:
        process = emulator.process
        assert process is not None
        assert process.poll() is None
        assert emulator.startup_output["AIRFLOW_CONN_ECOINVENT_DEFAULT"] == emulator.connection_json()
        client = make_api(emulator)
        assert client.get("/versions").status_code == 503
        assert client.get("/versions").status_code == 200
        assert client.get("/datasets/501").status_code == 404
        emulator.add_fault("status", status=500, path="/indicators")
        assert client.get("/indicators").status_code == 500
        emulator.publish_version("3.12")
        assert "/3.12/" in client.get("/datasets/1").json()["url"]
        client.batch([1, 2], [1], headers={"X-User-Id": "u"})
        stats = emulator.stats()
        assert stats["usage"]["emulator-client"]["datasets"] == 2
        assert stats["faults_triggered"] == 2
        emulator.revoke_tokens()
        assert client.get("/versions").status_code == 401
        emulator.reset()
        assert emulator.stats()["api_calls"] == 0
    assert process.poll() == 0
    assert emulator.returncode == 0
    assert not emulator.running


def test_emulator_process_reports_a_failed_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        emulator = EmulatorProcess(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="exited with code"):
            emulator.start()
    assert emulator.process is None


def test_sixteen_concurrent_clients_overlap(ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]):
    latency = 0.3
    emulator = ecoinvent_emulator_factory(latency_ms=latency * 1000)
    clients = [make_api(emulator) for _ in range(16)]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def call(client: Api) -> None:
        barrier.wait()
        statuses.append(client.batch(list(range(1, 101)), list(range(1, 11)), params={"limit": 100}).status_code)

    threads = [threading.Thread(target=call, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    stats = emulator.stats()
    assert stats["max_in_flight"] == 16
    assert stats["in_flight"] == 0


def test_importing_the_emulator_does_not_import_airflow():
    code = (
        "import sys, airflow_provider_ecoinvent.emulator, airflow_provider_ecoinvent.emulator.__main__;"
        "print([m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"


def test_connection_env_fixture(ecoinvent_connection_env: EmulatorServer):
    import os

    assert os.environ["AIRFLOW_CONN_ECOINVENT_DEFAULT"] == ecoinvent_connection_env.connection_json()


def test_printed_lines_work_when_pasted_into_a_shell():
    """Issue 12: the printed lines are pasted into a shell as they are; bash must export every value intact."""
    process = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        pasted = "".join(process.stdout.readline() for _ in range(3))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    names = ("ECOINVENT_EMULATOR_BASE_URL", "ECOINVENT_EMULATOR_TOKEN_URL", "AIRFLOW_CONN_ECOINVENT_DEFAULT")
    show = f"import json, os; print(json.dumps({{name: os.environ[name] for name in {names!r}}}))"
    # The pasted lines, then the exported environment as a new process sees it.
    script = pasted + 'exec "$0" -c "$1"'
    result = subprocess.run(
        ["bash", "-c", script, sys.executable, show], capture_output=True, text=True, timeout=30, env={}
    )
    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)
    base_url = exported["ECOINVENT_EMULATOR_BASE_URL"]
    assert base_url.startswith("http://127.0.0.1:")
    assert exported["ECOINVENT_EMULATOR_TOKEN_URL"] == base_url + "/realms/ecoinvent/protocol/openid-connect/token"
    assert json.loads(exported["AIRFLOW_CONN_ECOINVENT_DEFAULT"])["host"] == base_url
