"""A production-shaped Airflow on loopback: PostgreSQL, Redis, an S3-compatible store and two Celery workers.

The servers come from packages (Debian ``postgresql`` and ``redis-server``, PyPI ``moto[server]``; ``make
test-distributed`` installs them when missing), each on 127.0.0.1 and a free port, each in its own process
group under a temporary directory, each stopped at teardown, also when a test fails:

* PostgreSQL: the metadata database (``airflow``), the Celery result backend, and the warehouse
  (``warehouse``) of the ``ecoinvent_to_postgres`` example DAG;
* Redis: the Celery broker;
* moto's server mode: the object store the DAGs write to (``s3://aws_default@<bucket>/...``);
* the bundled emulator (a thread of this process, as in ``tests/stack``);
* Airflow's api-server, scheduler (CeleryExecutor), dag-processor, triggerer and two Celery workers, ``w1``
  and ``w2``. Each worker reports its own name as the task instances' hostname (``[core]
  hostname_callable``) and writes task logs to its own folder, as two hosts would.

The Airflow side reuses ``tests/stack``'s ``AirflowStack`` (driving, waiting, diagnostics, teardown).
The suite is collected only when asked for (``-m distributed`` or ``ECOINVENT_DISTRIBUTED_TESTS=1``), so
the plain test run neither starts it nor reports it as skipped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer
from airflow_provider_ecoinvent.operators._output import PARTIAL_SUFFIX

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: Test-only DAGs (short retry delays, slow scoring, a deferred sensor), a bundle next to ``example_dags``.
TEST_DAGS_FOLDER = HERE / "dags"
#: Holds ``ecoinvent_worker_name``, the workers' ``hostname_callable``.
WORKER_SITE = HERE / "worker_site"
WORKERS = ("w1", "w2")
#: Task slots per worker: one, like two small hosts, so two tasks that run at once run on both workers.
WORKER_CONCURRENCY = 1
BUCKET = "ecoinvent-outputs"
#: Slots of the ``ecoinvent_api`` pool for the whole suite (the pool test checks the cap it sets).
POOL_SLOTS = 2
#: A task whose heartbeats stop (its worker died) is failed, then retried, after this many seconds.
HEARTBEAT_TIMEOUT = 45
#: ``batch_size`` of the test DAGs' connection.
SMALL_BATCH = 25
#: The client secret the emulator accepts: unique per session, so finding it anywhere proves a leak.
CLIENT_SECRET = "dist-secret-" + secrets.token_hex(8)
#: DAGs that must be parsed before a test starts.
REQUIRED_DAGS = frozenset(
    {
        "ecoinvent_ingest_datasets",
        "ecoinvent_system_models",
        "ecoinvent_to_postgres",
        "dist_slow_ingest",
        "dist_versions_sensor",
        "dist_pool_fanout",
        "dist_partitioned_ingest",
        "dist_partitioned_fanout",
    }
)


def _load(name: str, path: Path) -> ModuleType:
    """Import a module of ``tests/stack`` by path (conftest files are not importable by name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


stack_support = _load("_ecoinvent_stack_support", REPO / "tests" / "stack" / "conftest.py")
stack_checks = _load("_ecoinvent_stack_checks", REPO / "tests" / "stack" / "test_stack.py")
free_port = stack_support.free_port
tail = stack_support.tail


def _selected(config: pytest.Config) -> bool:
    return "distributed" in (config.getoption("markexpr") or "") or (
        os.environ.get("ECOINVENT_DISTRIBUTED_TESTS") == "1"
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave this suite out of runs that did not ask for it: not collected, so not counted as skipped."""
    if collection_path.name == "conftest.py" or _selected(config):
        return None
    return True


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's report on the item, so the teardown can tell whether a test failed."""
    report = yield
    setattr(item, f"stack_report_{report.when}", report)
    return report


# -- the servers ---------------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's ``bin`` folder (Debian keeps it off ``PATH``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "PostgreSQL is not installed (no initdb): run `make test-distributed`, which installs the Debian "
        "`postgresql` package, or `apt-get install -y postgresql`."
    )


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(
            f"{binary} is not installed: run `make test-distributed`, which installs it, or "
            f"`apt-get install -y {package}`."
        )
    return path


def _wait(what: str, probe: Any, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if probe():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s:\n{tail(log)}")
        time.sleep(0.3)


@dataclass
class Servers:
    """The non-Airflow servers of the suite and how to reach them."""

    root: Path
    postgres_port: int = 0
    postgres_password: str = field(default_factory=lambda: secrets.token_hex(12))
    redis_port: int = 0
    s3_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pg_data: Path | None = None
    pg_user: str | None = None

    # -- addresses ------------------------------------------------------------------------------------

    def postgres_dsn(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://airflow:{self.postgres_password}@127.0.0.1:{self.postgres_port}/{database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def s3(self) -> Any:
        """A boto3 S3 client of the local store (moto accepts any credentials)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def pg_connect(self, database: str) -> Any:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.postgres_port,
            user="airflow",
            password=self.postgres_password,
            dbname=database,
        )
        connection.autocommit = True
        return connection

    # -- life-cycle -----------------------------------------------------------------------------------

    def _popen(self, name: str, argv: list[str], **kwargs: Any) -> None:
        with (self.root / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )

    def _as_pg_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.pg_user, "--", *argv] if self.pg_user else argv

    def start_postgres(self) -> None:
        """initdb in a fresh folder (as ``postgres`` when we are root: PostgreSQL refuses to run as root)."""
        bin_dir = _postgres_bin()
        self.pg_user = "postgres" if os.geteuid() == 0 else None
        if self.pg_user is not None:
            try:
                pwd.getpwnam(self.pg_user)
            except KeyError as err:
                raise RuntimeError("No `postgres` user: install the Debian `postgresql` package.") from err
        self.pg_data = self.root / "pgdata"
        password_file = self.root / "pgpass"
        password_file.write_text(self.postgres_password + "\n")
        if self.pg_user is not None:
            owner = pwd.getpwnam(self.pg_user)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        self.postgres_port = free_port()
        subprocess.run(
            self._as_pg_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.pg_data),
                    "-U",
                    "airflow",
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        password_file.unlink()
        # Foreground `postgres` (not `pg_ctl start`): its own process group, stopped like every other server.
        self._popen(
            "postgres",
            self._as_pg_user(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self.pg_data),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"port={self.postgres_port}",
                    "-c",
                    f"unix_socket_directories={self.root}",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ]
            ),
        )
        _wait("PostgreSQL", lambda: self.pg_connect("postgres").close() is None, self.root / "postgres.log")
        with contextlib.closing(self.pg_connect("postgres")) as connection, connection.cursor() as cursor:
            for database in ("airflow", "warehouse"):
                cursor.execute(f"CREATE DATABASE {database}")

    def start_redis(self) -> None:
        self.redis_port = free_port()
        self._popen(
            "redis",
            [
                _require("redis-server", "redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--protected-mode",
                "yes",
            ],
        )

        def ping() -> bool:
            import redis

            return bool(redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=2).ping())

        _wait("Redis", ping, self.root / "redis.log")

    def start_s3(self) -> None:
        self.s3_port = free_port()
        moto = Path(sys.executable).with_name("moto_server")
        self._popen("s3", [str(moto), "-H", "127.0.0.1", "-p", str(self.s3_port)])

        def up() -> bool:
            with urllib.request.urlopen(self.s3_endpoint + "/moto-api/", timeout=2) as response:
                return bool(response.status == 200)

        _wait("moto's S3 server", up, self.root / "s3.log")
        self.s3().create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        """SIGTERM each server's process group (PostgreSQL: SIGINT, its fast shutdown), SIGKILL what is left."""
        for name, process in self.processes.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def leftover(self) -> list[str]:
        """Live (not zombie) processes of a server's group, after a few seconds for SIGKILLed ones to go."""
        deadline = time.monotonic() + 10
        while True:
            left = [f"{name} (group {p.pid})" for name, p in self.processes.items() if _live_members(p.pid)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)


def _settled_leftovers(stack: Any, wait: float = 15.0) -> list[str]:
    """What is still running once SIGKILLed processes had time to go: a group counts only while it has a
    member that is not a zombie (``killpg(pgid, 0)`` also succeeds for a group of zombies not yet reaped)."""
    deadline = time.monotonic() + wait
    while True:
        left = [
            line
            for line in stack.leftover_processes()
            if not line.startswith("process group ") or _live_members(int(line.split()[2]))
        ]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.5)


def _live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are not zombies (an unreaped child still counts for ``killpg``)."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(proc.name))
    return members


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    # Not under pytest's tmp dir: its folders are private to root, and PostgreSQL runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="ecoinvent-distributed-servers-"))
    found = Servers(root=root)
    try:
        found.start_postgres()
        found.start_redis()
        found.start_s3()
        yield found
    finally:
        found.stop()
        left = found.leftover()
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"servers left running after teardown: {left}"


# -- Airflow -------------------------------------------------------------------------------------------


class Cluster(stack_support.AirflowStack):  # type: ignore[misc]
    """``tests/stack``'s ``AirflowStack`` with Celery workers, PostgreSQL and S3 next to it."""

    servers: Servers
    worker_logs: dict[str, Path]

    @property
    def output_root(self) -> str:
        """The ingestion DAGs' output root (the ``ecoinvent_output_root`` Variable)."""
        return f"s3://aws_default@{BUCKET}/out"

    def component_logs(self) -> dict[str, Path]:
        return {name: self.log_dir / f"{name}.log" for name in self.processes}

    def task_logs(self, dag_id: str = "") -> list[Path]:
        """Task log files of every worker (``<worker logs>/dag_id=.../run_id=.../task_id=.../attempt=N.log``)."""
        found: list[Path] = []
        for folder in self.worker_logs.values():
            found.extend(folder.glob(f"dag_id={dag_id or '*'}/**/*.log"))
        return sorted(found)

    def log_files(self) -> list[Path]:
        """Every log file: the shared home's (triggerer, dag-processor) and each worker's folder."""
        found = [p for p in (self.home / "logs").rglob("*") if p.is_file()]
        for folder in self.worker_logs.values():
            found.extend(p for p in folder.rglob("*") if p.is_file())
        return sorted(found)

    def worker_env(self, name: str) -> dict[str, str]:
        return {
            **self.env,
            "ECOINVENT_WORKER_NAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "ecoinvent_worker_name.get",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.worker_logs[name]),
            "PYTHONPATH": os.pathsep.join((str(WORKER_SITE), self.env["PYTHONPATH"])),
        }

    def start_component(self, name: str) -> None:
        """(Re)start one component by name, as at start-up."""
        if name in WORKERS:
            self.start_worker(name)
        elif name == "api-server":
            self.start(name, "api-server", "--port", self.api_url.rsplit(":", 1)[1])
        elif name == "triggerer":
            self.start(name, "triggerer", "--skip-serve-logs")
        else:
            self.start(name, name)

    def start_worker(self, name: str) -> None:
        env, self.env = self.env, self.worker_env(name)
        try:
            self.start(
                name,
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
                "--pid",
                str(self.home / f"{name}.pid"),
            )
        finally:
            self.env = env

    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the component's whole process group (a host losing power: SIGKILL) and reap it."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while stack_support._group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        del self.processes[name]

    def restart_component(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.kill_component(name, sig)
        self.start_component(name)

    def wait_for_workers(self) -> None:
        self.wait_for("both Celery workers to answer", lambda: _workers_ready(self), every=3)

    def set_pool(self, slots: int) -> None:
        self.airflow("pools", "set", "ecoinvent_api", str(slots), "ecoinvent API calls")

    def leaks(self) -> list[str]:
        """Where a credential shows in any log (``tests/stack``'s scan over every file and component output)."""
        found: list[str] = stack_checks.leaks(stack_checks.logged_texts(self), [self.emulator.client_secret])
        return found

    def ti_query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the metadata database (PostgreSQL) directly."""
        with contextlib.closing(self.servers.pg_connect("airflow")) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause and trigger a DAG through the REST API; returns the run id."""
        self.api(f"/api/v2/dags/{dag_id}", method="PATCH", body={"is_paused": False})
        body: dict[str, Any] = {"logical_date": None}
        if conf is not None:
            body["conf"] = conf
        run: dict[str, Any] = self.api(f"/api/v2/dags/{dag_id}/dagRuns", method="POST", body=body)
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        run: dict[str, Any] = self.api(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return str(run["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240.0) -> None:
        """Wait until the run succeeded; fail at once, with diagnostics, if it failed."""

        def settled() -> bool:
            state = self.run_state(dag_id, run_id)
            assert state != "failed", f"{dag_id} run {run_id} failed\n{self.task_states(dag_id, run_id)}"
            return state == "success"

        self.wait_for(f"{dag_id} run {run_id} to succeed", settled, timeout=timeout)

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[Any, ...]]:
        return self.ti_query(
            "SELECT task_id, map_index, state, try_number, hostname, queue FROM task_instance"
            " WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            dag_id,
            run_id,
        )

    def running_on(self, dag_id: str, run_id: str) -> str | None:
        """The worker running the run's single task, once it runs."""
        rows = [r for r in self.task_states(dag_id, run_id) if r[2] == "running" and r[4]]
        return str(rows[0][4]) if rows else None

    def list_keys(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.servers.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def read_key(self, key: str) -> bytes:
        body: bytes = self.servers.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def partial_keys(self, prefix: str = "") -> list[str]:
        """Temporary objects (``.<name>.<uuid>.partial``) under ``prefix``."""
        return [key for key in self.list_keys(prefix) if key.endswith(PARTIAL_SUFFIX)]

    # -- the emulator's ledger ------------------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """The emulator's billed usage of the suite's client (ids included)."""
        found: dict[str, Any] = self.emulator.stats(include_ids=True)["usage"].get(self.emulator.client_id, {})
        return found

    def scored_calls(self) -> int:
        return int(self.emulator.stats()["scored_calls"])


def cluster_env(home: Path, api_port: int, emulator: EmulatorServer, found: Servers) -> dict[str, str]:
    """``tests/stack``'s environment, moved to CeleryExecutor, PostgreSQL, Redis and S3."""
    env: dict[str, str] = stack_support.stack_env(home, api_port, emulator, home / "unused-output")
    bundles = [
        {"name": "dags-folder", "classpath": stack_support.LOCAL_BUNDLE, "kwargs": {}},
        {
            "name": "distributed-test-dags",
            "classpath": stack_support.LOCAL_BUNDLE,
            "kwargs": {"path": str(TEST_DAGS_FOLDER)},
        },
    ]
    aws = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": found.s3_endpoint, "region_name": "us-east-1"},
    }
    warehouse = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": found.postgres_port,
        "login": "airflow",
        "password": found.postgres_password,
        "schema": "warehouse",
    }
    env.update(
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(bundles),
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CORE__PARALLELISM="8",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=found.postgres_dsn("airflow"),
        AIRFLOW__CELERY__BROKER_URL=found.redis_url,
        AIRFLOW__CELERY__RESULT_BACKEND=found.postgres_dsn("airflow", driver="db+postgresql"),
        AIRFLOW__CELERY__WORKER_CONCURRENCY=str(WORKER_CONCURRENCY),
        # A dead worker's task is noticed (no heartbeat) and retried within a minute, not five.
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT),
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="5",
        AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT="300",
        # The test DAGs' connection: batches of 25 ids, so a run makes enough calls to be caught mid-write.
        AIRFLOW_CONN_ECOINVENT_SMALL_BATCHES=emulator.connection_json(batch_size=SMALL_BATCH),
        AIRFLOW_CONN_AWS_DEFAULT=json.dumps(aws),
        AIRFLOW_CONN_ECOINVENT_WAREHOUSE=json.dumps(warehouse),
        AIRFLOW_VAR_ECOINVENT_OUTPUT_ROOT=f"s3://aws_default@{BUCKET}/out",
        ECOINVENT_OUTPUT_ROOT=f"s3://aws_default@{BUCKET}/out",
    )
    for key in ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"):
        env.pop(key, None)  # nothing serves logs over the network here (those servers bind every interface)
    return env


def _workers_ready(stack: Cluster) -> bool:
    """Both Celery workers answer a ping over the broker."""
    result = stack.airflow("celery", "list-workers", "-o", "json", check=False)
    return all(f'"{name}@' in result.stdout for name in WORKERS)


@pytest.fixture(scope="session")
def cluster(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    """Migrate PostgreSQL, create the pool, start every component, wait until all are healthy and ready."""
    root = tmp_path_factory.mktemp("distributed")
    home, log_dir = root / "airflow", root / "component-logs"
    for directory in (home, log_dir):
        directory.mkdir()
    with EmulatorServer(client_secret=CLIENT_SECRET) as emulator:
        api_port = free_port()
        stack = Cluster(
            home=home,
            log_dir=log_dir,
            output_dir=home / "unused-output",
            env=cluster_env(home, api_port, emulator, servers),
            api_url=f"http://127.0.0.1:{api_port}",
            emulator=emulator,
        )
        stack.servers = servers
        # Under the home (diagnostics name files relative to it), apart from its logs/ (the triggerer's).
        stack.worker_logs = {name: home / f"worker-logs-{name}" for name in WORKERS}
        started = time.monotonic()
        try:
            stack.airflow("db", "migrate")
            stack.set_pool(POOL_SLOTS)
            for name in ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS):
                stack.start_component(name)
            stack.wait_for("every component to report healthy", lambda: stack_support._all_healthy(stack))
            stack.wait_for("the DAGs to be parsed", lambda: stack_support._dags_present(stack, REQUIRED_DAGS))
            stack.wait_for_workers()
            print(f"\n[distributed] up in {time.monotonic() - started:.0f} s at {stack.api_url} (home {home})")
            yield stack
        finally:
            failed = any(
                getattr(getattr(item, "stack_report_call", None), "failed", False) for item in request.session.items
            )
            if failed:
                print(f"\n[distributed] a test failed; component logs:\n{stack.diagnostics(80)}")
            stack.stop()
            left = _settled_leftovers(stack)
            for line in left:
                if line.startswith("pid "):
                    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                        os.kill(int(line.split()[1].rstrip(":")), signal.SIGKILL)
            assert not left, f"processes left running after teardown: {left}"
            print(f"[distributed] stopped cleanly after {time.monotonic() - started:.0f} s")
