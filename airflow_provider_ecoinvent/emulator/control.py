"""Starting, stopping and steering an emulator from Python.

``EmulatorServer`` runs the emulator in a background thread of this process (fast to start, used by
unit tests); ``EmulatorProcess`` runs ``python -m airflow_provider_ecoinvent.emulator`` as a child process
(used by benchmarks, so the emulator does not compete with the client for the GIL). Both share one
interface, and every control call goes through the admin HTTP endpoints with ``EmulatorControl``, so the
two forms behave identically.
"""

from __future__ import annotations

import atexit
import collections
import http.client
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from airflow_provider_ecoinvent.emulator.config import (
    ADMIN_PREFIX,
    STANDARD_API_PREFIX,
    TOKEN_PATH,
    EmulatorConfig,
    make_config,
)
from airflow_provider_ecoinvent.emulator.server import EmulatorHTTPServer, create_server, shutdown_server

if TYPE_CHECKING:
    from types import TracebackType

ENV_BASE_URL = "ECOINVENT_EMULATOR_BASE_URL"
ENV_TOKEN_URL = "ECOINVENT_EMULATOR_TOKEN_URL"
ENV_CONNECTION = "AIRFLOW_CONN_ECOINVENT_DEFAULT"


class EmulatorControlError(RuntimeError):
    """An admin call failed (bad fault rule, version already published, emulator gone...)."""


def base_url_for(host: str, port: int) -> str:
    """The URL clients use: a wildcard bind address is reached over loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def connection_dict_for(config: EmulatorConfig, base_url: str, **extra_overrides: Any) -> dict[str, Any]:
    """The Airflow connection (``AIRFLOW_CONN_ECOINVENT_DEFAULT`` JSON form) that reaches an emulator.

    ``api_prefix`` is written only when it is not the standard ``/v0``, which clients assume anyway: Airflow
    feeds every string extra to its secret masker whenever it reads a connection, and one shorter than five
    characters makes it log "Skipping masking for a secret as it's too short" in every task.
    """
    extra: dict[str, Any] = {"token_url": base_url + TOKEN_PATH}
    if config.api_prefix != STANDARD_API_PREFIX:
        extra["api_prefix"] = config.api_prefix
    extra.update(extra_overrides)
    return {
        "conn_type": "ecoinvent",
        "host": base_url,
        "login": config.client_id,
        "password": config.client_secret,
        "extra": extra,
    }


def startup_lines(config: EmulatorConfig, base_url: str) -> list[str]:
    """The lines ``python -m airflow_provider_ecoinvent.emulator`` prints once it accepts connections.

    Each is an ``export KEY='value'`` shell command, so that a user can paste them into a shell as they are
    (the connection JSON has spaces and quotes that an unquoted ``KEY=value`` line would split)."""
    values = {
        ENV_BASE_URL: base_url,
        ENV_TOKEN_URL: base_url + TOKEN_PATH,
        ENV_CONNECTION: json.dumps(connection_dict_for(config, base_url)),
    }
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def parse_startup_line(line: str) -> tuple[str, str] | None:
    """``(KEY, value)`` from one line of :func:`startup_lines`, ``None`` for any other line."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if len(words) != 2 or words[0] != "export":
        return None
    key, sep, value = words[1].partition("=")
    return (key, value) if sep and key else None


