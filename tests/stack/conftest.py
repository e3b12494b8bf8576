"""A real Airflow stack on loopback: api-server, scheduler (LocalExecutor), dag-processor and triggerer.

Every Airflow component runs in a subprocess with its own environment and its own ``AIRFLOW_HOME`` under a
temporary directory (the in-process ``AIRFLOW_HOME`` that ``tests/conftest.py`` sets is not used), in its own
process group, logging to a file. The emulator runs in this process (a thread); the stack reaches it over
loopback through ``AIRFLOW_CONN_ECOINVENT_DEFAULT``.

These tests take a few minutes and most of two cores, so they only run when selected:
``pytest tests/stack -m stack`` (or ``ECOINVENT_STACK_TESTS=1``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "example_dags"
#: Test-only DAGs, served as a second DAG bundle next to the DAGs folder (which stays ``example_dags``).
TEST_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
AIRFLOW = Path(sys.executable).with_name("airflow")
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Seconds any single wait may take (the stack start, a DAG run, a CLI call).
WAIT_TIMEOUT = 180.0
#: Seconds between SIGTERM and SIGKILL of a component's process group at teardown.
GRACE_SECONDS = 20.0
#: The client secret the emulator accepts: unique per session, so finding it anywhere proves a leak.
CLIENT_SECRET = "stack-secret-" + secrets.token_hex(8)

#: The DAGs the tests use: two example DAGs and the test-only masking DAG.
STACK_DAGS = frozenset({"ecoinvent_release_watcher", "ecoinvent_ingest_datasets", "ecoinvent_stack_log_masking"})

T = TypeVar("T")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the stack tests unless asked for with ``-m stack`` (or ``ECOINVENT_STACK_TESTS=1``)."""
    if "stack" in (config.getoption("markexpr") or "") or os.environ.get("ECOINVENT_STACK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="starts a full Airflow stack (minutes): run with `-m stack`")
    for item in items:
        if item.get_closest_marker("stack") is not None:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"stack_report_{report.when}", report)
    return report


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"<{err}>"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class AirflowStack:
    """A running stack and the means to drive it (CLI, REST API) and to diagnose it."""

    home: Path
    log_dir: Path
    output_dir: Path
    env: dict[str, str]
    api_url: str
    emulator: EmulatorServer
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- driving ----------------------------------------------------------------------------------

    def airflow(
        self, *args: str, timeout: float = WAIT_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this stack (about 7 s of start-up per call on this machine)."""
        try:
            result = subprocess.run(
                [str(AIRFLOW), *args],
                env=self.env,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=timeout,
                start_new_session=True,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"`airflow {' '.join(args)}` took over {timeout} s\n{self.diagnostics()}") from err
        if check and result.returncode != 0:
            raise AssertionError(
                f"`airflow {' '.join(args)}` exited with {result.returncode}\n"
                f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}\n{self.diagnostics()}"
            )
        return result

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """Call the public REST API (``/api/v2/...``); the simple auth manager lets everyone in as admin."""
        request = urllib.request.Request(
            self.api_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def dag_runs_api(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs from the REST API (cheap enough to poll)."""
        runs: list[dict[str, Any]] = self.api(f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
        return runs

    def dag_runs_cli(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs from ``airflow dags list-runs -o json`` (slow: one CLI start-up)."""
        out = self.airflow("dags", "list-runs", dag_id, "-o", "json").stdout
        # The CLI prints warnings (e.g. "[warning  ] Could not import graphviz") on stdout before the JSON.
        for line in reversed(out.splitlines()):
            if line.startswith("["):
                with contextlib.suppress(ValueError):
                    runs: list[dict[str, Any]] = json.loads(line)
                    return runs
        raise AssertionError(f"no JSON list in `airflow dags list-runs` output:\n{out}")

    def wait_for(
        self, what: str, probe: Callable[[], T | None], timeout: float = WAIT_TIMEOUT, every: float = 1.0
    ) -> T:
        """Call ``probe`` until it returns something truthy; fail with every component's log tail after ``timeout``."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self.assert_alive()
            try:
                value = probe()
            except (OSError, urllib.error.URLError, ValueError, KeyError) as err:
                value, last_error = None, err
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(every)

    def assert_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow component(s) exited: {dead}\n{self.diagnostics()}")

    # -- diagnosing ---------------------------------------------------------------------------------

    def component_logs(self) -> dict[str, Path]:
        return {name: self.log_dir / f"{name}.log" for name in COMPONENTS}

    def log_files(self) -> list[Path]:
        """Every file under ``$AIRFLOW_HOME/logs`` (task logs, DAG-processor logs, ...)."""
        return sorted(p for p in (self.home / "logs").rglob("*") if p.is_file())

    def task_logs(self, dag_id: str = "") -> list[Path]:
        """Task log files (``logs/dag_id=<dag_id>/run_id=.../task_id=.../attempt=N.log``)."""
        return sorted((self.home / "logs").glob(f"dag_id={dag_id or '*'}/**/*.log"))

    def diagnostics(self, lines: int = 40) -> str:
        parts = [f"===== {name} ({path}) =====\n{tail(path, lines)}" for name, path in self.component_logs().items()]
        for path in sorted(self.task_logs(), key=lambda p: p.stat().st_mtime)[-6:]:
            parts.append(f"===== {path.relative_to(self.home)} =====\n{tail(path, 15)}")
        with contextlib.suppress(Exception):
            parts.append(f"===== emulator stats =====\n{json.dumps(self.emulator.stats())[:2000]}")
        return "\n".join(parts)

    # -- life-cycle ---------------------------------------------------------------------------------

    def start(self, name: str, *args: str) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        try:
            self.processes[name] = subprocess.Popen(
                [str(AIRFLOW), *args],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: teardown kills it and every child
            )
        finally:
            log.close()

    def stop(self) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after the grace period."""
        groups = {name: p.pid for name, p in self.processes.items()}
        for pgid in groups.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in groups.values()):
            time.sleep(0.2)
        for pgid in groups.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def leftover_processes(self) -> list[str]:
        """Processes still alive in a component's group or with this stack's ``AIRFLOW_HOME`` in their env."""
        left = [f"process group {p.pid} ({name})" for name, p in self.processes.items() if _group_alive(p.pid)]
        marker = f"AIRFLOW_HOME={self.home}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                environ = (proc / "environ").read_bytes()
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker + b"\0" in environ + b"\0" and not _is_zombie(proc):
                left.append(f"pid {proc.name}: {cmdline[:200]}")
        return left


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_zombie(proc: Path) -> bool:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def stack_env(home: Path, api_port: int, emulator: EmulatorServer, output_dir: Path) -> dict[str, str]:
    """The environment of every Airflow subprocess: nothing inherited from the in-process test set-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        PATH=f"{AIRFLOW.parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
        # -- core: an explicit home, DB, DAGs folder, executor; nothing generated per process -----
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(
            [
                {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
                {"name": "stack-test-dags", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(TEST_DAGS_FOLDER)}},
            ]
        ),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",  # works with SQLite on 3.3 (no SequentialExecutor any more)
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__CORE__FERNET_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        # -- the api-server, and how workers reach its execution API ---------------------------------
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),  # one key for the scheduler (signs) and api (checks)
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",  # the test reads /api/v2 without logging in
        # -- log servers: free ports, so concurrent stacks (or a developer's Airflow) do not clash -----
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        # -- speed: parse, schedule and heartbeat often ----------------------------------------------
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC="2",
        AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
        AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="2",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",
        # -- the provider's side ---------------------------------------------------------------------
        AIRFLOW_CONN_ECOINVENT_DEFAULT=emulator.connection_json(),
        ECOINVENT_WATCH_INTERVAL="1",
        ECOINVENT_OUTPUT_ROOT=output_dir.as_uri(),
    )
    return env


@pytest.fixture(scope="module")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """Migrate a fresh SQLite DB, create the pool, start the four components, wait until all are healthy."""
    root = tmp_path_factory.mktemp("stack")
    home, log_dir, output_dir = root / "airflow", root / "component-logs", root / "out"
    for directory in (home, log_dir, output_dir):
        directory.mkdir()
    with EmulatorServer(client_secret=CLIENT_SECRET) as emulator:
        api_port = free_port()
        stack = AirflowStack(
            home=home,
            log_dir=log_dir,
            output_dir=output_dir,
            env=stack_env(home, api_port, emulator, output_dir),
            api_url=f"http://127.0.0.1:{api_port}",
            emulator=emulator,
        )
        started = time.monotonic()
        try:
            stack.airflow("db", "migrate")
            stack.airflow("pools", "set", "ecoinvent_api", "4", "ecoinvent API calls")
            stack.start("api-server", "api-server", "--port", str(api_port))
            stack.start("scheduler", "scheduler")
            stack.start("dag-processor", "dag-processor")
            stack.start("triggerer", "triggerer")
            stack.wait_for("every component to report healthy", lambda: _all_healthy(stack))
            stack.wait_for("the example DAGs to be parsed", lambda: _dags_present(stack, STACK_DAGS))
            print(f"\n[stack] up in {time.monotonic() - started:.0f} s at {stack.api_url} (home {home})")
            yield stack
        finally:
            failed = any(
                getattr(getattr(item, "stack_report_call", None), "failed", False) for item in request.session.items
            )
            if failed:
                print(f"\n[stack] a test failed; component logs:\n{stack.diagnostics(80)}")
            stack.stop()
            left = stack.leftover_processes()
            if left:
                # Last resort, so a failing check does not leave the machine loaded.
                for line in left:
                    if line.startswith("pid "):
                        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                            os.kill(int(line.split()[1].rstrip(":")), signal.SIGKILL)
            assert not left, f"processes left running after teardown: {left}"
            print(f"[stack] stopped cleanly after {time.monotonic() - started:.0f} s")


def _all_healthy(stack: AirflowStack) -> bool:
    health = stack.api("/api/v2/monitor/health")
    return all(
        (health.get(part) or {}).get("status") == "healthy"
        for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
    )


def _dags_present(stack: AirflowStack, dag_ids: set[str]) -> bool:
    dags = stack.api("/api/v2/dags?limit=100")["dags"]
    return dag_ids <= {d["dag_id"] for d in dags}
