"""The HTTP layer: a standard-library threaded server speaking HTTP/1.1 with keep-alive.

Why these choices:

* ``ThreadingHTTPServer`` with one thread per connection, a listen backlog of 128 and daemon threads:
  16+ concurrent clients are served in parallel, and an injected delay sleeps in its own handler thread,
  so concurrent requests overlap as on a real server.
* Every response goes out in a single ``send`` with ``TCP_NODELAY`` set; a separate header and body
  write would meet Nagle's algorithm and the client's delayed ACK and cost ~40 ms a request.
* Every response carries ``Content-Length``, so connections stay alive for a pooled client.
* Open connections are tracked so ``stop()`` can close idle keep-alive connections instead of leaving
  their threads blocked.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_ecoinvent.emulator.app import EmulatorApp, Request, Response

if TYPE_CHECKING:
    from airflow_provider_ecoinvent.emulator.config import EmulatorConfig

MAX_BODY_BYTES = 64 * 1024 * 1024
SERVER_NAME = "ecoinvent-emulator"


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, app: EmulatorApp, address: tuple[str, int]) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, EmulatorRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a reverse DNS lookup that can take seconds
        # on a machine without network); the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open client connection (idle keep-alive ones included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.app.stopping.is_set():
            return  # a client went away, or we are shutting down: nothing worth a traceback
        super().handle_error(request, client_address)


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SERVER_NAME
    sys_version = ""
    #: Idle keep-alive connections are closed after this many seconds, as real servers do.
    timeout = 120
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)
        self._connection_counted = False

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.app.config.log_requests:
            super().log_message(format, *args)

    # -- request --------------------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); ``None`` after answering a bad framing."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            self._send_plain(400, "Bad Content-Length")
            return None
        if length > MAX_BODY_BYTES:
            self._send_plain(413, "Request body too large")
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._send_plain(400, "Bad chunked encoding")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self._send_plain(413, "Request body too large")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            if body is None:
                return
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=unquote(split.path) or "/",
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            app = self.server.app
            if not self._connection_counted and not app.is_admin(request.path):
                # Counted on its first API or token request: admin calls are not the client's doing.
                self._connection_counted = True
                app.ledger.record_connection()
            try:
                response = app.handle(request)
            except Exception:  # an emulator bug: answer like a real server would, and say why on stderr
                traceback.print_exc()
                response = Response(500, b'{"detail":"Internal Server Error"}', [("Content-Type", "application/json")])
            self._write(response)
        except OSError:  # the client went away (reset, broken pipe, timeout): nothing to answer
            self.close_connection = True

    # -- response -------------------------------------------------------------------------------------

    def _head(self, response: Response, length: int) -> bytes:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Server: {SERVER_NAME}",
            f"Date: {self.date_time_string()}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        lines.append(f"Content-Length: {length}")
        if self.close_connection and response.transport is None:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, response: Response) -> None:
        self.log_request(response.status)
        if response.transport == "drop_start":
            self._reset_connection()
            return
        head = self._head(response, len(response.body))
        if response.transport is None:
            self.wfile.write(head if self.command == "HEAD" else head + response.body)
            return
        self.wfile.write(head + response.body[: response.partial_bytes])
        if response.transport == "drop":
            self._reset_connection()
        else:  # truncate: an orderly close after a body shorter than announced
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)

    def _reset_connection(self) -> None:
        """Close with a TCP RST (linger 0): the client sees "connection reset by peer"."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.rfile.close()  # the makefile reference is what keeps the socket open; this really closes it

    def _send_plain(self, status: int, message: str) -> None:
        self.close_connection = True
        response = Response(status, message.encode(), [("Content-Type", "text/plain; charset=utf-8")])
        self.wfile.write(self._head(response, len(response.body)) + response.body)


def create_server(config: EmulatorConfig) -> EmulatorHTTPServer:
    """Bind (port 0: a free port) without serving yet; ``serve_forever`` is the caller's business."""
    return EmulatorHTTPServer(EmulatorApp(config), (config.host, config.port))


def shutdown_server(server: EmulatorHTTPServer, serving: bool = True) -> None:
    """Stop serving, end injected sleeps, close every connection and the listening socket.

    ``serving`` says whether ``serve_forever`` runs in another thread (``shutdown`` waits for it).
    """
    server.app.stopping.set()
    if serving:
        server.shutdown()
    server.close_connections()
    server.server_close()