class EmulatorControl:
    """A tiny client for the admin endpoints (``/_emulator/...``).

    Uses ``http.client`` directly: no proxy environment variables apply, and nothing outside the
    standard library is needed.
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"not an emulator base URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port
        self.timeout = timeout

    def call(self, method: str, action: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, f"{ADMIN_PREFIX}/{action}", body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except OSError as exc:
            raise EmulatorControlError(f"{method} {ADMIN_PREFIX}/{action} failed: {exc}") from exc
        finally:
            connection.close()
        data = json.loads(raw) if raw else None
        if response.status >= 400:
            message = data.get("detail") if isinstance(data, dict) else raw.decode("utf-8", "replace")
            raise EmulatorControlError(f"{method} {ADMIN_PREFIX}/{action}: HTTP {response.status}: {message}")
        return data

    def health(self) -> bool:
        try:
            return bool(self.call("GET", "health").get("ok"))
        except EmulatorControlError:
            return False

    def stats(self, include_ids: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "stats?ids=1" if include_ids else "stats")
        return result

    def reset(self) -> None:
        self.call("POST", "reset")

    def add_fault(self, kind: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "faults", {"kind": kind, **options})["rule"]
        return result

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "faults")["faults"]
        return result

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def revoke_tokens(self) -> int:
        return int(self.call("POST", "revoke")["revoked"])

    def publish_version(
        self, name: str, system_models: list[str] | None = None, release_date: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"version": name}
        if system_models is not None:
            payload["system_models"] = list(system_models)
        if release_date is not None:
            payload["release_date"] = release_date
        result: dict[str, Any] = self.call("POST", "versions", payload)
        return result


class _EmulatorHandle:
    """What both forms share: URLs, the Airflow connection, and the control calls."""

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        self.config = make_config(config, **overrides)
        self._base_url: str | None = None
        self._control: EmulatorControl | None = None

    # -- life-cycle (per form) ------------------------------------------------------------------------

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._base_url is not None

    # -- addresses ------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: scheme, host and port, no API prefix."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self._base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def api_url(self) -> str:
        return self.base_url + self.config.api_prefix

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    def connection_dict(self, **extra_overrides: Any) -> dict[str, Any]:
        """The ``AIRFLOW_CONN_*`` JSON as a dict; keyword arguments are merged into ``extra``."""
        return connection_dict_for(self.config, self.base_url, **extra_overrides)

    def connection_json(self, **extra_overrides: Any) -> str:
        return json.dumps(self.connection_dict(**extra_overrides))

    def connection_env(self, conn_id: str = "ecoinvent_default", **extra_overrides: Any) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": json}``, ready for ``monkeypatch.setenv`` or a subprocess env."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(**extra_overrides)}

    # -- control --------------------------------------------------------------------------------------

    @property
    def control(self) -> EmulatorControl:
        if self._control is None:
            self._control = EmulatorControl(self.base_url)
        return self._control

    def stats(self, include_ids: bool = False) -> dict[str, Any]:
        """The ledger and counters (``include_ids``: also the exact dataset and indicator ids billed)."""
        return self.control.stats(include_ids)

    def reset(self) -> None:
        """Clear the ledger, counters and fault rules; tokens stay valid, published versions stay."""
        self.control.reset()

    def add_fault(self, kind: str, **options: Any) -> None:
        """Install a fault rule (see ``airflow_provider_ecoinvent.emulator.faults``)."""
        self.control.add_fault(kind, **options)

    def clear_faults(self) -> None:
        self.control.clear_faults()

    def revoke_tokens(self) -> None:
        """Revoke every token issued so far: the next call with one gets a 401 "Token revoked"."""
        self.control.revoke_tokens()

    def publish_version(self, name: str, system_models: list[str] | None = None) -> None:
        """Publish a release that becomes ``latest`` (all dataset ids; all system models by default)."""
        self.control.publish_version(name, system_models)


class EmulatorServer(_EmulatorHandle):
    """The emulator in a background thread of this process, on a free port by default."""

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = create_server(self.config)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ecoinvent-emulator-{server.port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        self._base_url = base_url_for(self.config.host, server.port)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._base_url = None
        self._control = None
        if server is not None:
            shutdown_server(server, serving=thread is not None and thread.is_alive())
        if thread is not None:
            thread.join(timeout=5)


def _package_root() -> str:
    """The directory holding ``airflow_provider_ecoinvent``, so the child imports this very copy."""
    return str(Path(__file__).resolve().parents[2])


class EmulatorProcess(_EmulatorHandle):
    """The emulator as ``python -m airflow_provider_ecoinvent.emulator`` in a child process.

    ``start`` waits for the printed start-up lines (``startup_timeout`` seconds at most); ``stop`` sends
    SIGTERM, waits, and kills if needed. A process still running at interpreter exit is stopped too.
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, startup_timeout: float = 20.0, **overrides: Any
    ) -> None:
        super().__init__(config, **overrides)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.startup_output: dict[str, str] = {}
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._readers: list[threading.Thread] = []
        #: Exit code of the last process stopped (``None`` while running or before start).
        self.returncode: int | None = None

    @property
    def stderr_tail(self) -> str:
        return "".join(self._stderr_tail)

    def start(self) -> Self:
        if self.process is not None:
            return self
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_root(), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_ecoinvent.emulator", *self.config.to_argv()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.process = process
        atexit.register(self.stop)
        lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._pump_stdout, args=(process.stdout, lines), daemon=True),
            threading.Thread(target=self._pump_stderr, args=(process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            self._await_startup(lines)
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _pump_stdout(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        # Keeps reading after start-up so the pipe never fills; ``None`` marks the end of output.
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _pump_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr_tail.append(line)

    def _await_startup(self, lines: queue.Queue[str | None]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        wanted = (ENV_BASE_URL, ENV_TOKEN_URL, ENV_CONNECTION)
        while not all(key in self.startup_output for key in wanted):
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise RuntimeError(
                    f"the emulator did not start within {self.startup_timeout} s:\n{self.stderr_tail}"
                ) from None
            if line is None:
                assert self.process is not None
                self.process.wait(timeout=5)
                raise RuntimeError(
                    f"the emulator exited with code {self.process.returncode} before starting:\n{self.stderr_tail}"
                )
            parsed = parse_startup_line(line)
            if parsed is not None:
                self.startup_output[parsed[0]] = parsed[1]
        self._base_url = self.startup_output[ENV_BASE_URL]

    def stop(self) -> None:
        process = self.process
        self.process = None
        self._base_url = None
        self._control = None
        atexit.unregister(self.stop)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.returncode = process.returncode
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
